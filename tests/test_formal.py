"""Formal proofs (SymbiYosys + yices): the pipelined LIFNeuronUnit equals the arithmetic contract for
all inputs, NEURON_STAGES cycles later.

Also checks the proof machinery itself: the assumptions leave every interesting case reachable
(cover), a deliberately wrong spec fails with a counterexample the contract confirms, a deadline
ends the run and its whole process group, and bad arguments are refused up front.
"""
import os
import time
from pathlib import Path

import numpy as np
import pytest
from amaranth.asserts import AnyConst
from amaranth.hdl import Assert, Assume, Cover, Elaboratable, Module, Signal

from spikegate.model import lif
from spikegate.model.network import LEAK_KINDS, RESET_MODES, Layer, Leak
from spikegate.sim import formal
from spikegate.sim.formal import Bundle, prove
from spikegate.sim.formal_lif import (NEURON_PROOF_CONFIGS, PROOF_DEPTH, LIFContractProof, NeuronProofConfig,
                                      prove_neurons)
from spikegate.hdl.neuron import NEURON_STAGES


def _configs(kind):
    return [c for c in NEURON_PROOF_CONFIGS if c.leak.kind == kind]


@pytest.mark.parametrize("kind", LEAK_KINDS)
def test_neuron_unit_equals_contract(kind):
    result = prove_neurons(_configs(kind), name=f"lif_{kind}")
    assert result.passed, f"{result.status} in {result.failed_parts}: {result.failed}\n{result.log_tail}"
    assert (result.mode, result.depth) == ("prove", NEURON_STAGES + 1) == ("prove", PROOF_DEPTH)


@pytest.mark.parametrize("kind", LEAK_KINDS)
def test_neuron_proof_is_not_vacuous(kind):
    # Every Cover (both saturation rails, a spike, a full refractory counter) is reachable under
    # the harness's assumptions, so the passing proof above is about real inputs.
    result = prove_neurons(_configs(kind), mode="cover", name=f"lif_cover_{kind}")
    assert result.passed, f"unreachable: {result.failed}\n{result.log_tail}"


def test_proof_configs_span_every_mode():
    cs = NEURON_PROOF_CONFIGS
    assert {c.leak.kind for c in cs} == set(LEAK_KINDS)
    spiking = [c for c in cs if not c.readout]
    for kind in LEAK_KINDS:
        assert {(c.reset, c.refractory > 0) for c in spiking if c.leak.kind == kind} == \
            {(reset, refr) for reset in RESET_MODES for refr in (False, True)}
        assert any(c.readout for c in cs if c.leak.kind == kind)
    assert any(c.leak.kind == "shift" and c.leak.k > c.membrane_bits for c in cs)
    assert {c.leak.m for c in cs if c.leak.kind == "multiply"} >= {0, 4}  # m = 0 and m = 2^F (F = 2)
    assert any(c.acc_bits > c.membrane_bits for c in cs)
    assert len({c.label for c in cs}) == len(cs)


class _GreaterOrEqualSpec(LIFContractProof):
    """The contract with step 4 wrong: spike when v >= theta."""

    def spike_rule(self, v, theta):
        return v >= theta


def test_wrong_spec_fails_with_counterexample():
    cfg = NeuronProofConfig(Leak.shift(1), "subtract", 5)
    result = prove_neurons([cfg], harness=_GreaterOrEqualSpec, name="lif_wrong")
    assert result.status == "FAIL" and not result.passed
    assert result.failed_parts == (cfg.label,)

    # The violated step is the trace's last; its "<port>_in" signals are the inputs the checked
    # outputs were computed from, NEURON_STAGES cycles earlier.
    last = len(result.counterexample) - 1
    assert last >= NEURON_STAGES and result.value(f"{cfg.label}.age", last) == NEURON_STAGES

    def val(name, signed=True):
        return result.value(f"{cfg.label}.{name}", last, signed=signed)

    # The only inputs on which >= and > differ: not refractory, saturated sum exactly at theta.
    v, r, acc, bias, theta = (val(f"{p}_in") for p in ("v", "r", "acc", "bias", "theta"))
    assert r == 0 and val("spec_sat") == theta and val("spec_spike", signed=False) == 1
    # The contract's own code agrees with the unit (no spike) on the counterexample.
    layer = Layer(weights=np.zeros((1, 1), np.int64), bias=[bias], threshold=theta, weight_bits=2,
                  membrane_bits=cfg.membrane_bits, leak=cfg.leak, reset=cfg.reset, refractory=cfg.refractory)
    v_next, r_next, spikes = lif.lif_step(layer, np.array([v]), np.array([r]), np.array([acc]))
    assert not spikes[0] and val("unit.spike", signed=False) == 0
    assert (val("unit.v_next"), val("unit.r_next", signed=False)) == (v_next[0], r_next[0])


