"""NetworkCore gateware with temporal layers (synaptic current, recurrence) in Amaranth's simulator:
spikes, final state, mon words (their order too) and cycles equal to the twin, the model and the
documented cycle formula."""
import numpy as np
from hypothesis import HealthCheck, given, settings, strategies as st

from spikegate.hdl.core import NetworkCore
from spikegate.model import Layer, Leak, Network
from spikegate.model.core import NetworkCore as Twin
from spikegate.model.hardware import HardwareConfig
from spikegate.model.protocol import CfgTarget
from spikegate.model.random import random_network, random_spikes
from spikegate.model.temporal import Temporal, random_temporal
from test_hdl_core import check  # contract, twin and gateware (Amaranth's simulator) agree, cycles = formula
from conftest import run_testbench


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31), lanes_exp=st.lists(st.integers(0, 3), min_size=3, max_size=3),
       p=st.sampled_from([0.1, 0.4, 0.9]))
def test_random_temporal_networks(seed, lanes_exp, p):
    rng = np.random.default_rng(seed)
    net = random_network(seed, timesteps=int(rng.integers(2, 6)))
    net = net.replace(layers=[random_temporal(rng, lyr, parts=tuple(q for q in ("current", "recurrent")
                                                                   if rng.random() < 0.7) or ("current",))
                              for lyr in net.layers])
    lanes = [1 << e for e in lanes_exp[:len(net.layers)]]
    check(net, random_spikes(seed + 1, 2, net.timesteps, net.n_inputs, p=p), lanes)


def test_back_to_back_recurrent_words_single_group():
    # G = 1 (4 neurons, 4 lanes): every step's word comes back as up to 4 events on the same group,
    # each one cycle, back to back through the transparent accumulator port.
    net = Network([Layer(weights=np.full((3, 4), 2), threshold=3, reset="subtract",
                         temporal=Temporal(recurrent=np.array([[1, -2, 3, 0], [2, 1, 0, -1], [0, 3, 1, 2],
                                                               [-1, 0, 2, 1]]), current=Leak.shift(1)))],
                  timesteps=6)
    spikes = np.zeros((1, 6, 3), bool)
    spikes[0, :3] = True
    hw = check(net, spikes, 4)
    assert hw[0].spikes[0][1:].sum() > 0  # the recurrence keeps it going


def test_bias_written_at_run_time_feeds_the_current():
    from spikegate.hdl.testbench import run_in_testbench
    net = Network([Layer(weights=np.zeros((2, 3), np.int64), threshold=10,
                         temporal=Temporal(current=Leak.shift(2)))], timesteps=5)
    twin, dut = Twin(net, HardwareConfig(lanes=2)), NetworkCore(net, HardwareConfig(lanes=2))
    assert twin.cfg(0, CfgTarget.BIAS, 0, 1, 6)
    spikes = np.zeros((5, 2), bool)
    out = []

    async def bench(ctx):
        ctx.set(dut.cfg.valid, 1)
        ctx.set(dut.cfg.payload, {"layer": 0, "target": CfgTarget.BIAS, "row": 0, "col": 1, "data": 6})
        await ctx.tick()
        ctx.set(dut.cfg.valid, 0)
        out.append(await run_in_testbench(ctx, dut, spikes))

    run_testbench(dut, bench)
    want = twin.run(spikes)
    # c: 6, 6-1+6 = 11, 11-2+6 = 15, ...: neuron 1 alone fires (v > 10), from step 1 on.
    assert want.spikes[0][:, 1].any() and not want.spikes[0][:, [0, 2]].any()
    assert (m := want.mismatch(out[0])) is None, m
