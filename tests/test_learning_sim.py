"""The learning gateware in Verilator: the digits learning layer of `spikegate learn` (64 inputs,
100 neurons, 4 lanes; STDP, winner-take-all, adaptive thresholds) trains on the first N samples; every sample's cycle count equals the
twin's and the documented formula, and the weights read back through the param port afterwards
equal the model's (model.learning.Learner) bit for bit. Also with the weights in SPRAM (the
SB_SPRAM256KA cycle model, loaded through cfg first), whose single port stage 5 shares."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import cycle_formula, reward_formula
from spikegate import datasets
from spikegate.learn_run import LearnConfig, initial_network
from spikegate.learn_run import _reward as command_reward
from spikegate.model.core import NetworkCore, weight_cfg_words
from spikegate.model.encode import encode
from spikegate.model.hardware import HardwareConfig
from spikegate.model.learning import Learner, learn_stream
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


def digits_rstdp(n_samples):
    """The `spikegate learn --data digits --rule rstdp` layer (seed 0) and the first training samples
    with the command's rewards: each sample run with learning off in the model decides its reward
    (+8 when the most active neuron's class so far is the label, -1 otherwise, 0 without a spike)."""
    x, y = datasets.load("digits", "train")
    net = initial_network(LearnConfig(rule="rstdp"), x)
    spikes = encode(x[:n_samples], net.encoding, net.timesteps)
    learner, wins, rewards = Learner(net), np.zeros((net.layers[0].n, datasets.N_CLASSES), np.int64), []
    for s, label in zip(spikes, y[:n_samples]):
        rewards.append(command_reward(learner.run(s, learn=False)[0].sum(axis=0), int(label), wins))
        learner.run(s, learn=True, rewards=[rewards[-1]] * len(s))
    return net, spikes, np.array(rewards)


@pytest.mark.parametrize("n, schedule", [
    pytest.param(6, "step", id="step-rewards-6-samples"),
    pytest.param(4, "sample", id="sample-rewards-4-samples"),
    pytest.param(100, "step", id="step-rewards-100-samples", marks=pytest.mark.slow),
    pytest.param(100, "sample", id="sample-rewards-100-samples", marks=pytest.mark.slow),
])
def test_digits_rstdp_in_verilator(n, schedule):
    """rstdp: the command's rewards at every step of each sample ("step"), or the same rewards once
    after each sample ("sample", through the reward stream). Every weight, trace, offset and
    eligibility read back equals the model's, every cycle count the twin's and the formula's."""
    net, spikes, rewards = digits_rstdp(n)
    zero = np.zeros(n, np.int64)
    step, sample = (rewards, zero) if schedule == "step" else (zero, rewards)
    hw = learn_in_simulator(net, spikes, [True] * n, step_rewards=step, sample_rewards=sample, lanes=LANES)
    learner = Learner(net)
    for s, r, rs in zip(spikes, step, sample):
        learner.run(s, learn=True, rewards=[int(r)] * len(s))
        learner.reward(int(rs))
    st = learner.state[0]
    assert not np.array_equal(st.weights, net.layers[0].weights) and st.elig.any()
    np.testing.assert_array_equal(hw.weights[0], st.weights)
    got = hw.state[0]
    np.testing.assert_array_equal(got["elig"], st.elig)
    np.testing.assert_array_equal(got["pre"], st.pre)
    np.testing.assert_array_equal(got["post"], st.post)
    np.testing.assert_array_equal(got["offsets"], st.offsets)
    twin = NetworkCore(net, HardwareConfig(lanes=LANES))
    want, want_reward = [], []
    for s, r, rs in zip(spikes, step, sample):
        want.append(twin.run(s, learn=True, reward=int(r)).cycles)
        want_reward.append(twin.reward(int(rs)))
    np.testing.assert_array_equal(hw.cycles, want)
    np.testing.assert_array_equal(hw.cycles, cycle_formula(net, LANES, spikes, learn=True, rewards=step,
                                                           sample_rewards=sample))
    np.testing.assert_array_equal(hw.reward_cycles, want_reward)
    np.testing.assert_array_equal(hw.reward_cycles, [reward_formula(net, LANES, rs) for rs in sample])
