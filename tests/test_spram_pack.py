"""SPRAM weight words of 4 or 8 bits packed into 16-bit SB_SPRAM256KA words (LayerGeometry.spram_pack):
the tile count, and the synapse array (SPRAM cycle model) across a tile boundary against its twin."""
import numpy as np
import pytest

from spikegate.hdl.synapse import ACC_LATENCY, OP_INTEGRATE, OP_NONE, OP_SWEEP, SynapseArray
from spikegate.model.hardware import HardwareConfig
from spikegate.model.network import Layer, Network
from spikegate.model.synapse import SynapseArray as SynapseTwin

from conftest import run_testbench, write_weight_port


def _geo(n_in, n, lanes, wb):
    net = Network([Layer(weights=np.zeros((n_in, n), np.int64), weight_bits=wb, membrane_bits=16)])
    return net.layers[0], HardwareConfig(lanes=lanes, weight_ram="spram", max_events=16).geometry(net)[0]


@pytest.mark.parametrize("lanes,wb,pack", [(1, 4, 4), (1, 8, 2), (2, 4, 2), (1, 12, 1), (2, 8, 1), (4, 8, 1),
                                           (1, 16, 1)])
def test_pack_factor(lanes, wb, pack):
    assert _geo(4, 4, lanes, wb)[1].spram_pack == pack


def test_mnist_sized_layer_takes_four_tiles_at_one_lane():
    # 784 x 128 weights of 8 bits = 100352 words of 8 bits: 50176 SPRAM words, 4 tiles (7 unpacked).
    for lanes in (1, 2):
        assert _geo(784, 128, lanes, 8)[1].spram_tiles == 4
    assert _geo(784, 128, 4, 8)[1].spram_tiles == 4  # 32-bit words: 2 columns x 2 rows
    # 4-bit weights at one lane: 4 to a word, 1 tile.
    assert _geo(784, 128, 1, 4)[1].spram_tiles == 2  # 100352 / 4 = 25088 words: 2 rows


@pytest.mark.parametrize("lanes,wb", [(1, 8), (1, 4), (2, 4)])
def test_packed_spram_across_the_tile_boundary(lanes, wb):
    """Weights written around the first tile boundary (and in every slot of one SPRAM word) are
    read back exactly, by the idle-time param port and by integrate ops, and no write touches
    its slot neighbours."""
    n = 8 * lanes
    G = n // lanes
    pack = 16 // (lanes * wb)
    boundary = 16384 * pack                  # first logical word of tile row 1
    n_in = boundary // G + 2
    layer, geo = _geo(n_in, n, lanes, wb)
    assert geo.spram_pack == pack and geo.spram_tiles == 2
    dut = SynapseArray(layer, geo, spram_primitive="model")
    twin = SynapseTwin(layer, lanes, zero=True)
    rng = np.random.default_rng(wb * 10 + lanes)
    lo, hi = -(1 << (wb - 1)), 1 << (wb - 1)
    # Every lane of words boundary - pack .. boundary + pack (all slots of the SPRAM words on both
    # sides) except one word's lane 0, left empty to catch a write that spills into its slot.
    cells = []
    for a in range(boundary - pack, boundary + pack):
        i, g = divmod(a, G)
        for k in range(lanes):
            if (a, k) != (boundary, 0):
                cells.append((i, g * lanes + k, int(rng.integers(lo, hi))))
    rows = sorted({i for i, _, _ in cells} | {boundary // G})

    async def body(ctx):
        for i, j, v in cells:
            twin.write_weight(i, j, v)
            await write_weight_port(ctx, dut, i, j, v)
        ctx.set(dut.w_en, 0)
        await ctx.tick()
        for i in rows:
            for g in range(G):
                ctx.set(dut.param_row, i)
                ctx.set(dut.param_group, g)
                await ctx.tick()
                got = [ctx.get(dut.w_word[k]) for k in range(lanes)]
                assert got == twin.weights[i, g].tolist(), f"param read row {i} group {g}"
        for i in rows:
            twin.integrate(i)
            for g in range(G):
                ctx.set(dut.op, OP_INTEGRATE)
                ctx.set(dut.addr, i)
                ctx.set(dut.group, g)
                await ctx.tick()
        for k in range(G + ACC_LATENCY - 1):
            ctx.set(dut.op, OP_SWEEP if k < G else OP_NONE)
            ctx.set(dut.group, min(k, G - 1))
            await ctx.tick()
            g = k + 1 - ACC_LATENCY
            if g >= 0:
                assert [ctx.get(dut.acc[j]) for j in range(lanes)] == twin.take(g).tolist(), f"sums of group {g}"
        ctx.set(dut.op, OP_NONE)

    run_testbench(dut, body)


def test_mnist_sized_network_passes_the_icebreaker_precheck_at_one_lane():
    """As `spikegate build --board icebreaker --lanes 1` checks it, with the default input buffer:
    layer 0's weights go to the 4 SPRAM tiles (refused as 7 tiles before packing)."""
    from spikegate.boards import fit
    from spikegate.boards.build import default_max_events
    from spikegate.boards.targets import get_board
    from spikegate.model.random import random_network
    net = random_network(0, (784, 128, 10), weight_bits=8, membrane_bits=16, readout=False, timesteps=16)
    board = get_board("icebreaker")
    hw = fit.choose_weight_ram(board, net, HardwareConfig(lanes=1, max_events=default_max_events(net)))
    est = fit.precheck(board, net, hw)
    assert est["weight_ram"] == ["spram", "block"] and est["spram_tiles"] == 4 and est["blocks"] <= 30
    assert any(r["memory"] == "layer 0 spike words" and r["blocks"] == 1 for r in est["memories"])
