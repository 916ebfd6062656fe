"""A data set through a network's generated Verilog in Verilator or Icarus, every sample checked
against the bit-exact model: per-layer spikes at every step, final membranes, spike counts and the
exact cycle count. Needs the ``sim`` extra (Amaranth for the Verilog, cocotb to drive it).
"""
from __future__ import annotations

import logging
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from . import datasets
from .extras import require_extra
from .model.fileio import atomic_path
from .model.network import Network
from .netinfo import network_summary
from .progress import silent
from .sim.runner import SIMULATORS  # imports nothing heavy: cocotb and Amaranth load when used

__all__ = ["SIMULATORS", "RtlSimulation", "simulate_dataset"]

log = logging.getLogger(__name__)



@dataclass
class RtlSimulation:
    network: dict
    data: str
    split: str
    seed: int
    simulator: str
    lanes: object                # the lanes the core was built with (int or one per layer)
    samples: int
    bit_exact: int               # samples whose every checked value matches the model
    mismatched_samples: list     # the first 100
    first_mismatch: dict | None  # sim.core.Mismatch.to_dict() plus its text
    mismatches: int
    accuracy: float              # of the hardware's answers
    model_accuracy: float
    cycles_per_sample: dict      # mean, min, max
    simulated_cycles: int
    core_cycles: int
    sim_seconds: float
    cycles_per_second: float
    build_seconds: float
    build_reused: bool
    build_dir: str
    waves: str | None = None
    waves_sample: int | None = None
    wall_seconds: float = 0.0
    # Per sample, in data set order: the true class, and the class and exact cycle count the RTL
    # gave (the samples it finished).
    labels: list = field(default_factory=list)
    predictions: list = field(default_factory=list)
    cycles: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.bit_exact == self.samples

    def to_dict(self) -> dict:
        return asdict(self)


def _predict(net: Network, membranes: np.ndarray, counts: np.ndarray) -> np.ndarray:
    # The model's rule (model.classify): readout networks by final membrane, others by spike count,
    # ties to the lowest index.
    return np.argmax(membranes if net.readout else counts, axis=1)


def _copy_waves(src: Path, dest: Path) -> Path:
    dest = dest.resolve()
    dest.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(dest) as tmp:
        shutil.copyfile(src, tmp)
    return dest


def simulate_dataset(net: Network, net_path: str | os.PathLike | None = None, *, data: str | None = None,
                     split: str = "test", data_dir=None, samples: int | None = None, seed: int = 0,
                     simulator: str = "verilator", lanes=4, build_dir=None, waves: str | None = None,
                     waves_sample: int | None = None, progress=silent) -> RtlSimulation:
    """Simulate the data set's samples (:func:`spikegate.datasets.select`) on ``net``'s NetworkCore
    and compare them with the model. ``waves`` (a path, or "" for the default name) also records
    one sample's waveform: the first mismatching one, else ``waves_sample`` (default 0)."""
    if simulator not in SIMULATORS:
        raise ValueError(f"--simulator = {simulator!r} is not valid; valid: {', '.join(SIMULATORS)}")
    require_extra("sim")
    # Looked up at call time: tests replace sim.core.expected_results to inject a mismatch.
    from .sim.core import CoreSim, compare, expected_results

    data, x, y = datasets.select(net, data, split, data_dir, samples)
    N = len(y)
    if waves_sample is not None and not 0 <= waves_sample < N:
        raise ValueError(f"--waves-sample = {waves_sample} is not valid; valid: 0 <= sample < {N}")
    t0 = time.perf_counter()
    spikes = datasets.encode_for(net, x, seed=seed)
    sim = CoreSim(net, lanes=lanes, simulator=simulator, build_root=build_dir, progress=log.info)
    with progress(N, f"{simulator} simulation of {data} {split}", unit="samples") as p:
        reported = 0

        def on_sample(k: int) -> None:
            nonlocal reported
            p.update(k - reported)
            reported = k

        hw = sim.run(spikes, on_sample=on_sample)
        on_sample(hw.samples_done)
    exp = expected_results(net, spikes, sim.hw)
    mismatches = compare(exp, hw)
    bad = sorted({m.sample for m in mismatches})
    done = hw.samples_done
    hw_pred = _predict(net, hw.membranes[:done], hw.counts[:done])
    model_pred = _predict(net, exp.membranes, exp.counts)
    result = RtlSimulation(
        network=network_summary(net, net_path), data=data, split=split, seed=seed, simulator=simulator,
        lanes=sim.lanes, samples=N, bit_exact=N - len(bad), mismatched_samples=bad[:100],
        first_mismatch=mismatches[0].to_dict() | {"text": str(mismatches[0])} if mismatches else None,
        mismatches=len(mismatches),
        accuracy=float(np.mean(hw_pred == y[:done])) if done else 0.0,
        model_accuracy=float(np.mean(model_pred == y)),
        cycles_per_sample={"mean": float(hw.cycles[:done].mean()) if done else 0.0,
                           "min": int(hw.cycles[:done].min()) if done else 0,
                           "max": int(hw.cycles[:done].max()) if done else 0},
        simulated_cycles=hw.sim_cycles, core_cycles=hw.run_cycles, sim_seconds=round(hw.sim_seconds, 3),
        cycles_per_second=round(hw.cycles_per_second, 1), build_seconds=round(hw.build_seconds, 3),
        build_reused=hw.build_reused, build_dir=str(sim.build.directory),
        labels=[int(c) for c in y], predictions=[int(c) for c in hw_pred],
        cycles=[int(c) for c in hw.cycles[:done]])
    if waves is not None:
        k = bad[0] if bad else (waves_sample or 0)
        wsim = CoreSim(net, lanes=lanes, simulator=simulator, build_root=build_dir, waves=True, progress=log.info)
        log.info("recording waves of sample %d%s", k, " (the first mismatching one)" if bad else "")
        whw = wsim.run(spikes[k:k + 1])
        if whw.waves is None:
            raise RuntimeError(f"{simulator} wrote no waveform file")
        dest = Path(waves) if waves else Path(f"sim-{simulator}-sample{k}{whw.waves.suffix}")
        result.waves = str(_copy_waves(whw.waves, dest))
        whw.waves.unlink(missing_ok=True)
        result.waves_sample = k
    result.wall_seconds = round(time.perf_counter() - t0, 3)
    return result
