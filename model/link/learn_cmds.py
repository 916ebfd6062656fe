"""LEARN, REWARD and READ_STATE, the learning commands (docs/protocol.md, "Learning on the board"):
which learned state a bitstream can read back, and the twin's handlers. The gateware's are
:class:`spikegate.hdl.link.learn_cmds.LearnCommands`; both decide with :func:`state_layout`."""
from __future__ import annotations

from dataclasses import dataclass

from ..protocol import (LEARN_MODES, MAX_STATE_ANSWER, READ_STATE_HEADER, READ_STATE_HEADER_LEN, REWARD_BYTES,
                        CfgTarget, StateKind, Status, parse_fields)
from .frames import from_le, to_le, value_bytes

__all__ = ["StateLayout", "state_layout", "has_plastic", "has_rstdp", "LearnTwin"]


@dataclass(frozen=True)
class StateLayout:
    """What READ_STATE returns for one (layer, kind): ``total`` values of ``value_bytes`` bytes each,
    two's complement when ``signed``."""
    total: int
    value_bytes: int
    signed: bool


def state_layout(geometry, layer: int, kind: int) -> StateLayout | None:
    """The readable state ``kind`` of ``layer`` on a core of ``geometry`` (the core's per-layer
    ``LayerGeometry`` list), or None when the bitstream cannot read it (READ_STATE answers
    UNSUPPORTED): weights of any plastic layer (the ``param`` port CHECKSUM reads); threshold offsets
    of a plastic last layer that keeps offsets (the core's output peek, ``out_addr``, reads them);
    no traces (the layer core has no idle-time read of its trace memories)."""
    geo = geometry[layer]
    lg = geo.learning
    if lg is None:
        return None
    if kind == StateKind.WEIGHTS:
        return StateLayout(geo.n_in * geo.n, value_bytes(geo.weight_bits), True)
    if kind == StateKind.OFFSETS and lg.offset_bits and layer == len(geometry) - 1:
        return StateLayout(geo.n, value_bytes(lg.offset_bits), False)
    return None


def has_plastic(net) -> bool:
    return any(layer.plasticity is not None for layer in net.layers)


def has_rstdp(net) -> bool:
    return any(layer.plasticity is not None and layer.plasticity.rule == "rstdp" for layer in net.layers)


class LearnTwin:
    """The learning commands on the twin's :class:`~spikegate.model.core.NetworkCore` ``core``;
    ``learning`` is the mode flag every run reads (off at reset)."""

    def __init__(self, net, core):
        self.net, self.core = net, core
        self.learning = False

    @staticmethod
    def _refusal(p: bytes, length: int, supported: bool) -> tuple[Status, bytes] | None:
        """The first checks of all three: the payload's length, then whether the network has the feature."""
        if len(p) != length:
            return Status.BAD_LENGTH, b""
        return None if supported else (Status.UNSUPPORTED, b"")

    def learn(self, p: bytes) -> tuple[Status, bytes]:
        if (refused := self._refusal(p, 1, has_plastic(self.net))) is not None:
            return refused
        if p[0] not in LEARN_MODES:
            return Status.RANGE, b""
        self.learning = bool(p[0])
        return Status.OK, b""

    def reward(self, p: bytes) -> tuple[Status, bytes]:
        if (refused := self._refusal(p, REWARD_BYTES, has_rstdp(self.net))) is not None:
            return refused
        # An rstdp layer has no gateware yet (HardwareConfig.geometry refuses it), so no core twin
        # reaches this line until the core takes a reward.
        self.core.reward(from_le(p, signed=True))
        return Status.OK, b""

    def read_state(self, p: bytes) -> tuple[Status, bytes]:
        if (refused := self._refusal(p, READ_STATE_HEADER_LEN, has_plastic(self.net))) is not None:
            return refused
        h = parse_fields(READ_STATE_HEADER, p)
        layer, kind, start, count = h["layer"], h["kind"], h["start"], h["count"]
        if layer >= len(self.core.geometry) or kind not in tuple(StateKind):
            return Status.RANGE, b""
        lay = state_layout(self.core.geometry, layer, kind)
        if lay is None:
            return Status.UNSUPPORTED, b""
        if count == 0 or start + count > lay.total or count * lay.value_bytes > MAX_STATE_ANSWER:
            return Status.RANGE, b""
        n = self.core.geometry[layer].n
        if kind == StateKind.WEIGHTS:
            vals = [self.core.param(layer, CfgTarget.WEIGHT, *divmod(k, n)) for k in range(start, start + count)]
        else:
            vals = self.core.layers[layer].learning.neuron_offsets()[start:start + count].tolist()
        return Status.OK, b"".join(to_le(int(v), lay.value_bytes) for v in vals)
