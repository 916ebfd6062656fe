"""Drive a :class:`~spikegate.hdl.core.NetworkCore` in Amaranth's simulator.

Used by the tests and the cycle benchmark; gives the same :class:`~spikegate.model.core.RunResult`
the twin returns, read from the gateware's ports (spike counts, final membranes of the last
layer, ``cycles``, ``mon``) and memories (every layer's final membranes and refractory counters).
"""
from __future__ import annotations

import numpy as np
from amaranth.hdl import Fragment
from amaranth.sim import Simulator

from ..model.core import NetworkCore as Twin, RunResult, as_powered_up, input_words
from ..model.synapse import unpack_lanes
from .core import CFG_LATENCY, NetworkCore

__all__ = ["simulate_core", "run_in_testbench", "send_cfg_words"]


async def _pulse(ctx, sig):
    ctx.set(sig, 1)
    await ctx.tick()
    ctx.set(sig, 0)


async def send_cfg_words(ctx, dut: NetworkCore, words) -> bool:
    """Send cfg words ``(layer, target, row, col, data)`` back to back, wait until the last is applied
    (CFG_LATENCY) and a cycle more; return whether ``cfg_error`` stayed low."""
    for layer, target, row, col, value in words:
        ctx.set(dut.cfg.valid, 1)
        ctx.set(dut.cfg.payload, {"layer": layer, "target": target, "row": row, "col": col, "data": value})
        await ctx.tick()
    ctx.set(dut.cfg.valid, 0)
    await ctx.tick().repeat(CFG_LATENCY + 2)
    return not ctx.get(dut.cfg_error)


async def load_sample(ctx, dut: NetworkCore, spikes: np.ndarray) -> None:
    await _pulse(ctx, dut.clear)
    for addr, eos in input_words(spikes, dut.geometry[0]):
        ctx.set(dut.load.valid, 1)
        ctx.set(dut.load.payload, {"addr": addr, "end_of_step": eos})
        await ctx.tick()
    ctx.set(dut.load.valid, 0)
    assert not ctx.get(dut.overflow), "input buffer overflow while loading a sample"


async def run_in_testbench(ctx, dut: NetworkCore, spikes: np.ndarray, max_cycles: int = 10_000_000) -> RunResult:
    """Load one sample [T, n_in], run it, read everything back."""
    spikes = np.asarray(spikes, dtype=bool)
    T = spikes.shape[0]
    await load_sample(ctx, dut, spikes)
    await _pulse(ctx, dut.start)
    mon = []
    waited = 0
    while True:
        for word in ctx.get(dut.mon):
            if word.valid:
                mon.append((word.layer, word.step, word.base, word.word))
        if ctx.get(dut.done):
            break
        if ctx.get(dut.busy) == 0 and waited > 1:
            raise AssertionError("core went idle without raising done")
        await ctx.tick()
        waited += 1
        if waited > max_cycles:
            raise AssertionError(f"no done after {max_cycles} cycles")
    cycles = ctx.get(dut.cycles)
    if dut.hw.schedule == "inflight":  # the twin's order: layer after layer (model.core.RunResult.mon)
        mon.sort(key=lambda word: word[0])
    geos = dut.geometry
    n_out = geos[-1].n
    counts = np.zeros(n_out, dtype=np.int64)
    membranes_out = np.zeros(n_out, dtype=np.int64)
    for j in range(n_out):
        ctx.set(dut.out_addr, j)
        await ctx.tick().repeat(dut.read_latency)
        counts[j] = ctx.get(dut.out_count)
        membranes_out[j] = ctx.get(dut.out_membrane)
    membranes, refractory = [], []
    for core, geo in zip(dut.layers, geos):
        P, V = geo.lanes, geo.membrane_bits
        if T == 0:
            v = np.zeros(geo.n, np.int64)
            r = np.zeros(geo.n, np.int64)
        else:
            # After a run of T >= 1 steps every group has been swept, so the memories hold the
            # state (before that, "fresh" flags stand for zero).
            v = np.concatenate([unpack_lanes(ctx.get(core.v_mem.data[g]), V, P)
                                for g in range(geo.groups)])
            v = v[:geo.n] if geo.conv is None else _conv_order(geo, v)
            if core.r_mem is not None:
                rb = geo.refr_bits
                r = np.concatenate([[(ctx.get(core.r_mem.data[g]) >> (k * rb)) & ((1 << rb) - 1)
                                     for k in range(P)] for g in range(geo.groups)]).astype(np.int64)
                r = r[:geo.n] if geo.conv is None else _conv_order(geo, r)
            else:
                r = np.zeros(geo.n, np.int64)
        membranes.append(v)
        refractory.append(r)
    if not np.array_equal(membranes[-1], membranes_out):
        raise AssertionError(f"out_membrane port {membranes_out} disagrees with the membrane memory {membranes[-1]}")
    out = [np.zeros((T, geo.n), dtype=bool) for geo in geos]
    for l, t, base, word in mon:
        for k in range(geos[l].lanes):
            if (word >> k) & 1:
                conv = geos[l].conv  # its base is a packed (row, column, channel) address
                out[l][t, base + k if conv is None else conv.flat_outputs([base + k])[0]] = True
    return RunResult(spikes=out, membranes=membranes, refractory=refractory, counts=counts, mon=mon,
                     cycles=cycles)


def _conv_order(geo, a: np.ndarray) -> np.ndarray:
    """A conv layer's per-lane values in (oy, ox, channel) word order, as the contract's (o, oy, ox)."""
    co, ho, wo = geo.conv.spec.out_shape
    return a.reshape(ho, wo, -1)[:, :, :co].transpose(2, 0, 1).reshape(-1)


def simulate_core(dut: NetworkCore, samples, *, vcd: str | None = None, platform=None) -> list[RunResult]:
    """Run samples [N, T, n_in] (or a list of [T, n_in]) through ``dut`` in Amaranth's simulator,
    elaborated for ``platform`` if given (``sim.collisions.CollisionPoison``: a read that meets a
    write in a ``no_rw_check`` memory returns garbage, as it may on the boards)."""
    results = []
    twin = Twin(as_powered_up(dut.net, dut.hw), dut.hw)

    async def bench(ctx):
        for s in samples:
            # Twice the twin's count: a core that stalls fails in as many cycles as the run should
            # take, not after run_in_testbench's 10 million (hours in this simulator at 64 lanes).
            limit = 2 * twin.cycles(np.asarray(s, bool)) + 1000
            results.append(await run_in_testbench(ctx, dut, s, max_cycles=limit))

    sim = Simulator(dut if platform is None else Fragment.get(dut, platform))
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    if vcd:
        with sim.write_vcd(vcd):
            sim.run()
    else:
        sim.run()
    return results
