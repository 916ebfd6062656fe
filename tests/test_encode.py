"""The input encoders' contract (README "Input encoders"): hand-worked golden vectors, hypothesis
against scalar transcriptions written here from the README text, and the on-chip encoder's twin."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spikegate.model.core import input_words
from spikegate.model.encode import (ON_CHIP, InputEncoder, bernoulli_fires, bernoulli_state, encode, from_levels,
                                    xorshift32)
from spikegate.model.network import Network
from spikegate.model.random import random_network

M32 = 2**32 - 1


# --- scalar transcriptions of the README ---------------------------------------------------------

def xs32(s):
    s ^= (s << 13) & M32
    s ^= s >> 17
    s ^= (s << 5) & M32
    return s


def fmix(h):
    h ^= h >> 16
    h = (h * 0x85EBCA6B) % 2**32
    h ^= h >> 13
    h = (h * 0xC2B2AE35) % 2**32
    return h ^ (h >> 16)


def scalar_state(seed, b):
    s = fmix((seed + (b + 1) * 0x9E3779B9) % 2**32)
    return s if s else 0x9E3779B9


def scalar_bernoulli(q, T, s):
    out = [[False] * len(q) for _ in range(T)]
    for t in range(T):
        for i in range(len(q)):
            s = xs32(s)
            d = s >> 16
            out[t][i] = 255 * d // 65536 < q[i]
    return out


def scalar_rate(q, T):
    return [[(t + 1) * qi // 255 > t * qi // 255 for qi in q] for t in range(T)]


def scalar_latency(q, T):
    def first(qi):  # round((255 - q)(T - 1) / 255), halves up, in exact rationals
        num, den = (255 - qi) * (T - 1), 255
        return (2 * num + den) // (2 * den)
    return [[qi > 0 and t == first(qi) for qi in q] for t in range(T)]


def hardware_order(q, T, encoding, s=0):
    """The gateware's loop as README describes it: remainders for rate, the level interval of
    each step for latency, one xorshift step per pair and d <= 257 q; an end-of-step word closes
    each step."""
    def least(t):  # L(t): the least level whose latency step is <= t
        return 256 if t < 0 else 0 if T == 1 else 255 - (255 * t + 127) // (T - 1)

    words, r = [], [0] * len(q)
    for t in range(T):
        for i, qi in enumerate(q):
            if encoding == "rate":
                fire = r[i] + qi >= 255
                r[i] = r[i] + qi - (255 if fire else 0)
            elif encoding == "latency":
                fire = qi > 0 and least(t) <= qi < least(t - 1)
            else:
                s = xs32(s)
                fire = qi > 0 and (s >> 16) <= 257 * qi
            if fire:
                words.append((i, 0))
        words.append((0, 1))
    return words


# --- golden vectors, worked by hand in README ----------------------------------------------------

def test_xorshift32_from_one():
    assert xorshift32(1) == 0x00042021 == 270369
    assert xorshift32(0x00042021) == 0x04080601 == 67634689
    s = np.array([1, 0x00042021], dtype=np.uint64)
    assert xorshift32(s).tolist() == [0x00042021, 0x04080601]


def test_bernoulli_draws_from_one():
    spikes = from_levels(np.array([[1, 4]]), "bernoulli", 1, [1])
    assert spikes.tolist() == [[[True, False]]]          # draws 0 < 1 and 4 >= 4
    assert from_levels(np.array([[1, 5]]), "bernoulli", 1, [1]).tolist() == [[[True, True]]]
    assert from_levels(np.array([[0, 4]]), "bernoulli", 1, [1]).tolist() == [[[False, False]]]


def test_bernoulli_probability_per_level():
    d = np.arange(65536, dtype=np.uint64)
    for q in range(256):
        n = int(bernoulli_fires(d << np.uint64(16), np.uint64(q)).sum())
        assert n == {0: 0, 255: 65536}.get(q, 257 * q + 1)


def test_state_zero_is_replaced():
    seed = (-0x9E3779B9) % 2**32       # seed + 1 * 0x9E3779B9 = 0 for sample 0, and fmix32(0) = 0
    assert bernoulli_state(seed, 0) == 0x9E3779B9
    assert bernoulli_state(0, 0) == fmix(0x9E3779B9) != 0


def test_rate_and_latency_examples():
    # q = 128, T = 4: floor(128 t / 255) = 0, 0, 1, 1, 2 at t = 0..4 -> spikes at steps 1 and 3
    assert from_levels(np.array([[128]]), "rate", 4)[0, :, 0].tolist() == [False, True, False, True]
    # latency: q = 255 -> step 0; q = 1 -> round(254 * 9 / 255) = round(8.96) = 9; q = 0 never
    sp = from_levels(np.array([[255, 1, 0]]), "latency", 10)[0]
    assert np.flatnonzero(sp[:, 0]).tolist() == [0] and np.flatnonzero(sp[:, 1]).tolist() == [9]
    assert not sp[:, 2].any()


def test_bad_arguments_name_the_parameter():
    with pytest.raises(ValueError, match="seed"):
        encode(np.zeros((1, 2)), "bernoulli", 4, seed=2**32)
    with pytest.raises(ValueError, match="states"):
        from_levels(np.zeros((1, 2), np.int64), "bernoulli", 4, [0])
    with pytest.raises(ValueError, match="levels"):
        from_levels(np.full((1, 2), 256), "rate", 4)
    with pytest.raises(ValueError, match="poisson"):
        from_levels(np.zeros((1, 2), np.int64), "poisson", 4)
    with pytest.raises(ValueError, match="n_in"):
        InputEncoder(0, 4)
    with pytest.raises(ValueError, match="encoding"):
        encode(np.zeros((1, 2)), "lfsr", 4)


# --- hypothesis against the transcriptions ---------------------------------------------------------

levels = st.lists(st.integers(0, 255), min_size=1, max_size=12)


@settings(max_examples=150, deadline=None)
@given(q=levels, T=st.integers(1, 40), seed=st.integers(0, M32), b=st.integers(0, 5))
def test_bernoulli_matches_scalar(q, T, seed, b):
    x = np.array([q] * (b + 1)) / 255.0
    spikes = encode(x, "bernoulli", T, seed)
    assert spikes[b].tolist() == scalar_bernoulli(q, T, scalar_state(seed, b))
    assert bernoulli_state(seed, b) == scalar_state(seed, b)


@settings(max_examples=150, deadline=None)
@given(q=levels, T=st.integers(1, 300))
def test_rate_and_latency_match_scalar(q, T):
    x = np.array([q]) / 255.0
    assert encode(x, "rate", T)[0].tolist() == scalar_rate(q, T)
    assert encode(x, "latency", T)[0].tolist() == scalar_latency(q, T)


@settings(max_examples=150, deadline=None)
@given(q=levels, T=st.integers(1, 300), encoding=st.sampled_from(ON_CHIP), state=st.integers(1, M32))
def test_on_chip_order_is_the_contract(q, T, encoding, state):
    """The gateware's rules (remainder, multiplied-out latency, one draw per pair) give the
    contract's spikes, as the core's load words."""
    twin = InputEncoder(len(q), T)
    words = twin.words(np.array(q), encoding, state)
    assert words == hardware_order(q, T, encoding, state)
    assert words == input_words(from_levels(np.array([q]), encoding, T, [state] if encoding == "bernoulli" else None)[0])
    assert twin.cycles == T * (len(q) + 1) + 1


def test_network_takes_bernoulli_and_batches_agree():
    from spikegate import datasets
    from spikegate.evaluation import evaluate
    net = random_network(3, (6, 5, 3), timesteps=7).replace(encoding="bernoulli")
    again = Network.from_dict(net.to_dict())
    assert again.encoding == "bernoulli"
    x = np.random.default_rng(1).random((9, 6))
    whole = datasets.encode_for(net, x, seed=11)
    assert whole.tolist() == encode(x, "bernoulli", 7, 11).tolist()
    a = evaluate(net, x, np.zeros(9, int), seed=11, batch_size=2)
    b = evaluate(net, x, np.zeros(9, int), seed=11, batch_size=9)
    assert a == b
