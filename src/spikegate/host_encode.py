"""On-chip encoding from the host: ENCODE (one sample's levels, the board makes the spikes) and
BATCH (several samples in one frame, one answer block each); docs/protocol.md. :class:`OnChipEncoding`
is a part of :class:`spikegate.host.Board`."""
from __future__ import annotations

import numpy as np

from .errors import UserError
from .model import link as proto
from .model.protocol import (BATCH_HEADER, BATCH_RECORD, CYCLE_BYTES, ENCODE_HEADER, Cmd, Encoding, Status, layout_len,
                             pack_fields)

__all__ = ["OnChipEncoding", "encode_payload"]


def encode_payload(geo: proto.LinkGeometry, levels, encoding: str, state: int = 0) -> bytes:
    """One ENCODE payload: a sample's ``levels`` [n_in] (0..255) under ``encoding`` (``rate``,
    ``latency``, ``bernoulli``; ``state``: the initial xorshift32 state, non-zero, for
    ``bernoulli`` only). Bad values are refused here, before the board would."""
    names = [e.name.lower() for e in Encoding]
    if encoding not in names:
        raise ValueError(f"encoding = {encoding!r} has no on-chip encoder; valid: {', '.join(names)}")
    code = Encoding[encoding.upper()]
    if isinstance(state, bool) or not isinstance(state, (int, np.integer)) or not (
            1 <= state <= 0xFFFFFFFF if code == Encoding.BERNOULLI else state == 0):
        raise ValueError(f"state = {state!r} is not valid for {encoding}; valid: "
                         + ("an integer from 1 to 4294967295" if code == Encoding.BERNOULLI else "0"))
    levels = np.asarray(levels)
    if levels.shape != (geo.n_in,) or not np.issubdtype(levels.dtype, np.integer) or (
            levels.size and (levels.min() < 0 or levels.max() > 255)):
        raise ValueError(f"levels must be {geo.n_in} integers from 0 to 255, got {levels.dtype} {levels.shape}")
    if not proto.encode_fits(geo):
        raise ValueError(f"an ENCODE of {geo.n_in} levels is {proto.ENCODE_HEADER_LEN + geo.n_in} bytes, more than the "
                         f"board's max_payload = {geo.max_payload}; send these samples as spikes (LOAD)")
    return pack_fields(ENCODE_HEADER, {"encoding": code, "state": int(state)}) + levels.astype(np.uint8).tobytes()


class OnChipEncoding:
    """The ENCODE and BATCH commands of :class:`spikegate.host.Board` (which provides ``geo``,
    ``port`` and ``request``)."""

    def run_levels(self, levels, encoding: str, state: int = 0) -> tuple[np.ndarray, np.ndarray, int]:
        """Run one sample given as levels [n_in] (0..255): the board makes the ``encoding``'s
        spikes itself (ENCODE). Returns (spike counts, final membranes, cycles of the run)."""
        if self.geo is None:
            raise UserError("call check_network(net) or ensure_network(net) before running samples")
        return self._run_answer(self._encoder_request(Cmd.ENCODE, encode_payload(self.geo, levels, encoding, state)))

    def _encoder_request(self, cmd: Cmd, payload: bytes, *, retry: bool = True) -> bytes:
        return self._encoder_call(cmd, lambda: self.request(cmd, payload, retry=retry))

    def _encoder_call(self, cmd: Cmd, call):
        try:
            return call()
        except UserError as e:  # host.DeviceError: the board's answer was an error status
            if getattr(e, "status", None) == Status.UNKNOWN_CMD:
                raise type(e)(f"the board on {self.port} has no on-chip encoder ({cmd.name}): its bitstream "
                              "predates it; rebuild and flash it, or send spikes instead", e.status) from None
            raise

    def batch_limit(self) -> int:
        """The most samples one BATCH frame can carry on this board (0: it takes no BATCH)."""
        g = self.geo
        if g is None:
            raise UserError("call check_network(net) or ensure_network(net) before running samples")
        if not proto.batch_fits(g):
            return 0
        record = layout_len(BATCH_RECORD) + g.n_in
        return min((g.max_payload - layout_len(BATCH_HEADER)) // record, 0xFFFF // (CYCLE_BYTES + g.output_bytes))

    def run_batch(self, levels, encoding: str, states=None, *, retry: bool = True
                  ) -> list[tuple[np.ndarray, np.ndarray, int]]:
        """Run several samples' levels [K, n_in] in one BATCH frame (K <= :meth:`batch_limit`);
        ``states``: one initial xorshift32 state per sample for ``bernoulli``. One (counts,
        membranes, cycles) per sample. ``retry=False``: never resent (runs that learn)."""
        levels = np.asarray(levels)
        k, limit = len(levels), self.batch_limit()
        if not 1 <= k <= limit:
            raise ValueError(f"batch of {k} samples is not valid on the board on {self.port}; valid: 1 to {limit} "
                             "samples (what one frame holds; 0 when a sample could overflow its input buffer)")
        states = [0] * k if states is None else list(states)
        if len(states) != k:
            raise ValueError(f"states has {len(states)} entries; valid: one per sample ({k})")
        p = self._encoder_request(Cmd.BATCH, self._batch_payload(levels, encoding, states), retry=retry)
        return self._batch_answer(p, k)

    def _batch_payload(self, levels, encoding: str, states) -> bytes:
        parts = [encode_payload(self.geo, q, encoding, st) for q, st in zip(levels, states)]
        # a BATCH record is an ENCODE payload without its encoding byte
        return parts[0][:1] + b"".join(q[1:] for q in parts)

    def _batch_answer(self, p: bytes, k: int) -> list[tuple[np.ndarray, np.ndarray, int]]:
        block = CYCLE_BYTES + self.geo.output_bytes
        return [self._run_answer(p[i * block:(i + 1) * block]) for i in range(k)]

    def run_levels_many(self, levels, encoding: str, states=None, *, batch: int = 1, on_answer=None
                        ) -> list[tuple[np.ndarray, np.ndarray, int]]:
        """Many samples' levels [N, n_in], ENCODE each (``batch`` 1) or ``batch`` to a BATCH frame,
        the frames pipelined (:meth:`pipeline`; learning must be off: they may be resent).
        ``on_answer(first, count, seconds)`` hears each frame's answer: samples first..first+count-1."""
        levels = np.asarray(levels)
        n = len(levels)
        states = [0] * n if states is None else list(states)
        if len(states) != n:
            raise ValueError(f"states has {len(states)} entries; valid: one per sample ({n})")
        limit = self.batch_limit()
        if isinstance(batch, bool) or not isinstance(batch, int) or not 1 <= batch <= max(1, limit):
            raise ValueError(f"batch = {batch!r} is not valid on the board on {self.port}; valid: 1 to {max(1, limit)}")
        spans = [(i, min(n, i + batch)) for i in range(0, n, batch)]
        if batch == 1:
            cmd, payloads = Cmd.ENCODE, [encode_payload(self.geo, levels[i], encoding, states[i]) for i in range(n)]
        else:
            cmd, payloads = Cmd.BATCH, [self._batch_payload(levels[a:b], encoding, states[a:b]) for a, b in spans]
        hear = None if on_answer is None else (lambda j, p, t: on_answer(spans[j][0], spans[j][1] - spans[j][0], t))
        answers = self._encoder_call(cmd, lambda: self.pipeline(cmd, payloads, on_answer=hear))
        return [r for (a, b), p in zip(spans, answers) for r in self._batch_answer(p, b - a)]
