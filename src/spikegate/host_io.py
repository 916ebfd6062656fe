"""The host driver's reading side: one response, within an overall deadline.

A port that never goes quiet (a wrong baud rate, a chatty device, a flood of sync bytes) must not
hold a request for ever, so every attempt has a deadline on top of the silence ``timeout``
(docs/protocol.md, "Host side")::

    deadline = timeout + 2 * 10 * (request_bytes + 8 + max_answer) / baud   seconds

``max_answer`` is the longest payload the board can answer to that command; a response header
announcing more is garbage and is skipped without reading its announced length.
"""
from __future__ import annotations

import time

from .errors import UserError
from .model.link.frames import decode_response, from_le
from .model.protocol import RESPONSE_HEADER, SYNC_RESP, Status

__all__ = ["LinkError", "Received", "attempt_deadline", "read_response", "flush_input", "open_port", "FLUSH_LIMIT"]

# Statuses that mean the request was damaged on the way: sending it again is the right answer.
TRANSIENT = (Status.BAD_CRC, Status.TIMEOUT)
# Bytes of a response beyond its payload: sync, header, CRC.
FRAME_OVERHEAD = 1 + RESPONSE_HEADER + 2
_SHOWN = 16
# Seconds a flush may add to ``settle``: pyserial's reset_input_buffer on a socket reads until
# the line is quiet, which on a flooding port is never.
FLUSH_LIMIT = 0.1


class LinkError(UserError):
    """The board did not answer, or not intelligibly, within the retries."""


def attempt_deadline(timeout: float, baud: int, request_bytes: int, max_answer: int) -> float:
    """Seconds one attempt may take at most: the silence timeout plus twice the line time of the
    request and the longest answer (10 bits a byte)."""
    return timeout + 2 * 10 * (request_bytes + FRAME_OVERHEAD + max_answer) / baud


class Received:
    """What one attempt received: a byte count and the first bytes, for error messages."""

    def __init__(self):
        self.count = 0
        self.head = bytearray()

    def add(self, data: bytes):
        self.count += len(data)
        if len(self.head) < _SHOWN:
            self.head += data[:_SHOWN - len(self.head)]

    def describe(self) -> str:
        if not self.count:
            return "nothing received"
        more = " ..." if self.count > len(self.head) else ""
        return f"received {self.count} byte(s): {self.head.hex(' ')}{more}"


def _read_exact(ser, n: int, end: float, timeout: float, got: Received, port: str) -> bytes | None:
    """``n`` bytes, or None after ``timeout`` s of silence or at the monotonic time ``end``."""
    import serial
    data = bytearray()
    while len(data) < n:
        left = end - time.monotonic()
        if left <= 0:
            return None
        ser.timeout = min(timeout, left)
        try:
            chunk = ser.read(n - len(data))
        except (serial.SerialException, OSError) as e:
            raise LinkError(f"reading from {port} failed: {e}") from None
        if not chunk:
            return None
        got.add(chunk)
        data += chunk
    return bytes(data)


def read_response(ser, tag: int, *, deadline: float, timeout: float, max_answer: int, port: str,
                  cmd: int | None = None):
    """The next well-formed response carrying ``tag`` (and, given ``cmd``, answering that command),
    or reporting a damaged request, as ``((cmd, tag, status, payload) or None, Received)``; None
    after a silence, a damaged frame or the ``deadline`` (seconds from now)."""
    end = time.monotonic() + deadline
    got = Received()
    while True:
        b = _read_exact(ser, 1, end, timeout, got, port)
        if b is None:
            return None, got
        if b[0] != SYNC_RESP:
            continue
        head = _read_exact(ser, RESPONSE_HEADER, end, timeout, got, port)
        if head is None:
            return None, got
        n = from_le(head[3:5])
        if n > max_answer:
            continue  # not a header the board could send: a sync byte inside garbage
        rest = _read_exact(ser, n + 2, end, timeout, got, port)
        if rest is None:
            return None, got
        try:
            rcmd, rtag, status, payload = decode_response(b + head + rest)
        except ValueError:
            return None, got
        if status in TRANSIENT:
            # Whatever its tag, a damaged or cut-short frame may have swallowed this request.
            return (rcmd, rtag, status, payload), got
        if rtag != tag or (cmd is not None and rcmd != cmd):
            continue  # a late answer to an earlier, abandoned request (tags repeat every 256)
        return (rcmd, rtag, status, payload), got


def flush_input(ser, limit: float, port: str):
    """Discard what has arrived on ``ser``, for at most ``limit`` seconds."""
    import serial
    end = time.monotonic() + limit
    ser.timeout = 0
    try:
        while time.monotonic() < end and ser.read(65536):
            pass
    except (serial.SerialException, OSError) as e:
        raise LinkError(f"reading from {port} failed: {e}") from None


def open_port(port: str, baud: int, timeout: float):
    """``port`` opened with pyserial and its stale input discarded within ``FLUSH_LIMIT`` seconds.

    pyserial's ``open()`` ends by emptying the input buffer; for a ``socket://`` URL that reads
    until the peer falls silent, which a peer that never does (a streaming simulation, a wrong
    service on that port) turns into a hang before the first request. The bounded flush replaces it.
    """
    import serial
    ser = serial.serial_for_url(port, baudrate=baud, timeout=timeout, do_not_open=True)
    ser.reset_input_buffer = lambda: None  # only for open(); the instance attribute goes again below
    try:
        ser.open()
    finally:
        del ser.reset_input_buffer
    try:
        flush_input(ser, FLUSH_LIMIT, port)
    except LinkError:
        ser.close()
        raise
    ser.timeout = timeout
    return ser
