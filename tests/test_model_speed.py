"""The layer-major fast path (spikegate.model.fastsim, behind ``simulate``) against the plain
step-major evaluation (``simulate_steps``, through ``lif_step``) and the scalar transcription of
the contract in test_model.py, including the networks that sit on the exactness boundaries of the
float32 / float64 / int64 synaptic products and of the int16 / int32 / int64 neuron state, and the
snnTorch / spikingjelly set-ups of bench/model_speed.py (skipped where torch is missing)."""
import gc
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from spikegate.model import Layer, Leak, Network, simulate
from spikegate.model import fastsim, fastsyn
from spikegate.model import prepared as prepared_module
from spikegate.model.prepared import state_dtype as _state_dtype
from spikegate.model.fastsim import (exact_float_dtype, prepared, readout_totals, run_layer, step_counts,
                                     synaptic_input)
from spikegate.model.fastsyn import BLOCK_ROWS, MIN_SAVED, compacts, drive_sample_major, drive_step_major
from spikegate.model.random import random_network, random_spikes
from spikegate.model.simulate import simulate_steps
from test_model import assert_matches_reference

# The numpy paths are what these tests are about (test_compiled.py tests the compiled drive).
pytestmark = pytest.mark.usefixtures("numpy_paths")


def assert_same_results(net, spikes):
    # With traces the fast path runs every step; without, a readout may take the totals shortcut.
    for traces in (True, False):
        fast, slow = simulate(net, spikes, traces=traces), simulate_steps(net, spikes, traces=True)
        for name in ("spikes", "membranes", "refractory") + (("traces",) if traces else ()):
            for l, (a, b) in enumerate(zip(getattr(fast, name), getattr(slow, name))):
                assert a.dtype == b.dtype and a.shape == b.shape, f"layer {l} {name}: {a.dtype}{a.shape} vs {b.dtype}{b.shape}"
                assert np.array_equal(a, b), f"layer {l} {name} differ (traces={traces})"


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), batch=st.integers(1, 5), p=st.sampled_from([0.0, 0.02, 0.3, 0.8, 1.0]))
def test_fast_path_equals_step_major_on_random_networks(seed, batch, p):
    net = random_network(seed)
    spikes = random_spikes(seed, batch, net.timesteps, net.n_inputs, p=p)
    assert_same_results(net, spikes)
    assert_matches_reference(net, spikes[:2])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), p=st.sampled_from([0.05, 0.3, 0.8]))
def test_fast_path_equals_step_major_on_large_batches(seed, p):
    # batch x neurons >= 2048 takes the large-array branches of the neuron loop.
    rng = np.random.default_rng(seed)
    net = random_network(seed, (int(rng.integers(1, 40)), 64, int(rng.integers(1, 70))))
    assert_same_results(net, random_spikes(seed, 40, net.timesteps, net.n_inputs, p=p))


