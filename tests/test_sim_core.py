"""Regression of the generated NetworkCore Verilog against the bit-exact model, in real simulators.

Every configuration is generated, exported, compiled by Verilator (builds are cached by content) and
run on several samples in one simulator launch; every layer's spikes at every step, the output
layer's final membranes and spike counts and the exact cycle count must equal the model's
(``model.simulate`` and the twin ``model.core.NetworkCore``). A smaller set runs on Icarus.
"""
from __future__ import annotations

import numpy as np
import pytest

from conftest import cycle_formula
from spikegate import datasets
from spikegate.model.hardware import SCHEDULES
from spikegate.model.random import random_network, random_spikes
from spikegate.sim.core import CoreSim, Mismatch, compare, expected_results

# name -> (seed, sizes or None for random, lanes, random_network keyword arguments)
CONFIGS = {
    "single-synapse": (1, (1, 1), 1, dict(timesteps=5, readout=False)),
    "one-input": (2, (1, 7), 4, dict(timesteps=9, readout=False)),
    "one-neuron": (3, (9, 1), 2, dict(timesteps=7, readout=False)),
    "shift-leak-zero-reset": (4, (12, 10), 4, dict(leak="shift", reset="zero", readout=False)),
    "shift-leak-subtract-reset": (5, (12, 10), 2, dict(leak="shift", reset="subtract", readout=False)),
    "multiply-leak-zero-reset": (6, (16, 13), 8, dict(leak="multiply", reset="zero", readout=False)),
    "multiply-leak-subtract-refractory": (7, (10, 9, 5), 4, dict(leak="multiply", reset="subtract",
                                                                  refractory=3, readout=False)),
    "no-leak-refractory-7": (8, (8, 20), 16, dict(leak="none", refractory=7, readout=False)),
    "refractory-1": (9, (11, 9), 4, dict(refractory=1, reset="subtract", readout=False)),
    "readout-shift": (10, (12, 8, 4), 4, dict(leak="shift", readout=True)),
    "readout-multiply": (11, (6, 10), 1, dict(leak="multiply", readout=True)),
    "readout-per-layer-lanes": (12, (20, 6, 3), [2, 1], dict(leak="none", readout=True)),
    "narrow-saturating": (13, (14, 11), 4, dict(weight_bits=2, membrane_bits=4, readout=False)),
    "equal-weight-membrane-bits": (14, (10, 12), 2, dict(weight_bits=8, membrane_bits=8, readout=False)),
    "wide-16-32": (15, (10, 6, 4), 2, dict(weight_bits=16, membrane_bits=32)),
    "sparse-weights": (16, (24, 17), 8, dict(density=0.1, readout=False)),
    "dense-weights": (17, (24, 17), 4, dict(density=1.0, readout=False)),
    "three-layers-mixed-lanes": (18, (16, 12, 9, 5), [4, 2, 8], dict(readout=False)),
    "lanes-32": (19, (12, 40), 32, dict(readout=False)),
    "long-run": (20, (8, 6), 2, dict(timesteps=40, readout=False)),
    "random-a": (101, None, 4, {}),
    "random-b": (202, None, 1, {}),
    "random-c": (303, None, 8, {}),
}
SAMPLES_PER_CONFIG = 6


def config_network(name):
    seed, sizes, lanes, kw = CONFIGS[name]
    return random_network(seed, sizes, **kw), lanes


def config_spikes(name, net, n=SAMPLES_PER_CONFIG):
    """Random samples at the config's own rate plus an all-silent and an all-active sample."""
    seed = CONFIGS[name][0]
    s = random_spikes(seed + 1000, n - 2, net.timesteps, net.n_inputs)
    silent = np.zeros((1, net.timesteps, net.n_inputs), bool)
    return np.concatenate([s, silent, ~silent])


