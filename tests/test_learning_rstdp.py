"""Reward-modulated STDP in the gateware (hdl.eligibility in hdl.learning_engine) in Amaranth's
simulator against its twin (model.core.NetworkCore.run(learn=..., reward=...) and .reward(R)):
every sample's spikes, membranes, monitor words and cycle count; after every sample and every
per-sample reward, every weight (param port), eligibility, trace and threshold offset."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from test_learning_engine import plastic_networks
from test_learning_hdl import _plastic, read_offsets, read_traces, read_weights

from conftest import reward_formula, run_testbench
from waits import until
from spikegate.hdl.core import NetworkCore
from spikegate.hdl.testbench import run_in_testbench
from spikegate.model.core import NetworkCore as Twin
from spikegate.model.hardware import HardwareConfig
from spikegate.model.learning_engine import LearnState
from spikegate.model.random import random_network, random_spikes
from spikegate.model.synapse import unpack_lanes

RSTDP = dict(rule="rstdp", a_plus=3, a_minus=2, rate_shift=2, pre_inc=9, post_inc=7, trace_bits=5, elig_decay=2,
             reward_shift=1)
# name -> (seed, sizes, lanes, plasticity of each layer (None: not plastic), random_network keywords)
CONFIGS = {
    "two-rstdp-layers": (21, (8, 7, 5), 2, [RSTDP, dict(RSTDP, elig_bits=6, elig_decay=1, reward_shift=0)], {}),
    "rstdp-then-stdp-one-lane": (22, (6, 5, 4), [1, 2], [dict(RSTDP, weight_decay=2, ltp_offset=1),
                                                         dict(a_plus=2, a_minus=1, rate_shift=1)], {}),
    "narrow-eligibility-saturating": (23, (7, 6), 4, [dict(RSTDP, elig_bits=3, a_plus=40, a_minus=30, rate_shift=0,
                                                           w_min="tight", w_max="tight", reward_shift=0)],
                                      dict(weight_bits=3)),
    "rstdp-wta-adaptive": (24, (10, 9), 2, [dict(RSTDP, wta=1, inhibition="reset", theta_inc=4, theta_decay=2,
                                                 ltp_offset=2, weight_decay=3)], dict(reset="subtract", refractory=0)),
    "rstdp-wta-2": (26, (8, 9), 4, [dict(RSTDP, wta=2, theta_inc=3, ltp_offset=1)], dict(refractory=0)),
    "rstdp-before-plastic-readout": (25, (6, 8, 3), [2, 4], [dict(RSTDP, elig_bits=32),
                                                             dict(RSTDP, a_minus=3)], dict(readout=True)),
}
# per sample: (learning on, step_reward, the per-sample reward after it)
SCHEDULE = [(True, 0, 5), (True, 3, 0), (False, 0, 2), (True, -4, -7), (True, 0, 0), (True, 1, 32767)]


def config(name):
    seed, sizes, lanes, rules, kw = CONFIGS[name]
    net = random_network(seed, sizes, timesteps=5, **{"readout": False, **kw})
    layers = [layer if r is None else _plastic(layer, r) for layer, r in zip(net.layers, rules)]
    return net.replace(layers=layers), lanes


def read_eligibility(ctx, core, geo):
    """E [n_in, n] from the eligibility memory (word i * G + g: P signed lanes)."""
    eb = geo.learning.elig_bits
    words = [ctx.get(core.learning.elig_mem.data[a]) for a in range(geo.n_in * geo.groups)]
    lanes = np.array([unpack_lanes(w, eb, geo.lanes) for w in words], np.int64)
    return lanes.reshape(geo.n_in, -1)[:, :geo.n]


async def send_reward(ctx, dut, value):
    """One transfer on the reward stream; returns the cycles port once done."""
    ctx.set(dut.reward.payload, value)
    ctx.set(dut.reward.valid, 1)
    await until(ctx, lambda: ctx.get(dut.reward.ready), "reward.ready")
    await ctx.tick()
    ctx.set(dut.reward.valid, 0)
    await until(ctx, lambda: ctx.get(dut.done), "done after the reward", 1_000_000)
    return ctx.get(dut.cycles)


async def read_state_port(ctx, dut, l, kind, rows, cols):
    """Values [rows, cols] through the core's idle-time learn_state port."""
    out = np.zeros((rows, cols), np.int64)
    for i in range(rows):
        for j in range(cols):
            ctx.set(dut.learn_state_addr, {"layer": l, "kind": kind, "row": i, "col": j})
            await ctx.tick()
            out[i, j] = ctx.get(dut.learn_state_data)
    return out


