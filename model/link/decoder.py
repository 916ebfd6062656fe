"""Byte-level twin of :class:`spikegate.hdl.link.FrameDecoder`: request frames in, checked frames
or rejections out."""
from __future__ import annotations

from dataclasses import dataclass

from ..protocol import REQUEST_HEADER, SYNC_REQ, Status
from .frames import crc16, from_le

__all__ = ["Frame", "Reject", "FrameDecoder"]


@dataclass(frozen=True)
class Frame:
    """A request whose CRC matched: what the command engine receives."""
    cmd: int
    tag: int
    payload: bytes


@dataclass(frozen=True)
class Reject:
    """A request answered without reaching the command engine (``status``: BAD_LENGTH for a
    length over ``max_payload``, BAD_CRC, TIMEOUT); ``cmd``/``tag`` as received so far."""
    cmd: int
    tag: int
    status: Status


class FrameDecoder:
    """Hunts for the sync byte, reads the header, buffers the payload and checks the CRC.

    ``feed(byte)`` returns a :class:`Frame`, a :class:`Reject` or None (frame incomplete);
    ``timeout()`` is a silence of ``frame_timeout`` cycles (a Reject when a frame was open).
    Afterwards the decoder hunts again (the gateware only once the answer has been sent, or, when
    streaming, once the engine has taken the frame, a second payload bank receiving the next; the
    host keeps within that window, so the twin need not model it).
    """

    def __init__(self, max_payload: int):
        self.max_payload = max_payload
        self._state = "hunt"
        self._hdr = bytearray()
        self._payload = bytearray()
        self._crc = bytearray()

    @property
    def hunting(self) -> bool:
        return self._state == "hunt"

    def _cmd_tag(self) -> tuple[int, int]:
        h = self._hdr + bytes(2)
        return h[0], h[1]

    def timeout(self) -> Reject | None:
        if self._state == "hunt":
            return None
        self._state = "hunt"
        return Reject(*self._cmd_tag(), Status.TIMEOUT)

    def feed(self, b: int) -> Frame | Reject | None:
        st = self._state
        if st == "hunt":
            if b == SYNC_REQ:
                self._state, self._hdr = "hdr", bytearray()
            return None
        if st == "hdr":
            self._hdr.append(b)
            if len(self._hdr) == REQUEST_HEADER:
                n = from_le(self._hdr[2:4])
                if n > self.max_payload:
                    self._state = "hunt"
                    return Reject(*self._cmd_tag(), Status.BAD_LENGTH)
                self._payload, self._crc = bytearray(), bytearray()
                self._state = "payload" if n else "crc"
            return None
        if st == "payload":
            self._payload.append(b)
            if len(self._payload) == from_le(self._hdr[2:4]):
                self._state = "crc"
            return None
        self._crc.append(b)
        if len(self._crc) < 2:
            return None
        self._state = "hunt"
        if crc16(bytes(self._hdr) + bytes(self._payload)) != from_le(self._crc):
            return Reject(*self._cmd_tag(), Status.BAD_CRC)
        return Frame(*self._cmd_tag(), bytes(self._payload))
