"""The conv layer's gateware (hdl/conv_layer.py) on its own in Amaranth's simulator against its twin
(model/conv_layer.py): spike words, start-to-done cycles, final state, on random small conv layers."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from conftest import drive_layer_step, run_testbench
from spikegate.hdl.conv_layer import ConvLayerCore
from spikegate.hdl.core import NetworkCore
from spikegate.hdl.testbench import run_in_testbench, send_cfg_words
from test_conv_sim import random_conv_network
from test_conv_twin import _random_pool
from spikegate.model.conv_eval import conv2d_layer
from spikegate.model.conv_layer import ConvLayerCore as ConvTwin, input_addresses
from spikegate.model.core import NetworkCore as Twin, RunResult, weight_cfg_words
from spikegate.model.hardware import HardwareConfig
from spikegate.model.network import Network
from spikegate.model.simulate import simulate


def random_conv_layer(rng):
    c, h, w = int(rng.integers(1, 4)), int(rng.integers(2, 8)), int(rng.integers(2, 8))
    k = [int(rng.integers(1, min(4, s + 1) + 1)) for s in (h, w)]
    p = [int(rng.integers(0, kk)) for kk in k]
    k = [min(kk, s + 2 * pp) for kk, s, pp in zip(k, (h, w), p)]
    p = [min(pp, kk - 1) for pp, kk in zip(p, k)]
    s = [int(rng.integers(1, 4)) for _ in k]
    co, wb = int(rng.integers(1, 7)), int(rng.integers(2, 7))
    hi, V = 1 << (wb - 1), int(rng.integers(wb + 1, 12))
    return conv2d_layer(rng.integers(-hi, hi, (co, c, *k)), (c, h, w), stride=s, padding=p,
                        bias=rng.integers(-3, 4, co), threshold=int(rng.integers(0, min(2 * hi, (1 << (V - 1)) - 1))),
                        weight_bits=wb, membrane_bits=V, reset=str(rng.choice(["zero", "subtract"])),
                        refractory=int(rng.integers(0, 3)))


def run_layer(layer, lanes, steps, runs=2):
    """Each of ``runs`` runs: reset_state, then the steps' events (flat input indices); compare every
    step's spike words and cycles with the twin, and the final state through the peek port."""
    geo = HardwareConfig(lanes=lanes).geometry(Network([layer], timesteps=1))[0]
    twin, dut = ConvTwin(layer, geo), ConvLayerCore(layer, geo)
    spec = layer.conv

    async def body(ctx):
        for _ in range(runs):
            twin.reset_state()
            ctx.set(dut.reset_state, 1)
            await ctx.tick()
            ctx.set(dut.reset_state, 0)
            for flat in steps:
                events = input_addresses(geo.conv.in_fields, spec.in_shape, flat)
                expect = twin.step(events)
                words, cycles = await drive_layer_step(ctx, dut, events)
                assert words == expect, f"events {events}"
                assert cycles == geo.cycles(flat) == twin.integration_cycles + geo.groups + 8
            for j in range(geo.groups * lanes):
                ctx.set(dut.peek_addr, j)
                await ctx.tick()
                g, k = divmod(j, lanes)
                assert ctx.get(dut.peek_v) == twin.v[g, k], j
                assert ctx.get(dut.peek_r) == twin.r[g, k], j
                assert ctx.get(dut.peek_count) == twin.count[g, k], j

    run_testbench(dut, body)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31), lanes_exp=st.integers(0, 3))
def test_conv_layer_matches_twin(seed, lanes_exp):
    rng = np.random.default_rng(seed)
    layer = random_conv_layer(rng)
    n_in = layer.n_in
    steps = [np.flatnonzero(rng.random(n_in) < rng.random()) for _ in range(3)]
    run_layer(layer, 1 << lanes_exp, steps)


def test_back_to_back_events_on_the_same_outputs_are_forwarded():
    # Two channels at the same pixel reach the same accumulator words; with Gc = 1 and a 1x1 output
    # map the second event's first tap reads the word the first event's last tap writes.
    layer = conv2d_layer(np.arange(1, 9).reshape(2, 2, 2, 1) - 4, (2, 2, 1), threshold=50, weight_bits=5,
                         membrane_bits=9)
    run_layer(layer, 2, [np.array([0, 1, 2, 3]), np.array([1, 2]), np.array([], np.int64)])


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31), lanes_exp=st.integers(0, 2))
def test_pool_layer_matches_twin(seed, lanes_exp):
    # sumpool2d / avgpool2d run on the conv core as their conv2d equivalent (model.conv_layer.pool_as_conv);
    # the twin is held to the pooling contract in test_conv_twin.
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(1, 5)), int(rng.integers(2, 7)), int(rng.integers(2, 7)))
    layer = _random_pool(rng, shape)
    steps = [np.flatnonzero(rng.random(layer.n_in) < rng.random()) for _ in range(3)]
    run_layer(layer, 1 << lanes_exp, steps)


@pytest.mark.parametrize("seed,lanes", [(1, 1), pytest.param(4, 2, marks=pytest.mark.slow)])
def test_spram_readout_and_input_buffer(seed, lanes):
    """The iCEBreaker placement of a conv network (boards/fit.py): the dense readout's weights in SPRAM
    (cycle model; empty after configuration), loaded through cfg at the conv layer's packed rows
    (weight_cfg_words with hw), and the input buffer in an SPRAM tile, written by load and read from the
    cycle after start (the testbench starts right after the last load word)."""
    net = random_conv_network(seed)
    L = len(net.layers)
    rng = np.random.default_rng(seed)
    spikes = rng.random((net.timesteps, net.n_inputs)) < 0.4
    hw = HardwareConfig(lanes=lanes, weight_ram=["block"] * (L - 1) + ["spram"], input_ram="spram", max_events=512)
    words = weight_cfg_words(net, [L - 1], hw)
    assert len(words) == net.layers[-1].weights.size
    twin = Twin(net, hw)
    empty = twin.run(spikes)
    assert all(twin.cfg(*w) for w in words)
    loaded = twin.run(spikes)
    assert (m := RunResult.from_simulation(net, simulate(net, spikes[None]), 0).mismatch(loaded, cycles=False)) is None, m
    assert empty.mismatch(loaded) is not None  # the uploaded weights matter
    dut = NetworkCore(net, hw, spram_primitive="model")
    got = {}

    async def body(ctx):
        got["empty"] = await run_in_testbench(ctx, dut, spikes)
        assert await send_cfg_words(ctx, dut, words)
        got["loaded"] = await run_in_testbench(ctx, dut, spikes)
        got["again"] = await run_in_testbench(ctx, dut, spikes)

    run_testbench(dut, body)
    assert (m := empty.mismatch(got["empty"])) is None, m
    assert (m := loaded.mismatch(got["loaded"])) is None, m
    assert (m := loaded.mismatch(got["again"])) is None, m


def test_weight_cfg_words_after_a_conv_layer_need_the_hardware_config():
    net = random_conv_network(1)
    with pytest.raises(ValueError, match="follows a conv layer.*pass hw"):
        weight_cfg_words(net, [len(net.layers) - 1])
    with pytest.raises(ValueError, match="conv2d layer; the cfg port"):
        weight_cfg_words(net, [0], HardwareConfig(lanes=1))


@pytest.mark.parametrize("kw,match", [(dict(input_ram="dram"), "input_ram = 'dram' is not valid"),
                                      (dict(input_ram="spram", max_events=16385), "max_events <= 16384")])
def test_input_ram_refused(kw, match):
    with pytest.raises(ValueError, match=match):
        HardwareConfig(**kw).geometry(random_conv_network(1))
