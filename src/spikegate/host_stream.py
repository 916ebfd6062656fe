"""Pipelined requests (docs/protocol.md, "Streaming"): a streaming board receives the next frame
while it executes one, so the host keeps up to ``STREAM_WINDOW`` requests unanswered and the line
and the core are busy at the same time. :class:`Pipelining` is a part of :class:`spikegate.host.Board`.

Only requests that are safe to repeat go through here (a sample's LOAD that clears and runs,
ENCODE, BATCH with learning off): any trouble (no valid answer by the deadline, a damaged frame)
ends the pipeline, the line is resynchronised and every unanswered request is sent again one at a
time through ``Board.request``, with its retries; then pipelining resumes.
"""
from __future__ import annotations

import time
from collections import deque

from .host_io import TRANSIENT, attempt_deadline, read_response
from .model import link as proto
from .model.protocol import STREAM_WINDOW, Status

__all__ = ["Pipelining", "stream_window"]


def stream_window(identity) -> int:
    """Requests a host may leave unanswered on the board ``identity`` describes."""
    return STREAM_WINDOW if identity is not None and identity.stream else 1


class Pipelining:
    """:meth:`pipeline` for :class:`spikegate.host.Board` (which provides ``ser``, ``identity``,
    ``timeout``, ``baud``, ``port``, ``request``, ``_max_answer``, ``_resync``, the tag and the
    byte counters)."""

    def pipeline(self, cmd: int, payloads, *, on_answer=None, window: int | None = None) -> list[bytes]:
        """Send every payload as a ``cmd`` request, at most ``window`` unanswered at a time
        (default: :func:`stream_window` of the board), and return the OK answers' payloads in
        order. ``on_answer(i, payload, seconds)`` hears each answer as it arrives, with the time
        from its request's send. An error status other than a damaged frame raises
        ``host.DeviceError`` as :meth:`request` does."""
        payloads = list(payloads)
        window = stream_window(self.identity) if window is None else window
        if isinstance(window, bool) or not isinstance(window, int) or window < 1:
            raise ValueError(f"window = {window!r} is not valid; valid: an integer >= 1")
        out: list[bytes | None] = [None] * len(payloads)
        max_answer = self._max_answer(cmd)
        flight: deque = deque()   # (index, tag, frame length, send time)
        nxt = 0
        while nxt < len(payloads) or flight:
            while nxt < len(payloads) and len(flight) < window:
                flight.append(self._send(cmd, payloads[nxt], nxt))
                nxt += 1
            i, tag, _, sent_at = flight[0]
            in_line = sum(f[2] for f in flight)
            deadline = attempt_deadline(self.timeout, self.baud, in_line, len(flight) * max_answer)
            got, received = read_response(self.ser, tag, deadline=deadline, timeout=self.timeout,
                                          max_answer=max_answer, port=self.port, cmd=cmd & 0xFF)
            self.bytes_received += received.count
            if got is not None and got[2] == Status.OK and got[1] == tag:
                flight.popleft()
                out[i] = got[3]
                if on_answer is not None:
                    on_answer(i, got[3], time.perf_counter() - sent_at)
                continue
            if got is not None and got[2] not in TRANSIENT:
                raise self._refused(cmd, got[2])
            # Lost or damaged: start again from the oldest unanswered request, one at a time.
            self._resync()
            for j, _, _, t in list(flight):
                out[j] = self.request(cmd, payloads[j])
                if on_answer is not None:
                    on_answer(j, out[j], time.perf_counter() - t)
            flight.clear()
        return out

    def _send(self, cmd: int, payload: bytes, i: int):
        self._tag = (self._tag + 1) & 0xFF
        frame = proto.encode_request(cmd, self._tag, payload)
        self._write(frame)
        return i, self._tag, len(frame), time.perf_counter()
