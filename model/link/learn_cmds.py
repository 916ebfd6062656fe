"""LEARN, REWARD and READ_STATE, the learning commands (docs/protocol.md, "Learning on the board"):
which learned state a bitstream can read back, and the twin's handlers. The gateware's are
:class:`spikegate.hdl.link.learn_cmds.LearnCommands`; both decide with :func:`state_layout`."""
from __future__ import annotations

from dataclasses import dataclass

from ..protocol import (LEARN_MODES, MAX_STATE_ANSWER, READ_STATE_HEADER, READ_STATE_HEADER_LEN, REWARD_BYTES,
                        REWARD_PAYLOAD, CfgTarget, RewardMode, StateKind, Status, parse_fields)
from .frames import from_le, to_le, value_bytes

__all__ = ["StateLayout", "state_layout", "state_index", "has_plastic", "has_rstdp", "LearnTwin"]


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
    UNSUPPORTED). Of any plastic layer: the weights (the ``param`` port CHECKSUM reads), the pre and
    post traces, the threshold offsets if the layer keeps them and the eligibility if it is rstdp
    (the core's idle-time ``learn_state_addr`` read, hdl.learning_state)."""
    geo = geometry[layer]
    lg = geo.learning
    if lg is None:
        return None
    if kind == StateKind.WEIGHTS:
        return StateLayout(geo.n_in * geo.n, value_bytes(geo.weight_bits), True)
    if kind == StateKind.OFFSETS and lg.offset_bits:
        return StateLayout(geo.n, value_bytes(lg.offset_bits), False)
    if kind == StateKind.PRE_TRACES:
        return StateLayout(geo.n_in, value_bytes(lg.trace_bits), False)
    if kind == StateKind.POST_TRACES:
        return StateLayout(geo.n, value_bytes(lg.trace_bits), False)
    if kind == StateKind.ELIGIBILITY and lg.elig_bits:
        return StateLayout(geo.n_in * geo.n, value_bytes(lg.elig_bits), True)
    return None


def state_index(geometry, layer: int, kind: int, k: int) -> tuple[int, int]:
    """The (row, col) of value ``k`` of ``layer``'s ``kind``: row-major for the weights and the
    eligibility, the input for the pre traces, the neuron for the others."""
    if kind in (StateKind.WEIGHTS, StateKind.ELIGIBILITY):
        return divmod(k, geometry[layer].n)
    return (k, 0) if kind == StateKind.PRE_TRACES else (0, k)


def has_plastic(net) -> bool:
    return any(layer.plasticity is not None for layer in net.layers)


def has_rstdp(net) -> bool:
    return any(layer.plasticity is not None and layer.plasticity.rule == "rstdp" for layer in net.layers)


class LearnTwin:
    """The learning commands on the twin's :class:`~spikegate.model.core.NetworkCore` ``core``;
    ``learning`` is the mode flag every run reads (off at reset), ``step_reward`` the per-step
    reward every run with learning on applies (REWARD STEP, 0 at reset)."""

    def __init__(self, net, core):
        self.net, self.core = net, core
        self.learning = False
        self.step_reward = 0

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
        """REWARD; a SAMPLE reward sets the core's ``done`` flag, which the caller keeps."""
        if (refused := self._refusal(p, REWARD_BYTES, has_rstdp(self.net))) is not None:
            return refused
        h = parse_fields(REWARD_PAYLOAD, p)
        if h["mode"] not in tuple(RewardMode):
            return Status.RANGE, b""
        value = from_le(p[1:], signed=True)
        if h["mode"] == RewardMode.STEP:
            self.step_reward = value
        else:
            self.core.reward(value)
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
        at = [state_index(self.core.geometry, layer, kind, k) for k in range(start, start + count)]
        if kind == StateKind.WEIGHTS:
            vals = [self.core.param(layer, CfgTarget.WEIGHT, r, c) for r, c in at]
        else:
            vals = [self.core.learn_state(layer, kind, r, c) for r, c in at]
        return Status.OK, b"".join(to_le(int(v), lay.value_bytes) for v in vals)
