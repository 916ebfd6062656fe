"""Longer simulation regressions (``-m slow``; not run in CI): the whole digits test split on Icarus,
an MNIST-sized network, 64 lanes, and a wider sweep of fully random networks on Verilator."""
from __future__ import annotations

import numpy as np
import pytest

from spikegate import datasets
from spikegate.model.random import random_network, random_spikes
from spikegate.sim.core import CoreSim

from test_sim_core import assert_bit_exact

pytestmark = pytest.mark.slow


def test_default_digits_network_whole_test_split_icarus():
    from spikegate.rtl import simulate_dataset
    net = datasets.load_network(None)
    r = simulate_dataset(net, None, data="digits", split="test", simulator="icarus").to_dict()
    assert r["bit_exact"] == r["samples"] == 445, r["first_mismatch"]
    assert r["accuracy"] == r["model_accuracy"]


def test_mnist_sized_network_verilator():
    net = random_network(784, (784, 128, 10), timesteps=16, weight_bits=8, membrane_bits=16, readout=False,
                         density=0.5)
    spikes = random_spikes(785, 4, net.timesteps, net.n_inputs, p=0.1)
    hw, exp, mismatches = CoreSim(net, lanes=8, simulator="verilator").check(spikes)
    assert_bit_exact(hw, exp, mismatches)


def test_mnist_sized_network_verilator_registered_reads_32_lanes():
    # The ULX3S bench's build of 784-128-10: lanes (32, 4), every block RAM read registered, the
    # spike-word queue handing each word's lead over from registers.
    from conftest import cycle_formula
    net = random_network(784, (784, 128, 10), timesteps=16, weight_bits=8, membrane_bits=16, readout=False,
                         density=0.5)
    spikes = random_spikes(786, 4, net.timesteps, net.n_inputs, p=0.1)
    hw, exp, mismatches = CoreSim(net, lanes=[32, 4], simulator="verilator", registered_reads=True).check(spikes)
    assert_bit_exact(hw, exp, mismatches)
    np.testing.assert_array_equal(hw.cycles, cycle_formula(net, [32, 4], spikes, registered_reads=True))


def test_sixty_four_lanes_verilator():
    net = random_network(64, (20, 70, 9), readout=True)
    spikes = random_spikes(65, 6, net.timesteps, net.n_inputs)
    hw, exp, mismatches = CoreSim(net, lanes=64, simulator="verilator").check(spikes)
    assert_bit_exact(hw, exp, mismatches)


@pytest.mark.parametrize("seed", range(1000, 1030))
def test_random_sweep_verilator(seed):
    net = random_network(seed)
    lanes = [1, 2, 4, 8, 16][seed % 5]
    spikes = np.concatenate([random_spikes(seed, 8, net.timesteps, net.n_inputs),
                             np.ones((1, net.timesteps, net.n_inputs), bool)])
    hw, exp, mismatches = CoreSim(net, lanes=lanes, simulator="verilator").check(spikes)
    assert_bit_exact(hw, exp, mismatches)


def test_verilator_waves_of_a_chosen_sample(tmp_path, capsys):
    import json
    from spikegate import cli
    out = tmp_path / "sample1.vcd"
    status = cli.main(["sim", "--samples", "2", "--waves", str(out), "--waves-sample", "1", "--json"])
    r = json.loads(capsys.readouterr().out)
    assert status == 0 and r["waves"] == str(out) and r["waves_sample"] == 1
    head = out.read_text(errors="replace")[:4000]
    assert "$timescale" in head and "load__valid" in out.read_text(errors="replace")