def column_at(total: int, n_in: int, bits: int, rng) -> np.ndarray:
    """A weight column of ``n_in`` ``bits``-bit values whose absolute sum is exactly ``total``."""
    hi = 1 << (bits - 1)
    assert total <= n_in * hi
    mags = np.full(n_in, total // n_in)
    mags[: total % n_in] += 1
    return mags * rng.choice([-1, 1], n_in)


@pytest.mark.parametrize("total, dtype", [(1 << 24, np.float32), ((1 << 24) + 1, np.float64)])
def test_float32_only_up_to_two_to_the_24(total, dtype):
    rng = np.random.default_rng(total)
    w = np.stack([column_at(total, 600, 16, rng), column_at(total // 3, 600, 16, rng)], axis=1)
    assert exact_float_dtype(w) is dtype


def test_float32_would_be_inexact_above_the_bound_and_is_not_used():
    # 2^24 + 1 cannot be held by a float32: the product above the bound must not be float32.
    w = np.array([[1 << 15] * 512 + [1]], dtype=np.int64).T
    ones = np.ones((1, 513), bool)
    assert float(np.float32(ones.astype(np.float32) @ w.astype(np.float32))[0, 0]) != (1 << 24) + 1
    assert exact_float_dtype(w) is np.float64
    assert int(synaptic_input(w, ones)[0, 0]) == (1 << 24) + 1


def test_float64_bound_and_integer_fallback():
    assert exact_float_dtype(np.array([[1 << 53]])) is np.float64
    assert exact_float_dtype(np.array([[1 << 53], [1]])) is None
    # The integer product (no exact float) and each float product agree where they are exact.
    rng = np.random.default_rng(1)
    w = rng.integers(-(1 << 15), 1 << 15, size=(300, 7))
    s = rng.random((40, 300)) < 0.4
    exact = s.astype(np.int64) @ w
    for dtype in (None, np.float32, np.float64, "auto"):
        assert np.array_equal(synaptic_input(w, s, dtype).astype(np.int64), exact), dtype


@pytest.mark.parametrize("active", [0, 1, 5, 40])
def test_synaptic_input_on_few_rows_uses_only_active_weight_rows(active):
    # 3 rows < 16 neurons and fewer than half the 100 inputs active: the gathered product.
    rng = np.random.default_rng(active)
    w = rng.integers(-128, 128, size=(100, 16))
    s = np.zeros((3, 100), bool)
    s[:, rng.choice(100, active, replace=False)] = rng.random((3, active)) < 0.7
    for dtype in (None, np.float32, "auto"):
        assert np.array_equal(synaptic_input(w, s, dtype).astype(np.int64), s.astype(np.int64) @ w), dtype


def test_synaptic_input_rejects_an_unknown_dtype():
    with pytest.raises(ValueError, match="dtype = 'float16'"):
        synaptic_input(np.ones((2, 2), np.int64), np.ones((1, 2), bool), "float16")


def boundary_network(seed, column_total, T, *, bias_first=None, readout=False):
    """Two layers, the first with 520 16-bit inputs whose first weight column sums (in magnitude)
    to ``column_total``, membranes wide enough not to saturate every step; ``bias_first``: the
    first neuron's bias magnitude (the others' below 1000), else no bias."""
    rng = np.random.default_rng(seed)
    n_in = 520
    w = rng.integers(-(1 << 15), 1 << 15, size=(n_in, 3))
    w[:, 0] = column_at(column_total, n_in, 16, rng)
    bias = np.zeros(3, np.int64)
    if bias_first is not None:
        bias = rng.integers(-999, 1000, 3)
        bias[0] = bias_first * rng.choice([-1, 1])
    layers = [Layer(weights=w, bias=bias, weight_bits=16, membrane_bits=32, threshold=int(rng.integers(0, 1 << 24)),
                    reset=["zero", "subtract"][seed % 2], leak=[Leak.none(), Leak.shift(3)][seed % 3 == 0]),
              Layer(weights=rng.integers(-8, 8, size=(3, 2)), weight_bits=4, membrane_bits=8, readout=readout)]
    return Network(layers, timesteps=T)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), over=st.integers(-2, 2), p=st.sampled_from([0.5, 0.9, 1.0]))
def test_networks_on_the_float32_boundary(seed, over, p):
    # float32 on one side of 2^24, float64 on the other
    net = boundary_network(seed, (1 << 24) + over, 6, readout=seed % 2 == 1)
    assert exact_float_dtype(net.layers[0].weights) is (np.float32 if over <= 0 else np.float64)
    spikes = random_spikes(seed, 3, 6, net.layers[0].n_in, p=p)
    assert_same_results(net, spikes)
    assert_matches_reference(net, spikes)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), over=st.integers(-2, 2), batch=st.sampled_from([1, 3, 40]))
