"""The compiled drive (spikegate.model.compiled): bias plus synaptic sums against an independent
int64 product, on both input orders, any number of steps (groups of eight), inputs that do not
fill a 64-bit word, codes shared and not shared between samples, and the accumulator type's
int16 / int32 bounds; ``simulate`` with the kernel on and off against the step-by-step
evaluation; the neuron loop kept in the kernel's narrower type against the state type's, at that
type's ends; and the modes that say when the kernel runs (SPIKEGATE_JIT). Skipped as a whole
where numba is not installed (the numpy paths are tested in test_model_speed.py and
test_patterns.py)."""
import importlib.util
import logging
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from spikegate.model import Layer, Leak, Network, compiled, simulate
from spikegate.model.fastsim import layer_drive, run_drive
from spikegate.model.prepared import holds_the_run, membrane_extent, prepared
from spikegate.model.random import random_network, random_spikes
from test_model import assert_matches_reference
from test_model_speed import assert_same_results

# Not importorskip: importing numba at collection would fix its cache folder before conftest's
# fixtures point it into the run's temp folder.
pytestmark = pytest.mark.skipif(importlib.util.find_spec("numba") is None, reason="numba is not installed")


def reference_drive(weights, bias, spikes, sample_major):
    """bias + spikes @ weights in int64, step-major [T, batch, n]."""
    s = spikes.transpose(1, 0, 2) if sample_major else spikes
    return np.einsum("tbi,ij->tbj", s.astype(np.int64), weights.astype(np.int64)) + bias.astype(np.int64)


@settings(max_examples=300, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), T=st.integers(0, 20), batch=st.integers(0, 6), n_in=st.integers(1, 40),
       n=st.integers(1, 20), p=st.sampled_from([0.0, 0.1, 0.5, 1.0]), wide=st.booleans(), sample_major=st.booleans(),
       state=st.sampled_from([np.int32, np.int64]))
def test_code_drive_equals_the_integer_product(seed, T, batch, n_in, n, p, wide, sample_major, state):
    rng = np.random.default_rng(seed)
    top = 3000 if wide else 40  # wide: column sums past int16, so the int32 accumulator
    w = rng.integers(-top, top + 1, (n_in, n))
    bias = rng.integers(-top, top + 1, n)
    shape = (batch, T, n_in) if sample_major else (T, batch, n_in)
    spikes = rng.random(shape) < p
    dtype = compiled.accumulator_dtype(w, bias)
    assert dtype == (np.int16 if np.abs(w).sum(axis=0).max() + np.abs(bias).max() < 1 << 15 else np.int32)
    got = compiled.code_drive(w.astype(dtype), bias.astype(dtype), spikes, sample_major, state)
    assert got.dtype == state and got.shape == (T, batch, n)
    assert np.array_equal(got, reference_drive(w, bias, spikes, sample_major))


@pytest.mark.parametrize("codes_per_sample", [1, 3, 200])
def test_codes_shared_across_inputs_and_samples(codes_per_sample):
    # Every sample reuses the code table's slots: a slot left set by one sample would add a stale
    # row of G to the next one's sums.
    rng = np.random.default_rng(codes_per_sample)
    batch, T, n_in, n = 30, 8, 256, 33
    table = rng.integers(1, 256, codes_per_sample)
    codes = table[rng.integers(0, codes_per_sample, (batch, n_in))] * (rng.random((batch, n_in)) < 0.7)
    spikes = ((codes[:, None, :] >> np.arange(T)[None, :, None]) & 1).astype(bool)
    w = rng.integers(-100, 101, (n_in, n))
    bias = rng.integers(-5, 6, n)
    got = compiled.code_drive(w.astype(np.int32), bias.astype(np.int32), spikes, True, np.int32)
    assert np.array_equal(got, reference_drive(w, bias, spikes, True))


