"""Formal proofs (SymbiYosys + yices) about the host link: a frame with a bad CRC never changes any
memory, and the link never locks up; each with a negative test that makes the proof fail."""
import pytest
from amaranth.hdl import Fragment, Module, Signal
from amaranth.sim import Simulator

from spikegate.model import link as proto
from spikegate.sim.formal_link import (BAD_CRC_DEPTH, LinkProofConfig, LinkRig, LivenessProof, crc16_step, idle_bound,
                                       prove_bad_crc, prove_liveness)


def test_reference_crc_is_ccitt_false():
    """The proofs' own CRC (shift-register form) gives the protocol's CRC on a known answer and a frame."""
    m = Module()
    crc, byte = Signal(16, init=0xFFFF), Signal(8)
    m.d.sync += crc.eq(crc16_step(m, crc, byte))
    data = b"123456789" + proto.encode_request(proto.Cmd.WRITE, 7, bytes(range(9)))[1:-2]
    got = []

    async def bench(ctx):
        for i, b in enumerate(data):
            ctx.set(byte, b)
            await ctx.tick()
            if i == 8:
                got.append(ctx.get(crc))
                ctx.set(crc, 0xFFFF)
        got.append(ctx.get(crc))

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert got == [0x29B1, proto.crc16(data[9:])]


def test_bad_crc_never_changes_memory():
    result = prove_bad_crc()
    assert result.passed, f"{result.status}: {result.failed}\n{result.log_tail}"
    assert (result.mode, result.depth) == ("bmc", BAD_CRC_DEPTH)


def test_bad_crc_proof_is_not_vacuous():
    # Within the depth a good frame clears the core and starts a run, and a bad frame is rejected.
    result = prove_bad_crc(mode="cover", name="link_bad_crc_cover")
    assert result.passed, f"unreachable: {result.failed}\n{result.log_tail}"


def test_decoder_skipping_the_check_fails():
    result = prove_bad_crc(skip_check=True, name="link_bad_crc_skip")
    assert result.status == "FAIL"
    # In the counterexample memory changes although the harness found the frame's CRC bad.
    steps = range(len(result.counterexample))
    assert any(result.value("rig.writes", s) and not result.value("ref_good", s) for s in steps)


def test_rig_with_the_real_core_answers_identify_within_the_bounds():
    """Amaranth simulation of the proofs' rig with the real NetworkCore: the IDENTIFY answer equals
    the twin's, its first bytes come within ``answer_cycles`` and the link is quiet within
    ``idle_bound`` cycles of the frame's end (so the bounds the proof uses are not too tight)."""
    c = LinkProofConfig()
    rig, harness = LinkRig(c), LivenessProof(c)
    Fragment.get(harness, None)  # only its frame and bounds are used here
    out, seen = bytearray(), {}

    async def bench(ctx):
        for b in harness.frame:
            ctx.set(rig.byte, b)
            ctx.set(rig.valid, 1)
            await ctx.tick()
        ctx.set(rig.valid, 0)
        for t in range(1, idle_bound(c) + 1):
            if ctx.get(rig.tx_valid):
                out.append(ctx.get(rig.tx_byte))
                seen.setdefault(len(out), t)
            await ctx.tick()
            if out and ctx.get(rig.quiet):
                seen.setdefault("quiet", t)

    sim = Simulator(rig)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    twin = proto.HostLink(c.net, lanes=1, clk_freq=1_000_000, baud=100_000, max_payload=c.max_payload,
                          max_events=c.max_events)
    assert bytes(out) == twin.feed(harness.frame) and out[:len(harness.expected)] == harness.expected
    assert seen[len(harness.expected)] <= harness.answer_cycles
    assert "quiet" in seen


def test_idle_bound_is_stated():
    c = LinkProofConfig()
    assert idle_bound(c) > c.frame_timeout + 2 * c.geo.identify_len
    with pytest.raises(ValueError, match="frame_timeout = 1"):
        LinkProofConfig(frame_timeout=1)


# --- (b) the link never locks up ---------------------------------------------------------------

def test_liveness_proof_is_not_vacuous():
    # The line goes quiet mid-frame, during a timeout, with a rejection waiting and during an answer.
    result = prove_liveness(mode="cover", name="link_liveness_cover")
    assert result.passed, f"unreachable: {result.failed}\n{result.log_tail}"


def test_liveness_with_too_short_idle_bound_fails():
    # A bound of one frame timeout leaves no time for the rejection or an answer under way.
    c = LinkProofConfig()
    result = prove_liveness(c, idle=c.frame_timeout, name="link_liveness_short")
    assert result.status == "FAIL"
    assert result.value("not_quiet", len(result.counterexample) - 1) == 1
