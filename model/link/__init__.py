"""Byte-level twin of the gateware :class:`spikegate.hdl.link.HostLink`, block by block, and the
encoders and parsers the host driver shares with it.

The protocol's codes, constants, layouts and value ranges are in :mod:`spikegate.model.protocol`
(re-exported here). ``HostLink`` takes the bytes a host sends and returns the bytes the board
answers, bit for bit (apart from the free-running ``uptime`` counter in the status block, which
depends on wall time). It is made of the same blocks as the gateware, under the same names:
:class:`FrameDecoder` -> :class:`CommandEngine` -> :class:`ResponseEncoder`.
"""
from __future__ import annotations

from ..core import NetworkCore
from ..hardware import HardwareConfig
from ..network import Network
from ..protocol import *  # noqa: F401,F403  (the protocol is part of this module's interface)
from ..protocol import Status
from .checksum import checksum_cycles, checksum_stream, expected_checksum
from .decoder import Frame, FrameDecoder, Reject
from .encoder import ResponseEncoder
from .engine import CommandEngine, batch_fits, encode_cycles, encode_fits
from .learn_cmds import StateLayout, has_plastic, has_rstdp, state_index, state_layout
from .frames import crc16, decode_response, encode_request, encode_response, from_le, to_le, value_bytes
from .geometry import (Identity, LinkGeometry, StatusBlock, check_encoder, content_digest, decode_events,
                       decode_outputs, encode_events, identify_static, structure_digest)

__all__ = [
    "HostLink", "FrameDecoder", "Frame", "Reject", "CommandEngine", "ResponseEncoder",
    "crc16", "encode_request", "encode_response", "decode_response", "to_le", "from_le", "value_bytes",
    "structure_digest", "content_digest", "LinkGeometry", "identify_static", "Identity", "StatusBlock",
    "encode_events", "decode_events", "decode_outputs", "checksum_stream", "expected_checksum", "checksum_cycles",
    "encode_cycles", "encode_fits", "batch_fits", "check_encoder", "StateLayout", "state_layout", "state_index", "has_plastic", "has_rstdp",
]


class HostLink:
    """Twin of the gateware ``HostLink``: ``feed(bytes) -> bytes`` answers exactly as the board
    does when the host waits for each response before sending the next frame, or, on a ``stream``
    board, keeps at most ``STREAM_WINDOW`` requests unanswered (the answers come in order, the same
    bytes); ``timeout()`` is a silence longer than the frame timeout.

    ``engine.net`` is the network as written through the link; samples run on the core twin
    (:class:`spikegate.model.core.NetworkCore`), cycle count included. ``registered_reads``: the
    bitstream's ``HardwareConfig.registered_reads`` (identify says it; the runs' cycles follow it).
    """

    def __init__(self, net: Network, *, lanes=4, clk_freq: int = 12_000_000, baud: int = 115_200,
                 max_payload: int = 512, max_events: int = 4096, encoder: bool = True, stream: bool = True,
                 registered_reads: bool = False):
        self.geo = LinkGeometry.of(net, lanes, clk_freq, baud, max_payload, max_events, stream=stream,
                                   registered_reads=registered_reads)
        self.core = NetworkCore(net, self.geo.hardware())
        self.decoder = FrameDecoder(max_payload)
        self.engine = CommandEngine(net, self.geo, self.core, encoder=encoder)
        self.encoder = ResponseEncoder()

    @property
    def net(self) -> Network:
        return self.engine.net

    @property
    def ident_static(self) -> bytes:
        return self.engine.ident_static

    @ident_static.setter
    def ident_static(self, value: bytes):
        # Tests impersonate other bitstreams (another protocol version, another device) this way.
        self.engine.ident_static = bytes(value)

    def feed(self, data: bytes) -> bytes:
        out = bytearray()
        for b in data:
            out += self._answer(self.decoder.feed(b))
        return bytes(out)

    def timeout(self) -> bytes:
        return self._answer(self.decoder.timeout())

    def _answer(self, got: Frame | Reject | None) -> bytes:
        stat = self.engine.stat
        if got is None:
            return b""
        if isinstance(got, Reject):
            if got.status == Status.BAD_CRC:
                stat.crc_errors += 1
            elif got.status == Status.TIMEOUT:
                stat.timeouts += 1
            else:
                stat.frame_errors += 1
            return self.encoder.encode(got.cmd, got.tag, got.status)
        stat.frames_ok += 1
        status, payload = self.engine.execute(got.cmd, got.payload)
        return self.encoder.encode(got.cmd, got.tag, status, payload)
