"""The gateware's twin (model/layer.py, model/core.py) of temporal layers: synaptic current (CUBA)
and recurrence, bit-exact with model/temporal.py's runner, with the documented cycle formula.

The vectorised runner is itself checked against a scalar transcription of README in
tests/test_temporal.py; here the twin, which works group by group in the gateware's order with its
own state layout, is compared with it. The Verilog is compared with the twin in test_temporal_sim.py.
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from conftest import cycle_formula
from spikegate.model import Layer, Leak, Network, simulate
from spikegate.model.core import NetworkCore, RunResult, batch_cycles
from spikegate.model.hardware import HardwareConfig
from spikegate.model.random import random_network, random_spikes
from spikegate.model.temporal import Temporal, random_temporal


def test_cycles_and_state_worked_by_hand():
    # Layer 0: 1 input -> 2 neurons (w 5, theta 4, zero reset), recurrent weights 0, 1 lane: G = 2.
    # Layer 1: 2 -> 1 CUBA neuron (w 1, current leak none, theta 100), G = 1.
    # t0: the input spikes; both hidden neurons fire.   1 + (1*2 + 2 + 8) + (2*1 + 1 + 8 + 3) = 27
    # t1: silent input; their 2 spikes of t0 come back: 1 + ((0 + 2)*2 + 2 + 8) + (0 + 1 + 8 + 3) = 27
    # plus the final boundary cycle: 55 (sequential schedule). Inflight, layer-step costs 12, 14 (layer 0)
    # and 14, 12 (layer 1): waves 1 + 12, 1 + max(14, 14), 1 + 12, so 1 + 13 + 15 + 13 = 42.
    # The current: c = 2, then 2 again; the membrane 2, then 4.
    net = Network([Layer(weights=[[5, 5]], threshold=4, temporal=Temporal(recurrent=np.zeros((2, 2), np.int64))),
                   Layer(weights=[[1], [1]], threshold=100, temporal=Temporal(current=Leak.none()))], timesteps=2)
    spikes = np.array([[1], [0]], bool)
    for schedule, cycles in (("sequential", 55), ("inflight", 42)):
        twin = NetworkCore(net, HardwareConfig(lanes=1, schedule=schedule))
        r = twin.run(spikes)
        assert r.spikes[0].astype(int).tolist() == [[1, 1], [0, 0]]
        assert r.membranes[1].tolist() == [4]
        assert twin.layers[1].neurons(twin.layers[1].c).tolist() == [2]
        assert r.cycles == cycle_formula(net, 1, spikes, schedule=schedule) == cycles
        assert batch_cycles(net, 1, spikes[None], simulate(net, spikes[None]), schedule=schedule).tolist() == [cycles]


def test_recurrent_spikes_are_weighted_by_the_recurrent_rows():
    # One neuron exciting itself: w 3 from the input at t0 only, Wr 3, theta 2 (subtract reset):
    # v 3 fires (-> 1), then 1 + 3 = 4 fires (-> 2), 2 + 3 = 5 fires ... every step after one input spike.
    net = Network([Layer(weights=[[3]], threshold=2, reset="subtract",
                         temporal=Temporal(recurrent=[[3]]))], timesteps=4)
    r = NetworkCore(net, HardwareConfig(lanes=2)).run(np.array([[1], [0], [0], [0]], bool))
    assert r.spikes[0][:, 0].astype(int).tolist() == [1, 1, 1, 1]
    assert r.membranes[0].tolist() == [4]


def temporal_network(seed: int, parts=None):
    rng = np.random.default_rng(seed)
    net = random_network(seed)
    layers = [random_temporal(rng, lyr, parts=parts or tuple(p for p in ("current", "recurrent") if rng.random() < 0.7))
              if rng.random() < 0.8 else lyr for lyr in net.layers]
    return net.replace(layers=layers)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31), lanes_exp=st.integers(0, 6), p=st.floats(0.0, 1.0))
def test_twin_is_the_temporal_runner(seed, lanes_exp, p):
    net = temporal_network(seed)
    assert_twin_is_the_runner(net, 1 << lanes_exp, random_spikes(seed ^ 0x5A5A, 2, net.timesteps, net.n_inputs, p=p))


def assert_twin_is_the_runner(net, P, spikes):
    """The twin runs the samples [N, T, n_in] in a row like the model, with the formula's cycles."""
    ref = simulate(net, spikes)
    twin = NetworkCore(net, HardwareConfig(lanes=P))
    for b in range(len(spikes)):
        r = twin.run(spikes[b])
        assert (m := RunResult.from_simulation(net, ref, b).mismatch(r)) is None, m
        assert r.cycles == cycle_formula(net, P, spikes[b])
    np.testing.assert_array_equal(batch_cycles(net, P, spikes, ref), cycle_formula(net, P, spikes))