def assert_bit_exact(hw, exp, mismatches):
    assert not mismatches, (f"{len(mismatches)} differences; first: {mismatches[0]}\n"
                            + "\n".join(str(m) for m in mismatches[1:10]))
    assert hw.samples_done == len(exp.cycles)
    np.testing.assert_array_equal(hw.cycles, exp.cycles)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_random_configuration_verilator(name):
    net, lanes = config_network(name)
    spikes = config_spikes(name, net)
    sim = CoreSim(net, lanes=lanes, simulator="verilator")
    hw, exp, mismatches = sim.check(spikes)
    assert_bit_exact(hw, exp, mismatches)


@pytest.mark.parametrize("name", ["three-layers-mixed-lanes", "random-a"])
def test_random_configuration_verilator_sequential_schedule(name):
    """The old schedule (layers one after the other) stays selectable and exact."""
    net, lanes = config_network(name)
    hw, exp, mismatches = CoreSim(net, lanes=lanes, simulator="verilator", schedule="sequential").check(
        config_spikes(name, net))
    assert_bit_exact(hw, exp, mismatches)
    np.testing.assert_array_equal(hw.cycles, cycle_formula(net, lanes, config_spikes(name, net), schedule="sequential"))


# G = 1 and 2 (the accumulator forwarding), ragged groups, per-layer lanes, refractory counters,
# readout counts, three layers: HardwareConfig.registered_reads, a register behind every read.
REGISTERED_CONFIGS = ["single-synapse", "one-neuron", "one-input", "multiply-leak-subtract-refractory",
                      "readout-per-layer-lanes", "three-layers-mixed-lanes", "random-a"]


@pytest.mark.parametrize("name", REGISTERED_CONFIGS)
def test_random_configuration_verilator_registered_reads(name):
    net, lanes = config_network(name)
    spikes = config_spikes(name, net)
    hw, exp, mismatches = CoreSim(net, lanes=lanes, simulator="verilator", registered_reads=True).check(spikes)
    assert_bit_exact(hw, exp, mismatches)
    lanes_l = lanes if isinstance(lanes, list) else [lanes] * len(net.layers)
    np.testing.assert_array_equal(hw.cycles, cycle_formula(net, lanes_l, spikes, registered_reads=True))


@pytest.mark.slow
@pytest.mark.parametrize("schedule", SCHEDULES)
def test_default_digits_network_whole_test_split_verilator_registered_reads(schedule):
    net = datasets.load_network(None)
    x, _ = datasets.load("digits", "test")
    spikes = datasets.encode_for(net, x)
    hw, exp, mismatches = CoreSim(net, lanes=4, simulator="verilator", schedule=schedule,
                                  registered_reads=True).check(spikes)
    assert_bit_exact(hw, exp, mismatches)
    np.testing.assert_array_equal(hw.cycles, cycle_formula(net, 4, spikes, schedule=schedule, registered_reads=True))


@pytest.mark.slow
@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize("lanes", [1, 2, 4])
def test_default_digits_network_verilator_both_schedules(lanes, schedule):
    net = datasets.load_network(None)
    x, _ = datasets.load("digits", "test")
    spikes = datasets.encode_for(net, x[:40])
    hw, exp, mismatches = CoreSim(net, lanes=lanes, simulator="verilator", schedule=schedule).check(spikes)
    assert_bit_exact(hw, exp, mismatches)
    np.testing.assert_array_equal(hw.cycles, cycle_formula(net, lanes, spikes, schedule=schedule))


