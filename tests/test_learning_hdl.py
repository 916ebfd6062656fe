"""The learning gateware (hdl.learning_engine in hdl.layer.LayerCore) in Amaranth's simulator against
its twin (model.core.NetworkCore.run(learn=...)): every sample's spikes, membranes, monitor words and
cycle count, then every weight read back through the param port and every trace in block RAM."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from test_learning_engine import plastic_networks

from spikegate.hdl.core import NetworkCore
from spikegate.hdl.testbench import run_in_testbench
from spikegate.model.core import NetworkCore as Twin
from spikegate.model.hardware import HardwareConfig
from spikegate.model.plasticity import Plasticity
from spikegate.model.protocol import CfgTarget
from spikegate.model.random import random_network, random_spikes
from conftest import run_testbench

STDP = dict(a_plus=3, a_minus=2, rate_shift=2, pre_inc=9, post_inc=7, trace_bits=5, weight_decay=2, ltp_offset=1)
# name -> (seed, sizes, lanes, plasticity of each layer (None: not plastic), random_network keywords)
CONFIGS = {
    "two-plastic-layers": (3, (10, 7, 5), 2, [STDP, STDP], {}),
    "one-lane-saturating": (4, (6, 5), 1, [dict(STDP, a_plus=200, a_minus=77, rate_shift=1, w_min="tight",
                                                w_max="tight")], dict(weight_bits=3)),
    "potentiation-only-g1": (5, (9, 4), 4, [dict(pre_inc=64, pre_decay=2, a_plus=1, a_minus=0, rate_shift=4,
                                                 weight_decay=3, ltp_offset=6)], dict(weight_bits=8)),
    "depression-only": (6, (8, 6), 2, [dict(a_plus=0, a_minus=5, rate_shift=1, trace_bits=3)], {}),
    "plastic-readout": (7, (7, 9, 3), [4, 2], [dict(STDP, a_minus=0), dict(STDP, trace_bits=8, pre_decay=1)],
                                    dict(readout=True)),
    "one-input-refractory": (8, (1, 6), 4, [dict(STDP, post_decay=3)], dict(refractory=2)),
    "adaptive-thresholds": (9, (10, 7, 4), [2, 4], [dict(STDP, theta_inc=9, theta_decay=2, theta_every=3,
                                                          offsets="ramp"), dict(STDP, theta_inc=1, theta_decay=1)],
                            dict(reset="subtract")),
    "fixed-offsets": (10, (6, 5), 1, [dict(STDP, offsets="ramp")], {}),
    "wta-reset-adaptive": (11, (12, 9, 5), [4, 2], [dict(STDP, wta=1, inhibition="reset", theta_inc=4, theta_decay=2,
                                                         theta_every=2), dict(STDP, wta=1)],
                           dict(reset="subtract", refractory=0)),
    # the winner's reset subtracts its threshold of the start of the step, not the decayed one
    "wta-subtract-decaying-offsets": (13, (9, 7), 2, [dict(STDP, wta=1, theta_inc=40, theta_decay=1,
                                                            offsets="ramp")], dict(reset="subtract", refractory=0)),
    # k winners: ties to the lowest index across and within groups, winners sharing a group
    "wta-3-subtract-adaptive": (14, (10, 9), 2, [dict(STDP, wta=3, theta_inc=6, theta_decay=2, offsets="ramp")],
                                dict(reset="subtract", refractory=0)),
    "wta-2-reduce-4-lanes": (15, (9, 10, 4), [4, 1], [dict(STDP, wta=2, inhibition="reduce", inhibit=3),
                                                      dict(STDP, wta=4, inhibition="reset")], dict(refractory=0)),
    "wta-reduce-one-lane": (12, (8, 6), 1, [dict(STDP, wta=1, inhibition="reduce", inhibit=5, offsets="ramp")],
                            dict(refractory=0)),
    # "twins": every neuron has the first one's weights and bias, so margins tie across lanes and
    # groups until the winners' offsets part them: the lowest index must win every tie
    "wta-ties-4-lanes": (16, (7, 11), 4, [dict(STDP, wta=1, theta_inc=3, theta_decay=2, twins=True)],
                         dict(refractory=0)),
    "wta-2-ties-reset-4-lanes": (31, (6, 10), 4, [dict(STDP, wta=2, inhibition="reset", theta_inc=2,
                                                       twins=True)], dict(reset="subtract", refractory=0)),
    "wta-ties-reduce-2-lanes": (18, (6, 7), 2, [dict(STDP, wta=1, inhibition="reduce", inhibit=2, twins=True)],
                                dict(refractory=0)),
}
SAMPLES = 4


def _plastic(layer, rule):
    """The layer with ``rule``; "tight" bounds are the weights' own extremes (so updates saturate),
    "ramp" offsets are 0, 3, 6, ...; ``twins`` gives every neuron neuron 0's weights and bias; a
    threshold of 0 makes every layer fire often enough to learn in a few samples."""
    rule = dict(rule)
    for name, pick in (("w_min", np.min), ("w_max", np.max)):
        if rule.get(name) == "tight":
            rule[name] = int(pick(layer.weights))
    layer = layer.replace(threshold=0) if not layer.readout else layer
    if rule.get("offsets") == "ramp":
        rule["offsets"] = [3 * j for j in range(layer.n)]
    if rule.pop("twins", False):
        layer = layer.replace(weights=np.repeat(layer.weights[:, :1], layer.n, axis=1),
                              bias=np.full(layer.n, layer.bias[0]))
    return layer.replace(plasticity=Plasticity(**rule))


def config(name):
    seed, sizes, lanes, rules, kw = CONFIGS[name]
    net = random_network(seed, sizes, timesteps=5, **{"readout": False, **kw})
    layers = [layer if r is None else _plastic(layer, r) for layer, r in zip(net.layers, rules)]
    return net.replace(layers=layers), lanes


async def read_weights(ctx, dut, l, geo):
    w = np.zeros((geo.n_in, geo.n), np.int64)
    for i in range(geo.n_in):
        for j in range(geo.n):
            ctx.set(dut.param_addr, {"layer": l, "target": CfgTarget.WEIGHT, "row": i, "col": j})
            await ctx.tick()
            w[i, j] = ctx.get(dut.param_data)
    return w


async def check_weights(ctx, dut, twin, changed=None):
    """Every plastic layer's weights, read back through the param port, equal the twin's; whether
    each differs from the network's initial weights is appended to ``changed``."""
    for l, (core, tc) in enumerate(zip(dut.layers, twin.layers)):
        if core.learning is not None:
            w = await read_weights(ctx, dut, l, core.geo)
            assert np.array_equal(w, tc.synapses.weights.reshape(core.geo.n_in, -1)[:, :core.geo.n]), l
            if changed is not None:
                changed.append(not np.array_equal(w, core.layer.weights))


