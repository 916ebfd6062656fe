"""HostLink: UART + frame decoder + command engine + response encoder around a NetworkCore.

The protocol is specified in docs/protocol.md and modelled byte for byte by
:class:`spikegate.model.link.HostLink`, block by block. A board top only connects ``rx``/``tx`` to
the UART pins (and, if it likes, ``busy``/``done``/``error``/``idle`` to LEDs)::

    rx -> UARTRx -> FrameDecoder --frame--> CommandEngine --resp, data--> ResponseEncoder -> UARTTx -> tx
                         |  `--reject----------------------------------------^     |
                         `<-- release (answer sent) ------------------------------'
                                      CommandEngine <-> NetworkCore (load, cfg, start, out_*)

Robustness comes from the structure rather than from special cases:

- every request frame is received completely into the decoder's payload buffer and its CRC checked
  before the engine sees it, so a corrupted, cut-short or garbage frame cannot touch the network;
- WRITE and LOAD make two passes over the buffered payload: the first validates every address
  and value, the second applies them, so a frame is applied entirely or not at all;
- a frame that stops arriving is abandoned after ``frame_timeout`` cycles of silence (answered
  with a TIMEOUT response), so the decoder always returns to hunting for the sync byte;
- bytes that arrive while a command executes or is answered are discarded and counted, never queued;
  with ``stream`` one frame more is received and checked while a command executes (a second payload
  bank) and answers leave through a FIFO while the next command runs (docs/protocol.md, "Streaming").
"""
import math

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ...model import link as proto
from ...model.network import Network
from ...model.uart import baud_divisor
from ..core import NetworkCore
from ...model.hardware import HardwareConfig
from ..uart import UARTRx, UARTTx
from .decoder import FrameDecoder
from .encoder import ResponseEncoder
from .engine import CommandEngine, connect_core

__all__ = ["HostLink"]