def test_configurations_cover_the_contract():
    """The table above really spans leak forms, reset modes, refractory, readout, lanes, widths."""
    nets = {name: config_network(name) for name in CONFIGS}
    layers = [(layer, lanes) for net, lanes in nets.values() for layer in net.layers]
    assert {layer.leak.kind for layer, _ in layers} == {"none", "shift", "multiply"}
    hidden = [layer for layer, _ in layers if not layer.readout]
    assert {layer.reset for layer in hidden} == {"zero", "subtract"}
    assert {layer.refractory for layer in hidden} >= {0, 1, 3, 7}
    assert any(net.readout for net, _ in nets.values()) and any(not net.readout for net, _ in nets.values())
    all_lanes = set()
    for _, lanes in nets.values():
        all_lanes |= set(lanes) if isinstance(lanes, list) else {lanes}
    assert all_lanes >= {1, 2, 4, 8, 16, 32}
    assert any(layer.n % (lanes if isinstance(lanes, int) else 1) for layer, lanes in layers)
    assert {layer.weight_bits for layer, _ in layers} >= {2, 8, 16}
    assert max(len(net.layers) for net, _ in nets.values()) >= 3
    assert len(CONFIGS) >= 20


@pytest.fixture(scope="module")
def small_run():
    """One real run whose model expectation the injection tests corrupt."""
    net, lanes = config_network("shift-leak-subtract-reset")
    spikes = config_spikes("shift-leak-subtract-reset", net)
    sim = CoreSim(net, lanes=lanes, simulator="verilator")
    hw, exp, mismatches = sim.check(spikes)
    assert_bit_exact(hw, exp, mismatches)
    return sim, spikes, hw, exp


def test_one_flipped_spike_in_the_expectation_is_caught_exactly(small_run):
    sim, spikes, hw, exp = small_run
    rng = np.random.default_rng(7)
    for _ in range(5):
        bad = exp.copy()
        layer = int(rng.integers(len(bad.spikes)))
        s, t, j = (int(rng.integers(k)) for k in bad.spikes[layer].shape)
        bad.spikes[layer][s, t, j] ^= True
        found = compare(bad, hw)
        assert found == [Mismatch(s, "spike", int(bad.spikes[layer][s, t, j]), int(hw.spikes[layer][s, t, j]),
                                  step=t, layer=layer, neuron=j)]
        assert str(found[0]) == (f"sample {s}, step {t}, layer {layer}, neuron {j}: spike expected "
                                 f"{int(bad.spikes[layer][s, t, j])}, got {int(hw.spikes[layer][s, t, j])}")


def test_one_flipped_membrane_bit_in_the_expectation_is_caught_exactly(small_run):
    sim, spikes, hw, exp = small_run
    bad = exp.copy()
    s, j, bit = 3, bad.membranes.shape[1] - 1, 0
    bad.membranes[s, j] ^= 1 << bit
    found = compare(bad, hw)
    L = len(exp.spikes) - 1
    assert found == [Mismatch(s, "membrane", int(bad.membranes[s, j]), int(hw.membranes[s, j]), layer=L, neuron=j)]


def test_one_flipped_cycle_bit_and_count_are_caught_exactly(small_run):
    sim, spikes, hw, exp = small_run
    bad = exp.copy()
    bad.cycles[1] ^= 1 << 4
    assert compare(bad, hw) == [Mismatch(1, "cycles", int(bad.cycles[1]), int(hw.cycles[1]))]
    bad = exp.copy()
    bad.counts[2, 0] += 1
    L = len(exp.spikes) - 1
    assert compare(bad, hw) == [Mismatch(2, "count", int(bad.counts[2, 0]), int(hw.counts[2, 0]), layer=L,
                                         neuron=0)]


def test_the_suite_fails_a_run_against_a_corrupted_expectation(small_run):
    """End to end: a fresh simulator run checked against a one-bit-corrupted model answer."""
    sim, spikes, hw, exp = small_run
    bad = exp.copy()
    bad.spikes[0][4, 2, 3] ^= True
    _, _, found = sim.check(spikes, expected=bad)
    assert [(m.sample, m.kind, m.step, m.layer, m.neuron) for m in found] == [(4, "spike", 2, 0, 3)]
    with pytest.raises(AssertionError, match=r"first: sample 4, step 2, layer 0, neuron 3: spike expected"):
        assert_bit_exact(hw, bad, found)


