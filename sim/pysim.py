"""The same batch protocol as :mod:`.tb_core`, in Amaranth's own Python simulator.

Used as the baseline of bench/sim_speed.py: the same generated NetworkCore, the same samples,
the same port sequence (clear, load words honouring ``ready``, start, wait for ``done``, read
every output neuron and the trace memory), the same decoding and comparison with the model.
Amaranth's simulator evaluates the design in Python, so every clock cycle costs Python work; the
wait for ``done`` counts its cycles, which also checks the ``cycles`` port independently.
"""
from __future__ import annotations

import time

import numpy as np

from .core import CoreSim, HardwareRun, _check_spikes

__all__ = ["run_amaranth"]


def run_amaranth(sim: CoreSim, spikes) -> HardwareRun:
    from amaranth.sim import Simulator

    from .collisions import poisoned

    spikes = _check_spikes(sim.net, spikes, sim.timesteps)
    N, T, _ = spikes.shape
    words, offsets, timeouts = sim.load_words(spikes)
    dut = sim.new_core()
    n_out = sim.net.n_outputs
    rec = {
        "cycles": np.zeros(N, np.int64), "measured": np.zeros(N, np.int64), "overflow": np.zeros(N, np.int64),
        "busy_seen": np.zeros(N, np.int64), "trace_count": np.zeros(N, np.int64),
        "trace_overflow": np.zeros(N, np.int64), "counts": np.zeros((N, n_out), np.int64),
        "membranes": np.zeros((N, n_out), np.int64), "trace_words": [], "trace_offsets": [0],
        "done_samples": 0, "error": "", "sim_cycles": 0, "wall_seconds": 0.0,
    }

    async def bench(ctx):
        ticks = 0

        async def tick():
            nonlocal ticks
            ticks += 1
            await ctx.tick()

        ctx.set(dut.load.valid, 0)
        t0 = time.perf_counter()
        for s in range(N):
            ctx.set(dut.clear, 1)
            await tick()
            ctx.set(dut.clear, 0)
            for w in words[offsets[s]:offsets[s + 1]]:
                stalls = 0
                while not ctx.get(dut.load.ready):
                    ctx.set(dut.load.valid, 0)
                    await tick()
                    stalls += 1
                    if stalls > 1000:
                        raise RuntimeError(f"sample {s}: load.ready stayed low for 1000 cycles while loading")
                ctx.set(dut.load.payload.as_value(), int(w))
                ctx.set(dut.load.valid, 1)
                await tick()
            ctx.set(dut.load.valid, 0)
            ctx.set(dut.start, 1)
            await tick()
            ctx.set(dut.start, 0)
            rec["busy_seen"][s] = ctx.get(dut.busy)
            # Cycles after the one that took start, up to the cycle done rose.
            waited = 0
            while not ctx.get(dut.done):
                await tick()
                waited += 1
                if waited > timeouts[s]:
                    raise RuntimeError(f"sample {s}: done did not rise within {timeouts[s]} cycles after start")
            rec["measured"][s] = waited
            rec["cycles"][s] = ctx.get(dut.cycles)
            rec["overflow"][s] = ctx.get(dut.overflow)
            for j in range(n_out):
                ctx.set(dut.out_addr, j)
                for _ in range(dut.read_latency):
                    await tick()
                rec["counts"][s, j] = ctx.get(dut.out_count)
                # Raw bits, as the Verilog testbench reads them; decode() sign-extends.
                rec["membranes"][s, j] = ctx.get(dut.out_membrane.as_unsigned())
            tc = ctx.get(dut.trace_count)
            rec["trace_count"][s] = tc
            rec["trace_overflow"][s] = ctx.get(dut.trace_overflow)
            for a in range(tc):
                ctx.set(dut.trace_addr, a)
                await tick()
                rec["trace_words"].append(int(ctx.get(dut.trace_data.as_value())))
            rec["trace_offsets"].append(len(rec["trace_words"]))
            rec["done_samples"] = s + 1
        rec["wall_seconds"] = time.perf_counter() - t0
        rec["sim_cycles"] = ticks

    # Colliding reads return garbage, as in the Verilog the other simulators run (sim.runner).
    simulator = Simulator(poisoned(dut))
    simulator.add_clock(1e-8)
    simulator.add_testbench(bench)
    t0 = time.perf_counter()
    try:
        simulator.run()
    except RuntimeError as e:
        rec["error"] = str(e)
    wall = time.perf_counter() - t0
    rec["trace_offsets"] = np.array(rec["trace_offsets"], np.int64)
    return sim.decode(rec, N, T, wall_seconds=wall, simulator="amaranth")
