"""Formal proofs (SymbiYosys + yices) about the host link: a frame with a bad CRC never changes any
memory, and the link never locks up; each with a negative test that makes the proof fail."""
import numpy as np
import pytest
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

from spikegate.hdl.link.decoder import FrameDecoder
from spikegate.model import link as proto
from spikegate.model.link.geometry import encode_events
from spikegate.model.protocol import LOAD_CLEAR, LOAD_RUN
from spikegate.sim.formal import prove
from spikegate.sim.formal_link import (BAD_CRC_DEPTH, BAD_FRAME_ESCAPES, IdentifyProof, LinkProofConfig, LinkRig, answer_rest,
                                       crc16_step, idle_bound, induction_depth, prove_answer_drain, prove_bad_crc,
                                       prove_bad_crc_any_length, prove_decoder_timeout, prove_identify,
                                       prove_idle_hold, prove_transaction, transaction_bound)
from spikegate.sim.formal_probe import Probe


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


@pytest.mark.parametrize("registered_reads", [False, True])
def test_bad_crc_never_changes_memory(registered_reads):
    result = prove_bad_crc(LinkProofConfig(registered_reads=registered_reads))
    assert result.passed, f"{result.status}: {result.failed}\n{result.log_tail}"
    assert (result.mode, result.depth) == ("bmc", BAD_CRC_DEPTH)


@pytest.mark.parametrize("registered_reads", [False, True])
def test_bad_crc_never_changes_memory_for_any_frame_length(registered_reads):
    # k-induction: WRITE and LOAD frames of every length, not only those inside a BMC's depth.
    config = LinkProofConfig(registered_reads=registered_reads)
    result = prove_bad_crc_any_length(config)
    assert result.passed, f"{result.status}: {result.failed}\n{result.log_tail}"
    assert (result.mode, result.depth) == ("prove", induction_depth(config)) == ("prove", 7)


def test_bad_crc_invariants_with_a_decoder_skipping_the_check_fail():
    # (The induction's base case, 7 steps from reset, is too short to reach a write: a BMC.)
    result = prove_bad_crc(skip_check=True, inductive=True, name="link_bad_crc_any_skip")
    assert result.status == "FAIL"
    # The solver stops at whichever of the three escapes it meets first: the last step of the
    # counterexample must show one of them (not a broken mirror invariant of the harness).
    last = len(result.counterexample) - 1
    escaped = [n for n in BAD_FRAME_ESCAPES if result.value(n, last)]
    assert escaped, f"failed: {result.failed}"


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


def _run_rig(c, frame):
    """Amaranth simulation of the proofs' rig with the real NetworkCore: the bytes sent after
    ``frame``, the step at which the n-th came and the first at which the link was quiet (step 0:
    the cycle of the frame's last byte, the hand-off)."""
    rig = LinkRig(c)
    out, seen = bytearray(), {}

    async def bench(ctx):
        for b in frame:
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
                seen.setdefault("quiet", t + 1)

    sim = Simulator(rig)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return bytes(out), seen


def _twin(c):
    return proto.HostLink(c.net, lanes=1, clk_freq=1_000_000, baud=100_000, max_payload=c.max_payload,
                          max_events=c.max_events, stream=False)  # the rig's blocks do not stream


def test_rig_with_the_real_core_answers_identify_within_the_bounds():
    """With the real core, the IDENTIFY answer equals the twin's, its first bytes come within
    ``answer_cycles`` and the link is quiet exactly when the proofs' bounds say: the frame's
    hand-off is the cycle of its last byte, the decoder hunts ``transaction_bound`` steps later
    (IDENTIFY's answer is the longest)."""
    c = LinkProofConfig()
    harness = IdentifyProof(c)
    out, seen = _run_rig(c, harness.frame)
    assert out == _twin(c).feed(harness.frame) and out[:len(harness.expected)] == harness.expected
    assert seen[len(harness.expected)] <= harness.answer_cycles
    assert seen["quiet"] == transaction_bound(c) == 3 + answer_rest(c.geo.identify_len)


def test_rig_with_the_real_core_runs_within_the_bounds():
    # A LOAD that clears, loads the most events and runs: the real core's run fits the free core's
    # RUN_BOUND and the transaction its bound.
    c = LinkProofConfig()
    spikes = np.zeros((1, c.net.layers[0].n_in), dtype=bool)
    spikes[0, :] = True
    payload = bytes([LOAD_CLEAR | LOAD_RUN]) + encode_events(spikes, c.geo)
    frame = proto.encode_request(proto.Cmd.LOAD, 5, payload)
    out, seen = _run_rig(c, frame)
    assert out == _twin(c).feed(frame)
    assert seen["quiet"] <= transaction_bound(c)


def test_idle_bound_is_stated():
    c = LinkProofConfig()
    assert idle_bound(c) == c.frame_timeout + transaction_bound(c)
    assert answer_rest(0) == 7 and answer_rest(80) == 166
    with pytest.raises(ValueError, match="frame_timeout = 1"):
        LinkProofConfig(frame_timeout=1)