class HostLink(wiring.Component):
    """The network plus its host link.

    Parameters: ``net`` (the network baked in), ``lanes`` and ``max_events`` (passed to
    NetworkCore), ``clk_freq`` (Hz of the ``sync`` domain), ``baud``, ``max_payload`` (request
    payload buffer in bytes; bounds the largest frame), ``frame_timeout`` (cycles of silence
    inside a frame before it is abandoned; default 20 ms), ``synchronise`` (two-flop synchroniser on
    ``rx``; leave True on hardware), ``core`` (a NetworkCore already built for ``net`` and
    ``max_events``, e.g. with its weights in SPRAM; by default one is built with ``lanes``),
    ``encoder`` (the on-chip input encoder and its commands ENCODE and BATCH), ``stream`` (the
    next frame received while a command runs, :data:`spikegate.model.protocol.IDENT_STREAM`),
    ``ident_block`` (the identify payload and network id in one block RAM rather than about 350
    iCE40 logic cells; default: when not streaming, in one of the two blocks streaming would take),
    ``small_bit`` (the payload buffer keeps a flag beside each byte, 9-bit words: see
    :class:`~spikegate.hdl.link.decoder.FrameDecoder`), ``registered_reads`` (the default core's
    ``HardwareConfig.registered_reads``; a given ``core`` brings its own, which this must not
    contradict): the core's idle-time reads answer a cycle later, and the link registers its own
    block RAM reads too (payload buffer, encoder remainders, identify memories, answer FIFO), with
    the same bytes and the same link cycle counts; identify reports it (``IDENT_REGISTERED``).
    """
    rx: In(1, init=1)
    tx: Out(1, init=1)
    idle: Out(1)
    answering: Out(1)
    busy: Out(1)
    done: Out(1)
    error: Out(1)

    def __init__(self, net: Network, *, lanes=4, clk_freq: int, baud: int = 115_200,
                 max_payload: int = proto.DEFAULT_MAX_PAYLOAD, max_events: int = 4096, frame_timeout: int | None = None,
                 synchronise: bool = True, core: NetworkCore | None = None, encoder: bool = True,
                 stream: bool = True, ident_block: bool | None = None, small_bit: bool = True,
                 registered_reads: bool | None = None):
        if not isinstance(net, Network):
            raise TypeError(f"net must be a spikegate Network, got {type(net).__name__}")
        self.divisor = baud_divisor(clk_freq, baud)
        proto.check_max_payload(max_payload)
        two_bytes = math.ceil(20 * self.divisor)
        if frame_timeout is None:
            frame_timeout = max(clk_freq // 50, 2 * two_bytes)
        if isinstance(frame_timeout, bool) or not isinstance(frame_timeout, int) or frame_timeout < two_bytes:
            raise ValueError(f"frame_timeout = {frame_timeout!r} is not valid; valid: an integer of at least "
                             f"{two_bytes} cycles (two bytes at {baud} baud)")
        if registered_reads is not None and not isinstance(registered_reads, bool):
            raise TypeError(f"registered_reads must be True, False or None, got {registered_reads!r}")
        self.net = net
        if core is None:
            core = NetworkCore(net, HardwareConfig(lanes=lanes, max_events=max_events,
                                                   registered_reads=bool(registered_reads)))
        elif not isinstance(core, NetworkCore) or core.net is not net or core.max_events != max_events:
            raise ValueError("core must be a NetworkCore built for this same net and max_events "
                             f"(got {type(core).__name__})")
        elif registered_reads is not None and registered_reads != core.hw.registered_reads:
            raise ValueError(f"registered_reads = {registered_reads} is not valid with a core built with "
                             f"registered_reads = {core.hw.registered_reads}; valid: the core's, or None")
        self.core = core
        self.geo = proto.LinkGeometry.of(net, [g.lanes for g in self.core.geometry],
                                         clk_freq, baud, max_payload, max_events, stream=stream,
                                         registered_reads=core.hw.registered_reads)
        proto.check_encoder(self.geo, encoder)
        self.clk_freq, self.baud = int(clk_freq), int(baud)
        self.max_payload, self.max_events = max_payload, max_events
        self.frame_timeout = frame_timeout
        self.synchronise = synchronise
        self.encoder, self.stream, self.small_bit = bool(encoder), bool(stream), bool(small_bit)
        self.ident_block = not self.stream if ident_block is None else bool(ident_block)
        self.identify_static = proto.identify_static(self.geo, proto.structure_digest(net),
                                                     proto.content_digest(net))
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        core = self.core
        m.submodules.core = core
        m.submodules.rxu = rxu = UARTRx(self.divisor, synchronise=self.synchronise)
        m.submodules.txu = txu = UARTTx(self.divisor)
        m.submodules.decoder = dec = FrameDecoder(self.max_payload, self.frame_timeout, stream=self.stream,
                                                     small_bit=self.small_bit, registered=self.geo.registered_reads)
        m.submodules.engine = eng = CommandEngine(self.net, self.geo, core, self.identify_static,
                                                  encoder=self.encoder, stream=self.stream,
                                                  ident_block=self.ident_block)
        m.submodules.encoder = enc = ResponseEncoder()

        m.d.comb += [rxu.line.eq(self.rx), self.tx.eq(txu.line), dec.line_error.eq(rxu.error | rxu.overrun)]
        wiring.connect(m, rxu.o, dec.i)
        wiring.connect(m, dec.frame, eng.frame)
        wiring.connect(m, eng.buf, dec.buf)
        wiring.connect(m, dec.reject, enc.reject)
        wiring.connect(m, eng.resp, enc.resp)
        wiring.connect(m, eng.data, enc.data)
        wiring.connect(m, enc.o, txu.i)
        m.d.comb += [dec.release.eq(enc.done), eng.events.eq(dec.events)]

        connect_core(m, eng, core)

        m.d.comb += [self.busy.eq(core.busy), self.done.eq(core.done),
                     self.error.eq(eng.error | dec.events.crc_error | dec.events.timeout | dec.events.length_error),
                     self.idle.eq(dec.hunting & dec.settled & rxu.idle & ~rxu.o.valid & txu.idle),
                     # bytes arriving now are discarded: executing or answering (streaming: with a
                     # frame waiting for the engine, or a rejection for the answers before it)
                     self.answering.eq(~dec.listening | (0 if self.stream else ~txu.idle))]
        return m
