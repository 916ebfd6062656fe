"""SynapseArray and LayerCore on their own (Amaranth simulator) against their twins."""
import numpy as np
import pytest
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator
from hypothesis import HealthCheck, given, settings, strategies as st

from spikegate.hdl.layer import LayerCore
from spikegate.hdl.synapse import ACC_LATENCY, OP_INTEGRATE, OP_NONE, OP_SWEEP, SynapseArray, word_address
from spikegate.model.hardware import HardwareConfig
from spikegate.model.layer import LayerCore as LayerTwin
from spikegate.model.network import Network
from spikegate.model.random import random_layer
from spikegate.model.synapse import SynapseArray as SynapseTwin, unpack_lanes

from conftest import drive_layer_step, run_testbench, write_weight_port


def _layer_and_geo(seed, n_in, n, lanes, **kw):
    layer = random_layer(np.random.default_rng(seed), n_in, n, **kw)
    geo = HardwareConfig(lanes=lanes).geometry(Network([layer], timesteps=1))[0]
    return layer, geo


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31), n_in=st.integers(1, 12), n=st.integers(1, 12), lanes_exp=st.integers(0, 4))
def test_synapse_array_matches_twin(seed, n_in, n, lanes_exp):
    """Back-to-back integrate ops (same group included), weight writes, sweeps that read and clear."""
    layer, geo = _layer_and_geo(seed, n_in, n, 1 << lanes_exp)
    rng = np.random.default_rng(seed)
    twin = SynapseTwin(layer, geo.lanes)
    dut = SynapseArray(layer, geo)
    assert dut.init_words == twin.weight_words()
    G, P = geo.groups, geo.lanes

    async def body(ctx):
        for _ in range(3):
            # An idle-time weight write through the per-lane write port.
            row, col = int(rng.integers(n_in)), int(rng.integers(n))
            value = int(rng.integers(-(1 << (geo.weight_bits - 1)), 1 << (geo.weight_bits - 1)))
            twin.write_weight(row, col, value)
            await write_weight_port(ctx, dut, row, col, value)
            ctx.set(dut.w_en, 0)
            # Events: every group of every event, one op per cycle, no gaps.
            # Each input at most once per step, as in a network: that bounds the exact sum.
            events = rng.permutation(n_in)[:int(rng.integers(0, n_in + 1))]
            for i in events:
                twin.integrate(int(i))
                for g in range(G):
                    ctx.set(dut.op, OP_INTEGRATE)
                    ctx.set(dut.addr, int(i))
                    ctx.set(dut.group, g)
                    await ctx.tick()
            # Sweeps back to back, as a layer issues them; group g's sums are out ACC_LATENCY later.
            for k in range(G + ACC_LATENCY - 1):
                if k < G:
                    ctx.set(dut.op, OP_SWEEP)
                    ctx.set(dut.group, k)
                else:
                    ctx.set(dut.op, OP_NONE)
                await ctx.tick()
                g = k + 1 - ACC_LATENCY
                if g >= 0:
                    got = [ctx.get(dut.acc[j]) for j in range(P)]
                    assert got == twin.take(g).tolist(), f"group {g} after events {events.tolist()}"
            ctx.set(dut.op, OP_NONE)
            await ctx.tick()

    run_testbench(dut, body)


@pytest.mark.parametrize("lanes", [1, 4, 16])
@pytest.mark.parametrize("refractory", [0, 3])
def test_layer_core_matches_twin(lanes, refractory):
    """A LayerCore fed from a testbench: spike words, state, and start-to-done cycles E*G + G + 8."""
    layer, geo = _layer_and_geo(7 + lanes, 11, 13, lanes, refractory=refractory, weight_bits=6, membrane_bits=9)
    # Count spikes as the network's last layer does.
    geo = type(geo)(**{**geo.__dict__, "count_bits": 5})
    twin = LayerTwin(layer, geo)
    dut = LayerCore(layer, geo)
    rng = np.random.default_rng(lanes)
    steps = [sorted(set(rng.integers(0, 11, int(rng.integers(0, 12))).tolist())) for _ in range(8)]

    async def body(ctx):
        ctx.set(dut.reset_state, 1)
        await ctx.tick()
        ctx.set(dut.reset_state, 0)
        for events in steps:
            expect = twin.step(events)
            words, cycles = await drive_layer_step(ctx, dut, events)
            assert words == expect, f"events {events}"
            assert cycles == geo.cycles(len(events)), (cycles, len(events))
        for j in range(layer.n):
            ctx.set(dut.peek_addr, j)
            await ctx.tick()
            g, k = divmod(j, geo.lanes)
            assert ctx.get(dut.peek_v) == twin.v[g, k]
            assert ctx.get(dut.peek_r) == twin.r[g, k]
            assert ctx.get(dut.peek_count) == twin.count[g, k]

    run_testbench(dut, body)


def test_unpack_lanes_round_trip():
    from spikegate.model.synapse import pack_lanes
    vals = [-8, 7, 0, -1, 3]
    assert unpack_lanes(pack_lanes(vals, 4), 4, 5).tolist() == vals


def _check_word_address(row, group, groups, rows, group_values):
    """Simulate ``word_address(row, groups, group)`` over ``rows`` x ``group_values``."""
    m = Module()
    addr = Signal(range((max(rows) + 1) * groups))
    m.d.comb += addr.eq(word_address(row, groups, group))

    async def bench(ctx):
        for r in rows:
            for g in group_values:
                ctx.set(row, r)
                ctx.set(group, g)
                assert ctx.get(addr) == r * groups + g, (r, g)

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()


@pytest.mark.parametrize("groups", [1, 2, 3, 5, 6, 7, 8, 10, 13, 32, 100, 128])
def test_word_address_is_row_times_groups_plus_group(groups):
    """The multiplier-free word address equals ``row * groups + group`` for every group of every
    row, at the widths the synapse array gives it."""
    n_in = 37
    row = Signal(range(n_in))
    _check_word_address(row, Signal(range(groups)), groups, range(n_in), range(groups))
    # a group narrower than log2(groups) bits (a column's top bits, say) is zero-extended
    _check_word_address(row, Signal(1), groups, (0, 1, n_in - 1), range(min(2, groups)))