def test_probe_names_what_it_has():
    p = Probe(FrameDecoder(12, 6))
    assert len(p["tcount"]) == 3 and set(p.states()) >= {"HUNT", "WAIT"}
    with pytest.raises(KeyError, match="no signal named 'nothing'.*tcount"):
        p["nothing"]
    with pytest.raises(KeyError, match="no state .*'IDLE'.*HUNT"):
        p.state("IDLE")


# --- (b) the link never locks up ---------------------------------------------------------------

def test_b1_decoder_ends_every_frame_after_the_timeout():
    result = prove_decoder_timeout()
    assert result.passed, f"{result.status}: {result.failed}\n{result.log_tail}"
    assert (result.mode, result.depth) == ("prove", 2)


def test_b1_is_not_vacuous():
    # Frames are open with a cycle to go before the timeout, time out, and are offered.
    result = prove_decoder_timeout(mode="cover", depth=10, name="link_decoder_timeout_cover")
    assert result.passed, f"unreachable: {result.failed}\n{result.log_tail}"


def test_b1_decoder_without_timeout_fails():
    # A decoder whose timeout is 65536 cycles (as good as none) keeps a frame open.
    c = LinkProofConfig()
    result = prove_decoder_timeout(c, mode="bmc", depth=c.frame_timeout + 6, name="link_decoder_no_timeout",
                                   decoder=FrameDecoder(c.max_payload, 1 << 16))
    assert result.status == "FAIL"
    last = len(result.counterexample) - 1
    assert result.value("silent", last) == c.frame_timeout and result.value("receiving", last) == 1


@pytest.mark.parametrize("registered_reads", [False, True])
def test_b2_every_hand_off_is_answered_in_time(registered_reads):
    """(``registered_reads``: the same bounds with the link's block RAM reads registered.)"""
    result = prove_transaction(LinkProofConfig(registered_reads=registered_reads))
    assert result.passed, f"{result.status}: {result.failed}\n{result.log_tail}"


def test_b2_is_not_vacuous():
    # Rejections and frames are handed off, and within a transaction runs start and writes apply.
    result = prove_transaction(mode="cover", name="link_transaction_cover", batch_cover=False)
    assert result.passed, f"unreachable: {result.failed}\n{result.log_tail}"


@pytest.mark.slow
def test_b2_batch_bound_is_reached():
    # ...and the longest BATCH takes every step of batch_bound: the bound is tight (as
    # test_b2_with_a_bound_one_short_fails shows transaction_bound is; 48 of this cover run's
    # 83 s are its deepest step, 67).
    result = prove_transaction(mode="cover", name="link_transaction_cover_batch")
    assert result.passed, f"unreachable: {result.failed}\n{result.log_tail}"


def test_b2_idle_back_end_stays_idle():
    result = prove_idle_hold()
    assert result.passed, f"{result.status}: {result.failed}\n{result.log_tail}"


@pytest.mark.slow
def test_b2_with_a_bound_one_short_fails():
    # IDENTIFY's answer needs every cycle of transaction_bound.
    c = LinkProofConfig()
    result = prove_transaction(c, bound=transaction_bound(c) - 1, name="link_transaction_short", timeout=1200)
    assert result.status == "FAIL"
    assert result.value("bad_take", len(result.counterexample) - 1) == 1


@pytest.mark.parametrize("registered_reads", [False, True])
def test_b3_answer_drains_in_exactly_its_cycles(registered_reads):
    result = prove_answer_drain(LinkProofConfig(registered_reads=registered_reads))
    assert result.passed, f"{result.status}: {result.failed}\n{result.log_tail}"


def test_b3_with_a_budget_one_short_fails():
    result = prove_answer_drain(mode="bmc", depth=answer_rest(0) + 2, slack=-1, only_length=0,
                                name="link_answer_drain_short")
    assert result.status == "FAIL"
    assert any("budget" in f or "formal_link_drain" in f for f in result.failed)


@pytest.mark.parametrize("registered_reads", [False, True])
def test_b4_quiet_link_answers_identify_like_the_twin(registered_reads):
    result = prove_identify(LinkProofConfig(registered_reads=registered_reads))
    assert result.passed, f"{result.status}: {result.failed}\n{result.log_tail}"
    assert result.depth == IdentifyProof(LinkProofConfig()).depth_needed


def test_b4_with_a_wrong_twin_byte_fails():
    harness = IdentifyProof(LinkProofConfig(), expect=10)
    harness.expected = harness.expected[:-1] + bytes([harness.expected[-1] ^ 1])
    result = prove(harness, name="link_identify_wrong", mode="bmc", depth=harness.depth_needed,
                   skip=harness.depth_needed - 1, free_init=True)
    assert result.status == "FAIL"
    assert result.value("wrong_answer", len(result.counterexample) - 1) == 1