@pytest.mark.parametrize("over", [-1, 0])
def test_the_accumulator_is_int16_only_below_two_to_the_15(over):
    # All inputs spike into positive weights: the sum is the bias plus the column's whole sum,
    # 2^15 + over. At 2^15 int16 would wrap to -2^15; the kernel must have taken int32.
    n_in = 64
    w = np.full((n_in, 1), 500)
    bias = np.array([(1 << 15) + over - 500 * n_in])
    dtype = compiled.accumulator_dtype(w, bias)
    assert dtype == (np.int16 if over < 0 else np.int32)
    spikes = np.ones((2, 3, n_in), bool)
    got = compiled.code_drive(w.astype(dtype), bias.astype(dtype), spikes, True, np.int64)
    assert (got == (1 << 15) + over).all()


def test_code_drive_refuses_spikes_that_are_not_bool():
    with pytest.raises(ValueError, match="spikes must be a bool array, got dtype int64"):
        compiled.code_drive(np.ones((3, 2), np.int16), np.zeros(2, np.int16), np.ones((1, 2, 3), np.int64), True,
                            np.int32)


def test_no_accumulator_past_int32():
    assert compiled.accumulator_dtype(np.full((2, 1), 1 << 30), np.array([0])) is None
    assert compiled.accumulator_dtype(np.full((2, 1), (1 << 30) - 1), np.array([1])) is np.int32


def test_a_layer_past_int32_takes_the_numpy_paths():
    # 65,537 full-scale 16-bit weights and a bias of 40,000 sum to 2^31 + 7,231: no int32 holds
    # it, so the layer's drive falls back to the numpy products, exactly.
    n_in = 65537
    layer = Layer(weights=np.full((n_in, 1), 32767), bias=np.array([40000]), threshold=1, membrane_bits=32,
                  weight_bits=16)
    assert prepared(layer).summed() is None
    spikes = np.ones((1, 2, n_in), bool)
    with compiled.switched(True):
        assert (layer_drive(layer, spikes, True) == n_in * 32767 + 40000).all()


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), batch=st.integers(1, 40), p=st.sampled_from([0.02, 0.3, 0.9]),
       kernel=st.booleans())
def test_simulate_with_and_without_the_kernel_equals_the_step_by_step_evaluation(seed, batch, p, kernel):
    net = random_network(seed)
    spikes = random_spikes(seed, batch, net.timesteps, net.n_inputs, p=p)
    with compiled.switched(kernel) as on:
        assert on == kernel
        assert_same_results(net, spikes)
        assert_matches_reference(net, spikes[:3])  # the scalar transcription of the contract


def test_a_numba_that_does_not_import_leaves_the_numpy_paths(monkeypatch, caplog):
    net = random_network(3)
    spikes = random_spikes(3, 4, net.timesteps, net.n_inputs, p=0.3)
    # Installed (find_spec finds it) but failing to import:
    monkeypatch.setitem(sys.modules, "numba", None)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object())
    monkeypatch.setattr(compiled, "_kernel", None)
    monkeypatch.setattr(compiled, "_broken", False)
    with compiled.switched(True):
        with caplog.at_level(logging.WARNING, logger="spikegate.model.compiled"):
            assert not compiled.ready() and not compiled.wanted()
        assert "numba does not import" in caplog.text and "numpy paths" in caplog.text
        with pytest.raises(RuntimeError, match="needs numba, which is missing or does not import"):
            compiled.code_drive(np.zeros((2, 1), np.int16), np.zeros(1, np.int16), np.zeros((1, 1, 2), bool), True,
                                np.int32)
        assert_same_results(net, spikes)


def test_switched_restores_the_mode():
    before = compiled.MODE
    with compiled.switched(False) as on:
        assert compiled.MODE == "off" and not on and not compiled.wanted()
        with compiled.switched(True) as on:
            assert compiled.MODE == "on" and on and compiled.wanted()
        assert compiled.MODE == "off"
    assert compiled.MODE == before


