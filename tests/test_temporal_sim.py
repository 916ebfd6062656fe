"""Verilator regression of temporal layers (synaptic current, recurrence) against the model.

Each configuration's NetworkCore Verilog runs random samples plus an all-silent and an all-active
one; every layer's spikes at every step, the final membranes and counts and the exact cycle count
must equal model.simulate's and the twin's (model.core.NetworkCore, whose cycle count
tests/test_temporal_core.py checks against the documented formula). The slow test runs
bench/temporal_digits.py's demo network over the whole digits test split.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from spikegate.model.random import random_network, random_spikes
from spikegate.model.temporal import random_temporal
from spikegate.sim.core import CoreSim

# name -> (seed, sizes, lanes, random_network keyword arguments, temporal parts per layer)
CONFIGS = {
    "cuba-recurrent-4-lanes": (1, (6, 9, 5), 4, dict(timesteps=8, readout=False),
                               [("current", "recurrent"), ("current", "recurrent")]),
    "recurrent-refractory-1-lane": (2, (5, 7, 3), 1, dict(timesteps=9, refractory=2, reset="subtract",
                                                          readout=False), [("recurrent",), ("recurrent",)]),
    "cuba-readout-mixed-lanes": (3, (10, 12, 4), [8, 2], dict(timesteps=7, leak="shift", readout=True),
                                 [("recurrent", "current"), ("current",)]),
    "narrow-saturating-cuba": (4, (7, 9, 4), 2, dict(timesteps=8, weight_bits=3, membrane_bits=4, density=1.0,
                                                     readout=False), [("current", "recurrent"), ("current",)]),
}


def config_network(name):
    seed, sizes, lanes, kw, parts = CONFIGS[name]
    net = random_network(seed, sizes, **kw)
    rng = np.random.default_rng(seed)
    return net.replace(layers=[random_temporal(rng, lyr, parts=p) for lyr, p in zip(net.layers, parts)]), lanes


@pytest.mark.parametrize("name", list(CONFIGS))
def test_temporal_configuration_verilator(name):
    net, lanes = config_network(name)
    check_verilator(net, lanes, CONFIGS[name][0])


def check_verilator(net, lanes, seed, repeat_first=False):
    """Four random samples, an all-silent and an all-active one (then the first again), back to back."""
    s = random_spikes(seed + 1000, 4, net.timesteps, net.n_inputs)
    silent = np.zeros((1, net.timesteps, net.n_inputs), bool)
    spikes = np.concatenate([s, silent, ~silent] + ([s[:1]] if repeat_first else []))
    hw, exp, mismatches = CoreSim(net, lanes=lanes, simulator="verilator").check(spikes)
    assert not mismatches, "\n".join(str(m) for m in mismatches[:10])
    assert hw.samples_done == len(spikes)
    np.testing.assert_array_equal(hw.cycles, exp.cycles)
    # The configuration exercises what it is named for: spikes that reach the layers.
    assert sum(int(x.sum()) for x in exp.spikes) > 0


def test_configurations_cover_the_features():
    nets = [config_network(name)[0] for name in CONFIGS]
    layers = [lyr for net in nets for lyr in net.layers]
    assert any(lyr.temporal.current is not None and lyr.readout for lyr in layers)
    assert any(lyr.temporal.recurrent is not None and lyr.refractory for lyr in layers)
    assert {lyr.temporal.current.kind for lyr in layers if lyr.temporal.current is not None} >= {"shift", "multiply"}


# The demo network as bench/temporal_digits.py trained it (seed 0, 8 bits): 8-128-10, RLeaky hidden,
# CUBA readout; checked in so that the whole-split regression needs no snnTorch training.
DEMO = Path(__file__).resolve().parent / "data" / "temporal-digits-w8.json"


@pytest.mark.slow
def test_demo_network_whole_test_split_verilator():
    from spikegate import datasets
    from spikegate.model.network import Network
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
    from temporal_digits import row_spikes
    net = Network.load(DEMO)
    x, _ = datasets.load("digits", "test")
    spikes = row_spikes(x, net.timesteps // 8)
    hw, exp, mismatches = CoreSim(net, lanes=4, simulator="verilator").check(spikes)
    assert not mismatches, "\n".join(str(m) for m in mismatches[:10])
    assert hw.samples_done == len(spikes)
    np.testing.assert_array_equal(hw.cycles, exp.cycles)
