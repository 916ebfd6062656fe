"""Proof (b) of :mod:`spikegate.sim.formal_link`: the link never locks up."""
from __future__ import annotations

from amaranth.hdl import Assert, Const, Cover, Elaboratable, Module, Signal

from ..hdl.link.answer import CYCLE_BYTES
from ..hdl.link.decoder import FrameDecoder
from ..model import link as proto
from ..model.protocol import RESPONSE_HEADER, Cmd
from .formal import ProofResult, prove
from .formal_link_rig import LinkProofConfig, LinkRig, _drive_free


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
