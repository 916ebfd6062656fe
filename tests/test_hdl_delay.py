"""NetworkCore gateware with delayed layers (hdl/delay.py) in Amaranth's simulator: spikes, final
state, mon words and cycles equal to the twin, the model and the documented cycle formula; samples
run back to back in one simulation, so spikes that would land after a run must be cleared."""
import numpy as np
from hypothesis import HealthCheck, given, settings, strategies as st

from spikegate.hdl.layer import LayerCore
from spikegate.model import Layer, Leak, Network
from spikegate.model.hardware import HardwareConfig
from spikegate.model.random import random_network, random_spikes
from spikegate.model.temporal import Temporal, random_temporal
from test_hdl_core import check  # contract, twin and gateware (Amaranth's simulator) agree, cycles = formula


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31), lanes_exp=st.lists(st.integers(0, 3), min_size=3, max_size=3),
       p=st.sampled_from([0.1, 0.4, 0.9]), max_delay=st.integers(1, 9))
def test_random_delayed_networks(seed, lanes_exp, p, max_delay):
    rng = np.random.default_rng(seed)
    net = random_network(seed, timesteps=int(rng.integers(2, 7)))
    net = net.replace(layers=[random_temporal(rng, lyr, max_delay=max_delay, parts=("delays",) + tuple(
        q for q in ("current", "recurrent") if rng.random() < 0.4)) for lyr in net.layers])
    lanes = [1 << e for e in lanes_exp[:len(net.layers)]]
    check(net, random_spikes(seed + 1, 3, net.timesteps, net.n_inputs, p=p), lanes)


def test_back_to_back_events_single_group():
    # G = 1 (4 neurons, 4 lanes): consecutive events read and write the same slot words one cycle
    # apart, through the transparent accumulator ports; every lane has its own delay.
    net = Network([Layer(weights=np.array([[2, -1, 3, 1], [1, 2, -2, 3], [3, 1, 1, -1]]), threshold=3,
                         reset="subtract", temporal=Temporal(delays=[[0, 1, 2, 3], [3, 0, 1, 1], [2, 2, 0, 3]],
                                                             current=Leak.shift(1)))],
                  timesteps=6)
    spikes = np.zeros((2, 6, 3), bool)
    spikes[0, :4] = True
    spikes[1, 4:] = True   # lands after the run's end: the next run must not see it
    hw = check(net, np.concatenate([spikes, spikes[:1]]), 4)
    assert hw[0].spikes[0].sum() > 0 and hw[0].spikes[0].tolist() == hw[2].spikes[0].tolist()


def test_late_spikes_of_a_run_are_cleared():
    # The hand-worked network of test_delay_core: a spike at the last step lands after the run.
    net = Network([Layer(weights=[[5, 5]], threshold=4, temporal=Temporal(delays=[[0, 2]]))], timesteps=3)
    hw = check(net, np.array([[[0], [0], [1]], [[0], [0], [0]], [[1], [0], [0]]], bool), 1)
    assert not hw[1].spikes[0].any() and hw[2].spikes[0].astype(int).tolist() == [[1, 0], [0, 0], [0, 1]]
    assert hw[2].cycles == 48
    assert hw[0].cycles == 48  # its one event costs the same G = 2 at t2 as at t0
    assert hw[1].cycles == 48 - 2



def test_delay_memories_are_block_ram():
    from amaranth.hdl import Fragment
    lyr = Layer(weights=np.ones((5, 6), np.int64), threshold=3, temporal=Temporal(delays=np.arange(30).reshape(5, 6) % 4))
    (geo,) = HardwareConfig(lanes=2).geometry(Network([lyr], timesteps=2))
    core = LayerCore(lyr, geo)
    Fragment.get(core, None)
    mems = [core.synapses.delays, *core.synapses.slot_accs]
    assert len(mems) == 3 and all(m.attrs.get("ram_style") == "block" for m in mems)
    assert core.synapses.slot_accs[0].depth == geo.slot_words == 3 * 4 + 3  # G = 3 rounded up to 4 per slot


def test_export_states_the_delay_term():
    from spikegate.hdl.export import _cycle_formula
    net = Network([Layer(weights=np.ones((2, 3), np.int64), threshold=1, temporal=Temporal(delays=[[0, 1, 4], [2, 0, 0]])),
                   Layer(weights=np.ones((3, 2), np.int64), threshold=1)], timesteps=2)
    for schedule in ("inflight", "sequential"):
        text = _cycle_formula(HardwareConfig(lanes=1).geometry(net), schedule)
        # layer 0: S = 5 slots, G = 3 rounded up to 4 words per slot: 4 * 4 + 3 = 19 cycles of clear
        assert "+ D_l(t))" in text and "D_l(t) = 2 + (at t = 0) Z_l with Z_l = {0: 19}" in text
        assert ("max_(l:" in text) == (schedule == "inflight")
