"""Byte-level twin of :class:`spikegate.hdl.link.ResponseEncoder`: a response header and its
payload in, the response frame's bytes out."""
from __future__ import annotations

from .frames import encode_response

__all__ = ["ResponseEncoder"]


class ResponseEncoder:
    """``encode(cmd, tag, status, payload)``: sync byte, header, payload, CRC."""

    def encode(self, cmd: int, tag: int, status: int, payload: bytes = b"") -> bytes:
        return encode_response(cmd, tag, status, payload)