def test_bias_in_the_product_only_while_exact(seed, over, batch):
    # A float32 column (absolute sum 2^24 - 1000) whose bias takes it to 2^24 + over: the product
    # adds the bias as an input that always spikes only while that stays exact (over <= 0).
    # (Three outputs never repay a compacted block: those, with the bias, are
    # test_step_major_drives_from_both_input_orders'.)
    net = boundary_network(seed, (1 << 24) - 1000, 5, bias_first=1000 + over)
    p = prepared(net.layers[0])
    assert p.float is np.float32 and (p.biased() is None) == (over > 0)
    spikes = random_spikes(seed, batch, 5, net.layers[0].n_in, p=0.02 if batch == 1 else 0.9)
    assert_same_results(net, spikes)
    assert_matches_reference(net, spikes[:3])


def test_the_bias_input_needs_its_weight_row():
    w, s = np.ones((4, 2), np.int64), np.ones((3, 4), bool)
    for dtype, converted in ((np.float32, None), (None, np.ones((5, 2))), (np.float32, np.ones((4, 2), np.float32))):
        with pytest.raises(ValueError, match="ones = True needs"):
            list(fastsyn.product_blocks(w, s, dtype, converted=converted, ones=True))


def test_a_bias_that_would_round_in_float32_stays_out_of_the_product():
    # Every input spikes into a column of positive weights summing to 2^24 - 1000, and the bias
    # adds 1001: 2^24 + 1 has no float32, so the bias must go in after the product.
    n_in = 520
    w = np.zeros((n_in, 2), np.int64)
    w[:, 0] = np.abs(column_at((1 << 24) - 1000, n_in, 16, np.random.default_rng(0)))
    w[:, 1] = 1
    layer = Layer(weights=w, bias=np.array([1001, 0]), weight_bits=16, membrane_bits=32, threshold=(1 << 30))
    net = Network([layer], timesteps=2)
    assert prepared(net.layers[0]).float is np.float32 and prepared(net.layers[0]).biased() is None
    result = simulate(net, np.ones((3, 2, n_in), bool), traces=True)
    assert result.traces[0][0, 0, 0] == (1 << 24) + 1
    assert_same_results(net, np.ones((3, 2, n_in), bool))


@pytest.mark.parametrize("membrane_bits, weight_bits, leak, dtype", [
    (12, 4, Leak.shift(20), np.int16),                      # shift wider than the state
    (14, 8, Leak.multiply(3, 2), np.int16),                 # 2^13 * 3 and 2^14 + 64 * 2^7 < 2^15
    (16, 16, Leak.multiply((1 << 15) - 1, 15), np.int32),   # 2^15 * (2^15 - 1) < 2^31
    (17, 16, Leak.multiply(1 << 16, 16), np.int64),         # 2^16 * 2^16 = 2^32
    (30, 16, Leak.shift(32), np.int32),
    (32, 16, Leak.shift(1), np.int64),
])
def test_neuron_state_width_boundaries(membrane_bits, weight_bits, leak, dtype):
    rng = np.random.default_rng(membrane_bits)
    hi = (1 << (membrane_bits - 1)) - 1
    w_hi = (1 << (weight_bits - 1)) - 1
    w = rng.integers(-w_hi - 1, w_hi + 1, size=(64, 6))
    w[:, 0] = w_hi  # a column that drives the membrane to the upper rail
    w[:, 1] = -w_hi - 1  # ... and one to the lower rail
    bias = rng.integers(-hi, hi, 6)
    bias[:2] = 0
    layer = Layer(weights=w, bias=bias, weight_bits=weight_bits, membrane_bits=membrane_bits,
                  threshold=hi - 1, leak=leak, reset="subtract", refractory=2)
    assert _state_dtype(layer) is dtype
    net = Network([layer], timesteps=12)
    for batch in (4, 400):  # 400 x 6 neurons takes the np.clip branch
        spikes = random_spikes(membrane_bits, batch, 12, 64, p=0.7)
        assert_same_results(net, spikes)
    assert_matches_reference(net, spikes[:4])
    res = simulate(net, spikes, traces=True)
    # theta = v_max - 1: only a membrane on the upper rail fires; the lower rail shows in the traces.
    assert res.spikes[0].any() and res.traces[0].min() == -hi - 1


