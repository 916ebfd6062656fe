"""The gateware's twins (model/core.py and friends) against the contract, on many networks.

Pure numpy, so it covers far more networks than the Amaranth simulations; the gateware is then
compared with the twin (tests/test_hdl_core.py).
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from conftest import cycle_formula
from spikegate.model.core import SCHEDULES, NetworkCore, RunResult, batch_cycles, input_words, schedule_cycles
from spikegate.model.hardware import HardwareConfig
from spikegate.model.network import Layer, Network
from spikegate.model.random import random_network, random_spikes
from spikegate.model.simulate import simulate


def test_cycles_worked_by_hand():
    # 2 inputs -> 3 neurons (fire on any input) -> 1 readout neuron, 2 lanes: G = [2, 1].
    # t0: both inputs spike, all 3 hidden neurons fire:  1 + (2*2 + 2 + 8) + (3*1 + 1 + 8) = 27
    # t1: silent:                                         1 + (0 + 2 + 8)   + (0 + 1 + 8)   = 20
    # plus the final boundary cycle: 1 + 27 + 20 = 48 (sequential schedule).
    # Inflight, wave w = layer 0 on step w and layer 1 on step w - 1, each wave 1 + its slowest:
    # w0: layer 0 t0 alone:                 1 + (2*2 + 2 + 8)                 = 15
    # w1: layer 0 t1 (10) with layer 1 t0 (12): 1 + max(0 + 2 + 8, 3*1 + 1 + 8) = 13
    # w2: layer 1 t1 alone:                 1 + (0 + 1 + 8)                   = 10
    # plus the final boundary cycle: 1 + 15 + 13 + 10 = 39.
    net = Network([Layer(weights=np.full((2, 3), 5), threshold=4),
                   Layer(weights=np.ones((3, 1), np.int64), readout=True)], timesteps=2)
    spikes = np.array([[1, 1], [0, 0]], bool)
    for schedule, cycles in (("sequential", 48), ("inflight", 39)):
        twin = NetworkCore(net, HardwareConfig(lanes=2, schedule=schedule))
        r = twin.run(spikes)
        assert r.spikes[0].astype(int).tolist() == [[1, 1, 1], [0, 0, 0]]
        assert r.cycles == twin.cycles(spikes) == cycle_formula(net, 2, spikes, schedule=schedule) == cycles
        assert batch_cycles(net, 2, spikes[None], simulate(net, spikes[None]), schedule=schedule).tolist() == [cycles]
    assert HardwareConfig().schedule == "inflight"


def test_schedule_is_validated():
    with pytest.raises(ValueError, match=r"schedule = 'pipelined' is not valid; valid: inflight, sequential"):
        HardwareConfig(schedule="pipelined")
    with pytest.raises(ValueError, match="schedule = 'x' is not valid"):
        schedule_cycles(np.zeros((1, 1), np.int64), "x")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31), lanes_exp=st.integers(0, 6), p=st.floats(0.0, 1.0),
       schedule=st.sampled_from(SCHEDULES))
def test_twin_is_the_contract(seed, lanes_exp, p, schedule):
    net = random_network(seed)
    spikes = random_spikes(seed ^ 0x5A5A, 2, net.timesteps, net.n_inputs, p=p)
    ref = simulate(net, spikes)
    twin = NetworkCore(net, HardwareConfig(lanes=1 << lanes_exp, schedule=schedule))
    for b in range(2):
        r = twin.run(spikes[b])
        assert (m := RunResult.from_simulation(net, ref, b).mismatch(r)) is None, m
        # The documented cycle formula, from the contract's spike counts and the lane count alone.
        expect = cycle_formula(net, 1 << lanes_exp, spikes[b], schedule=schedule)
        assert r.cycles == expect == twin.cycles(spikes[b])
        # mon words: exactly the non-zero P-lane words of every layer's spikes, in step/layer order
        # (sequential) or layer/step order (inflight).
        words = []
        order = ([(t, l) for t in range(net.timesteps) for l in range(len(twin.geometry))]
                 if schedule == "sequential" else
                 [(t, l) for l in range(len(twin.geometry)) for t in range(net.timesteps)])
        for t, l in order:
            geo = twin.geometry[l]
            s = np.zeros(geo.groups * geo.lanes, bool)
            s[:geo.n] = ref.spikes[l][b, t]
            for g in range(geo.groups):
                w = sum(1 << k for k in range(geo.lanes) if s[g * geo.lanes + k])
                if w:
                    words.append((l, t, g * geo.lanes, w))
        assert r.mon == words


def test_input_words():
    s = np.array([[0, 1, 1], [0, 0, 0], [1, 0, 1]], bool)
    assert input_words(s) == [(1, 0), (2, 0), (0, 1), (0, 1), (0, 0), (2, 0), (0, 1)]


@pytest.mark.parametrize("kw,match", [
    ({"lanes": 0}, "lanes = 0"), ({"lanes": 3}, "power of two"), ({"lanes": 128}, "power of two"),
    ({"lanes": [4]}, "one lane count per layer"), ({"lanes": "4"}, "lanes must be"),
    ({"max_events": 0}, "max_events = 0"), ({"trace_depth": -1}, "trace_depth = -1"),
    ({"memory_budget": 100}, "memory_budget = 100 bits"),
    ({"weight_ram": "lut"}, "weight_ram = 'lut'"), ({"weight_ram": ["spram"]}, "one per layer"),
])
def test_impossible_configurations(kw, match):
    net = random_network(3, (4, 5, 2))
    with pytest.raises((ValueError, TypeError), match=match):
        HardwareConfig(**kw).geometry(net)
    with pytest.raises((ValueError, TypeError), match=match):
        NetworkCore(net, HardwareConfig(**kw))


def test_hardware_config_checks_its_own_values_without_a_network():
    for kw, match in (({"lanes": 3}, "lanes = 3 \\(layer 0\\)"), ({"lanes": [4, 6]}, "lanes = 6 \\(layer 1\\)"),
                      ({"lanes": [4, "2"]}, "lanes\\[1\\] must be an integer"), ({"max_events": 0}, "max_events = 0"),
                      ({"trace_depth": True}, "trace_depth must be an integer"),
                      ({"weight_ram": ("block", "x")}, "weight_ram = 'x' \\(layer 1\\)"),
                      ({"memory_budget": 0}, "memory_budget = 0")):
        with pytest.raises((ValueError, TypeError), match=match):
            HardwareConfig(**kw)
    hw = HardwareConfig(lanes=[2, np.int64(4)], weight_ram=["spram", "block"])
    assert hw.lanes == (2, 4) and type(hw.lanes[1]) is int and hw.weight_ram == ("spram", "block")
    assert hw == HardwareConfig(lanes=(2, 4), weight_ram=("spram", "block")) and len({hw, hw}) == 1
    with pytest.raises(AttributeError):
        hw.lanes = 8  # frozen: a checked configuration stays checked
    net = random_network(3, (4, 5, 2))
    geos = HardwareConfig(lanes=[1, 2], max_events=64).geometry(net)
    assert [g.lanes for g in geos] == [1, 2] and [g.groups for g in geos] == [5, 1]


def test_weights_or_theta_that_do_not_fit_are_refused():
    # Layers validate their values when made and cannot be edited; the hardware check must not
    # rely on that, so these layers are forced into an invalid state behind the validation's back.
    net = random_network(3, (4, 5, 2), readout=False)
    weights = net.layers[0].weights.copy()
    weights[0, 0] = 1 << net.layers[0].weight_bits
    object.__setattr__(net.layers[0], "weights", weights)
    with pytest.raises(ValueError, match="weights do not fit"):
        HardwareConfig().geometry(net)
    net = random_network(3, (4, 5, 2), readout=False)
    object.__setattr__(net.layers[1], "threshold", 1 << net.layers[1].membrane_bits)
    with pytest.raises(ValueError, match="threshold"):
        HardwareConfig().geometry(net)


def test_sample_longer_than_the_buffer_is_refused():
    net = random_network(3, (4, 5, 2))
    with pytest.raises(ValueError, match="max_events = 5"):
        NetworkCore(net, HardwareConfig(max_events=5)).run(np.ones((3, 4), bool))


def test_spram_limits():
    from spikegate.model.network import Layer
    odd = Network([Layer(weights=np.ones((3, 2), np.int64), weight_bits=6, membrane_bits=8)])
    with pytest.raises(ValueError, match="multiple of 4"):
        HardwareConfig(weight_ram="spram").geometry(odd)
    big = Network([Layer(weights=np.zeros((784, 512), np.int64), weight_bits=8, membrane_bits=16)])
    with pytest.raises(ValueError, match="an iCE40 UltraPlus has 4"):
        HardwareConfig(lanes=4, weight_ram="spram").geometry(big)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), lanes_exp=st.integers(0, 4), schedule=st.sampled_from(SCHEDULES))
def test_batch_cycles_equals_the_twin_per_sample(seed, lanes_exp, schedule):
    net = random_network(seed)
    spikes = random_spikes(seed, 4, net.timesteps, net.n_inputs)
    twin = NetworkCore(net, HardwareConfig(lanes=1 << lanes_exp, schedule=schedule))
    expected = [twin.cycles(s) for s in spikes]
    assert batch_cycles(net, 1 << lanes_exp, spikes, simulate(net, spikes), schedule=schedule).tolist() == expected
    assert cycle_formula(net, 1 << lanes_exp, spikes, schedule=schedule).tolist() == expected
