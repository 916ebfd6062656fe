"""cocotb testbench for the NetworkCore's Verilog: runs a batch of samples in one simulator launch.

This module runs inside the simulator. It knows nothing about networks or the model: the parent
process (:mod:`spikegate.sim.core`) packs each sample's ``load`` words, names the ports, and later
decodes and checks everything this testbench records. Per sample it

1. clears the input buffer, streams the packed ``load`` words (honouring ``ready``),
2. pulses ``start`` and then only waits for ``done`` to rise: the clock is the simulator's own
   (cocotb's GPI clock), so between start and done no Python runs at all,
3. reads ``cycles``/``overflow``, every output neuron's ``out_count``/``out_membrane`` and the
   whole trace memory (the hardware monitor of every layer's spike words).

Inputs are driven and outputs sampled on the falling clock edge, half a cycle away from the
rising edge where the design samples and updates, so there is no race in any simulator.

The job is a directory named by ``SPIKEGATE_SIM_JOB`` holding ``job.json`` and ``job.npz``;
results go to ``result.npz`` there (written atomically, also after a failure, so the parent can
report how far the batch got).
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import cocotb
import numpy as np
from cocotb.triggers import RisingEdge, with_timeout
from cocotb.simtime import get_sim_time

from .tb_common import CLOCK_NS, start_and_reset


def _save(path: Path, **arrays) -> None:
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


@cocotb.test()
async def run_batch(dut):
    job_dir = Path(os.environ["SPIKEGATE_SIM_JOB"])
    job = json.loads((job_dir / "job.json").read_text())
    arrays = np.load(job_dir / "job.npz")
    words, offsets = arrays["words"], arrays["offsets"]
    timeouts = arrays["timeout_cycles"]
    n_out, trace = int(job["n_out"]), bool(job["trace"])
    latency = int(job.get("read_latency", 1))
    p = {name: getattr(dut, sig) for name, sig in job["ports"].items()}
    n = len(offsets) - 1

    cycles = np.zeros(n, np.int64)
    measured = np.zeros(n, np.int64)
    overflow = np.zeros(n, np.int64)
    busy_seen = np.zeros(n, np.int64)
    trace_count = np.zeros(n, np.int64)
    trace_overflow = np.zeros(n, np.int64)
    counts = np.zeros((n, n_out), np.int64)
    membranes = np.zeros((n, n_out), np.int64)
    trace_words: list[int] = []
    trace_offsets = [0]
    load_stalls = np.zeros(n, np.int64)
    done_samples = 0
    error = ""

    fall = await start_and_reset(p, ("load_valid", "clear", "start", "cfg_valid", "out_addr", "load_payload", "trace_addr"))
    progress = open(job_dir / "progress", "ab", buffering=0)
    wall0 = time.perf_counter()
    sim0 = get_sim_time("ns")
    try:
        for s in range(n):
            p["clear"].value = 1
            await fall
            p["clear"].value = 0
            # A word is presented at a falling edge and taken at the next rising edge if `ready`,
            # which only changes on rising edges, is high: so `ready` read now decides it.
            for w in words[offsets[s]:offsets[s + 1]]:
                while not int(p["load_ready"].value):
                    load_stalls[s] += 1
                    p["load_valid"].value = 0
                    await fall
                    if load_stalls[s] > 1000:
                        raise RuntimeError(f"sample {s}: load.ready stayed low for 1000 cycles while loading")
                p["load_payload"].value = int(w)
                p["load_valid"].value = 1
                await fall
            p["load_valid"].value = 0
            p["start"].value = 1
            t_start = get_sim_time("ns")
            await fall
            p["start"].value = 0
            busy_seen[s] = int(p["busy"].value)
            if not int(p["done"].value):
                try:
                    await with_timeout(RisingEdge(p["done"]), int(timeouts[s]) * CLOCK_NS, "ns")
                except cocotb.triggers.SimTimeoutError:
                    raise RuntimeError(f"sample {s}: done did not rise within {int(timeouts[s])} cycles "
                                       f"after start") from None
            # t_start is the falling edge before the rising edge that samples start.
            measured[s] = round((get_sim_time("ns") - t_start - CLOCK_NS / 2) / CLOCK_NS)
            await fall
            cycles[s] = int(p["cycles"].value)
            overflow[s] = int(p["overflow"].value)
            # Registered reads: an address set at one falling edge is answered ``latency`` edges later
            # (the core's read_latency).
            for j in range(n_out):
                p["out_addr"].value = j
                for _ in range(latency):
                    await fall
                counts[s, j] = int(p["out_count"].value)
                membranes[s, j] = int(p["out_membrane"].value)
            if trace:
                trace_count[s] = tc = int(p["trace_count"].value)
                trace_overflow[s] = int(p["trace_overflow"].value)
                if tc:
                    p["trace_addr"].value = 0
                    await fall
                    for a in range(tc):
                        trace_words.append(int(p["trace_data"].value))
                        p["trace_addr"].value = (a + 1) % tc
                        await fall
            trace_offsets.append(len(trace_words))
            done_samples = s + 1
            progress.write(b".")
            progress.flush()
    except Exception as e:  # recorded for the parent, then re-raised so cocotb fails the test
        error = f"{type(e).__name__}: {e}"
        raise
    finally:
        progress.close()
        wall = time.perf_counter() - wall0
        _save(job_dir / "result.npz", cycles=cycles, measured=measured, overflow=overflow, busy_seen=busy_seen,
              trace_count=trace_count, trace_overflow=trace_overflow, counts=counts, membranes=membranes,
              trace_words=np.array([str(w) for w in trace_words] or [""])[:len(trace_words)],
              trace_offsets=np.array(trace_offsets, np.int64), load_stalls=load_stalls,
              done_samples=np.int64(done_samples), error=np.str_(error), wall_seconds=np.float64(wall),
              sim_cycles=np.int64(round((get_sim_time("ns") - sim0) / CLOCK_NS)))