def test_run_layer_state_is_int64_and_step_major():
    layer = Layer(weights=np.array([[4]]), threshold=9, reset="subtract")
    syn = np.array([[[4]], [[4]], [[4]], [[0]]])  # [T, batch, n]
    s, v, r, tr = run_layer(layer, syn, traces=True)
    assert s[:, 0, 0].tolist() == [False, False, True, False]
    assert tr[:, 0, 0].tolist() == [4, 8, 3, 3] and v.dtype == np.int64 and v.tolist() == [[3]]


@pytest.mark.parametrize("shape", [(0, 4, 5), (2, 0, 5)])
@pytest.mark.parametrize("readout", [False, True])
def test_empty_batches_and_runs(shape, readout):
    net = random_network(3, (5, 4, 3), readout=readout)
    assert_same_results(net, np.zeros(shape, bool))


@pytest.mark.parametrize("bias, shortcut", [(0, True), (1, False), (-1, False)])
def test_readout_totals_only_when_no_running_sum_can_reach_past_a_rail(bias, shortcut):
    # V = 6 bits: [-32, 31]. Over 4 steps the positive terms total at most 4 * (7 + b+) and the
    # negative ones at least 4 * (-8 + b-): bias 0 touches the lower rail exactly (allowed),
    # bias +-1 could pass a rail, so the steps decide.
    layer = Layer(weights=np.array([[7], [-8]]), bias=[bias], weight_bits=4, membrane_bits=6, readout=True)
    assert (readout_totals(layer, np.full((1, 2), 4), 4) is not None) == shortcut
    net = Network([layer], timesteps=4)
    spikes = np.zeros((3, 4, 2), bool)
    spikes[0] = True         # 7 - 8 + b each step
    spikes[1, :, 0] = True   # 4 * (7 + b): 32 saturates to 31 with b = 1
    spikes[2, :, 1] = True   # 4 * (-8 + b): -36 saturates to -32 with b = -1
    assert_same_results(net, spikes)
    assert_matches_reference(net, spikes)
    assert simulate(net, spikes).membranes[0][:, 0].tolist() == [4 * (bias - 1), min(28 + 4 * bias, 31),
                                                                  max(-32 + 4 * bias, -32)]


# --- the peers bench/model_speed.py compares against compute the same thing ---------------------

def peer_runs(net, spikes):
    """{peer: mismatching samples} for the installed peers (bench/peers.py), skipping without torch."""
    torch = pytest.importorskip("torch")
    bench = str(Path(__file__).resolve().parents[1] / "bench")
    if bench not in sys.path:
        sys.path.insert(0, bench)
    import peers
    found, _ = peers.runners(net)
    if not found:
        pytest.skip("neither snnTorch nor spikingjelly is installed")
    x = torch.from_numpy(spikes).float().transpose(0, 1).contiguous()
    ref = simulate(net, spikes)
    return {name: peers.mismatches(net, ref, *run(x)) for name, run in found.items()}


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), readout=st.booleans())
def test_peers_reproduce_the_model_when_nothing_saturates(seed, readout):
    # 30 inputs of |w| <= 32 over 12 steps stay far inside 16 bits, and float32 resolves 1/64 there.
    net = random_network(seed, (30, 20, 5), readout=readout, timesteps=12, leak="none", refractory=0,
                         reset="subtract", membrane_bits=16, weight_bits=6)
    assert all(n == 0 for n in peer_runs(net, random_spikes(seed, 6, 12, 30)).values())


def test_peers_differ_once_the_model_saturates():
    # 4-bit weights into 5-bit membranes: the model's rails act, the peers' floats do not.
    rng = np.random.default_rng(0)
    net = Network([Layer(weights=rng.integers(0, 8, (20, 6)), weight_bits=4, membrane_bits=6, threshold=20,
                         reset="subtract"),
                   Layer(weights=rng.integers(0, 8, (6, 3)), weight_bits=4, membrane_bits=5, readout=True)],
                  timesteps=8)
    assert all(n > 0 for n in peer_runs(net, rng.random((10, 8, 20)) < 0.5).values())