@pytest.mark.parametrize("parts", [("current",), ("recurrent",), ("current", "recurrent")])
def test_twin_at_the_rails(parts):
    """Narrow membranes and dense, extreme weights: the current saturates like the membrane."""
    for seed in range(6):
        rng = np.random.default_rng(seed)
        net = random_network(seed, (7, 9, 4), weight_bits=3, membrane_bits=4, density=1.0, readout=False)
        net = net.replace(layers=[random_temporal(rng, lyr, parts=parts) for lyr in net.layers])
        spikes = random_spikes(seed, 3, net.timesteps, net.n_inputs, p=0.8)
        ref = simulate(net, spikes)
        twin = NetworkCore(net, HardwareConfig(lanes=[2, 4]))
        for b in range(3):
            r = twin.run(spikes[b])
            assert (m := RunResult.from_simulation(net, ref, b).mismatch(r)) is None, m
            assert r.cycles == cycle_formula(net, [2, 4], spikes[b])


def test_dense_geometry_and_cycles_are_unchanged():
    net = random_network(3, (10, 7, 5), readout=False)
    for geo in HardwareConfig(lanes=4).geometry(net):
        G = geo.groups
        assert not geo.current and not geo.recurrent and geo.rows == geo.n_in
        assert geo.cycles(5) == 5 * G + G + 8
        assert set(geo.memory_bits()) <= {"weights", "accumulators", "membranes", "bias", "refractory", "counts"}
        assert geo.memory_bits()["weights"] == geo.n_in * G * 4 * geo.weight_bits


def test_temporal_memories_are_counted():
    # 5 inputs, 6 neurons, 4 lanes: G = 2, the recurrent region starts at row 8 (5 rounded up to 4s).
    lyr = Layer(weights=np.ones((5, 6), np.int64), threshold=3, weight_bits=4, membrane_bits=10,
                temporal=Temporal(current=Leak.shift(2), recurrent=np.ones((6, 6), np.int64)))
    (geo,) = HardwareConfig(lanes=4).geometry(Network([lyr], timesteps=2))
    assert (geo.rows, geo.groups, geo.acc_bits) == (14, 2, 4 + 4)
    mem = geo.memory_bits()
    assert mem["weights"] == 14 * 2 * 4 * 4
    assert mem["currents"] == 2 * 4 * 10
    assert mem["recurrent_words"] == 2 * (2 + 4)  # row groups up to 3, and the 4-lane word
    assert geo.cycles(3, 2) == (3 + 2) * 2 + 2 + 8 + 3


def test_hardware_refuses_delays_in_spram_naming_the_layer():
    net = Network([Layer(weights=[[1]], threshold=1),
                   Layer(weights=[[1]], threshold=1, temporal=Temporal(delays=[[2]], current=Leak.none()),
                         name="late")], timesteps=2)
    with pytest.raises(ValueError, match=r"layer 1 \(late\): weight_ram = 'spram' is not valid for a delayed"):
        HardwareConfig(weight_ram="spram", lanes=4).geometry(net)


def test_hardware_refuses_recurrent_weights_in_spram():
    net = Network([Layer(weights=np.ones((4, 4), np.int64), threshold=1, name="rec",
                         temporal=Temporal(recurrent=np.ones((4, 4), np.int64)))], timesteps=2)
    with pytest.raises(ValueError, match=r"layer 0 \(rec\): weight_ram = 'spram' is not valid for a recurrent"):
        HardwareConfig(weight_ram="spram").geometry(net)
