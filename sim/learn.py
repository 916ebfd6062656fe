"""Train a plastic network's generated NetworkCore in Verilator (or Icarus) on a sample stream.

:func:`learn_in_simulator` builds the core (through :class:`~spikegate.sim.core.CoreSim`, so the
build is cached like every other), runs the samples in order with ``learn`` set per sample
(:mod:`spikegate.sim.tb_learn`), and returns each sample's cycle count and every plastic layer's
weights read back through the ``param`` port afterwards, for comparison with
:class:`spikegate.model.learning.Learner` and the twin.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass

import numpy as np

from ..model.core import NetworkCore as CoreTwin, input_words, weight_cfg_words
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


def _pack(fields: dict[str, tuple[int, int]], **values) -> int:
    word = 0
    for name, value in values.items():
        off, width = fields[name]
        word |= (int(value) & ((1 << width) - 1)) << off
    return word


def learn_in_simulator(net: Network, spikes, learn, *, lanes=4, simulator: str = "verilator",
                       build_root=None, weight_ram="block") -> LearnRun:
    """Run ``spikes`` bool [N, T, n_in] in order, sample k with ``learn[k]``, from the network's weights.

    ``weight_ram`` (as in HardwareConfig): layers with "spram" get SPRAM cycle-model tiles, which
    start empty, so their weights are written through the ``cfg`` port first, as a host does."""
    spikes = np.asarray(spikes, bool)
    learn = np.asarray(learn, bool)
    if spikes.ndim != 3 or len(learn) != len(spikes):
        raise ValueError(f"spikes must be [N, T, n_in] and learn one flag per sample, got {spikes.shape} "
                         f"and {learn.shape}")
    plastic = [l for l, layer in enumerate(net.layers) if layer.plasticity is not None]
    if not plastic:
        raise ValueError("the network has no plastic layer; valid: a network with Layer(plasticity=...)")
    sim = CoreSim(net, lanes=lanes, simulator=simulator, timesteps=spikes.shape[1], build_root=build_root,
                  weight_ram=weight_ram)
    members = dict(sim.core.signature.members.flatten())
    ports = {k: v for k, v in sim._ports.items() if not k.startswith(("trace_", "cfg"))}
    ports.update(learn="learn", param_addr="param_addr", param_data="param_data")
    pfields = _field_map(members[("param_addr",)].shape)
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
    for s, on in zip(spikes, learn):
        words.extend(sim._pack_load(a, e) for a, e in input_words(s))
        offsets.append(len(words))
        timeouts.append(4 * twin.run(s, learn=bool(on)).cycles + 10_000)
    params = [_pack(pfields, layer=l, target=CfgTarget.WEIGHT, row=i, col=j)
              for l in plastic for i in range(net.layers[l].n_in) for j in range(net.layers[l].n)]
    rdir = runner.run_scratch(sim.build)
    try:
        (rdir / "job.json").write_text(json.dumps({"ports": ports}))
        np.savez(rdir / "job.npz", words=np.array(words, np.int64), offsets=np.array(offsets, np.int64),
                 timeout_cycles=np.array(timeouts, np.int64), learn=learn.astype(np.int64),
                 param_words=np.array(params, np.int64), cfg_words=np.array(cfg_words, np.int64))
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
        return LearnRun(cycles=np.asarray(r["cycles"], np.int64), weights=weights,
                        sim_seconds=res.wall_seconds)
    finally:
        shutil.rmtree(rdir, ignore_errors=True)
