"""Learning on the board from the host: LEARN (the mode every following run reads), REWARD and
READ_STATE (docs/protocol.md, "Learning on the board"). :class:`OnChipLearning` is a part of
:class:`spikegate.host.Board`.

A run with learning on changes the board, so it is never resent: a sample whose answer is lost
may or may not have been learned, and the driver says so instead of guessing.
"""
from __future__ import annotations

import numpy as np

from .errors import UserError
from .host_io import LinkError
from .model import link as proto
from .model.protocol import (MAX_STATE_ANSWER, READ_STATE_HEADER, REWARD_PAYLOAD, Cmd, RewardMode, StateKind, Status,
                             pack_fields, signed_range)

__all__ = ["OnChipLearning", "state_frames"]


def state_frames(layout: proto.StateLayout, layer: int, kind: StateKind) -> list[bytes]:
    """READ_STATE payloads that read all of a layer's ``kind``, each answer as long as the length
    field allows (a bulk read: 65,535 8-bit weights a frame)."""
    per = MAX_STATE_ANSWER // layout.value_bytes
    return [pack_fields(READ_STATE_HEADER, {"layer": layer, "kind": int(kind), "start": s,
                                            "count": min(per, layout.total - s)})
            for s in range(0, layout.total, per)]


class OnChipLearning:
    """The learning commands of :class:`spikegate.host.Board` (which provides ``geo``, ``identity``,
    ``net``-independent ``request`` and ``port``). ``check_network(net)`` first: the layouts follow
    from the network and the board's lanes."""

    _learn_net = None

    def _learning_request(self, cmd: Cmd, payload: bytes, *, retry: bool = True) -> bytes:
        try:
            return self.request(cmd, payload, retry=retry)
        except UserError as e:  # host.DeviceError
            status = getattr(e, "status", None)
            if status == Status.UNKNOWN_CMD:
                raise type(e)(f"the board on {self.port} has no learning commands ({cmd.name}): its bitstream "
                              "predates them; rebuild and flash it", status) from None
            if status == Status.UNSUPPORTED:
                what = {Cmd.LEARN: "has no plastic layer", Cmd.REWARD: "has no rstdp layer to take a reward",
                        Cmd.READ_STATE: "cannot read that state back"}[cmd]
                raise type(e)(f"the board on {self.port} refused {cmd.name}: its network {what}", status) from None
            raise

    def set_learning(self, on: bool) -> None:
        """LEARN: every following run (LOAD with run, RUN, ENCODE, BATCH) learns while ``on``."""
        self._learning_request(Cmd.LEARN, bytes([int(bool(on))]))

    def reward(self, value: int, per_step: bool = False) -> None:
        """REWARD for the rstdp layers (refused by a network without one): a signed 16-bit reward
        applied once now to the eligibility the last run left (``per_step`` False: SAMPLE, answered
        when the board has applied it), or held as R(t) of every step of every following run with
        learning on (``per_step`` True: STEP)."""
        lo, hi = signed_range(16)
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not lo <= value <= hi:
            raise ValueError(f"reward = {value!r} is not valid; valid: an integer from {lo} to {hi}")
        mode = RewardMode.STEP if per_step else RewardMode.SAMPLE
        # Not idempotent (the weights change, or every later run does): sent once.
        self._learning_request(Cmd.REWARD, pack_fields(REWARD_PAYLOAD, {"mode": mode, "reward": int(value) & 0xFFFF}),
                               retry=False)

    def state_layout(self, net, layer: int, kind: StateKind) -> proto.StateLayout | None:
        """What READ_STATE gives for ``layer``'s ``kind`` on this board (``net``: its network), None
        when the board cannot read it."""
        if self.identity is None:
            raise UserError("call check_network(net) or ensure_network(net) before reading learned state")
        geometry = self.identity.hardware().geometry(net)
        if not 0 <= layer < len(geometry):
            raise ValueError(f"layer = {layer!r} is not valid; valid: 0 to {len(geometry) - 1}")
        return proto.state_layout(geometry, layer, kind)

    def read_state(self, net, layer: int, kind: StateKind) -> np.ndarray:
        """All of ``layer``'s ``kind`` (int64; weights and eligibility [n_in, n], pre traces [n_in],
        the others [n]) by READ_STATE."""
        lay = self.state_layout(net, layer, kind)
        if lay is None:
            raise UserError(f"the board cannot read back {StateKind(kind).name.lower()} of layer {layer}: "
                            "a plastic layer's weights, traces, threshold offsets (if it keeps them) and "
                            "eligibility (rstdp) are readable")
        data = b"".join(self._learning_request(Cmd.READ_STATE, f) for f in state_frames(lay, layer, kind))
        vb = lay.value_bytes
        vals = np.array([proto.from_le(data[i:i + vb], signed=lay.signed) for i in range(0, len(data), vb)],
                        np.int64)
        two_d = kind in (StateKind.WEIGHTS, StateKind.ELIGIBILITY)
        return vals.reshape(net.layers[layer].n_in, -1) if two_d else vals

    def learned_network(self, net):
        """``net`` with the weights and threshold offsets of its plastic layers read from the board,
        as :meth:`spikegate.model.learning.Learner.network` builds it."""
        layers = list(net.layers)
        for l, layer in enumerate(layers):
            p = layer.plasticity
            if p is None:
                continue
            weights = self.read_state(net, l, StateKind.WEIGHTS)
            learns = bool(p.theta_inc or p.theta_decay)  # the offsets change only then
            if not layer.readout:  # (a readout never fires, so its offsets stay unset)
                offsets = (self.read_state(net, l, StateKind.OFFSETS) if learns
                           else p.offsets_for(layer).copy())
                p = p.replace(offsets=offsets)
            layers[l] = layer.replace(weights=weights, plasticity=p)
        return net.replace(layers=layers)

    def learn_sample(self, spikes) -> tuple[np.ndarray, np.ndarray, int]:
        """Run one sample's spikes [T, n_in] with learning on (set it with :meth:`set_learning`) as
        the LOAD frames of :meth:`load_frames`: (spike counts, final membranes, cycles). No encoder
        is needed on the board. Only a first frame that clears without running is resent; a lost
        answer of any other raises LinkError saying the board's learned state is now unknown."""
        frames = self.load_frames(np.asarray(spikes, bool))
        try:
            for k, f in enumerate(frames):
                p = self.request(Cmd.LOAD, f, retry=k == 0 and len(frames) > 1)
        except LinkError as e:
            raise LinkError(f"{e} While learning a sample: it may or may not have been learned, so the board's "
                            "weights are unknown; reload the network and start again") from None
        return self._run_answer(p)

