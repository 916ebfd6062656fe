"""Proof (c) of :mod:`spikegate.sim.formal_link`: a frame with a bad CRC never changes any memory."""
from __future__ import annotations

from amaranth.asserts import AnySeq
from amaranth.hdl import Assert, Cat, Cover, Elaboratable, Module, Mux, Signal

from ..model.protocol import REQUEST_HEADER, SYNC_REQ
from .formal import ProofResult, prove
from .formal_link_rig import LinkProofConfig, LinkRig


# --- (c): a frame with a bad CRC never changes any memory ----------------------------------------

# BMC depth of (c): a 7-byte frame from step 1, its CRC check at step 8 and its execution (clear or
# run start at step 10), with steps to spare for gaps between bytes. The solver's time grows
# quickly with the depth (about 15 s here, several minutes at 20).
BAD_CRC_DEPTH = 14

# Names of the inductive harness's signals that flag a bad frame getting past the decoder.
BAD_FRAME_ESCAPES = ("bad_frame_waits", "bad_frame_runs", "bad_frame_writes")

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

    ``inductive=True`` adds the invariants that make the property inductive, for k-induction
    (``mode="prove"``), which covers frames of every length: the harness's frame state mirrors the
    decoder's (state, header and payload counts, length, the CRC's low byte, the silence that times
    a frame out), and ``cur_good``, the verdict on the frame the engine took last, is set whenever
    the engine is busy. The property is then stated on ``cur_good``: a memory changes only while
    the engine executes a frame whose CRC the harness found good.
    """

    def __init__(self, config: LinkProofConfig, *, skip_check: bool = False, inductive: bool = False):
        self.rig = LinkRig(config, free_core=True)
        self.skip_check, self.inductive = skip_check, inductive

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
        if self.inductive:
            self._invariants(m, rig, fsm, dict(crc=crc, length=length, count=count, crc_lo=crc_lo, good=good,
                                               silence=silence, byte=byte))
        m.d.comb += [
            # A lemma, checked at every step, that keeps the solver's work per step to one byte: the
            # reference CRC equals the decoder's all through a frame. (Proving only the final
            # comparison would make the solver show two XOR networks over the whole frame equal.)
            Assert(fsm.ongoing("OUT") | (crc == rig.decoder.crc_now), "the decoder's running CRC differs"),
            Assert(self.inductive | ~rig.writes | good, "a memory write follows a frame whose CRC did not match"),
            # Not vacuous: memory changes happen (after good frames), and bad frames complete and are answered.
            Cover(eng.clear), Cover(eng.start),
            Cover(rig.decoder.events.crc_error), Cover(bad_seen & rig.decoder.reject.valid),
        ]
        return m


    def _invariants(self, m, rig, fsm, ref):
        dec, eng, cfg = rig.dec, rig.eng, rig.config
        cur_good = Signal(name="cur_good")  # the verdict on the frame the engine took last
        with m.If(rig.decoder.frame.valid & rig.engine.frame.ready):
            # Taken straight from CRC1 (the verdict of this cycle) or later from FRAME.
            now_ok = Cat(ref["crc_lo"], ref["byte"]) == ref["crc"]
            m.d.sync += cur_good.eq(Mux(fsm.ongoing("CRC1"), now_ok, ref["good"]))
        receiving = dec.state("HDR", "PAYLOAD", "CRC0", "CRC1")
        count = ref["count"]
        m.d.comb += [
            Assert(fsm.ongoing("OUT") | fsm.ongoing("HDR") | fsm.ongoing("PAY") | fsm.ongoing("CRC0")
                   | fsm.ongoing("CRC1")),
            Assert(fsm.ongoing("OUT") == ~receiving, "the harness's frame and the decoder's differ"),
            Assert(~fsm.ongoing("HDR") | (dec.state("HDR") & (count == dec["hcnt"]))),
            Assert(~fsm.ongoing("PAY") | (dec.state("PAYLOAD") & (count == dec["ptr"]) & (count < ref["length"])
                                          & (ref["length"] == dec["length"]) & (ref["length"] <= cfg.max_payload))),
            Assert(~fsm.ongoing("CRC0") | dec.state("CRC0")),
            Assert(~fsm.ongoing("CRC1") | dec.state("CRC1")),
            Assert(fsm.ongoing("OUT") | ((ref["silence"] == dec["tcount"]) & (ref["silence"] < cfg.frame_timeout))),
        ]
        # The three ways a bad frame gets through, one signal each, so that a failing proof's
        # counterexample says which one the solver found first (any of them may come first when
        # the check is skipped: they are the same breach seen one step apart).
        escapes = {name: Signal(name=name) for name in BAD_FRAME_ESCAPES}
        m.d.comb += [
            escapes["bad_frame_waits"].eq(dec.state("FRAME") & ~ref["good"]),
            escapes["bad_frame_runs"].eq(~eng.state("IDLE") & ~cur_good),
            escapes["bad_frame_writes"].eq(rig.writes & ~cur_good),
            Assert(~escapes["bad_frame_waits"], "a frame waits for the engine although its CRC did not match"),
            Assert(~escapes["bad_frame_runs"], "the engine executes a frame whose CRC did not match"),
            Assert(~escapes["bad_frame_writes"], "a memory changes while the engine executes a bad frame"),
        ]


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


def induction_depth(config: LinkProofConfig) -> int:
    """k of :func:`prove_bad_crc_any_length`: the decoder's registers that hold the CRC's low byte
    and the length's low byte have no invariant here (they are not named in the decoder), so the
    induction looks back far enough to see them written: a frame state lasts at most
    ``frame_timeout`` cycles (``frame_timeout - 1`` silent ones, then its timeout), plus the step that
    wrote the byte. (One step less leaves the induction unproven.)"""
    return config.frame_timeout + 1


def prove_bad_crc_any_length(config: LinkProofConfig | None = None, *, name: str = "link_bad_crc_any",
                             timeout: float = 600.0, workdir=None, **harness_kw) -> ProofResult:
    """(c) for frames of every length, by k-induction of :func:`induction_depth` steps with the
    invariants of ``BadCRCProof(inductive=True)``: the base case is a BMC from reset of that many
    steps, the induction step starts from any state in which the invariants held for k steps."""
    config = config or LinkProofConfig()
    return prove(BadCRCProof(config, inductive=True, **harness_kw), name=name, mode="prove",
                 depth=induction_depth(config), timeout=timeout, workdir=workdir)