class _Counter(Elaboratable):
    """A 4-bit input below 8: a bundle part whose assertion holds or fails on demand."""

    def __init__(self, bound):
        self.bound = bound

    def elaborate(self, platform):
        m = Module()
        a = Signal(4, name="a")
        m.d.comb += [a.eq(AnyConst(4)), Assume(a < 8), Assert(a < self.bound), Cover(a == 7)]
        return m


def test_bundle_names_the_failing_part_and_bmc_depth(tmp_path):
    result = prove(Bundle({"good": _Counter(8), "bad": _Counter(7)}), name="bundle", mode="bmc", depth=2,
                   workdir=tmp_path)
    assert result.status == "FAIL" and result.failed_parts == ("bad",)
    assert result.value("bad.a") == 7
    assert (tmp_path / "bundle" / "engine_0" / "trace.vcd").is_file()  # kept for inspection
    assert prove(_Counter(8), name="good", mode="bmc", depth=2).passed


def test_cover_reports_unreachable_cover():
    class Impossible(Elaboratable):  # a Cover that the assumption a < 8 rules out
        def elaborate(self, platform):
            m = Module()
            a = Signal(4)
            m.d.comb += [a.eq(AnyConst(4)), Assume(a < 8), Cover(a == 9), Cover(a == 3)]
            return m

    result = prove(Impossible(), name="impossible", mode="cover")
    assert result.status == "FAIL" and len(result.failed) == 1


def test_deadline_ends_the_run():
    start = time.monotonic()
    result = prove_neurons(NEURON_PROOF_CONFIGS[:1], timeout=0.5, name="lif_deadline")
    assert result.status == "TIMEOUT" and not result.passed
    assert time.monotonic() - start < 15


def test_deadline_kills_the_process_group(tmp_path):
    # A child that ignores SIGTERM and a grandchild: both must be gone after the deadline.
    script = "trap '' TERM; sleep 60 & echo $! > grandchild; sleep 60"
    start = time.monotonic()
    _, timed_out = formal._run(["sh", "-c", script], tmp_path, None, timeout=0.5, grace=0.5)
    assert timed_out and time.monotonic() - start < 10
    pid = int((tmp_path / "grandchild").read_text())
    for _ in range(50):
        stat = Path(f"/proc/{pid}/stat")
        if not stat.exists() or stat.read_text().split(")")[-1].split()[0] == "Z":
            break
        time.sleep(0.1)
    else:
        os.kill(pid, 9)
        pytest.fail(f"grandchild {pid} survived the deadline")


@pytest.mark.parametrize("kwargs, match", [
    ({"mode": "induction"}, "mode = 'induction'"),
    ({"depth": 0}, "depth = 0"),
    ({"engine": "abc pdr"}, "engine = 'abc pdr'"),
    ({"timeout": 0}, "timeout = 0"),
    ({"name": "a b"}, "name = 'a b'"),
    ({"workdir": "/nonexistent/dir"}, "workdir = '/nonexistent/dir'"),
])
def test_bad_arguments_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        prove(None, **kwargs)  # arguments are checked before the design is looked at


def test_bad_configs_are_refused():
    with pytest.raises(ValueError, match="readout"):
        NeuronProofConfig(Leak.none(), "subtract", readout=True)
    with pytest.raises(ValueError, match="reset = 'hold'"):
        NeuronProofConfig(Leak.none(), "hold")
    with pytest.raises(ValueError, match="duplicates"):
        prove_neurons(NEURON_PROOF_CONFIGS[:1] * 2)
    with pytest.raises(ValueError, match="at least one"):
        Bundle({})
