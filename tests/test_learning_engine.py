"""The learning gateware's twin (model.learning_engine, through model.core.NetworkCore.run(learn=True))
against the model's learning rule (model.learning.Learner) and the documented cycle formula; which
plastic layers HardwareConfig.geometry accepts."""
from __future__ import annotations

import copy

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from conftest import cycle_formula, reward_formula
from spikegate.model.core import NetworkCore, batch_cycles
from spikegate.model.hardware import HardwareConfig
from spikegate.model.learning import Learner
from spikegate.model.plasticity import Plasticity
from spikegate.model.random import random_network, random_spikes
from spikegate.model.simulate import simulate


@st.composite
def stdp_for(draw, layer, rewards=True):
    """Pair STDP the gateware builds (reward-modulated or not; plain only without ``rewards``), with
    bounds that hold the layer's weights."""
    tb = draw(st.integers(1, 8))
    lo, hi = -(1 << (layer.weight_bits - 1)), (1 << (layer.weight_bits - 1)) - 1
    wmin, wmax = int(layer.weights.min()), int(layer.weights.max())
    return Plasticity(trace_bits=tb, pre_decay=draw(st.integers(1, 4)), post_decay=draw(st.integers(1, 4)),
                      pre_inc=draw(st.integers(1, (1 << tb) - 1)), post_inc=draw(st.integers(1, (1 << tb) - 1)),
                      a_plus=draw(st.sampled_from([0, 1, 3, 200])), a_minus=draw(st.sampled_from([0, 1, 2, 77])),
                      rate_shift=draw(st.integers(0, 5)), ltp_offset=draw(st.integers(0, 3)),
                      weight_decay=draw(st.integers(0, 3)),
                      w_min=draw(st.sampled_from([None, lo, wmin])), w_max=draw(st.sampled_from([None, hi, wmax])),
                      **(draw(adaptive(layer)) if not layer.readout else {}),
                      **(draw(competition(layer)) if not layer.readout and not layer.refractory else {}),
                      **(draw(reward_modulated()) if rewards else {}))


@st.composite
def reward_modulated(draw):
    """Reward-modulated STDP with a narrow or wide eligibility, or plain STDP."""
    if not draw(st.booleans()):
        return {}
    return dict(rule="rstdp", elig_bits=draw(st.sampled_from([2, 5, 16, 32])), elig_decay=draw(st.integers(1, 5)),
                reward_shift=draw(st.integers(0, 6)))


@st.composite
def competition(draw, layer):
    """Winner-take-all of one to three winners with each inhibition, or none."""
    if not draw(st.booleans()):
        return {}
    inhibition = draw(st.sampled_from(["none", "reset", "reduce"]))
    top = min(40, (1 << (layer.membrane_bits - 1)) - 1)  # inhibit stays inside the membrane range
    return dict(wta=draw(st.integers(1, min(3, layer.n))), inhibition=inhibition,
                inhibit=draw(st.integers(0, top)) if inhibition == "reduce" else 0)


@st.composite
def adaptive(draw, layer):
    """Adaptive thresholds (theta_inc, decay every theta_every steps) and initial offsets, or none."""
    top = (1 << (layer.membrane_bits - 1)) - 2 - layer.threshold
    if top < 0 or not draw(st.booleans()):
        return {}
    offsets = draw(st.none() | st.lists(st.integers(0, top), min_size=layer.n, max_size=layer.n))
    return dict(theta_inc=draw(st.integers(0, max(0, min(top, 40)))), theta_decay=draw(st.integers(0, 3)),
                theta_every=draw(st.integers(1, 3)), offsets=offsets)


