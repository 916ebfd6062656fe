"""The rig of the host-link proofs (:mod:`spikegate.sim.formal_link`): the link's real blocks for a
tiny network, with the UARTs and (optionally) the core's answers abstracted."""
from __future__ import annotations

import numpy as np
from amaranth.asserts import AnySeq
from amaranth.hdl import Assume, Const, Elaboratable, Module, ResetSignal, Signal
from amaranth.lib import wiring

from ..hdl.core import NetworkCore
from ..hdl.link.decoder import FrameDecoder
from ..hdl.link.encoder import ResponseEncoder
from ..hdl.link.engine import CommandEngine, connect_core
from ..model import link as proto
from ..model.hardware import HardwareConfig
from ..model.network import Layer, Network
from .formal_probe import Probe

__all__ = ["LinkProofConfig", "LinkRig", "RUN_BOUND", "no_reset"]

# Cycles from a run's start to done that the free core may take in proof (b) (the tiny network's
# real runs take far fewer: its cycle count is tested against the twin in simulation).
RUN_BOUND = 16


def no_reset(m):
    """Keep the reset low in a harness: a free reset input would let the solver restart the design
    (and the harness's counters) at any step."""
    m.d.comb += Assume(~ResetSignal())


class LinkProofConfig:
    """The small link the proofs run on: a 2-input, 2-neuron layer (1 lane, 4 input-buffer words),
    ``max_payload`` bytes of payload buffer and a ``frame_timeout`` of a few cycles;
    ``registered_reads``: HardwareConfig's (the link's block RAM reads registered, the same bounds)."""

    def __init__(self, max_payload: int = 12, frame_timeout: int = 6, max_events: int = 4,
                 registered_reads: bool = False):
        for name, value, lo in (("max_payload", max_payload, 10), ("frame_timeout", frame_timeout, 2),
                                ("max_events", max_events, 2)):
            if isinstance(value, bool) or not isinstance(value, int) or value < lo:
                raise ValueError(f"{name} = {value!r} is not valid; valid: an integer >= {lo}")
        self.max_payload, self.frame_timeout, self.max_events = max_payload, frame_timeout, max_events
        layer = Layer(weights=np.array([[1, -1], [0, 1]]), bias=np.array([0, 1]), threshold=1, weight_bits=2,
                      membrane_bits=4)
        self.net = Network(layers=[layer], timesteps=1, name="formal-link")
        self.hw = HardwareConfig(lanes=1, max_events=max_events, registered_reads=registered_reads)
        # clk_freq and baud only appear in the identify block here.
        self.geo = proto.LinkGeometry.of(self.net, 1, 1_000_000, 100_000, max_payload, max_events,
                                         registered_reads=self.hw.registered_reads)


class _ProbedEngine(CommandEngine):
    """The command engine, plus ``nid_write``: its network-id memory's write enable (a memory the
    engine keeps inside), so a proof can watch every memory the link can change."""

    def __init__(self, *args):
        super().__init__(*args)
        self.nid_write = Signal()

    def elaborate(self, platform):
        m = super().elaborate(platform)
        m.d.comb += self.nid_write.eq(m.submodules.answer.nid_en)
        return m


