"""The bit-exact model against the arithmetic contract.

Golden vectors below were worked out by hand from the contract text (README, "The arithmetic
contract"); the property tests compare the vectorised model with ``reference_run``, a deliberately
naive scalar transcription of the same text, on random networks.
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from spikegate.model import Layer, Leak, Network, simulate, classify
from spikegate.model.random import random_network, random_spikes


def one_neuron(weights, **kw):
    w = np.array(weights, dtype=np.int64).reshape(-1, 1)
    return Network([Layer(weights=w, **kw)], timesteps=1)


def run(net, spikes):
    spikes = np.array(spikes, dtype=bool)
    if spikes.ndim == 1:
        spikes = spikes[:, None]
    return simulate(net, spikes[None], traces=True)


# --- golden vectors, worked by hand ---------------------------------------------------------

def test_no_leak_reset_zero():
    # v: 4, 8, 12 > 9 fire -> 0, 4, 8, 12 fire -> 0
    r = run(one_neuron([4], threshold=9), [1] * 6)
    assert r.spikes[0][0, :, 0].tolist() == [0, 0, 1, 0, 0, 1]
    assert r.traces[0][0, :, 0].tolist() == [4, 8, 0, 4, 8, 0]


def test_no_leak_reset_subtract():
    # v: 4, 8, 12 fire -> 3, 7, 11 fire -> 2, 6
    r = run(one_neuron([4], threshold=9, reset="subtract"), [1] * 6)
    assert r.spikes[0][0, :, 0].tolist() == [0, 0, 1, 0, 1, 0]
    assert r.traces[0][0, :, 0].tolist() == [4, 8, 3, 7, 2, 6]
    assert r.membranes[0][0, 0] == 6


def test_threshold_is_strict():
    # v reaches exactly theta = 8 and must not fire; 12 > 8 fires.
    r = run(one_neuron([4], threshold=8), [1, 1, 1])
    assert r.spikes[0][0, :, 0].tolist() == [0, 0, 1]


def test_shift_leak_positive():
    # k = 1: t0 0+8 = 8; t1 8-4 = 4, +8 = 12 fire -> 0; repeats.
    r = run(one_neuron([8], threshold=9, leak=Leak.shift(1)), [1] * 6)
    assert r.spikes[0][0, :, 0].tolist() == [0, 1, 0, 1, 0, 1]
    assert r.traces[0][0, :, 0].tolist() == [8, 0, 8, 0, 8, 0]


def test_shift_leak_negative_rounds_towards_minus_infinity():
    # -7 - (-7 >>> 1) = -7 - (-4) = -3; then -3 - 7 = -10; -10 - (-5) - 7 = -12; -12 + 6 - 7 = -13;
    # -13 - (-7) - 7 = -13 (fixed point).
    r = run(one_neuron([-7], threshold=100, leak=Leak.shift(1)), [1] * 5)
    assert r.traces[0][0, :, 0].tolist() == [-7, -10, -12, -13, -13]


def test_multiply_leak():
    # m/2^F = 3/4. Positive: 5; (15 >>> 2) = 3 + 5 = 8; (24 >>> 2) = 6 + 5 = 11; (33 >>> 2) = 8 + 5 = 13
    r = run(one_neuron([5], threshold=100, leak=Leak.multiply(3, 2)), [1] * 4)
    assert r.traces[0][0, :, 0].tolist() == [5, 8, 11, 13]
    # Negative: -5; floor(-15/4) = -4 - 5 = -9; floor(-27/4) = -7 - 5 = -12; floor(-36/4) = -9 - 5 = -14
    r = run(one_neuron([-5], threshold=100, leak=Leak.multiply(3, 2)), [1] * 4)
    assert r.traces[0][0, :, 0].tolist() == [-5, -9, -12, -14]


def test_multiply_leak_extremes():
    # m = 2^F keeps v; m = 0 clears it before integration.
    r = run(one_neuron([3], threshold=100, leak=Leak.multiply(16, 4)), [1, 0, 1])
    assert r.traces[0][0, :, 0].tolist() == [3, 3, 6]
    r = run(one_neuron([3], threshold=100, leak=Leak.multiply(0, 4)), [1, 0, 1])
    assert r.traces[0][0, :, 0].tolist() == [3, 0, 3]


def test_refractory_ignores_inputs_and_freezes_membrane():
    # theta 2, w 3, R 2: fire at t0 (v -> 0, r = 2); t1, t2 refractory (v stays 0 despite inputs);
    # t3 fires again.
    r = run(one_neuron([3], threshold=2, refractory=2), [1] * 6)
    assert r.spikes[0][0, :, 0].tolist() == [1, 0, 0, 1, 0, 0]
    assert r.traces[0][0, :, 0].tolist() == [0, 0, 0, 0, 0, 0]
    assert r.refractory[0][0, 0] == 0


def test_refractory_freezes_subtract_residue_and_leak():
    # subtract reset keeps the residue 7 - 2 = 5 and a shift leak must not touch it while refractory:
    # t0: 7 fire -> 5, r = 1; t1: refractory, v = 5; t2: 5 - 2 = 3, +7 = 10 fire -> 8, r = 1.
    r = run(one_neuron([7], threshold=2, reset="subtract", refractory=1, leak=Leak.shift(1)), [1, 1, 1])
    assert r.traces[0][0, :, 0].tolist() == [5, 5, 8]
    assert r.spikes[0][0, :, 0].tolist() == [1, 0, 1]
    assert r.refractory[0][0, 0] == 1


def test_saturation_both_rails():
    # V = 4 bits: [-8, 7]. 7 + 7 saturates to 7 and fires over theta 6 (rail - 1).
    r = run(one_neuron([7, 7], threshold=6, membrane_bits=4, weight_bits=4), [[1, 1]])
    assert r.spikes[0][0, 0, 0] and r.traces[0][0, 0, 0] == 0
    # A zero reset hides the saturated value; a subtract reset shows it: 7 - 6 = 1 (unsaturated
    # 14 - 6 would leave 8, outside the range).
    r = run(one_neuron([7, 7], threshold=6, membrane_bits=4, weight_bits=4, reset="subtract"), [[1, 1]])
    assert r.spikes[0][0, 0, 0] and r.traces[0][0, 0, 0] == 1
    r = run(one_neuron([-8, -8], threshold=6, membrane_bits=4, weight_bits=4), [[1, 1], [1, 1]])
    assert r.traces[0][0, :, 0].tolist() == [-8, -8]


def test_sum_saturates_once_so_order_cannot_matter():
    # 7 + 7 - 8 = 6 exactly; saturating after each addition would give sat(14) - 8 = -1.
    r = run(one_neuron([7, 7, -8], threshold=6, membrane_bits=4, weight_bits=4), [[1, 1, 1]])
    assert r.traces[0][0, 0, 0] == 6
    # ... and the bias is inside the same single saturation.
    r = run(one_neuron([7, 7], bias=[-8], threshold=6, membrane_bits=4, weight_bits=4), [[1, 1]])
    assert r.traces[0][0, 0, 0] == 6


def test_bias_integrates_on_silent_steps():
    r = run(one_neuron([1], bias=[2], threshold=5), [0, 0, 0, 0])
    assert r.traces[0][0, :, 0].tolist() == [2, 4, 0, 2]
    assert r.spikes[0][0, :, 0].tolist() == [0, 0, 1, 0]


def test_readout_layer_never_fires():
    net = one_neuron([100], membrane_bits=8, readout=True)
    r = run(net, [1, 1, 1])
    assert r.traces[0][0, :, 0].tolist() == [100, 127, 127]
    assert not r.spikes[0].any()


def test_next_layer_sees_same_step_spikes():
    l0 = Layer(weights=np.array([[5]]), threshold=4)
    l1 = Layer(weights=np.array([[1]]), threshold=0)
    r = simulate(Network([l0, l1], timesteps=3), np.array([[[1], [0], [1]]], dtype=bool))
    assert r.spikes[0][0, :, 0].tolist() == [1, 0, 1]
    assert r.spikes[1][0, :, 0].tolist() == [1, 0, 1]


def test_classify_ties_go_to_lowest_index():
    net = Network([Layer(weights=np.array([[3, 5, 5]]), threshold=2)], timesteps=2)
    r = simulate(net, np.ones((1, 2, 1), dtype=bool))
    assert r.counts.tolist() == [[2, 2, 2]]
    assert classify(net, r).tolist() == [0]
    ro = Network([Layer(weights=np.array([[3, 5, 5]]), readout=True)], timesteps=2)
    assert classify(ro, simulate(ro, np.ones((1, 2, 1), dtype=bool))).tolist() == [1]


# --- an independent scalar transcription of the contract --------------------------------------

def asr(x, k):
    return x // (1 << k)  # floor division == arithmetic shift right for Python ints


def reference_run(net, spikes):
    """One sample [T, n_in] -> (per-layer spikes [T][n], final v, final r), plain Python ints."""
    T = spikes.shape[0]
    v = [[0] * l.n for l in net.layers]
    r = [[0] * l.n for l in net.layers]
    out = [[[0] * l.n for _ in range(T)] for l in net.layers]
    for t in range(T):
        s = [int(x) for x in spikes[t]]
        for li, layer in enumerate(net.layers):
            lo, hi = -(1 << (layer.membrane_bits - 1)), (1 << (layer.membrane_bits - 1)) - 1
            nxt = [0] * layer.n
            for j in range(layer.n):
                if not layer.readout and r[li][j] > 0:
                    r[li][j] -= 1
                    continue
                x = v[li][j]
                if layer.leak.kind == "shift":
                    x = x - asr(x, layer.leak.k)
                elif layer.leak.kind == "multiply":
                    x = asr(x * layer.leak.m, layer.leak.frac_bits)
                total = x + int(layer.bias[j]) + sum(int(layer.weights[i, j]) for i in range(layer.n_in) if s[i])
                x = min(max(total, lo), hi)
                if not layer.readout and x > layer.threshold:
                    nxt[j] = 1
                    x = 0 if layer.reset == "zero" else x - layer.threshold
                    r[li][j] = layer.refractory
                v[li][j] = x
            out[li][t] = nxt
            s = nxt
    return out, v, r


def assert_matches_reference(net, spikes):
    res = simulate(net, spikes)
    for b in range(spikes.shape[0]):
        out, v, r = reference_run(net, spikes[b])
        for li in range(len(net.layers)):
            assert res.spikes[li][b].astype(int).tolist() == out[li], f"sample {b} layer {li} spikes"
            assert res.membranes[li][b].tolist() == v[li], f"sample {b} layer {li} membranes"
            assert res.refractory[li][b].tolist() == r[li], f"sample {b} layer {li} refractory"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), p=st.sampled_from([0.0, 0.05, 0.3, 0.7, 1.0]))
def test_model_matches_contract_on_random_networks(seed, p):
    net = random_network(seed)
    spikes = random_spikes(seed, 3, net.timesteps, net.n_inputs, p=p)
    assert_matches_reference(net, spikes)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), bits=st.integers(3, 6))
def test_model_matches_contract_at_the_rails(seed, bits):
    # Narrow membranes with full-range weights and theta next to the rail saturate constantly.
    rng = np.random.default_rng(seed)
    hi = (1 << (bits - 1)) - 1
    layers = [Layer(weights=rng.choice([-(hi + 1), hi], size=(6, 5)), bias=rng.integers(-hi, hi + 1, 5),
                    weight_bits=bits, membrane_bits=bits, threshold=hi - 1,
                    reset=["zero", "subtract"][seed % 2], leak=Leak.shift(1 + seed % bits)),
              Layer(weights=rng.integers(-(hi + 1), hi + 1, size=(5, 3)), weight_bits=bits, membrane_bits=bits,
                    threshold=int(rng.integers(0, hi)), refractory=seed % 3)]
    net = Network(layers, timesteps=8)
    spikes = random_spikes(seed, 4, 8, 6)
    spikes[0] = False  # all-silent sample
    spikes[1] = True   # all-active sample
    assert_matches_reference(net, spikes)
    # Every membrane of every layer after every step stays on the V-bit range.
    res = simulate(net, spikes, traces=True)
    lo = -(1 << (bits - 1))
    assert all(((tr >= lo) & (tr <= hi)).all() for tr in res.traces)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_permuting_inputs_never_changes_a_result(seed):
    net = random_network(seed)
    spikes = random_spikes(seed + 1, 2, net.timesteps, net.n_inputs)
    perm = np.random.default_rng(seed).permutation(net.n_inputs)
    l0 = net.layers[0]
    permuted = Network([Layer(weights=l0.weights[perm], bias=l0.bias, threshold=l0.threshold,
                              weight_bits=l0.weight_bits, membrane_bits=l0.membrane_bits, leak=l0.leak,
                              reset=l0.reset, refractory=l0.refractory, readout=l0.readout)] + net.layers[1:],
                       timesteps=net.timesteps)
    a, b = simulate(net, spikes), simulate(permuted, spikes[:, :, perm])
    for x, y in zip(a.spikes + a.membranes + a.refractory, b.spikes + b.membranes + b.refractory):
        assert np.array_equal(x, y)


def test_batch_is_independent_per_sample():
    net = random_network(7, (10, 8, 4))
    spikes = random_spikes(7, 5, net.timesteps, 10)
    whole = simulate(net, spikes)
    for b in range(5):
        single = simulate(net, spikes[b])
        assert np.array_equal(single.spikes[-1][0], whole.spikes[-1][b])
        assert np.array_equal(single.membranes[-1][0], whole.membranes[-1][b])


def test_traces_end_in_final_membranes():
    net = random_network(3, (12, 9, 5))
    r = simulate(net, random_spikes(3, 2, net.timesteps, 12), traces=True)
    for l in range(2):
        assert np.array_equal(r.traces[l][:, -1], r.membranes[l])


@pytest.mark.parametrize("bad", [np.zeros((1, 2, 5)), np.full((1, 2, 4), 2), np.zeros((2, 4))])
def test_bad_input_spikes(bad):
    net = Network([Layer(weights=np.ones((4, 2), dtype=int))])
    with pytest.raises(ValueError, match="input spikes"):
        simulate(net, bad)
