"""Proofs about the host link's frame handling: it never locks up (b), and a frame with a bad CRC
never changes any memory (c).

Both harnesses build the link's blocks for a tiny network, :class:`LinkRig`: the real
:class:`FrameDecoder`, :class:`CommandEngine` and :class:`ResponseEncoder`, connected as in
:class:`~spikegate.hdl.link.HostLink`. The UARTs are abstracted: the decoder's byte stream and
``line_error`` are free values (``AnySeq``), since the receiver's bit timing is checked by its own
tests, and the transmitter takes one byte per cycle (a real one takes ``10 * divisor`` cycles a
byte, which only scales the bounds). The proofs also leave the core's answers to the engine free
(in (b) a run must end within :data:`RUN_BOUND` cycles); the rig can drive the real
:class:`NetworkCore` instead, for simulation.

The two properties are checked by bounded model checking from reset (``mode="bmc"``); each
function states its depth and why it covers the property.
"""
from __future__ import annotations

import numpy as np
from amaranth.asserts import AnySeq
from amaranth.hdl import Assert, Assume, Cat, Const, Cover, Elaboratable, Module, Mux, Signal

from ..hdl.core import NetworkCore
from ..hdl.link.answer import CYCLE_BYTES
from ..hdl.link.decoder import FrameDecoder
from ..hdl.link.encoder import ResponseEncoder
from ..hdl.link.engine import CommandEngine, connect_core
from ..model import link as proto
from ..model.hardware import HardwareConfig
from ..model.network import Layer, Network
from ..model.protocol import REQUEST_HEADER, RESPONSE_HEADER, SYNC_REQ, Cmd
from .formal import ProofResult, prove

__all__ = ["LinkProofConfig", "LinkRig", "LivenessProof", "BadCRCProof", "idle_bound", "prove_liveness",
           "prove_bad_crc", "crc16_step", "BAD_CRC_DEPTH", "LIVENESS_PREFIX", "RUN_BOUND"]