class _ProbedDecoder(FrameDecoder):
    """The frame decoder, plus ``crc_now``: its CRC register (the CRC of the frame's bytes so far)."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.crc_now = Signal(16)

    def elaborate(self, platform):
        m = super().elaborate(platform)
        m.d.comb += self.crc_now.eq(m.submodules.crc.crc)
        return m


class LinkRig(Elaboratable):
    """Decoder, engine, core and encoder of a :class:`LinkProofConfig`, wired as in HostLink.

    Driven through ``byte``, ``valid`` and ``line_error`` (the UART receiver's outputs); the
    encoder's output is always taken (``tx_valid``/``tx_byte`` show it). ``writes`` is high in
    every cycle something changes a memory or the core's state: a cfg write, a load write, a
    clear, a run start or a network-id write. ``quiet``: nothing under way anywhere.

    ``free_core``: the engine's inputs from the core (ready, done, cycles, outputs) are free values
    instead of the real core's. With ``run_bound`` they follow the core's handshake instead: a run
    ends (``done``) from 2 to ``run_bound`` cycles after its start (the real core takes at least 2),
    and ``load``/``cfg`` are ready whenever no run is under way (as the core's are). ``decoder``: a
    FrameDecoder to use instead of the default (for a mutated one).

    ``dec``, ``eng``, ``enc`` are :class:`Probe` s of the three blocks, for proofs about their
    states; ``backend_idle`` is high while the engine, its answer source and checksum walker, the
    encoder and (with ``run_bound``) the free core are all idle.
    """

    def __init__(self, config: LinkProofConfig, *, free_core: bool = False, run_bound: int | None = None,
                 decoder: FrameDecoder | None = None):
        c = self.config = config
        self.free_core, self.run_bound = free_core, run_bound
        self.core = NetworkCore(c.net, c.hw)
        static = proto.identify_static(c.geo, proto.structure_digest(c.net), proto.content_digest(c.net))
        self.decoder = decoder if decoder is not None else _ProbedDecoder(c.max_payload, c.frame_timeout,
                                                                          registered=c.geo.registered_reads)
        self.engine = _ProbedEngine(c.net, c.geo, self.core, static)
        self.encoder = ResponseEncoder()
        self.byte, self.valid, self.line_error = Signal(8, name="byte"), Signal(name="valid"), Signal(name="line_error")
        self.tx_valid, self.tx_byte = Signal(name="tx_valid"), Signal(8, name="tx_byte")
        self.writes, self.quiet = Signal(name="writes"), Signal(name="quiet")
        self.backend_idle, self.running = Signal(name="backend_idle"), Signal(name="free_core_running")
        self.dec, self.eng, self.enc = Probe(self.decoder), Probe(self.engine), Probe(self.encoder)

    def elaborate(self, platform):
        m = Module()
        core, dec, eng, enc = self.core, self.decoder, self.engine, self.encoder
        m.submodules.core, m.submodules.decoder = core, self.dec.fragment
        m.submodules.engine, m.submodules.encoder = self.eng.fragment, self.enc.fragment
        m.d.comb += [dec.i.payload.eq(self.byte), dec.i.valid.eq(self.valid), dec.line_error.eq(self.line_error)]
        # The connections of HostLink.elaborate, without the UARTs.
        for a, b in ((dec.frame, eng.frame), (eng.buf, dec.buf), (dec.reject, enc.reject), (eng.resp, enc.resp),
                     (eng.data, enc.data)):
            wiring.connect(m, a, b)
        m.d.comb += [dec.release.eq(enc.done), eng.events.eq(dec.events), enc.o.ready.eq(1),
                     self.tx_valid.eq(enc.o.valid), self.tx_byte.eq(enc.o.payload)]
        if self.free_core:
            # Whatever the core answers, whenever: the engine's core inputs are free values. (The
            # core itself stays unconnected, its inputs at rest; Yosys drops its unused logic.)
            for port in (eng.done, eng.cycles, eng.overflow, eng.cfg_error, eng.out_count, eng.out_membrane):
                m.d.comb += port.eq(AnySeq(len(port)))
            core_idle = Const(1)
            if self.run_bound is None:
                m.d.comb += [eng.load.ready.eq(AnySeq(1)), eng.cfg.ready.eq(AnySeq(1))]
            else:
                # ...except that a run ends (done) within run_bound cycles of its start, not in
                # the first, and the core takes load and cfg words while no run is under way.
                running = self.running
                since = Signal(range(self.run_bound + 1), name="free_core_since_start")
                with m.If(eng.start):
                    m.d.sync += [running.eq(1), since.eq(0)]
                with m.Elif(running & eng.done):
                    m.d.sync += running.eq(0)
                with m.Elif(running):
                    m.d.sync += since.eq(since + 1)
                m.d.comb += [eng.load.ready.eq(~running), eng.cfg.ready.eq(~running),
                             Assume(~running | eng.done | (since < self.run_bound - 1)),
                             Assume(~running | (since != 0) | ~eng.done)]
                core_idle = ~running
        else:
            connect_core(m, eng, core)
            core_idle = ~core.busy
        m.d.comb += self.backend_idle.eq(self.eng.state("IDLE") & self.eng.state("IDLE", fsm="answer.fsm")
                                         & self.eng.state("IDLE", fsm="checksum.fsm") & self.enc.state("IDLE")
                                         & core_idle)
        m.d.comb += [
            self.writes.eq((eng.cfg.valid & eng.cfg.ready) | (eng.load.valid & eng.load.ready) | eng.clear
                           | eng.start | eng.nid_write),
            # Nothing pending anywhere: hunting for a sync byte, the engine waiting for a frame,
            # nothing to send, no run under way.
            self.quiet.eq(dec.hunting & self.backend_idle & ~enc.o.valid),
        ]
        return m


def _drive_free(m, rig):
    byte, valid, err = AnySeq(8), AnySeq(1), AnySeq(1)
    m.d.comb += [rig.byte.eq(byte), rig.valid.eq(valid), rig.line_error.eq(err)]
