"""Verilator regression of delayed layers (hdl/delay.py) against the model.

Each configuration's NetworkCore Verilog runs random samples plus an all-silent and an all-active
one, back to back; every layer's spikes at every step, the final membranes and counts and the exact
cycle count must equal model.simulate's and the twin's (model.core.NetworkCore, whose cycle count
tests/test_delay_core.py checks against the documented formula). The slow test runs
bench/delayed_digits.py's demo network over the whole digits test split.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from spikegate.model.random import random_network
from spikegate.model.temporal import random_temporal
from spikegate.sim.core import CoreSim
from test_temporal_sim import check_verilator

# name -> (seed, sizes, lanes, random_network keyword arguments, max delay, temporal parts per layer)
CONFIGS = {
    "delays-cuba-recurrent-1-lane": (12, (5, 7, 3), 1, dict(timesteps=10, refractory=2, reset="subtract",
                                                            readout=False), 3,
                                     [("delays", "recurrent"), ("delays", "current")]),
    "delays-readout-mixed-lanes": (15, (10, 12, 4), [8, 2], dict(timesteps=8, leak="shift", readout=True), 6,
                                   [("delays",), ("delays", "current")]),
    "delays-single-group": (14, (7, 4, 3), [4, 4], dict(timesteps=8, readout=False), 2,
                            [("delays",), ("delays", "current")]),
}


def config_network(name):
    seed, sizes, lanes, kw, max_delay, parts = CONFIGS[name]
    net = random_network(seed, sizes, **kw)
    rng = np.random.default_rng(seed)
    return net.replace(layers=[random_temporal(rng, lyr, parts=p, max_delay=max_delay)
                               for lyr, p in zip(net.layers, parts)]), lanes


@pytest.mark.parametrize("name", list(CONFIGS))
def test_delayed_configuration_verilator(name):
    net, lanes = config_network(name)
    check_verilator(net, lanes, CONFIGS[name][0], repeat_first=True)


def test_configurations_cover_the_features():
    nets = [config_network(name)[0] for name in CONFIGS]
    layers = [lyr for net in nets for lyr in net.layers]
    assert all(lyr.temporal.max_delay > 0 for lyr in layers)
    assert any(lyr.temporal.recurrent is not None for lyr in layers)
    assert any(lyr.temporal.current is not None and lyr.readout for lyr in layers)


# The delayed demo network as bench/delayed_digits.py trained it (seed 0, 8 bits, delays 0..4):
# 8-128-10, delayed Leaky hidden layer, CUBA output; checked in so the regression needs no training.
DEMO = Path(__file__).resolve().parent / "data" / "delayed-digits-w8.json"


@pytest.mark.slow
def test_delayed_demo_whole_test_split_verilator():
    from spikegate import datasets
    from spikegate.model.network import Network
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
    from temporal_digits import row_spikes
    net = Network.load(DEMO)
    assert net.layers[0].temporal.max_delay == 4
    x, _ = datasets.load("digits", "test")
    spikes = row_spikes(x, net.timesteps // 8)
    hw, exp, mismatches = CoreSim(net, lanes=2, simulator="verilator").check(spikes)
    assert not mismatches, "\n".join(str(m) for m in mismatches[:10])
    assert hw.samples_done == len(spikes) == 445
    np.testing.assert_array_equal(hw.cycles, exp.cycles)