def read_traces(ctx, core, geo):
    tb = geo.learning.trace_bits
    eng = core.learning
    pre = np.array([ctx.get(eng.pre_mem.data[i]) & ((1 << tb) - 1) for i in range(geo.n_in)], np.int64)
    words = [ctx.get(eng.post_mem.data[g]) for g in range(geo.groups)]
    post = np.array([(w >> (k * tb)) & ((1 << tb) - 1) for w in words for k in range(geo.lanes)], np.int64)[:geo.n]
    return pre, post


def read_offsets(ctx, core, geo):
    ob = geo.learning.offset_bits
    words = [ctx.get(core.learning.off_mem.data[g]) for g in range(geo.groups)]
    return np.array([(w >> (k * ob)) & ((1 << ob) - 1) for w in words for k in range(geo.lanes)], np.int64)[:geo.n]


@pytest.mark.parametrize("name", list(CONFIGS))
def test_gateware_learns_as_the_twin(name):
    net, lanes = config(name)
    hw = HardwareConfig(lanes=lanes)
    twin, dut = Twin(net, hw), NetworkCore(net, hw)
    samples = random_spikes(CONFIGS[name][0] + 100, SAMPLES, net.timesteps, net.n_inputs, p=0.5)
    learn = [True, True, False, True][:SAMPLES]
    changed = []

    async def bench(ctx):
        for s, on in zip(samples, learn):
            ctx.set(dut.learn, int(on))
            got = await run_in_testbench(ctx, dut, s)
            want = twin.run(s, learn=on)
            assert got.mismatch(want) is None, got.mismatch(want)
            for l, (core, tc) in enumerate(zip(dut.layers, twin.layers)):
                if core.learning is None:
                    continue
                w = await read_weights(ctx, dut, l, core.geo)
                tw = tc.synapses.weights.reshape(core.geo.n_in, -1)[:, :core.geo.n]
                assert np.array_equal(w, tw), (l, w, tw)
                changed.append(not np.array_equal(w, net.layers[l].weights))
                if core.geo.learning.offset_bits:
                    offsets = read_offsets(ctx, core, core.geo)
                    assert np.array_equal(offsets, tc.learning.neuron_offsets()), (l, offsets)
                if on:  # with learning off the memories keep the last learned sample's traces
                    pre, post = read_traces(ctx, core, core.geo)
                    tpre, tpost = tc.learning.traces()
                    assert np.array_equal(pre, tpre) and np.array_equal(post, tpost), (l, pre, tpre, post, tpost)

    run_testbench(dut, bench)
    assert any(changed), "learning changed no weight: the comparison proves nothing"


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=plastic_networks(), data=st.data())
def test_random_plastic_networks_in_gateware(case, data):
    """Random small plastic networks and rules (those of the twin's hypothesis test): two learned
    samples, every weight after each equal to the twin's."""
    net, lanes = case
    net = net.replace(layers=[layer.replace(threshold=0) if layer.plasticity is not None and not layer.readout
                              else layer for layer in net.layers])
    hw = HardwareConfig(lanes=lanes)
    twin, dut = Twin(net, hw), NetworkCore(net, hw)
    samples = random_spikes(data.draw(st.integers(0, 2**31)), 2, net.timesteps, net.n_inputs, p=0.6)

    async def bench(ctx):
        ctx.set(dut.learn, 1)
        for s in samples:
            got = await run_in_testbench(ctx, dut, s)
            want = twin.run(s, learn=True)
            assert got.mismatch(want) is None, got.mismatch(want)
            await check_weights(ctx, dut, twin)

    run_testbench(dut, bench)
