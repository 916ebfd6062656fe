"""Synaptic sums grouped by spike pattern (spikegate.model.patterns) against the plain integer
product, the route between it and the float product (fastsim.layer_drive), the rail bounds that
let the neuron loop skip its saturation (prepared.rails_can_act), and whole networks on those paths
against the step-major reference and the scalar transcription of the contract."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from spikegate.model import Layer, Leak, Network, simulate
from spikegate.model import patterns
from spikegate.model.encode import from_levels
from spikegate.model.fastsim import run_drive
from spikegate.model.patterns import (CHUNK_SAMPLES, MAX_STEPS, REPROBE, SMALL_STEP_SUMS, Patterns,
                                      pattern_drive, prefer_patterns, spike_codes)
from spikegate.model.prepared import prepared, rails_can_act
from test_model import assert_matches_reference
from test_model_speed import assert_same_results

# The numpy paths are what these tests are about (test_compiled.py tests the compiled drive).
pytestmark = pytest.mark.usefixtures("numpy_paths")


def scalar_codes(spikes, sample_major):
    """Each input's code written out: bit t set when the input spikes at step t."""
    s = spikes if sample_major else spikes.transpose(1, 0, 2)
    batch, T, n_in = s.shape
    return [[sum(int(s[b, t, i]) << t for t in range(T)) for i in range(n_in)] for b in range(batch)]


@settings(max_examples=120, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), T=st.integers(1, MAX_STEPS), n_in=st.integers(1, 40),
       batch=st.integers(1, 6), sample_major=st.booleans(), p=st.sampled_from([0.0, 0.2, 0.7, 1.0]))
def test_spike_codes_are_each_inputs_steps_as_bits(seed, T, n_in, batch, sample_major, p):
    # n_in a multiple of 8 takes the 64-bit word path, others the byte path.
    rng = np.random.default_rng(seed)
    shape = (batch, T, n_in) if sample_major else (T, batch, n_in)
    spikes = rng.random(shape) < p
    codes = spike_codes(spikes, sample_major)
    assert codes.dtype == (np.uint8 if T <= 8 else np.uint16) and codes.shape == (batch, n_in)
    assert codes.tolist() == scalar_codes(spikes, sample_major)


def test_spike_codes_of_a_strided_view_and_the_step_limit():
    rng = np.random.default_rng(1)
    spikes = rng.random((6, 8, 64)) < 0.3
    view = spikes[::2]  # not contiguous: the byte path
    assert spike_codes(view, True).tolist() == scalar_codes(view, True)
    with pytest.raises(ValueError, match="timesteps = 17 .* valid: 1..16"):
        spike_codes(np.zeros((2, 17, 8), bool), True)


def test_patterns_group_the_active_pairs_by_code():
    codes = np.array([[0, 5, 5, 3], [3, 0, 0, 9]], np.uint8)
    p = Patterns(codes)
    assert p.table.tolist() == [3, 5, 9] and p.count.tolist() == [2, 2, 1] and p.active == 5
    assert [p.steps_using(t).tolist() for t in range(4)] == [[0, 1, 2], [0], [1], [2]]
    assert p.step_rows(4) == 6
    w = np.arange(4 * 2, dtype=np.int16).reshape(4, 2)  # rows (0,1) (2,3) (4,5) (6,7)
    G = p.code_sums(w)
    # code 3: sample 0 input 3, sample 1 input 0; code 5: sample 0 inputs 1 and 2; code 9: sample 1 input 3.
    assert G.tolist() == [[[6, 7], [0, 1]], [[6, 8], [0, 0]], [[0, 0], [6, 7]]]