def wide_state_layer():
    # Membranes of 20 bits make the state int32; the sums fit int16, so the kernel's drive comes
    # back in int16 and the numpy paths' in int32: the type tells which path ran.
    rng = np.random.default_rng(1)
    return Layer(weights=rng.integers(-50, 51, (16, 5)), bias=np.zeros(5, np.int64), threshold=100,
                 membrane_bits=20, weight_bits=8)


def test_auto_takes_the_kernel_once_the_numpy_drives_have_cost_as_much_as_loading_it(monkeypatch):
    layer = wide_state_layer()
    spikes = np.random.default_rng(2).random((3, 4, 16)) < 0.5
    monkeypatch.setattr(compiled, "MODE", "auto")
    monkeypatch.setattr(compiled, "_numpy_seconds", 0.0)
    monkeypatch.setattr(compiled, "LOAD_AFTER", 1e-9)  # any numpy drive at all repays it
    first = layer_drive(layer, spikes, True)
    assert first.dtype == np.int32 and compiled._numpy_seconds > 0
    second = layer_drive(layer, spikes, True)
    assert second.dtype == np.int16 and np.array_equal(first, second)
    monkeypatch.setattr(compiled, "LOAD_AFTER", 3600.0)  # never reached: numpy from here on
    assert layer_drive(layer, spikes, True).dtype == np.int32