@st.composite
def plastic_networks(draw):
    seed = draw(st.integers(0, 2**31))
    sizes = tuple(draw(st.lists(st.integers(1, 9), min_size=2, max_size=4)))
    net = random_network(seed, sizes, timesteps=draw(st.integers(1, 5)),
                         weight_bits=draw(st.integers(2, 8)))
    plastic = draw(st.lists(st.booleans(), min_size=len(net.layers), max_size=len(net.layers)))
    plastic[draw(st.integers(0, len(net.layers) - 1))] = True
    layers = [layer.replace(plasticity=draw(stdp_for(layer))) if on else layer
              for layer, on in zip(net.layers, plastic)]
    lanes = [draw(st.sampled_from([1, 2, 4])) for _ in layers]
    return net.replace(layers=layers), lanes


def _twin_weights(core, l):
    c = core.layers[l]
    return c.synapses.weights.reshape(c.layer.n_in, -1)[:, :c.layer.n]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=plastic_networks(), data=st.data())
def test_twin_learns_as_the_model_after_every_step(case, data):
    """Weights and traces of every plastic layer equal the Learner's after every step of every
    sample (the Learner run on the sample's first t + 1 steps from the same learned state), and
    so do spikes and the cycle count."""
    net, lanes = case
    N = data.draw(st.integers(1, 3))
    samples = random_spikes(data.draw(st.integers(0, 2**31)), N, net.timesteps, net.n_inputs,
                            p=data.draw(st.sampled_from([0.2, 0.6, 1.0])))
    core = NetworkCore(net, HardwareConfig(lanes=lanes))
    learner = Learner(net)
    rewards = st.sampled_from([0, 0, 1, -1, 3, -7, 300, -32768, 32767])
    step_rewards, sample_rewards = [], []
    for k, sample in enumerate(samples):
        # rstdp layers: a reward at every step of the sample (the core's step_reward), then one after it
        step_reward, sample_reward = data.draw(rewards), data.draw(rewards)
        step_rewards.append(step_reward)
        for t in range(len(sample)):
            twin, ref = copy.deepcopy(core), copy.deepcopy(learner)
            got = twin.run(sample[:t + 1], learn=True, reward=step_reward)
            want = ref.run(sample[:t + 1], learn=True, rewards=[step_reward] * (t + 1))
            for l in range(len(net.layers)):
                assert np.array_equal(got.spikes[l], want[l]), (k, t, l)
                if l in ref.state:
                    st_ = ref.state[l]
                    assert np.array_equal(_twin_weights(twin, l), st_.weights), (k, t, l)
                    pre, post = twin.layers[l].learning.traces()
                    assert np.array_equal(pre, st_.pre) and np.array_equal(post, st_.post), (k, t, l)
                    assert np.array_equal(twin.layers[l].learning.neuron_offsets(), st_.offsets), (k, t, l)
                    if st_.elig is not None:
                        assert np.array_equal(twin.layers[l].learning.elig, st_.elig), (k, t, l)
        got = core.run(sample, learn=True, reward=step_reward)
        learner.run(sample, learn=True, rewards=[step_reward] * len(sample))
        assert got.cycles == cycle_formula(net, lanes, samples[:k + 1], learn=True, rewards=step_rewards,
                                           sample_rewards=sample_rewards + [0])[k]
        sample_rewards.append(sample_reward)
        cycles = core.reward(sample_reward)
        learner.reward(sample_reward)
        assert cycles == reward_formula(net, lanes, sample_reward)
        for l, st_ in learner.state.items():
            assert np.array_equal(_twin_weights(core, l), st_.weights), (k, l)


def test_learning_off_is_the_plain_network():
    """A plastic layer with learning off costs and computes what the same layer without plasticity
    does, and its weights stay as they were."""
    net = random_network(7, (12, 9, 5), timesteps=6, readout=False)
    plastic = net.replace(layers=[layer.replace(plasticity=Plasticity(a_minus=2)) for layer in net.layers])
    samples = random_spikes(8, 4, net.timesteps, net.n_inputs, p=0.5)
    a, b = NetworkCore(net, HardwareConfig(lanes=2)), NetworkCore(plastic, HardwareConfig(lanes=2))
    for s in samples:
        ra, rb = a.run(s), b.run(s, learn=False)
        assert ra.mismatch(rb) is None
        assert ra.cycles == rb.cycles == cycle_formula(net, 2, s)
    for l in range(2):
        assert np.array_equal(_twin_weights(b, l), net.layers[l].weights)
    # and learning does change them
    b.run(samples[0], learn=True)
    assert any(not np.array_equal(_twin_weights(b, l), net.layers[l].weights) for l in range(2))