class LinkProofConfig:
    """The small link the proofs run on: a 2-input, 2-neuron layer (1 lane, 4 input-buffer words),
    ``max_payload`` bytes of payload buffer and a ``frame_timeout`` of a few cycles."""

    def __init__(self, max_payload: int = 12, frame_timeout: int = 6, max_events: int = 4):
        for name, value, lo in (("max_payload", max_payload, 10), ("frame_timeout", frame_timeout, 2),
                                ("max_events", max_events, 2)):
            if isinstance(value, bool) or not isinstance(value, int) or value < lo:
                raise ValueError(f"{name} = {value!r} is not valid; valid: an integer >= {lo}")
        self.max_payload, self.frame_timeout, self.max_events = max_payload, frame_timeout, max_events
        layer = Layer(weights=np.array([[1, -1], [0, 1]]), bias=np.array([0, 1]), threshold=1, weight_bits=2,
                      membrane_bits=4)
        self.net = Network(layers=[layer], timesteps=1, name="formal-link")
        self.hw = HardwareConfig(lanes=1, max_events=max_events)
        # clk_freq and baud only appear in the identify block here.
        self.geo = proto.LinkGeometry.of(self.net, 1, 1_000_000, 100_000, max_payload, max_events)


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

    def __init__(self, *args):
        super().__init__(*args)
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
    instead of the real core's; ``run_bound`` then assumes that a run ends within that many cycles.
    ``decoder``: a FrameDecoder to use instead of the default (for a mutated one).
    """

    def __init__(self, config: LinkProofConfig, *, free_core: bool = False, run_bound: int | None = None,
                 decoder: FrameDecoder | None = None):
        c = self.config = config
        self.free_core, self.run_bound = free_core, run_bound
        self.core = NetworkCore(c.net, c.hw)
        static = proto.identify_static(c.geo, proto.structure_digest(c.net), proto.content_digest(c.net))
        self.decoder = decoder if decoder is not None else _ProbedDecoder(c.max_payload, c.frame_timeout)
        self.engine = _ProbedEngine(c.net, c.geo, self.core, static)
        self.encoder = ResponseEncoder()
        self.byte, self.valid, self.line_error = Signal(8, name="byte"), Signal(name="valid"), Signal(name="line_error")
        self.tx_valid, self.tx_byte = Signal(name="tx_valid"), Signal(8, name="tx_byte")
        self.writes, self.quiet = Signal(name="writes"), Signal(name="quiet")

    def elaborate(self, platform):
        m = Module()
        m.submodules.core, m.submodules.decoder = core, dec = self.core, self.decoder
        m.submodules.engine, m.submodules.encoder = eng, enc = self.engine, self.encoder
        m.d.comb += [dec.i.payload.eq(self.byte), dec.i.valid.eq(self.valid), dec.line_error.eq(self.line_error)]
        # The connections of HostLink.elaborate, without the UARTs.
        for a, b in ((dec.frame, eng.frame), (eng.buf, dec.buf), (dec.reject, enc.reject), (eng.resp, enc.resp),
                     (eng.data, enc.data)):
            m.d.comb += [b.valid.eq(a.valid), b.payload.eq(a.payload), a.ready.eq(b.ready)] \
                if hasattr(a, "valid") else [b.addr.eq(a.addr), a.data.eq(b.data)]
        m.d.comb += [dec.release.eq(enc.done), eng.events.eq(dec.events), enc.o.ready.eq(1),
                     self.tx_valid.eq(enc.o.valid), self.tx_byte.eq(enc.o.payload)]
        if self.free_core:
            # Whatever the core answers, whenever: the engine's core inputs are free values. (The
            # core itself stays unconnected, its inputs at rest; Yosys drops its unused logic.)
            m.d.comb += [eng.load.ready.eq(AnySeq(1)), eng.cfg.ready.eq(AnySeq(1))]
            for port in (eng.done, eng.cycles, eng.overflow, eng.cfg_error, eng.out_count, eng.out_membrane):
                m.d.comb += port.eq(AnySeq(len(port)))
            core_idle = Const(1)
            if self.run_bound is not None:
                # ...except that a run ends (done) within run_bound cycles of its start.
                running = Signal(name="free_core_running")
                since = Signal(range(self.run_bound + 1), name="free_core_since_start")
                with m.If(eng.start):
                    m.d.sync += [running.eq(1), since.eq(0)]
                with m.Elif(running & eng.done):
                    m.d.sync += running.eq(0)
                with m.Elif(running):
                    m.d.sync += since.eq(since + 1)
                m.d.comb += Assume(~running | eng.done | (since < self.run_bound - 1))
        else:
            connect_core(m, eng, core)
            core_idle = ~core.busy
        m.d.comb += [
            self.writes.eq((eng.cfg.valid & eng.cfg.ready) | (eng.load.valid & eng.load.ready) | eng.clear
                           | eng.start | eng.nid_write),
            # Nothing pending anywhere: hunting for a sync byte, the engine waiting for a frame,
            # nothing to send.
            self.quiet.eq(dec.hunting & eng.frame.ready & ~enc.o.valid & ~eng.data.valid & core_idle),
        ]
        return m


def _drive_free(m, rig):
    byte, valid, err = AnySeq(8), AnySeq(1), AnySeq(1)
    m.d.comb += [rig.byte.eq(byte), rig.valid.eq(valid), rig.line_error.eq(err)]


# --- (c): a frame with a bad CRC never changes any memory ----------------------------------------

# BMC depth of (c): a 7-byte frame from step 1, its CRC check at step 8 and its execution (clear or
# run start at step 10), with steps to spare for gaps between bytes. The solver's time grows
# quickly with the depth (about 15 s here, several minutes at 20).
BAD_CRC_DEPTH = 14

def crc16_step(m, crc, byte):
    """CRC-16/CCITT-FALSE (poly 0x1021, MSB first) after one more byte, added to module ``m``:
    the textbook shift register, written here independently of ``amaranth.lib.crc``. (A signal
    per bit step: nested expressions would repeat each step's value twice over, 2^8 times.)"""
    reg = Signal(16, name="ref_crc_in")
    m.d.comb += reg.eq(crc ^ (byte << 8))
    for i in range(8):
        nxt = Signal(16, name=f"ref_crc_bit{i}")
        shifted = (reg << 1)[:16]
        m.d.comb += nxt.eq(Mux(reg[15], shifted ^ 0x1021, shifted))
        reg = nxt
    return reg


class BadCRCProof(Elaboratable):
    """Free bytes into the link; the harness frames them itself and asserts that memory writes
    only follow a frame whose CRC it found good.

    Frame boundaries: a frame starts with the sync byte taken while the decoder hunts (that is the
    protocol's definition of a frame start; the decoder ignores bytes at other times), then
    4 header bytes, ``length`` payload bytes and the 2 CRC bytes, all counted here. A frame whose
    ``length`` exceeds ``max_payload`` is never good. ``skip_check=True`` is the negative test's
    broken link: the decoder is handed the CRC it computed in place of the CRC bytes on the wire,
    as if it skipped the check.
    """

    def __init__(self, config: LinkProofConfig, *, skip_check: bool = False):
        self.rig = LinkRig(config, free_core=True)
        self.skip_check = skip_check

    def elaborate(self, platform):
        m = Module()
        m.submodules.rig = rig = self.rig
        cfg = rig.config
        crc = Signal(16, name="ref_crc")
        length, count = Signal(16, name="ref_length"), Signal(16, name="ref_count")
        crc_lo = Signal(8)
        good = Signal(name="ref_good")          # the last complete frame's CRC matched
        bad_seen = Signal(name="ref_bad_seen")  # a complete frame with a bad CRC: for the covers
        byte, take = Signal(8, name="wire_byte"), rig.valid
        m.d.comb += [byte.eq(AnySeq(8)), rig.valid.eq(AnySeq(1)), rig.line_error.eq(AnySeq(1))]
        step = crc16_step(m, crc, byte)
        # The protocol abandons a frame after frame_timeout cycles without a byte.
        silence = Signal(range(cfg.frame_timeout + 1), name="ref_silence")
        with m.If(take):
            m.d.sync += silence.eq(0)
        with m.Else():
            m.d.sync += silence.eq(silence + 1)
        abandon = ~take & (silence == cfg.frame_timeout - 1)
        with m.FSM(name="ref") as fsm:
            with m.State("OUT"):
                with m.If(take & rig.decoder.hunting & (byte == SYNC_REQ)):
                    m.d.sync += [crc.eq(0xFFFF), count.eq(0), good.eq(0), silence.eq(0)]
                    m.next = "HDR"
            with m.State("HDR"):
                with m.If(abandon):
                    m.next = "OUT"
                with m.If(take):
                    m.d.sync += [crc.eq(step), count.eq(count + 1)]
                    with m.If(count == 2):
                        m.d.sync += length.eq(byte)
                    with m.If(count == REQUEST_HEADER - 1):
                        n = Cat(length[:8], byte)
                        m.d.sync += [length.eq(n), count.eq(0)]
                        with m.If(n > cfg.max_payload):
                            m.next = "OUT"
                        with m.Elif(n == 0):
                            m.next = "CRC0"
                        with m.Else():
                            m.next = "PAY"
            with m.State("PAY"):
                with m.If(abandon):
                    m.next = "OUT"
                with m.If(take):
                    m.d.sync += [crc.eq(step), count.eq(count + 1)]
                    with m.If(count == length - 1):
                        m.next = "CRC0"
            with m.State("CRC0"):
                with m.If(abandon):
                    m.next = "OUT"
                with m.If(take):
                    m.d.sync += crc_lo.eq(byte)
                    m.next = "CRC1"
            with m.State("CRC1"):
                with m.If(abandon):
                    m.next = "OUT"
                with m.If(take):
                    ok = Cat(crc_lo, byte) == crc
                    m.d.sync += [good.eq(ok), bad_seen.eq(bad_seen | ~ok)]
                    m.next = "OUT"
        if self.skip_check:
            now = rig.decoder.crc_now
            m.d.comb += rig.byte.eq(Mux(fsm.ongoing("CRC0"), now[:8], Mux(fsm.ongoing("CRC1"), now[8:], byte)))
        else:
            m.d.comb += rig.byte.eq(byte)
        eng = rig.engine
        m.d.comb += [
            # A lemma, checked at every step, that keeps the solver's work per step to one byte: the
            # reference CRC equals the decoder's all through a frame. (Proving only the final
            # comparison would make the solver show two XOR networks over the whole frame equal.)
            Assert(fsm.ongoing("OUT") | (crc == rig.decoder.crc_now), "the decoder's running CRC differs"),
            Assert(~rig.writes | good, "a memory write follows a frame whose CRC did not match"),
            # Not vacuous: memory changes happen (after good frames), and bad frames complete and are answered.
            Cover(eng.clear), Cover(eng.start),
            Cover(rig.decoder.events.crc_error), Cover(bad_seen & rig.decoder.reject.valid),
        ]
        return m


# --- (b): the link never locks up ----------------------------------------------------------------

# Cycles from a run's start to done that the free core may take in (b) (the tiny network's real
# runs take far fewer: its cycle count is tested against the twin in simulation).
RUN_BOUND = 16


def idle_bound(config: LinkProofConfig) -> int:
    """Cycles of silence after which the link is quiet again, whatever it was doing (``N``).

    The longest thing under way when the line goes quiet is one of: a frame open in the decoder
    (``frame_timeout`` cycles to its timeout, then its 8-byte rejection); an IDENTIFY being answered
    (the longest answer); a WRITE or LOAD being executed (two passes over the payload, at most 4
    cycles a byte), a LOAD-and-run's run (at most :data:`RUN_BOUND`) and its answer. An answer of
    ``n`` payload bytes takes sync, header and CRC a cycle a byte on the abstract transmitter, the
    payload 2 cycles a byte (the answer source fetches, then sends), and a cycle to release the
    decoder. A real transmitter multiplies the answer part by ``10 * divisor``.
    """
    geo = config.geo

    def answer(n):
        return 1 + RESPONSE_HEADER + 2 * n + 2 + 1

    return max(config.frame_timeout + answer(0) + 1, 2 + answer(geo.identify_len),
               2 + 2 * 4 * config.max_payload + RUN_BOUND + answer(CYCLE_BYTES + geo.output_bytes))


class LivenessProof(Elaboratable):
    """Any bytes, then silence: after ``idle`` quiet cycles the link must be quiet (decoder
    hunting, engine waiting for a frame, nothing being sent, core idle); an IDENTIFY frame sent
    then must be answered, its first ``expect`` bytes equal to the byte-level twin's answer, within
    ``answer_cycles`` cycles of the frame's last byte.

    Phases: FREE (free bytes and line errors for ``prefix`` cycles), IDLE (no byte, no line error,
    ``idle`` cycles), SEND (the IDENTIFY frame, a byte per cycle), WAIT (the answer). A fixed
    prefix loses nothing: a run that goes quiet after fewer cycles is the same run after leading
    silence (from reset the link hunts, and silence changes nothing but the uptime counter), and
    it keeps the solver's free choices to the prefix.
    """

    def __init__(self, config: LinkProofConfig, *, prefix: int = 12, idle: int | None = None, expect: int = 10,
                 decoder: FrameDecoder | None = None, tag: int = 0x3C):
        self.rig = LinkRig(config, free_core=True, run_bound=RUN_BOUND, decoder=decoder)
        self.prefix = prefix
        self.idle = idle_bound(config) if idle is None else idle
        twin = proto.HostLink(config.net, lanes=1, clk_freq=1_000_000, baud=100_000,
                              max_payload=config.max_payload, max_events=config.max_events)
        self.frame = proto.encode_request(Cmd.IDENTIFY, tag)
        self.expected = twin.feed(self.frame)[:expect]
        if len(self.expected) != expect:
            raise ValueError(f"expect = {expect} is more than the identify answer's {len(self.expected)} bytes")
        # Decoder takes the CRC byte and offers the frame; engine: EXEC, then RESP with the sync
        # byte on the transmitter; then the header a byte a cycle and payload bytes every 2 cycles.
        self.answer_cycles = 3 + (1 + RESPONSE_HEADER) + 2 * (expect - 1 - RESPONSE_HEADER)

    @property
    def depth_needed(self) -> int:
        """BMC steps from reset to the last check, included."""
        return self.prefix + self.idle + len(self.frame) + self.answer_cycles + 1

    def elaborate(self, platform):
        m = Module()
        m.submodules.rig = rig = self.rig
        frame, expected = self.frame, self.expected
        cnt = Signal(range(max(self.prefix, self.idle, len(frame), self.answer_cycles) + 2), name="phase_count")
        got = Signal(range(len(expected) + 1), name="answer_bytes")
        not_quiet, spoke, wrong_answer = Signal(name="not_quiet"), Signal(name="spoke"), Signal(name="wrong_answer")
        with m.FSM(name="phase") as fsm:
            with m.State("FREE"):
                _drive_free(m, rig)
                m.d.sync += cnt.eq(cnt + 1)
                with m.If(cnt == self.prefix - 1):
                    m.d.sync += cnt.eq(0)
                    m.next = "IDLE"
            with m.State("IDLE"):
                m.d.sync += cnt.eq(cnt + 1)
                with m.If(cnt == self.idle - 1):
                    m.d.sync += cnt.eq(0)
                    m.next = "SEND"
            with m.State("SEND"):
                m.d.comb += [rig.valid.eq(1), rig.byte.eq(Const(int.from_bytes(frame, "little"),
                                                                 8 * len(frame)).word_select(cnt, 8))]
                m.d.sync += cnt.eq(cnt + 1)
                with m.If(cnt == len(frame) - 1):
                    m.d.sync += [cnt.eq(0), got.eq(0)]
                    m.next = "WAIT"
            with m.State("WAIT"):
                with m.If(cnt < self.answer_cycles):
                    m.d.sync += cnt.eq(cnt + 1)
                with m.If(rig.tx_valid & (got < len(expected))):
                    m.d.sync += got.eq(got + 1)
                    with m.If(rig.tx_byte != Const(int.from_bytes(expected, "little"),
                                                   8 * len(expected)).word_select(got, 8)):
                        m.d.sync += wrong_answer.eq(1)
        dec = rig.decoder
        # Each check is recorded when it happens and asserted at the last step, the only one the
        # solver is asked about (prove_liveness skips the others): one solver call instead of one
        # per step of the unrolled run.
        with m.If(fsm.ongoing("SEND") & (cnt == 0) & ~rig.quiet):
            m.d.sync += not_quiet.eq(1)
        # Nothing arrives on the line during the IDLE phase, so nothing may go out in SEND.
        with m.If(fsm.ongoing("SEND") & rig.tx_valid):
            m.d.sync += spoke.eq(1)
        last = fsm.ongoing("WAIT") & (cnt == self.answer_cycles)
        m.d.comb += [
            Assert(~last | ~not_quiet, "the link is not quiet after the idle bound"),
            Assert(~last | ~spoke, "the link sends while the host sends IDENTIFY"),
            Assert(~last | ~wrong_answer, "the answer to IDENTIFY differs from the twin's"),
            Assert(~last | (got == len(expected)), "IDENTIFY not answered in time"),
            # Not vacuous: the idle phase starts mid-frame, with a timeout, after a rejection or
            # while a command's answer is being sent.
            Cover(fsm.ongoing("IDLE") & dec.events.timeout),
            Cover(fsm.ongoing("IDLE") & (cnt == 0) & ~dec.hunting & dec.listening),
            Cover(fsm.ongoing("IDLE") & (cnt == 0) & rig.engine.data.valid),
            Cover(fsm.ongoing("IDLE") & (cnt == 0) & dec.reject.valid),
        ]
        return m


# The prefix of (b): cycles of free bytes before the line goes quiet.
LIVENESS_PREFIX = 12


def prove_liveness(config: LinkProofConfig | None = None, *, prefix: int = LIVENESS_PREFIX, mode: str = "bmc",
                   name: str = "link_liveness", timeout: float = 900.0, workdir=None, **harness_kw) -> ProofResult:
    """(b) by BMC from reset to ``LivenessProof.depth_needed`` steps: every run in which the line
    carries any bytes and line errors for ``prefix`` cycles and then goes quiet. The default
    :data:`LIVENESS_PREFIX` reaches every state of a frame of up to 12 bytes (IDENTIFY, STATUS,
    CLEAR, RUN, LOAD of up to 4 words, WRITE too short to apply: their execution and answers,
    timeouts, rejections of bad lengths and CRCs, frames cut short at any byte); longer WRITE and
    LOAD frames only lengthen the payload passes that ``idle_bound`` counts. ``mode="cover"`` checks that the
    covers are reachable."""
    config = config or LinkProofConfig()
    harness = LivenessProof(config, prefix=prefix, **harness_kw)
    skip = harness.depth_needed - 1 if mode == "bmc" else 0
    return prove(harness, name=name, mode=mode, depth=harness.depth_needed, timeout=timeout,
                 workdir=workdir, skip=skip)


def prove_bad_crc(config: LinkProofConfig | None = None, *, depth: int = BAD_CRC_DEPTH, mode: str = "bmc",
                  name: str = "link_bad_crc", timeout: float = 600.0, workdir=None, **harness_kw) -> ProofResult:
    """(c) by BMC from reset to ``depth`` steps. The default, :data:`BAD_CRC_DEPTH`, holds the
    smallest frames that change state (CLEAR and RUN: sync, 4 header bytes, 2 CRC bytes) sent at
    any of the first steps, their execution and the rejection of a bad one. Longer frames pass the
    same check: the decoder judges the CRC before the engine sees the command, and the harness's
    running-CRC lemma holds byte by byte whatever the length."""
    config = config or LinkProofConfig()
    return prove(BadCRCProof(config, **harness_kw), name=name, mode=mode, depth=depth, timeout=timeout,
                 workdir=workdir)