async def check_port(ctx, dut, twin, l, geo):
    """Every trace, offset and eligibility of layer l through the port equals the twin's."""
    for kind, rows, cols in ((LearnState.PRE_TRACE, geo.n_in, 1), (LearnState.POST_TRACE, 1, geo.n),
                             (LearnState.OFFSET, 1, geo.n), (LearnState.ELIGIBILITY, geo.n_in, geo.n)):
        got = await read_state_port(ctx, dut, l, kind, rows, cols)
        want = np.array([[twin.learn_state(l, kind, i, j) for j in range(cols)] for i in range(rows)])
        assert np.array_equal(got, want), (l, kind.name, got, want)


async def check_state(ctx, dut, twin, learned):
    """Weights, offsets, and (after a learned run) traces and eligibility of every plastic layer,
    in the memories and through the learn_state port."""
    changed = []
    for l, (core, tc) in enumerate(zip(dut.layers, twin.layers)):
        if core.learning is None:
            continue
        geo = core.geo
        w = await read_weights(ctx, dut, l, geo)
        assert np.array_equal(w, tc.synapses.weights.reshape(geo.n_in, -1)[:, :geo.n]), (l, w)
        changed.append(w)
        if geo.learning.offset_bits:
            assert np.array_equal(read_offsets(ctx, core, geo), tc.learning.neuron_offsets()), l
        if learned:
            pre, post = read_traces(ctx, core, geo)
            tpre, tpost = tc.learning.traces()
            assert np.array_equal(pre, tpre) and np.array_equal(post, tpost), (l, pre, tpre, post, tpost)
            if geo.learning.elig_bits:
                assert np.array_equal(read_eligibility(ctx, core, geo), tc.learning.elig), l
            await check_port(ctx, dut, twin, l, geo)
    return changed


def bench_for(net, lanes, samples, schedule, out):
    hw = HardwareConfig(lanes=lanes)
    twin, dut = Twin(net, hw), NetworkCore(net, hw)

    async def bench(ctx):
        for s, (on, step_reward, sample_reward) in zip(samples, schedule):
            ctx.set(dut.learn, int(on))
            ctx.set(dut.step_reward, step_reward)
            got = await run_in_testbench(ctx, dut, s)
            want = twin.run(s, learn=on, reward=step_reward)
            assert got.mismatch(want) is None, got.mismatch(want)
            await check_state(ctx, dut, twin, on)
            cycles = await send_reward(ctx, dut, sample_reward)
            assert cycles == twin.reward(sample_reward) == reward_formula(net, lanes, sample_reward)
            out.append(await check_state(ctx, dut, twin, on))
    return dut, bench


@pytest.mark.parametrize("name", list(CONFIGS))
def test_rstdp_gateware_learns_as_the_twin(name):
    net, lanes = config(name)
    samples = random_spikes(CONFIGS[name][0] + 100, len(SCHEDULE), net.timesteps, net.n_inputs, p=0.5)
    states = []
    dut, bench = bench_for(net, lanes, samples, SCHEDULE, states)
    run_testbench(dut, bench)
    plastic = [l for l, layer in enumerate(net.layers) if layer.plasticity is not None]
    for k, l in enumerate(plastic):
        # (a readout never fires: its post traces, hence its D and E, stay 0)
        if net.layers[l].plasticity.rule == "rstdp" and not net.layers[l].readout:
            assert any(not np.array_equal(state[k], net.layers[l].weights) for state in states), \
                f"rewards changed no weight of layer {l}: the comparison proves nothing"


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=plastic_networks(), data=st.data())
def test_random_rstdp_layers_in_gateware(case, data):
    """Random small plastic networks with every plastic layer reward-modulated (the twin's hypothesis
    rules otherwise): two learned samples with random step and sample rewards, all state equal."""
    net, lanes = case
    rules = [None if layer.plasticity is None else layer.plasticity.replace(
        rule="rstdp", elig_bits=data.draw(st.sampled_from([2, 4, 16])), elig_decay=data.draw(st.integers(1, 4)),
        reward_shift=data.draw(st.integers(0, 4))) for layer in net.layers]
    net = net.replace(layers=[layer if r is None else layer.replace(
        plasticity=r, threshold=0 if not layer.readout else layer.threshold) for layer, r in zip(net.layers, rules)])
    rewards = st.sampled_from([0, 1, -1, 5, -300, 32767, -32768])
    schedule = [(True, data.draw(rewards), data.draw(rewards)) for _ in range(2)]
    samples = random_spikes(data.draw(st.integers(0, 2**31)), 2, net.timesteps, net.n_inputs, p=0.6)
    dut, bench = bench_for(net, lanes, samples, schedule, [])
    run_testbench(dut, bench)