@pytest.mark.parametrize("change, issues", [
    (dict(rule="rstdp"), 0), (dict(wta=1), 1), (dict(wta=2), 2), (dict(wta=3, inhibition="reset"), 2),
])
def test_geometry_builds_rstdp_and_k_winners(change, issues):
    """rstdp and winner-take-all of k >= 1 have gateware; the WTA pass visits every group (G = 2: 4
    neurons at 2 lanes) except with one winner and no inhibition."""
    net = random_network(3, (5, 6, 4), readout=False, refractory=0)
    layers = list(net.layers)
    layers[1] = layers[1].replace(name="out", plasticity=Plasticity(**change))
    geo = HardwareConfig(lanes=2).geometry(net.replace(layers=layers))[1]
    assert geo.learning.wta_issues == issues
    assert geo.learning.elig_bits == (16 if change.get("rule") == "rstdp" else 0)


def test_geometry_refuses_wta_with_a_refractory_period():
    net = random_network(3, (5, 6), readout=False, refractory=2)
    layer = net.layers[0].replace(plasticity=Plasticity(wta=1))
    with pytest.raises(ValueError, match=r"layer 0: plasticity with winner-take-all in a layer with a refractory "
                                         r"period \(refractory = 2\) has no gateware yet"):
        HardwareConfig().geometry(net.replace(layers=[layer]))


