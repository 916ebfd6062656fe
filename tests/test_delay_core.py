"""The gateware's twin of delayed layers (model/delay.py: per-delay accumulator slots), bit-exact
with model/temporal.py's runner, with the documented cycle formula.

The runner is checked against a scalar transcription of README in tests/test_temporal.py; here the
twin, which keeps S = D_max + 1 slots per neuron and adds each event's weights into slot
(t + d) mod S, is compared with it. The gateware is compared with the twin in test_hdl_delay.py
(Amaranth's simulator) and test_delay_sim.py (Verilator).
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from conftest import cycle_formula
from spikegate.model import Layer, Leak, Network, simulate
from spikegate.model.core import NetworkCore, batch_cycles
from spikegate.model.delay import DelayedSynapseArray, delay_words
from spikegate.model.hardware import HardwareConfig
from spikegate.model.random import random_network, random_spikes
from spikegate.model.temporal import Temporal, random_temporal
from test_temporal_core import assert_twin_is_the_runner


def two_neurons(T=3):
    # 1 input -> 2 neurons (w 5, theta 4), delays 0 and 2; 1 lane: G = 2, S = 3 slots.
    return Network([Layer(weights=[[5, 5]], threshold=4, temporal=Temporal(delays=[[0, 2]]))], timesteps=T)


def test_cycles_and_spikes_worked_by_hand():
    # The input spikes at t0: neuron 0 fires at t0, neuron 1 at t2 (5 > 4 both times).
    # t0: 1 + (1*2 + 2 + 8 + 2) + 3*2 (the slots' clear) = 21; t1, t2: 1 + (0 + 2 + 8 + 2) = 13 each;
    # plus the final boundary cycle: 1 + 21 + 13 + 13 = 48.
    net = two_neurons()
    spikes = np.array([[1], [0], [0]], bool)
    r = NetworkCore(net, HardwareConfig(lanes=1)).run(spikes)
    assert r.spikes[0].astype(int).tolist() == [[1, 0], [0, 0], [0, 1]]
    assert r.cycles == cycle_formula(net, 1, spikes) == 48
    assert batch_cycles(net, 1, spikes[None], simulate(net, spikes[None])).tolist() == [48]


def test_a_spike_landing_after_the_run_is_cleared_before_the_next():
    # Sample A's spike at t2 lands at t4 >= T in slot 4 mod 3 = 1; sample B is silent. Without the
    # clear, B's step 1 would read it and neuron 1 would fire.
    net = two_neurons()
    twin = NetworkCore(net, HardwareConfig(lanes=1))
    a = twin.run(np.array([[0], [0], [1]], bool))
    assert a.spikes[0].astype(int).tolist() == [[0, 0], [0, 0], [1, 0]]
    assert twin.layers[0].synapses.acc[1].tolist() == [[0], [5]]   # waiting in slot 1, group 1
    b = twin.run(np.zeros((3, 1), bool))
    assert not b.spikes[0].any() and b.membranes[0].tolist() == [0, 0]


def test_slots_and_delay_words_layout():
    # 3 inputs -> 5 neurons, 2 lanes: G = 3; delays up to 2: S = 3 slots of 4 words (G rounded up to
    # a power of two) per lane, the last one 3: 2 * 4 + 3 = 11 words; a delay word holds D in 2 bits.
    D = np.array([[0, 1, 2, 0, 1], [2, 2, 0, 0, 0], [1, 0, 0, 2, 2]])
    lyr = Layer(weights=np.arange(15).reshape(3, 5) - 7, threshold=3, weight_bits=6, temporal=Temporal(delays=D))
    arr = DelayedSynapseArray(lyr, 2)
    assert arr.slots == 3 and arr.acc.shape == (3, 3, 2)
    arr.integrate(0)
    # slot (0 + d) of lane k, group g gets W[0, 2g + k]
    want = np.zeros((3, 3, 2), np.int64)
    for j in range(5):
        want[D[0, j], j // 2, j % 2] += lyr.weights[0, j]
    np.testing.assert_array_equal(arr.acc, want)
    words = delay_words(lyr, 2, 2)
    assert words[:3] == [0 | 1 << 2, 2 | 0 << 2, 1] and words[3:6] == [2 | 2 << 2, 0, 0]
    (geo,) = HardwareConfig(lanes=2).geometry(Network([lyr], timesteps=2))
    assert (geo.delay_slots, geo.delay_bits, geo.slot_words, geo.drain_stages, geo.clear_cycles) == (3, 2, 11, 10, 11)
    mem = geo.memory_bits()
    assert mem["accumulators"] == 11 * 2 * geo.acc_bits and mem["delays"] == 3 * 3 * 2 * 2
    assert geo.cycles(4) == 4 * 3 + 3 + 10 and geo.cycles(4, first=True) == 4 * 3 + 3 + 10 + 11


def test_all_zero_delays_make_a_plain_layer():
    lyr = Layer(weights=[[1, 2]], threshold=1, temporal=Temporal(delays=[[0, 0]], current=Leak.none()))
    (geo,) = HardwareConfig(lanes=1).geometry(Network([lyr], timesteps=2))
    assert geo.delay_slots == 0 and "delays" not in geo.memory_bits() and geo.current


def delayed_network(seed: int):
    rng = np.random.default_rng(seed)
    net = random_network(seed)
    layers = []
    for lyr in net.layers:
        parts = ("delays",) + tuple(p for p in ("current", "recurrent") if rng.random() < 0.4)
        layers.append(random_temporal(rng, lyr, parts=parts, max_delay=int(rng.integers(1, 9)))
                      if rng.random() < 0.8 else lyr)
    return net.replace(layers=layers)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31), lanes_exp=st.integers(0, 6), p=st.floats(0.0, 1.0))
def test_twin_is_the_temporal_runner(seed, lanes_exp, p):
    net = delayed_network(seed)
    # three samples in a row: each run starts from cleared slots
    assert_twin_is_the_runner(net, 1 << lanes_exp, random_spikes(seed ^ 0x5A5A, 3, net.timesteps, net.n_inputs, p=p))


@pytest.mark.parametrize("max_delay", [1, 7, 255])
def test_twin_at_the_rails(max_delay):
    """Dense extreme weights into narrow membranes, delays up to the largest allowed."""
    for seed in range(3):
        rng = np.random.default_rng(seed)
        net = random_network(seed, (7, 9, 4), weight_bits=3, membrane_bits=4, density=1.0, readout=False,
                             timesteps=12)
        net = net.replace(layers=[random_temporal(rng, lyr, parts=("delays", "current"), max_delay=max_delay)
                                  for lyr in net.layers])
        assert_twin_is_the_runner(net, [2, 4], random_spikes(seed, 3, net.timesteps, net.n_inputs, p=0.8))
