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