def test_geometry_accepts_stdp_in_block_ram_and_spram():
    net = random_network(3, (5, 6, 4), readout=True, weight_bits=8)
    layers = [layer.replace(plasticity=Plasticity(a_minus=1)) for layer in net.layers]
    geos = HardwareConfig().geometry(net.replace(layers=layers))  # a plastic readout too
    assert all(g.learning is not None for g in geos)
    assert geos[0].learning.offset_bits == 0
    adaptive = layers[0].replace(plasticity=Plasticity(theta_inc=3, theta_decay=2, theta_every=4))
    geo = HardwareConfig().geometry(net.replace(layers=[adaptive] + layers[1:]))[0]
    assert geo.learning.offset_bits == (2 ** (layers[0].membrane_bits - 1) - 2 - layers[0].threshold).bit_length()
    assert geo.memory_bits()["offsets"] == geo.groups * geo.lanes * geo.learning.offset_bits
    assert HardwareConfig().geometry(net)[0].learning is None
    spram = HardwareConfig(weight_ram="spram").geometry(net.replace(layers=layers))
    assert [g.weight_ram for g in spram] == ["spram", "spram"] and all(g.learning is not None for g in spram)
    odd = [layer.replace(weight_bits=6, weights=layer.weights // 8) for layer in layers]
    with pytest.raises(ValueError, match=r"layer 0: weight_ram = 'spram' needs weight_bits to be a multiple of 4"):
        HardwareConfig(weight_ram="spram").geometry(net.replace(layers=odd))
    # rstdp's eligibility sweep reads and writes a weight word every cycle: block RAM only
    rstdp = [layers[0].replace(plasticity=Plasticity(rule="rstdp", a_minus=1))] + layers[1:]
    assert HardwareConfig().geometry(net.replace(layers=rstdp))[0].learning.elig_bits
    with pytest.raises(ValueError, match=r"layer 0 \(.*\): weight_ram = 'spram' is not valid for an rstdp layer"):
        HardwareConfig(weight_ram="spram").geometry(net.replace(layers=rstdp))


def test_learning_memory_and_cycle_terms_by_hand():
    """64 inputs, 100 neurons, 4 lanes (G = 25), 8-bit traces: the memories and one step's cycles."""
    net = random_network(1, (64, 100), readout=False, weight_bits=8)
    net = net.replace(layers=[net.layers[0].replace(plasticity=Plasticity(a_minus=1, a_plus=1))])
    geo = HardwareConfig(lanes=4).geometry(net)[0]
    mem = geo.memory_bits()
    assert mem["pre_traces"] == 64 * 9 and mem["post_traces"] == 25 * 4 * 8
    assert mem["learn_events"] == 64 * 6 and mem["learn_words"] == 25 * (5 + 4 + 32)
    # 10 events, 3 spike words: inference 10 * 25 + 25 + 8 = 283; learning 64 + 10 * 26 + 3 * 65 + 3
    assert geo.cycles(10, words=3) == 283
    assert geo.cycles(10, words=3, learn=True) == 283 + 64 + 260 + 195 + 3
    no_dep = HardwareConfig(lanes=4).geometry(net.replace(layers=[net.layers[0].replace(
        plasticity=Plasticity(a_minus=0))]))[0]
    assert no_dep.cycles(10, words=3, learn=True) == 283 + 64 + 20 + 195 + 3
    # rstdp: events only bump (2 each), one gap cycle, the sweep over 64 * 25 words, its 4-cycle drain
    rstdp = HardwareConfig(lanes=4).geometry(net.replace(layers=[net.layers[0].replace(
        plasticity=Plasticity(rule="rstdp", a_minus=1, elig_bits=12))]))[0]
    assert rstdp.memory_bits()["eligibility"] == 64 * 25 * 4 * 12
    assert rstdp.cycles(10, words=3, learn=True) == 283 + 64 + 20 + 1 + 1600 + 4
    assert rstdp.learning.reward_cycles(rstdp) == 1600 + 4 and geo.learning.reward_cycles(geo) == 0
    # SPRAM weights: a weight word every other cycle, 2G per event and 2 n_in per spike word, and
    # one more drain cycle; inference is unchanged
    spram = HardwareConfig(lanes=4, weight_ram="spram").geometry(net)[0]
    assert spram.cycles(10, words=3) == 283
    assert spram.cycles(10, words=3, learn=True) == 283 + 64 + 10 * 50 + 3 * 128 + 4
    no_dep_spram = HardwareConfig(lanes=4, weight_ram="spram").geometry(net.replace(layers=[net.layers[0].replace(
        plasticity=Plasticity(a_minus=0))]))[0]
    assert no_dep_spram.cycles(10, words=3, learn=True) == 283 + 64 + 20 + 3 * 128 + 4


@pytest.mark.parametrize("inhibition", ["none", "reset"])
def test_batch_cycles_counts_the_wta_pass(inhibition):
    """model.core.batch_cycles (inference, learning off) equals the twin's count per sample for a
    winner-take-all layer: its WTA pass, (G or 1) + 2 a step, is in both."""
    net = random_network(5, (10, 9, 6), timesteps=4, readout=False, refractory=0)
    rule = Plasticity(wta=1, inhibition=inhibition, theta_inc=2)
    net = net.replace(layers=[net.layers[0].replace(plasticity=rule, threshold=0), net.layers[1]])
    spikes = random_spikes(6, 5, net.timesteps, net.n_inputs, p=0.5)
    twin = NetworkCore(net, HardwareConfig(lanes=2))
    want = [twin.run(s).cycles for s in spikes]
    assert batch_cycles(net, 2, spikes, simulate(net, spikes)).tolist() == want == cycle_formula(net, 2, spikes).tolist()
    one = net.replace(layers=[net.layers[0]])
    plain = one.replace(layers=[one.layers[0].replace(plasticity=None)])
    per_step = (5 if inhibition != "none" else 1) + 2  # G = ceil(9 / 2) = 5
    # one layer: its inputs, hence its cycles, do not depend on its spikes; only the pass differs
    for s in spikes:
        assert (NetworkCore(one, HardwareConfig(lanes=2)).run(s).cycles
                - NetworkCore(plain, HardwareConfig(lanes=2)).run(s).cycles) == per_step * net.timesteps
