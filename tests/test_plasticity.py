"""The learning contract (README, "The learning contract"): the Plasticity value, the network file,
hand-worked golden vectors for every rule, and how plastic layers meet simulate and the hardware."""
from __future__ import annotations

import json

import numpy as np
import pytest

from spikegate.model import Layer, Leak, Network, simulate
from spikegate.model.hardware import HardwareConfig
from spikegate.model.learning import Learner, learn_stream
from spikegate.model.learning_rules import offsets_update, trace_update
from spikegate.model.lif import neuron_update
from spikegate.model.network import NetworkFormatError
from spikegate.model.plasticity import Plasticity
from spikegate.model.simulate import simulate_steps


def _bools(rows):
    return np.array(rows, dtype=bool)


# --- the value and the file format -------------------------------------------------------------

@pytest.mark.parametrize("kwargs, message", [
    (dict(rule="hebb"), "plasticity.rule = 'hebb'"),
    (dict(trace_bits=17), "plasticity.trace_bits = 17"),
    (dict(trace_bits=4, pre_inc=16), "plasticity.pre_inc = 16"),
    (dict(pre_decay=0), "plasticity.pre_decay = 0"),
    (dict(rate_shift=33), "plasticity.rate_shift = 33"),
    (dict(a_plus=-1), "plasticity.a_plus = -1"),
    (dict(w_min=5, w_max=4), "plasticity.w_min = 5 is above plasticity.w_max = 4"),
    (dict(inhibition="reset"), "needs winner-take-all"),
    (dict(wta=1, inhibition="reset", inhibit=3), "plasticity.inhibit = 3 is only used by inhibition = 'reduce'"),
    (dict(reward_shift=2), "plasticity.reward_shift = 2 is only used by rule = 'rstdp'"),
    (dict(theta_every=0), "plasticity.theta_every = 0"),
    (dict(rule="rstdp", elig_bits=1), "plasticity.elig_bits = 1"),
])
def test_bad_plasticity_names_the_field(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Plasticity(**kwargs)


@pytest.mark.parametrize("kwargs, message", [
    (dict(w_max=128), "plasticity.w_max = 128 is outside the 8-bit weight range"),
    (dict(wta=4), "plasticity.wta = 4 is more than the layer's 3 neurons"),
    (dict(offsets=[0, 1]), r"plasticity.offsets must have shape \(3,\)"),
    (dict(w_min=1), "weights contain 0, outside the learning bounds; valid: plasticity.w_min = 1"),
    (dict(offsets=[0, 1, 27]), "plasticity.offsets contains 27; valid: 0 <= offset <= 26"),
])
def test_plasticity_is_checked_against_its_layer(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Layer(np.zeros((2, 3), int), threshold=100, membrane_bits=8, plasticity=Plasticity(**kwargs))


def test_readout_layer_takes_no_competition():
    with pytest.raises(ValueError, match="a readout layer never fires"):
        Layer(np.zeros((2, 3), int), readout=True, plasticity=Plasticity(wta=1))
    Layer(np.zeros((2, 3), int), readout=True, plasticity=Plasticity())  # depression only: allowed


def _plastic_net():
    p = Plasticity(rule="rstdp", trace_bits=6, pre_inc=9, wta=2, inhibition="reduce", inhibit=7, theta_inc=3,
                   theta_decay=2, theta_every=4, offsets=[1, 0, 5], w_min=-20, w_max=30, elig_bits=12,
                   reward_shift=1)
    layer = Layer(np.arange(6).reshape(2, 3), threshold=9, plasticity=p, name="plastic")
    return Network([Layer(np.eye(2, dtype=int) * 3, threshold=1), layer], timesteps=5)


def test_file_round_trip_writes_version_2(tmp_path):
    net = _plastic_net()
    net.save(tmp_path / "p.json")
    back = Network.load(tmp_path / "p.json")
    assert back == net and back.digest() == net.digest()
    assert back.to_dict()["version"] == 2
    assert "plasticity" not in back.to_dict()["layers"][0]
    # Every field matters to equality and to the digest.
    other = net.replace(layers=[net.layers[0], net.layers[1].replace(
        plasticity=net.layers[1].plasticity.replace(offsets=[1, 0, 4]))])
    assert other != net and other.digest() != net.digest()


def test_version_1_files_are_unchanged():
    plain = Network([Layer(np.arange(6).reshape(2, 3), threshold=9)])
    d = plain.to_dict()
    assert d["version"] == 1 and "plasticity" not in d["layers"][0]
    assert Network.from_dict(d) == plain


def test_bad_plasticity_in_a_file_names_the_layer():
    d = _plastic_net().to_dict()
    d["layers"][1]["plasticity"]["trace_bits"] = 0
    with pytest.raises(NetworkFormatError, match=r"layers\[1\]: plasticity.trace_bits = 0"):
        Network.from_dict(d)
    d = _plastic_net().to_dict()
    d["layers"][1]["plasticity"]["eta"] = 1
    with pytest.raises(NetworkFormatError, match=r"layers\[1\]: plasticity has unknown field\(s\) \['eta'\]"):
        Network.from_dict(d)


def test_hardware_refuses_a_plastic_layer():
    # rstdp with two winners has gateware; winner-take-all in a layer with a refractory period not
    net = _plastic_net()
    assert HardwareConfig(lanes=1).geometry(net)[1].learning.elig_bits == 12
    net = net.replace(layers=[net.layers[0], net.layers[1].replace(refractory=2)])
    with pytest.raises(ValueError, match="layer 1: plasticity .* has no gateware yet"):
        HardwareConfig(lanes=1).geometry(net)


# --- golden vectors, worked by hand ----------------------------------------------------------

def test_trace_golden():
    # trace_bits 4 (max 15), decay by 1/2, +6 per spike: 0 -> 6 -> 9 -> 11 -> (no spike) 6 -> 9.
    p, seen = np.array([0]), []
    for x in (1, 1, 1, 0, 1):
        p = trace_update(p, np.array([bool(x)]), 1, 6, 15)
        seen.append(int(p[0]))
    assert seen == [6, 9, 11, 6, 9]
    # Set-to-maximum is the increment 2^trace_bits - 1: 15, then 15 - 7 + 15 saturates to 15.
    assert trace_update(np.array([15]), np.array([True]), 1, 15, 15).tolist() == [15]


STDP = dict(trace_bits=8, pre_decay=1, post_decay=1, pre_inc=64, post_inc=64, a_plus=1, a_minus=1, rate_shift=2)
# Threshold 25, no leak, reset to zero: inputs 0 then 1 then 0 then 1, one per step.
STEPS = _bools([[1, 0], [0, 1], [1, 0], [0, 1]])


def _stdp_layer(**changes):
    return Layer(np.array([[10], [20]]), threshold=25, plasticity=Plasticity(**{**STDP, **changes}))


def test_stdp_golden():
    # t0: v = 10, no spike; P = [64, 0]; no post trace, so the pre spike depresses by 0.
    # t1: v = 10 + 20 = 30 > 25 fires (integration used W at the start of the step); P = [32, 64]
    #     (input 1's own spike included); Q' = 0; potentiation [64 >> 2, ... ] = [8, 16]; the
    #     simultaneous pre spike of input 1 reads Q' = 0 (own post spike not yet in): W = [18, 36]; Q = 64.
    # t2: v = 18, no spike; P = [80, 32]; Q' = 32; input 0 loses 32 >> 2 = 8: W = [10, 36]; Q = 32.
    # t3: v = 18 + 36 = 54 fires; P = [40, 80]; Q' = 16; potentiation [10, 20], input 1's pre spike
    #     loses 16 >> 2 = 4: W = [20, 52]; Q = 16 + 64 = 80.
    learner = Learner(Network([_stdp_layer()]))
    out = learner.run(STEPS)
    st = learner.state[0]
    assert out[0][:, 0].tolist() == [False, True, False, True]
    assert st.weights.tolist() == [[20], [52]]
    assert st.pre.tolist() == [40, 80] and st.post.tolist() == [80]
    # With learning off the same sample leaves everything as it was.
    out = learner.run(STEPS, learn=False)
    assert st.weights.tolist() == [[20], [52]] and st.pre.tolist() == [0, 0] and st.post.tolist() == [0]


def test_potentiation_offset_weight_decay_and_bounds_golden():
    # One step, input 0 spikes: drive 1 + 40 = 41 > 0 fires; P = [16, 0]; potentiation (16, 0) >> 0
    # minus ltp_offset 5 = (11, -5), minus W >>> 2 = (10, -2): (1, -3); W = (41, -11) clipped to
    # [-10, 40]: (40, -10).
    p = Plasticity(pre_inc=16, a_plus=1, a_minus=0, rate_shift=0, ltp_offset=5, weight_decay=2, w_min=-10, w_max=40)
    layer = Layer(np.array([[40], [-8]]), bias=[1], threshold=0, plasticity=p)
    learner = Learner(Network([layer]))
    learner.run(_bools([[1, 0]]))
    assert learner.state[0].weights.tolist() == [[40], [-10]]


def test_rstdp_golden():
    # The STDP sample with rule rstdp (elig_decay 1): weights stay [10, 20] during the sample.
    # t1: fires, D = [8, 16], E = [8, 16]; t2: P = [80, 32], Q' = 32, D = [-8, 0],
    #     E = [8 - 4 - 8, 16 - 8] = [-4, 8]; t3: fires, P = [40, 80], Q' = 16, D = [10, 16],
    #     E = [-4 - (-4 >>> 1), 8 - 4] + D = [-2 + 10, 4 + 16] = [8, 20].
    layer = _stdp_layer(rule="rstdp", elig_decay=1, reward_shift=1)
    learner = Learner(Network([layer]))
    out = learner.run(STEPS)
    st = learner.state[0]
    assert out[0][:, 0].tolist() == [False, True, False, True]
    assert st.weights.tolist() == [[10], [20]] and st.elig.tolist() == [[8], [20]]
    learner.reward(-3)  # (-3 * 8) >> 1 = -12, (-3 * 20) >> 1 = -30
    assert st.weights.tolist() == [[-2], [-10]]
    # A per-step reward at the last step is the same as that reward per sample.
    same = Learner(Network([layer]))
    same.run(STEPS, rewards=[0, 0, 0, 1])
    assert same.state[0].weights.tolist() == [[14], [30]]
    # A reward at t1 changes the weights from t2 on: W = [10, 20] + (2 * [8, 16]) >> 1 = [18, 36]; t2:
    # v = 18 does not fire; t3: 18 + 36 = 54 fires. The eligibility is as before.
    early = Learner(Network([layer]))
    out = early.run(STEPS, rewards=[0, 2, 0, 0])
    assert early.state[0].weights.tolist() == [[18], [36]] and early.state[0].elig.tolist() == [[8], [20]]
    assert out[0][:, 0].tolist() == [False, True, False, True]


class _WTA:
    def __init__(self, wta, inhibition="none", inhibit=0):
        self.wta, self.inhibition, self.inhibit = wta, inhibition, inhibit


def test_winner_take_all_golden():
    lif = Layer(np.zeros((1, 4), int), threshold=5, reset="subtract", refractory=3)
    v, r = np.array([0, 0, 0, 7]), np.array([0, 0, 0, 2])
    drive, theta = np.array([10, 12, 12, 5]), np.array([5, 6, 6, 0])
    # Margins v - theta: 5, 6, 6 and a refractory neuron 3 (never a candidate).
    for k, fired in ((1, [0, 1, 0, 0]), (2, [0, 1, 1, 0]), (3, [1, 1, 1, 0])):
        assert neuron_update(v, r, drive, theta, lif, _WTA(k))[2].astype(int).tolist() == fired
    # k = 1 with "reduce" 4: the winner subtracts its theta (12 - 6 = 6), the others lose 4 (10 -> 6,
    # 12 -> 8), the refractory neuron keeps 7 and counts down.
    v2, r2, s = neuron_update(v, r, drive, theta, lif, _WTA(1, "reduce", 4))
    assert v2.tolist() == [6, 6, 8, 7] and r2.tolist() == [0, 3, 0, 1]
    v2, _, _ = neuron_update(v, r, drive, theta, lif, _WTA(1, "reset"))
    assert v2.tolist() == [0, 6, 0, 7]
    # No neuron above threshold: no winner, so no inhibition either.
    v2, _, s = neuron_update(v, r, np.array([1, 2, 3, 0]), theta, lif, _WTA(1, "reset"))
    assert not s.any() and v2.tolist() == [1, 2, 3, 7]
    # "reduce" saturates at the bottom of the membrane range.
    low = Layer(np.zeros((1, 2), int), threshold=0, membrane_bits=4)
    assert neuron_update(np.array([0, -6]), np.zeros(2, int), np.array([3, 0]), 0, low, _WTA(1, "reduce", 5))[0].tolist() == [0, -8]


def test_adaptive_threshold_golden():
    p = Plasticity(theta_inc=10, theta_decay=1, theta_every=2)
    off = offsets_update(p, np.array([20, 7]), _bools([1, 0]), 0, 26)   # t = 0: no decay
    assert off.tolist() == [26, 7]                                          # 30 saturates at 26
    off = offsets_update(p, off, _bools([1, 0]), 1, 100)                  # t = 1: decay, then +10
    assert off.tolist() == [23, 4]
    # Through a layer: bias 11, threshold 10, +5 per spike, offsets persist across samples.
    # Sample 1: 11 > 10 fires (off 5); 11; 22 > 15 fires (off 10); 11; 22 > 20 fires (off 15).
    # Sample 2: 11, 22, 33 > 25 fires (off 20); 11, 22 (not > 30).
    layer = Layer(np.zeros((1, 1), int), bias=[11], threshold=10, plasticity=Plasticity(theta_inc=5, a_minus=0))
    res = learn_stream(Network([layer]), np.zeros((2, 5, 1), bool))
    assert res.spikes[0][:, :, 0].astype(int).tolist() == [[1, 0, 1, 0, 1], [0, 0, 1, 0, 0]]
    assert res.state[0].offsets.tolist() == [20]
    assert res.network.layers[0].plasticity.offsets.tolist() == [20]


# --- plastic layers in simulate --------------------------------------------------------------

def test_learned_network_simulates_as_the_learner_runs_it():
    rng = np.random.default_rng(3)
    net = _plastic_net()
    samples = rng.random((6, 5, 2)) < 0.6
    res = learn_stream(net, samples, rewards=[1, -1, 2, 0, 1, -2])
    learned = res.network
    frozen = learn_stream(learned, samples, learn=False)
    for fast in (simulate(learned, samples), simulate_steps(learned, samples)):
        for l in range(2):
            assert np.array_equal(fast.spikes[l], frozen.spikes[l])


def test_plastic_layer_without_competition_is_todays_layer():
    rng = np.random.default_rng(4)
    w = rng.integers(-60, 60, (7, 5))
    plain = Network([Layer(w, threshold=40, leak=Leak.shift(2), refractory=1)], timesteps=6)
    plastic = Network([plain.layers[0].replace(plasticity=Plasticity(theta_inc=9, offsets=[0] * 5))], timesteps=6)
    spikes = rng.random((5, 6, 7)) < 0.5
    a, b = simulate(plain, spikes), simulate(plastic, spikes)
    assert all(np.array_equal(x, y) for x, y in zip(a.spikes + a.membranes, b.spikes + b.membranes))
    off = learn_stream(plastic, spikes, learn=False)
    assert np.array_equal(off.spikes[0], a.spikes[0])


def test_info_describes_a_plastic_network_without_hardware(tmp_path, capsys):
    from spikegate.cli import main
    from spikegate.model.random import random_network
    net = random_network(2, (6, 4, 3), timesteps=4)
    net = net.replace(layers=[net.layers[0].replace(plasticity=Plasticity(wta=1)), net.layers[1]])
    path = net.save(tmp_path / "p.json")
    assert main(["info", "--net", str(path), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["layers"][0]["features"] == ["plasticity"] and d["layers"][1]["features"] == []
    assert d["memory_bits"] is None
    assert "plasticity" in d["hardware"]["unsupported"]
