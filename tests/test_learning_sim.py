"""The learning gateware in Verilator: the digits learning layer of `spikegate learn` (64 inputs,
100 neurons, 4 lanes; STDP, winner-take-all, adaptive thresholds) trains on the first N samples; every sample's cycle count equals the
twin's and the documented formula, and the weights read back through the param port afterwards
equal the model's (model.learning.Learner) bit for bit. Also with the weights in SPRAM (the
SB_SPRAM256KA cycle model, loaded through cfg first), whose single port stage 5 shares."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import cycle_formula
from spikegate import datasets
from spikegate.learn_run import LearnConfig, initial_network
from spikegate.model.core import NetworkCore, weight_cfg_words
from spikegate.model.encode import encode
from spikegate.model.hardware import HardwareConfig
from spikegate.model.learning import learn_stream
from spikegate.sim.learn import learn_in_simulator

LANES = 4


def digits_stdp(n_samples, variant="learn"):
    """The `spikegate learn --data digits` layer (100 neurons, seed 0) and the first training
    samples, rate-encoded. ``variant`` "learn": its rule exactly (STDP towards ((P >>> 4) - 6) * 8,
    winner-take-all of one with reset, adaptive thresholds); "dense": with depression (a_minus = 1)
    and without winner-take-all, so most neurons fire and both weight passes run every step."""
    x, _ = datasets.load("digits", "train")
    net = initial_network(LearnConfig(), x)
    layer = net.layers[0]
    if variant == "dense":
        rule = layer.plasticity.replace(wta=0, inhibition="none", a_minus=1)
        net = net.replace(layers=[layer.replace(plasticity=rule)])
    return net, encode(x[:n_samples], net.encoding, net.timesteps)


@pytest.mark.parametrize("n, variant, ram, lanes", [
    pytest.param(24, "dense", "block", LANES, id="dense-24-samples"),
    pytest.param(100, "learn", "block", LANES, id="learn-100-samples"),
    pytest.param(100, "dense", "block", LANES, id="dense-100-samples", marks=pytest.mark.slow),
    # SPRAM weights (the SB_SPRAM256KA cycle model, loaded through cfg): stage 5 issues every
    # other cycle and its write goes a cycle later; 2 lanes as on the iCEBreaker
    pytest.param(24, "dense", "spram", 2, id="dense-24-samples-spram"),
    pytest.param(100, "learn", "spram", 2, id="learn-100-samples-spram", marks=pytest.mark.slow),
])
def test_digits_learning_in_verilator(n, variant, ram, lanes):
    net, spikes = digits_stdp(n, variant)
    # learn every sample, then two more with learning off (inference only: the weights stay)
    stream = np.concatenate([spikes, spikes[:2]])
    flags = [True] * n + [False, False]
    hw = learn_in_simulator(net, stream, flags, lanes=lanes, weight_ram=ram)
    model = learn_stream(net, spikes).state[0].weights
    assert not np.array_equal(model, net.layers[0].weights)
    np.testing.assert_array_equal(hw.weights[0], model)
    twin = NetworkCore(net, HardwareConfig(lanes=lanes, weight_ram=ram))
    for w in weight_cfg_words(net, [0] if ram == "spram" else []):
        assert twin.cfg(*w)
    want = [twin.run(s, learn=f).cycles for s, f in zip(stream, flags)]
    np.testing.assert_array_equal(hw.cycles, want)
    np.testing.assert_array_equal(hw.cycles[:n], cycle_formula(net, lanes, spikes, learn=True, weight_ram=ram))
    learned = net.replace(layers=[net.layers[0].replace(weights=model)])
    np.testing.assert_array_equal(hw.cycles[n:], cycle_formula(learned, lanes, spikes[:2]))
