"""Plastic layers with their weights in SPRAM (hdl.synapse's SB_SPRAM256KA cycle model, one port):
in Amaranth's simulator against the twin. The weights are loaded through cfg (SPRAM starts empty),
then samples are learned; every run (spikes, membranes, monitor words, cycle count: stage 5 issues
a weight word every other cycle) and every weight read back through the param port afterwards
equal the twin's. Lanes 1 with 4- or 8-bit weights put two or four weight words in one SPRAM word,
so a learning write there changes only its slot's nibbles."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from test_learning_engine import stdp_for
from test_learning_hdl import STDP, check_weights

from spikegate.hdl.core import NetworkCore
from spikegate.hdl.testbench import run_in_testbench, send_cfg_words
from spikegate.model.core import NetworkCore as Twin, weight_cfg_words
from spikegate.model.hardware import HardwareConfig
from spikegate.model.plasticity import Plasticity
from spikegate.model.random import random_network, random_spikes
from conftest import run_testbench


def _learn_with_spram(net, lanes, samples, learn):
    """Load, learn ``samples`` with ``learn[k]``, compare each run and the plastic weights after it."""
    hw = HardwareConfig(lanes=lanes, weight_ram="spram")
    twin, dut = Twin(net, hw), NetworkCore(net, hw, spram_primitive="model")
    cfg = weight_cfg_words(net)
    for w in cfg:
        assert twin.cfg(*w)
    changed = []

    async def bench(ctx):
        assert await send_cfg_words(ctx, dut, cfg)
        for s, on in zip(samples, learn):
            ctx.set(dut.learn, int(on))
            got = await run_in_testbench(ctx, dut, s)
            want = twin.run(s, learn=on)
            assert got.mismatch(want) is None, got.mismatch(want)
            await check_weights(ctx, dut, twin, changed)

    run_testbench(dut, bench)
    return changed


@pytest.mark.parametrize("lanes, weight_bits, rule", [
    pytest.param(2, 8, dict(STDP, wta=1, theta_inc=4, theta_decay=2), id="two-lanes-wta-adaptive"),
    pytest.param(1, 4, STDP, id="one-lane-four-words-per-spram-word"),
    pytest.param(1, 8, dict(STDP, a_minus=0), id="one-lane-potentiation-only"),
    pytest.param(4, 8, dict(STDP, a_plus=0, a_minus=5, rate_shift=1), id="four-lanes-depression-only"),
])
def test_spram_plastic_layer_learns_as_the_twin(lanes, weight_bits, rule):
    net = random_network(21, (9, 7, 5), timesteps=5, weight_bits=weight_bits, readout=False, refractory=0)
    lo, hi = -(1 << (weight_bits - 1)), (1 << (weight_bits - 1)) - 1
    first = net.layers[0].replace(threshold=0, plasticity=Plasticity(**dict(rule, w_min=lo, w_max=hi)))
    net = net.replace(layers=[first, net.layers[1]])
    samples = random_spikes(22, 3, net.timesteps, net.n_inputs, p=0.5)
    changed = _learn_with_spram(net, lanes, samples, [True, False, True])
    assert any(changed), "learning changed no weight: the comparison proves nothing"


@st.composite
def spram_plastic_networks(draw):
    """Random small networks with weights of 4 or 8 bits (SPRAM's write mask is per nibble), at
    least one plastic layer, per-layer lanes 1, 2 or 4."""
    sizes = tuple(draw(st.lists(st.integers(1, 7), min_size=2, max_size=3)))
    net = random_network(draw(st.integers(0, 2**31)), sizes, timesteps=draw(st.integers(1, 4)),
                         weight_bits=draw(st.sampled_from([4, 8])))
    plastic = draw(st.lists(st.booleans(), min_size=len(net.layers), max_size=len(net.layers)))
    plastic[draw(st.integers(0, len(net.layers) - 1))] = True
    layers = [layer.replace(plasticity=draw(stdp_for(layer, rewards=False)),
                            threshold=0 if not layer.readout else layer.threshold) if on else layer
              for layer, on in zip(net.layers, plastic)]
    return net.replace(layers=layers), [draw(st.sampled_from([1, 2, 4])) for _ in layers]


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=spram_plastic_networks(), seed=st.integers(0, 2**31))
def test_random_spram_plastic_networks_in_gateware(case, seed):
    net, lanes = case
    samples = random_spikes(seed, 2, net.timesteps, net.n_inputs, p=0.6)
    _learn_with_spram(net, lanes, samples, [True, True])