# --- block compaction (model/fastsyn.py): the same exact sums from only the inputs a block uses ---

def test_compaction_rule_boundaries():
    # Three quarters of the inputs at most ...
    assert compacts(1000, 75, 100, 64) and not compacts(1000, 76, 100, 64)
    # ... and a saving of MIN_SAVED multiply-adds, or fewer rows than sums.
    rows, n = 64, 64
    unused = MIN_SAVED // (rows * n)
    assert rows * unused * n == MIN_SAVED and 4 * (512 - unused + 1) <= 3 * 512
    assert compacts(rows, 512 - unused, 512, n) and not compacts(rows, 512 - unused + 1, 512, n)
    assert compacts(63, 70, 100, 64) and not compacts(64, 70, 100, 64)
    assert compacts(1, 0, 1, 2) and not compacts(2, 1, 1, 2)


def mixed_spikes(rng, batch, T, n_in, sparse_samples):
    """Samples [0, sparse_samples) use a fifth of the inputs at 30 %, the rest all inputs at 80 %."""
    s = rng.random((batch, T, n_in)) < 0.8
    few = rng.choice(n_in, n_in // 5, replace=False)
    sparse = np.zeros((sparse_samples, T, n_in), bool)
    sparse[:, :, few] = rng.random((sparse_samples, T, len(few))) < 0.3
    s[:sparse_samples] = sparse
    return s


def block_decisions(spikes2d, n):
    n_in = spikes2d.shape[1]
    return [compacts(len(p), int(p.any(axis=0).sum()), n_in, n)
            for p in (spikes2d[i:i + BLOCK_ROWS] for i in range(0, len(spikes2d), BLOCK_ROWS))]


@pytest.mark.parametrize("dtype", [None, np.float32, np.float64, "auto"])
def test_synaptic_input_over_compacted_and_plain_blocks(dtype):
    rng = np.random.default_rng(7)
    w = rng.integers(-128, 128, size=(600, 64))
    s = mixed_spikes(rng, 70, 8, 600, 40).reshape(-1, 600)  # 320 sparse rows, then 240 dense ones
    decisions = block_decisions(s, 64)
    assert decisions[0] and not decisions[-1]
    assert np.array_equal(synaptic_input(w, s, dtype).astype(np.int64), s.astype(np.int64) @ w)


@pytest.mark.parametrize("sparse_samples", [0, 16, 40, 70])
def test_step_major_drives_from_both_input_orders(sparse_samples):
    rng = np.random.default_rng(sparse_samples)
    w = rng.integers(-128, 128, size=(600, 64))
    bias = rng.integers(-100, 100, 64).astype(np.int32)
    s = mixed_spikes(rng, 70, 8, 600, sparse_samples)  # [batch, T, n_in]
    want = (s.astype(np.int64) @ w).transpose(1, 0, 2) + bias
    step_major = np.ascontiguousarray(s.transpose(1, 0, 2))
    for dtype in (np.float32, np.float64, None):
        # the bias added after the product, and as the product's always-spiking last input
        biased = np.vstack([w, bias[None, :]]).astype(dtype) if dtype is not None else None
        for extra in ({}, {"biased": biased}):
            for got in (drive_sample_major(w, s, dtype, np.int32, bias, **extra),
                        drive_step_major(w, step_major, dtype, np.int32, bias, **extra)):
                assert got.dtype == np.int32 and np.array_equal(got, want), (dtype, extra.keys())


@pytest.mark.parametrize("sparse_samples", [16, 40])
def test_networks_with_compacted_input_blocks(sparse_samples):
    # Sparse samples first, dense ones after: the fast path switches from gathered blocks to the
    # plain product mid-batch, and the hidden layer's spikes go through the step-major drive.
    rng = np.random.default_rng(sparse_samples)
    net = Network([Layer(weights=rng.integers(-128, 128, size=(600, 64)), weight_bits=8, membrane_bits=16,
                         threshold=300, reset=["zero", "subtract"][sparse_samples % 2], leak=Leak.shift(3)),
                   Layer(weights=rng.integers(-128, 128, size=(64, 10)), weight_bits=8, membrane_bits=16, threshold=50)],
                  timesteps=8)
    spikes = mixed_spikes(rng, 60, 8, 600, sparse_samples)
    assert block_decisions(spikes.reshape(-1, 600), 64)[0]
    assert_same_results(net, spikes)
    assert_matches_reference(net, spikes[sparse_samples - 2:sparse_samples + 1])


def test_compacted_product_keeps_the_float_bound():
    # A column whose used entries sum to -(2^24 + 1): float32 would round it, so the weights'
    # bound picks float64, and a one-row block over 513 of 1200 inputs is compacted.
    w = np.zeros((1200, 2), np.int64)
    w[:512, 0] = -(1 << 15)
    w[512, 0] = -1
    s = np.zeros((1, 1200), bool)
    s[0, :513] = True
    assert compacts(1, 513, 1200, 2) and exact_float_dtype(w) is np.float64
    assert int(synaptic_input(w, s)[0, 0]) == -((1 << 24) + 1)
    w[512, 0] = 0  # exactly -2^24: float32 holds it
    assert exact_float_dtype(w) is np.float32 and int(synaptic_input(w, s)[0, 0]) == -(1 << 24)


def test_plain_product_in_several_cache_sized_chunks():
    # Dense spikes never compact: the rows go through the plain product in chunks, the last partial.
    rng = np.random.default_rng(3)
    w = rng.integers(-128, 128, size=(50, 16))
    s = rng.random((3 * fastsyn._DENSE_ROWS + 5, 50)) < 0.8
    assert not any(block_decisions(s, 16))
    for dtype in (np.float32, np.float64):
        assert np.array_equal(synaptic_input(w, s, dtype).astype(np.int64), s.astype(np.int64) @ w)


# --- what the fast path keeps per layer, and the byte-wide spike counts of a readout ---

def test_prepared_values_belong_to_one_layer_for_its_lifetime():
    rng = np.random.default_rng(5)
    layer = Layer(weights=rng.integers(-128, 128, size=(6, 3)), bias=rng.integers(-9, 9, 3), threshold=40)
    p = prepared(layer)
    assert prepared(layer) is p and p.state is _state_dtype(layer) and p.float is exact_float_dtype(layer.weights, 8)
    assert np.array_equal(p.weights(np.float32), layer.weights) and p.weights(np.float32).dtype == np.float32
    twin = layer.replace()  # equal values, another layer: its own entry
    assert twin == layer and prepared(twin) is not p
    changed = layer.replace(weights=layer.weights + 1)
    assert np.array_equal(prepared(changed).weights(np.float32), layer.weights + 1)
    key = id(layer)
    del layer, p
    gc.collect()
    assert key not in prepared_module._PREPARED


@pytest.mark.parametrize("T", [255, 256])
def test_readout_counts_at_the_byte_boundary(T):
    # Every input and hidden neuron fires at every step: counts of exactly T, in bytes up to 255.
    hidden = Layer(weights=np.zeros((2, 3), np.int64), bias=np.ones(3, np.int64), threshold=0, membrane_bits=4)
    readout = Layer(weights=np.array([[1, 2], [3, 1], [2, 2]]), readout=True, membrane_bits=12)
    spikes = np.ones((2, T, 2), bool)
    assert step_counts(spikes, 1).dtype == (np.uint8 if T <= 255 else np.int32)
    assert step_counts(spikes, 1).max() == T
    for net in (Network([hidden, readout], timesteps=T),
                Network([readout.replace(weights=np.array([[1, 2], [3, 1]]))], timesteps=T)):
        assert_same_results(net, spikes)
        assert simulate(net, spikes).membranes[-1].max() == T * (6 if len(net.layers) == 2 else 4)