def drive_reference(weights, spikes, sample_major, bias):
    s = spikes if sample_major else spikes.transpose(1, 0, 2)
    return (s.astype(np.int64) @ weights.astype(np.int64)).transpose(1, 0, 2) + bias


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), T=st.integers(1, MAX_STEPS), n_in=st.integers(1, 70),
       n=st.sampled_from([1, 10, 64, 130]), batch=st.sampled_from([1, 17, 130, CHUNK_SAMPLES + 3]),
       sample_major=st.booleans(), state=st.sampled_from([np.int16, np.int32]), levels=st.integers(1, 255))
def test_pattern_drive_equals_the_integer_product(seed, T, n_in, n, batch, sample_major, state, levels):
    # Batches across a chunk boundary, chunks on both sides of SMALL_STEP_SUMS (one float
    # product, or int16 additions), int16 and int32 drives, rate-coded and silent inputs.
    rng = np.random.default_rng(seed)
    q = rng.integers(0, levels + 1, (batch, n_in)) * (rng.random((batch, n_in)) < 0.6)
    spikes = from_levels(q, "rate", T)
    if not sample_major:
        spikes = np.ascontiguousarray(spikes.transpose(1, 0, 2))
    w = rng.integers(-128, 128, (n_in, n))
    bias = rng.integers(-300, 300, n).astype(state)
    got = pattern_drive(w.astype(np.int16), spikes, sample_major, state, bias)
    assert got.dtype == state and np.array_equal(got, drive_reference(w, spikes, sample_major, bias))


