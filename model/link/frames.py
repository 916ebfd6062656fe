"""Frames of the host link (docs/protocol.md), byte for byte.

Frames (all multi-byte fields little-endian)::

    request : 0xA5 | cmd | tag | len_lo | len_hi | payload[len] | crc_lo | crc_hi
    response: 0x5A | cmd | tag | status | len_lo | len_hi | payload[len] | crc_lo | crc_hi

The CRC is CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no final XOR) over every
byte after the sync byte and before the CRC: :func:`binascii.crc_hqx`.
"""
from __future__ import annotations

import binascii

from ..protocol import CRC_INIT, SYNC_REQ, SYNC_RESP

__all__ = ["crc16", "to_le", "from_le", "value_bytes", "encode_request", "encode_response", "decode_response"]


def crc16(data: bytes, crc: int = CRC_INIT) -> int:
    return binascii.crc_hqx(bytes(data), crc)


def to_le(value: int, nbytes: int) -> bytes:
    return int(value & ((1 << (8 * nbytes)) - 1)).to_bytes(nbytes, "little")


def from_le(data: bytes, signed: bool = False) -> int:
    return int.from_bytes(bytes(data), "little", signed=signed)


def value_bytes(bits: int) -> int:
    return (bits + 7) // 8


def encode_request(cmd: int, tag: int, payload: bytes = b"") -> bytes:
    body = bytes([cmd & 0xFF, tag & 0xFF]) + to_le(len(payload), 2) + bytes(payload)
    return bytes([SYNC_REQ]) + body + to_le(crc16(body), 2)


def encode_response(cmd: int, tag: int, status: int, payload: bytes = b"") -> bytes:
    body = bytes([cmd & 0xFF, tag & 0xFF, status & 0xFF]) + to_le(len(payload), 2) + bytes(payload)
    return bytes([SYNC_RESP]) + body + to_le(crc16(body), 2)


def decode_response(frame: bytes) -> tuple[int, int, int, bytes]:
    """(cmd, tag, status, payload) of one complete response frame; ValueError if malformed."""
    if len(frame) < 8 or frame[0] != SYNC_RESP:
        raise ValueError("not a response frame")
    n = from_le(frame[4:6])
    if len(frame) != 8 + n:
        raise ValueError(f"response frame length {len(frame)} does not match its length field {n}")
    if crc16(frame[1:6 + n]) != from_le(frame[6 + n:8 + n]):
        raise ValueError("response frame has a bad CRC")
    return frame[1], frame[2], frame[3], bytes(frame[6:6 + n])