def test_default_digits_network_whole_test_split_verilator():
    from spikegate.model_eval import evaluate_on_data
    from spikegate.rtl import simulate_dataset
    net = datasets.load_network(None)
    r = simulate_dataset(net, None, data="digits", split="test", simulator="verilator").to_dict()
    n = len(datasets.load("digits", "test")[1])
    assert r["samples"] == n
    assert r["bit_exact"] == n, r["first_mismatch"]
    model = evaluate_on_data(net, None, "digits", "test").to_dict()
    assert r["accuracy"] == r["model_accuracy"] == model["snn"]["accuracy"]
    assert r["accuracy"] > 0.9


ICARUS_CONFIGS = ["single-synapse", "multiply-leak-subtract-refractory", "readout-per-layer-lanes",
                  "narrow-saturating", "random-a"]


@pytest.mark.parametrize("name", ICARUS_CONFIGS)
def test_random_configuration_icarus(name):
    net, lanes = config_network(name)
    spikes = config_spikes(name, net, n=4)
    hw, exp, mismatches = CoreSim(net, lanes=lanes, simulator="icarus").check(spikes)
    assert_bit_exact(hw, exp, mismatches)


def test_default_digits_network_icarus():
    net = datasets.load_network(None)
    x, _ = datasets.load("digits", "test")
    spikes = datasets.encode_for(net, x[:12])
    hw, exp, mismatches = CoreSim(net, lanes=4, simulator="icarus").check(spikes)
    assert_bit_exact(hw, exp, mismatches)


def test_spikes_that_do_not_fit_the_core_are_refused():
    net, lanes = config_network("one-neuron")
    sim = CoreSim(net, lanes=lanes, simulator="verilator")
    with pytest.raises(ValueError, match=r"T = 8 steps but this core was generated for at most timesteps = 7"):
        sim.run(np.zeros((1, 8, net.n_inputs), bool))
    with pytest.raises(ValueError, match=r"shape \[N, T, 9\]"):
        sim.run(np.zeros((1, 7, 3), bool))


def test_amaranth_simulator_same_protocol():
    """The benchmark's baseline path (Amaranth's simulator, same port protocol and decoding)."""
    from spikegate.sim.pysim import run_amaranth
    net, lanes = config_network("readout-per-layer-lanes")
    spikes = config_spikes("readout-per-layer-lanes", net)
    sim = CoreSim(net, lanes=lanes, build=False)
    hw = run_amaranth(sim, spikes)
    exp = expected_results(net, spikes, sim.hw)
    assert_bit_exact(hw, exp, compare(exp, hw))
    np.testing.assert_array_equal(hw.measured_cycles, exp.cycles)


def test_rtl_built_from_a_one_lsb_different_weight_is_caught():
    """A real RTL/model disagreement: the core is generated with W[0, 3] one LSB higher than the
    network the model runs. Without leak or saturation the readout membrane of neuron 3 must then
    differ by exactly the number of times input 0 spiked, and nothing else may differ."""
    from dataclasses import replace
    net = random_network(31, (6, 10), readout=True, leak="none", weight_bits=8, membrane_bits=24, timesteps=5)
    w = net.layers[0].weights.copy()
    w[0, 3] = w[0, 3] + 1 if w[0, 3] < 127 else w[0, 3] - 1
    hw_net = replace(net, layers=[replace(net.layers[0], weights=w)])
    spikes = random_spikes(32, 4, net.timesteps, net.n_inputs, p=0.5)
    spikes[:, 0, 0] = True
    sim = CoreSim(hw_net, lanes=4, simulator="verilator")
    _, exp, found = sim.check(spikes, expected=expected_results(net, spikes, sim.hw))
    delta = int(w[0, 3] - net.layers[0].weights[0, 3])
    fired = spikes[:, :, 0].sum(axis=1)
    assert found == [Mismatch(s, "membrane", int(exp.membranes[s, 3]), int(exp.membranes[s, 3] + delta * fired[s]),
                              layer=0, neuron=3) for s in range(len(spikes))]