def test_pattern_drive_at_the_int16_bound_and_on_both_step_sum_forms():
    # Every weight at -128 over 255 inputs: sums down to -32640, inside int16; each chunk size
    # takes one of the two forms of the step sums.
    rng = np.random.default_rng(3)
    w = np.full((255, 128), -128)
    bias = np.zeros(128, np.int32)
    for batch in (SMALL_STEP_SUMS // 128, SMALL_STEP_SUMS // 128 + 1):
        spikes = rng.random((batch, 8, 255)) < 0.9
        spikes[0] = True
        got = pattern_drive(w.astype(np.int16), spikes, True, np.int32, bias)
        assert got.min() == -32640 and np.array_equal(got, drive_reference(w, spikes, True, bias))


def mnist_like_network(seed, n_out=128, weight=60):
    rng = np.random.default_rng(seed)
    return Network([Layer(weights=rng.integers(-weight, weight + 1, (784, n_out)), weight_bits=8, membrane_bits=17,
                          threshold=1500, reset="subtract"),
                    Layer(weights=rng.integers(-128, 128, (n_out, 10)), weight_bits=8, membrane_bits=17,
                          readout=True)], timesteps=8)


def digit_levels(rng, batch):
    """Levels shaped like MNIST: a blob of bright strokes in the middle, the rest dark."""
    yy, xx = np.mgrid[:28, :28]
    blob = ((yy - 14) ** 2 + (xx - 14) ** 2 < 90).reshape(-1)
    q = rng.integers(0, 256, (batch, 784)) * (rng.random((batch, 784)) < 0.5) * blob
    return np.where(q > 200, 255, q)


def test_the_route_takes_patterns_for_rate_codes_and_the_product_otherwise():
    rng = np.random.default_rng(0)
    rate = from_levels(digit_levels(rng, 300), "rate", 8)
    assert prefer_patterns(rate, True, 128)
    assert not prefer_patterns(rate[:patterns.MIN_BATCH - 1], True, 128)  # too few samples to repay it
    assert not prefer_patterns(rate, True, 4)  # a narrow layer: the product is cheap
    # Independent random spikes make a code per active input: the product is cheaper.
    assert not prefer_patterns(rng.random((300, 16, 784)) < 0.13, True, 128)
    assert not prefer_patterns(np.zeros((300, 8, 784), bool), True, 128)


def test_a_layer_reprobes_its_route_and_never_takes_patterns_past_the_int16_bound():
    net = mnist_like_network(1)
    rng = np.random.default_rng(1)
    rate = from_levels(digit_levels(rng, 200), "rate", 8)
    noise = rng.random((200, 8, 784)) < 0.13
    router = prepared(net.layers[0]).router
    assert router.patterns(rate, True, 128)
    for _ in range(REPROBE - 1):  # the kept answer, whatever the input
        assert router.patterns(noise, True, 128)
    assert not router.patterns(noise, True, 128)  # asked again
    assert router.patterns(rate[:100], True, 128)  # another batch size: its own answer
    heavy = mnist_like_network(2, weight=127)  # column sums above 2^15
    assert prepared(heavy.layers[0]).int16() is None and prepared(net.layers[0]).int16() is not None
    res = simulate(heavy, rate)
    assert_same_results(heavy, rate[:40])
    assert res.membranes[1].shape == (200, 10)


@pytest.mark.parametrize("seed", [0, 1])
def test_networks_on_the_pattern_path_equal_the_step_major_contract(seed):
    net = mnist_like_network(seed, n_out=[128, 200][seed])
    rng = np.random.default_rng(seed)
    spikes = from_levels(digit_levels(rng, CHUNK_SAMPLES + 40), "rate", 8)
    assert prefer_patterns(spikes, True, net.layers[0].n)
    assert_same_results(net, spikes)
    assert_matches_reference(net, spikes[:3])


def layer_for_rails(rng, readout):
    leaks = [Leak.none(), Leak.shift(int(rng.integers(1, 5))), Leak.multiply(int(rng.integers(0, 17)), 4)]
    leak = leaks[rng.integers(3)]
    if readout:
        return Layer(weights=np.zeros((1, 4), np.int64), weight_bits=8, membrane_bits=int(rng.integers(6, 12)),
                     leak=leak, readout=True)
    bits = int(rng.integers(6, 12))
    return Layer(weights=np.zeros((1, 4), np.int64), weight_bits=8, membrane_bits=bits,
                 threshold=int(rng.integers(1, 1 << (bits - 2))), reset=["zero", "subtract"][rng.integers(2)],
                 leak=leak, refractory=int(rng.integers(0, 3)))


@settings(max_examples=300, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), T=st.integers(1, 12), readout=st.booleans())
def test_a_rail_judged_unreachable_is_never_reached(seed, T, readout):
    # Drives at the bounds themselves as well as inside them; the neuron loop with every rail
    # clipping must give what it gives with the rails the bound leaves open.
    rng = np.random.default_rng(seed)
    layer = layer_for_rails(rng, readout)
    low, high = sorted(int(x) for x in rng.integers(layer.v_min // 2, layer.v_max // 2 + 1, 2))
    rails = rails_can_act(layer, T, low, high)
    for pick in ("low", "high", "mixed"):
        if pick == "mixed":
            drive = rng.integers(low, high + 1, (T, 5, 4))
        else:
            drive = np.full((T, 5, 4), low if pick == "low" else high)
        drive = drive.astype(np.int32)
        want = run_drive(layer, drive.copy(), True, (True, True))
        got = run_drive(layer, drive.copy(), True, rails)
        for a, b in zip(want, got):
            assert np.array_equal(a, b), (pick, rails)


def test_rail_bounds_by_hand():
    layer = Layer(weights=np.zeros((1, 1), np.int64), weight_bits=8, membrane_bits=8, threshold=50, reset="subtract")
    # v_max = 127, drives up to 60: a membrane can sit at theta = 50 without firing; 50 + 60
    # fires down to 60, 60 + 60 to 70, and 70 + 60 passes 127 at the fourth step.
    assert rails_can_act(layer, 3, 0, 60) == (False, False)
    assert rails_can_act(layer, 4, 0, 60) == (False, True)
    # Below: after T steps at least T * low; -128 is the rail.
    assert rails_can_act(layer, 4, -32, 0) == (False, False)
    assert rails_can_act(layer, 5, -32, 0) == (True, False)
    assert rails_can_act(layer, 3, None, None) == (True, True)