@pytest.mark.parametrize("value, mode", [("", "auto"), ("auto", "auto"), (" ON ", "on"), ("off", "off")])
def test_the_environment_sets_the_mode(tmp_path, value, mode):
    code = "from spikegate.model import compiled; print(compiled.MODE)"
    env = {"SPIKEGATE_JIT": value, "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120,
                         cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == mode


def test_an_unknown_mode_is_refused_by_name(monkeypatch):
    monkeypatch.setattr(compiled, "MODE", "fast")
    net = random_network(1)
    with pytest.raises(ValueError, match=r"SPIKEGATE_JIT = 'fast' is not valid; valid: auto, on, off"):
        simulate(net, random_spikes(1, 2, net.timesteps, net.n_inputs, p=0.3))


def test_a_network_on_both_paths_on_a_rate_code():
    # Deterministic codes: few distinct codes, many inputs each, as on the data sets.
    rng = np.random.default_rng(5)
    layers = [Layer(weights=rng.integers(-60, 61, (100, 30)), bias=rng.integers(-9, 10, 30), threshold=90,
                    membrane_bits=12, weight_bits=8, leak=Leak.shift(3), reset="subtract", refractory=1),
              Layer(weights=rng.integers(-60, 61, (30, 4)), bias=np.zeros(4, np.int64), threshold=0, membrane_bits=16,
                    weight_bits=8, leak=Leak.none(), reset="zero", refractory=0, readout=True)]
    net = Network(layers=layers, timesteps=12)
    levels = rng.integers(0, 5, (70, 100))
    spikes = (np.arange(12)[None, :, None] * levels[:, None, :] // 4 % 3 == 0) & (levels[:, None, :] > 0)
    for kernel in (True, False):
        with compiled.switched(kernel):
            assert_same_results(net, spikes)


def narrow_layer(kind, reset, refractory, readout, theta, membrane_bits=18):
    leak = {"none": Leak.none(), "shift": Leak.shift(2), "multiply": Leak.multiply(3, 2)}[kind]
    if readout:  # a readout never fires
        theta, reset, refractory = 0, "zero", 0
    return Layer(weights=np.ones((1, 3), np.int64), bias=np.zeros(3, np.int64), threshold=theta,
                 membrane_bits=membrane_bits, weight_bits=8, leak=leak, reset=reset, refractory=refractory,
                 readout=readout)


def both_runs(layer, drive):
    """run_drive on an int16 drive (narrow: kept or widened as the data decide) and on the same
    values in the layer's int32 state type."""
    assert prepared(layer).state == np.int32
    narrow = run_drive(layer, drive.astype(np.int16), True, prepared(layer).rails(drive.shape[0]))
    wide = run_drive(layer, drive.astype(np.int32), True, prepared(layer).rails(drive.shape[0]))
    for a, b in zip(narrow, wide):
        assert a.dtype == b.dtype and np.array_equal(a, b)


@settings(max_examples=300, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), T=st.integers(1, 12), kind=st.sampled_from(["none", "shift", "multiply"]),
       reset=st.sampled_from(["zero", "subtract"]), refractory=st.integers(0, 3), readout=st.booleans(),
       theta=st.sampled_from([0, 7, 3000, 32767, 40000]), reach=st.integers(-3, 3), side=st.booleans())
def test_a_narrow_drive_runs_as_the_state_type_would(seed, T, kind, reset, refractory, readout, theta, reach, side):
    # Drives whose bound takes the membrane to int16's end, a few values either side of it.
    rng = np.random.default_rng(seed)
    # Each drive value itself fits int16, as the kernel's accumulator guarantees.
    edge = (1 << 15) // T + reach
    low, high = (-min(edge, 32768), 300) if side else (-300, min(edge, 32767))
    drive = rng.integers(low, high + 1, (T, 6, 3))
    drive[:, 0] = low  # one sample at each end all the way
    drive[:, 1] = high
    both_runs(narrow_layer(kind, reset, refractory, readout, theta), drive)


@pytest.mark.parametrize("over", [0, 1])
def test_the_narrow_run_only_while_the_lowest_membrane_fits(over):
    # Eight steps of -4096 - over with no spike and no leak reach 8 * (-4096 - over): -32768 fits
    # int16, -32776 does not and would wrap; holds_the_run tells which.
    layer = narrow_layer("none", "zero", 0, False, 100)
    drive = np.full((8, 2, 3), -4096 - over)
    assert holds_the_run(layer, 8, -4096 - over, -4096 - over, np.int16) == (over == 0)
    both_runs(layer, drive)
    _, v, _, _ = run_drive(layer, drive.astype(np.int16), False, prepared(layer).rails(8))
    assert (v == 8 * (-4096 - over)).all()


@pytest.mark.parametrize("over", [0, 1])
def test_the_narrow_run_only_while_the_highest_membrane_fits(over):
    # A membrane held at theta = 16383 without a spike, then 16384 + over more: 32767 fits int16,
    # 32768 does not and would wrap to -32768 (and not fire).
    layer = narrow_layer("none", "zero", 0, False, 16383)
    drive = np.array([16383, 16384 + over])[:, None, None] * np.ones((1, 2, 3), np.int64)
    assert holds_the_run(layer, 2, 16383, 16384 + over, np.int16) == (over == 0)
    both_runs(layer, drive)
    spikes, v, _, _ = run_drive(layer, drive.astype(np.int16), False, prepared(layer).rails(2))
    assert spikes[1].all() and not spikes[0].any() and (v == 0).all()


def test_membrane_extent_follows_resets_and_refractory():
    layer = narrow_layer("none", "subtract", 0, False, 10, membrane_bits=16)
    # Peaks 15, then max(theta, 15 - 10) + 15 = 25, then (25 - 10) + 15 = 30; the lowest 3 * -2.
    assert membrane_extent(layer, 3, -2, 15) == (-6, 30)
    zero = narrow_layer("none", "zero", 2, False, 10, membrane_bits=16)
    assert membrane_extent(zero, 3, 0, 15) == (0, 25)  # refractory keeps the previous bound
    readout = narrow_layer("none", "zero", 0, True, 0, membrane_bits=16)
    assert membrane_extent(readout, 4, -1, 5) == (-4, 20)
    assert membrane_extent(readout, 4, -1, 5, cap=9) == (-4, 10)  # stops once past the cap
