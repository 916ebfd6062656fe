"""cocotb testbench: a stream of samples through a plastic NetworkCore, learning on or off per sample
(rstdp: a reward at every step and one after the sample), then every weight read back through the
idle-time ``param`` port and the learning state through ``learn_state``.

Runs inside the simulator; the parent (:mod:`spikegate.sim.learn`) packs the ``load`` words, the
``learn`` value of every sample and the ``param_addr`` words to read, and decodes ``result.npz``.
Inputs are driven and outputs sampled on falling edges (see :mod:`.tb_core`).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import cocotb
import numpy as np
from cocotb.triggers import RisingEdge, with_timeout

from .tb_common import CLOCK_NS, start_and_reset


@cocotb.test()
async def learn_stream(dut):
    job_dir = Path(os.environ["SPIKEGATE_SIM_JOB"])
    job = json.loads((job_dir / "job.json").read_text())
    arrays = np.load(job_dir / "job.npz")
    words, offsets, timeouts = arrays["words"], arrays["offsets"], arrays["timeout_cycles"]
    learn, params, state_words = arrays["learn"], arrays["param_words"], arrays["state_words"]
    cfg = arrays["cfg_words"]
    step_rewards, sample_rewards = arrays["step_rewards"], arrays["sample_rewards"]
    p = {name: getattr(dut, sig) for name, sig in job["ports"].items()}
    rstdp = "reward_valid" in p
    n = len(offsets) - 1
    cycles = np.zeros(n, np.int64)
    reward_cycles = np.zeros(n, np.int64)
    values = np.zeros(len(params), np.int64)
    state = np.zeros(len(state_words), np.int64)
    done_samples = 0
    error = ""

    inputs = ("load_valid", "clear", "start", "learn", "param_addr", "load_payload", "learn_state_addr", "cfg_valid")
    fall = await start_and_reset(p, inputs + (("step_reward", "reward_valid", "reward_payload") if rstdp else ()))

    async def wait_done(s, what):
        if not int(p["done"].value):
            try:
                await with_timeout(RisingEdge(p["done"]), int(timeouts[s]) * CLOCK_NS, "ns")
            except cocotb.triggers.SimTimeoutError:
                raise RuntimeError(f"sample {s}: done did not rise after {what} within {int(timeouts[s])} "
                                   "cycles") from None
        await fall

    try:
        # Weights in SPRAM start empty: write them through cfg (ready while idle), one a cycle,
        # then let the cfg pipeline drain before the first sample.
        for w in cfg:
            p["cfg_payload"].value = int(w)
            p["cfg_valid"].value = 1
            await fall
        if len(cfg):
            p["cfg_valid"].value = 0
            for _ in range(8):
                await fall
        for s in range(n):
            p["learn"].value = int(learn[s])
            if rstdp:
                p["step_reward"].value = int(step_rewards[s])
            p["clear"].value = 1
            await fall
            p["clear"].value = 0
            for w in words[offsets[s]:offsets[s + 1]]:
                p["load_payload"].value = int(w)
                p["load_valid"].value = 1
                await fall
            p["load_valid"].value = 0
            p["start"].value = 1
            await fall
            p["start"].value = 0
            await wait_done(s, "the run")
            cycles[s] = int(p["cycles"].value)
            if rstdp:
                # idle now, so the reward is taken at this edge; done drops with it
                p["reward_payload"].value = int(sample_rewards[s])
                p["reward_valid"].value = 1
                await fall
                p["reward_valid"].value = 0
                await wait_done(s, "its reward")
                reward_cycles[s] = int(p["cycles"].value)
            done_samples = s + 1
        # Registered reads: an address set at one falling edge is answered at the next.
        for k, a in enumerate(params):
            p["param_addr"].value = int(a)
            await fall
            values[k] = int(p["param_data"].value.to_signed())
        for k, a in enumerate(state_words):
            p["learn_state_addr"].value = int(a)
            await fall
            state[k] = int(p["learn_state_data"].value.to_signed())
    except Exception as e:
        error = f"{type(e).__name__}: {e}"
        raise
    finally:
        tmp = job_dir / "result.tmp.npz"
        np.savez(tmp, cycles=cycles, values=values, done_samples=np.int64(done_samples), error=np.str_(error),
                 reward_cycles=reward_cycles, state=state)
        os.replace(tmp, job_dir / "result.npz")
