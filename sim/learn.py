"""Train a plastic network's generated NetworkCore in Verilator (or Icarus) on a sample stream.

:func:`learn_in_simulator` builds the core (through :class:`~spikegate.sim.core.CoreSim`, so the
build is cached like every other), runs the samples in order with ``learn`` set per sample
(:mod:`spikegate.sim.tb_learn`), rstdp networks with a reward at every step of sample k
(``step_rewards[k]``, the core's ``step_reward``) and one after it (``sample_rewards[k]``, the
``reward`` stream), and returns each sample's cycle count (and each reward's), every plastic
layer's weights read back through the ``param`` port afterwards and its traces, offsets and
eligibility through the ``learn_state`` port, for comparison with
:class:`spikegate.model.learning.Learner` and the twin.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass

import numpy as np

from ..model.core import NetworkCore as CoreTwin, input_words, weight_cfg_words
from ..model.learning_engine import LearnState
from ..model.network import Network
from ..model.protocol import CfgTarget
from . import runner
from .core import CoreSim, _field_map

__all__ = ["LearnRun", "learn_in_simulator", "TB_MODULE"]

TB_MODULE = "spikegate.sim.tb_learn"


@dataclass
class LearnRun:
    cycles: np.ndarray             # int64 [N], the core's cycles port after each sample
    weights: dict[int, np.ndarray]  # plastic layer -> int64 [n_in, n] after the last sample
    sim_seconds: float
    reward_cycles: np.ndarray | None = None  # int64 [N], the cycles port after each sample reward
    # plastic layer -> {"pre": [n_in], "post": [n], "offsets": [n], "elig": [n_in, n] (rstdp)}
    state: dict | None = None


def _state_reads(net: Network, plastic) -> list[tuple[int, str, LearnState, int, int]]:
    """(layer, name, kind, row, col) of every learning-state value to read back."""
    reads = []
    for l in plastic:
        layer = net.layers[l]
        n_in, n = layer.n_in, layer.n
        reads += [(l, "pre", LearnState.PRE_TRACE, i, 0) for i in range(n_in)]
        reads += [(l, "post", LearnState.POST_TRACE, 0, j) for j in range(n)]
        reads += [(l, "offsets", LearnState.OFFSET, 0, j) for j in range(n)]
        if layer.plasticity.rule == "rstdp":
            reads += [(l, "elig", LearnState.ELIGIBILITY, i, j) for i in range(n_in) for j in range(n)]
    return reads


def _decode_state(net: Network, plastic, reads, values) -> dict:
    state = {l: {} for l in plastic}
    for (l, name, _, _, _), v in zip(reads, values):
        state[l].setdefault(name, []).append(int(v))
    for l, d in state.items():
        for name in d:
            d[name] = np.array(d[name], np.int64)
        if "elig" in d:
            d["elig"] = d["elig"].reshape(net.layers[l].n_in, net.layers[l].n)
    return state


def _pack(fields: dict[str, tuple[int, int]], **values) -> int:
    word = 0
    for name, value in values.items():
        off, width = fields[name]
        word |= (int(value) & ((1 << width) - 1)) << off
    return word


def learn_in_simulator(net: Network, spikes, learn, *, step_rewards=None, sample_rewards=None, lanes=4,
                       simulator: str = "verilator", build_root=None, weight_ram="block") -> LearnRun:
    """Run ``spikes`` bool [N, T, n_in] in order, sample k with ``learn[k]``, from the network's weights;
    rstdp networks: sample k with ``step_rewards[k]`` at every step, then ``sample_rewards[k]``
    (None: all 0).

    ``weight_ram`` (as in HardwareConfig): layers with "spram" get SPRAM cycle-model tiles, which
    start empty, so their weights are written through the ``cfg`` port first, as a host does."""
    spikes = np.asarray(spikes, bool)
    learn = np.asarray(learn, bool)
    if spikes.ndim != 3 or len(learn) != len(spikes):
        raise ValueError(f"spikes must be [N, T, n_in] and learn one flag per sample, got {spikes.shape} "
                         f"and {learn.shape}")
    rstdp = any(layer.plasticity is not None and layer.plasticity.rule == "rstdp" for layer in net.layers)
    rewards = {}
    for name, values in (("step_rewards", step_rewards), ("sample_rewards", sample_rewards)):
        if values is not None and not rstdp:
            raise ValueError(f"{name} needs a layer with plasticity.rule = 'rstdp'; this network has none")
        values = np.zeros(len(spikes), np.int64) if values is None else np.asarray(values, np.int64)
        if values.shape != (len(spikes),):
            raise ValueError(f"{name} must have one reward per sample ({len(spikes)}), got shape {values.shape}")
        rewards[name] = values
    plastic = [l for l, layer in enumerate(net.layers) if layer.plasticity is not None]
    if not plastic:
        raise ValueError("the network has no plastic layer; valid: a network with Layer(plasticity=...)")
    sim = CoreSim(net, lanes=lanes, simulator=simulator, timesteps=spikes.shape[1], build_root=build_root,
                  weight_ram=weight_ram)
    members = dict(sim.core.signature.members.flatten())
    ports = {k: v for k, v in sim._ports.items() if not k.startswith(("trace_", "cfg"))}
    ports.update(learn="learn", param_addr="param_addr", param_data="param_data",
                 learn_state_addr="learn_state_addr", learn_state_data="learn_state_data")
    if rstdp:
        ports.update(step_reward="step_reward", reward_valid="reward__valid", reward_ready="reward__ready",
                     reward_payload="reward__payload")
    pfields = _field_map(members[("param_addr",)].shape)
    sfields = _field_map(members[("learn_state_addr",)].shape)
    twin = CoreTwin(net, sim.hw)
    spram = [l for l, g in enumerate(sim.geometry) if g.weight_ram == "spram"]
    cfg = weight_cfg_words(net, spram) if spram else []
    for w in cfg:
        twin.cfg(*w)
    if cfg:
        ports.update(cfg_valid="cfg__valid", cfg_payload="cfg__payload")
    cfields = _field_map(members[("cfg", "payload")].shape)
    cfg_words = [_pack(cfields, layer=l, target=t, row=r, col=c, data=d) for l, t, r, c, d in cfg]
    words, offsets, timeouts = [], [0], []
    for k, (s, on) in enumerate(zip(spikes, learn)):
        words.extend(sim._pack_load(a, e) for a, e in input_words(s))
        offsets.append(len(words))
        run = twin.run(s, learn=bool(on), reward=int(rewards["step_rewards"][k])).cycles
        timeouts.append(4 * (run + twin.reward(int(rewards["sample_rewards"][k]))) + 10_000)
    params = [_pack(pfields, layer=l, target=CfgTarget.WEIGHT, row=i, col=j)
              for l in plastic for i in range(net.layers[l].n_in) for j in range(net.layers[l].n)]
    reads = _state_reads(net, plastic)
    state_words = [_pack(sfields, layer=l, kind=kind, row=i, col=j) for l, _, kind, i, j in reads]
    rdir = runner.run_scratch(sim.build)
    try:
        (rdir / "job.json").write_text(json.dumps({"ports": ports}))
        np.savez(rdir / "job.npz", words=np.array(words, np.int64), offsets=np.array(offsets, np.int64),
                 timeout_cycles=np.array(timeouts, np.int64), learn=learn.astype(np.int64),
                 param_words=np.array(params, np.int64), state_words=np.array(state_words, np.int64),
                 step_rewards=rewards["step_rewards"], sample_rewards=rewards["sample_rewards"],
                 cfg_words=np.array(cfg_words, np.int64))
        res = runner.run(sim.build, TB_MODULE, run_dir=rdir, env={"SPIKEGATE_SIM_JOB": str(rdir)},
                         timeout=600 + sum(timeouts) / 1000)
        try:
            r = np.load(rdir / "result.npz")
        except OSError:
            raise runner.SimulatorError(f"the testbench wrote no results; end of {res.log}:\n"
                                        f"{runner._log_tail(res.log)}") from None
        if str(r["error"]):
            raise runner.SimulatorError(f"the learning testbench failed after {int(r['done_samples'])} samples: "
                                        f"{r['error']}")
        values = np.asarray(r["values"], np.int64)
        weights, k = {}, 0
        for l in plastic:
            n_in, n = net.layers[l].n_in, net.layers[l].n
            weights[l] = values[k:k + n_in * n].reshape(n_in, n)
            k += n_in * n
        return LearnRun(cycles=np.asarray(r["cycles"], np.int64), weights=weights, sim_seconds=res.wall_seconds,
                        reward_cycles=np.asarray(r["reward_cycles"], np.int64) if rstdp else None,
                        state=_decode_state(net, plastic, reads, np.asarray(r["state"], np.int64)))
    finally:
        shutil.rmtree(rdir, ignore_errors=True)
