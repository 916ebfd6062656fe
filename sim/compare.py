"""What a simulated core run is checked against, what it showed, and how they differ.

:func:`expected_results` is the model's answer for a batch (``model.simulate`` for spikes and
membranes, the twin ``model.core.NetworkCore`` for the exact cycle count); :class:`HardwareRun` is
what the simulated hardware showed, decoded by :class:`~spikegate.sim.core.CoreSim`;
:func:`compare` lists every difference in time order, so the first one can be reported precisely.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..model.core import NetworkCore as CoreTwin
from ..model.hardware import HardwareConfig
from ..model.network import Network
from ..model.simulate import simulate

__all__ = ["Expected", "HardwareRun", "Mismatch", "expected_results", "compare"]


# --- what the model says --------------------------------------------------------------------------

@dataclass
class Expected:
    """The model's answer for a batch: the contract (``model.simulate``) plus the twin's cycles."""
    spikes: list[np.ndarray]   # per layer, bool [N, T, n_l]
    membranes: np.ndarray      # int64 [N, n_out], final membranes of the last layer
    counts: np.ndarray         # int64 [N, n_out], spike counts of the last layer (0 for a readout)
    cycles: np.ndarray         # int64 [N]

    def copy(self) -> "Expected":
        return Expected([s.copy() for s in self.spikes], self.membranes.copy(), self.counts.copy(),
                        self.cycles.copy())


def expected_results(net: Network, spikes: np.ndarray, hw: HardwareConfig) -> Expected:
    """The model's answer for a batch [N, T, n_in] on the hardware ``hw`` (e.g. ``CoreSim.hw``)."""
    spikes = np.asarray(spikes, dtype=bool)
    res = simulate(net, spikes)
    twin = CoreTwin(net, hw)
    cycles = np.array([twin.cycles(s) for s in spikes], dtype=np.int64)
    return Expected(spikes=res.spikes, membranes=res.membranes[-1].copy(), counts=res.counts, cycles=cycles)


# --- what the hardware said -----------------------------------------------------------------------

@dataclass
class HardwareRun:
    """Everything one batch run on the simulated hardware showed, decoded."""
    simulator: str
    spikes: list[np.ndarray]       # per layer, bool [N, T, n_l], from the trace memory
    membranes: np.ndarray          # int64 [N, n_out]
    counts: np.ndarray             # int64 [N, n_out]
    cycles: np.ndarray             # int64 [N], the core's cycle counter
    measured_cycles: np.ndarray    # int64 [N], rising edges from start to done, timed by the testbench
    overflow: np.ndarray           # int64 [N]
    trace_overflow: np.ndarray     # int64 [N]
    busy_seen: np.ndarray          # int64 [N], busy one cycle after start
    problems: list["Mismatch"]     # trace words that cannot be decoded (bad layer/step/neuron, repeats)
    samples_done: int
    sim_cycles: int                # every simulated clock cycle (loading and read-back included)
    sim_seconds: float             # wall time inside the simulator, reset to last read-back
    wall_seconds: float            # the whole launch, simulator start-up included
    build_seconds: float
    build_reused: bool
    waves: Path | None = None
    error: str = ""

    @property
    def run_cycles(self) -> int:
        return int(self.cycles[:self.samples_done].sum())

    @property
    def cycles_per_second(self) -> float:
        return self.sim_cycles / self.sim_seconds if self.sim_seconds > 0 else 0.0


@dataclass(frozen=True)
class Mismatch:
    sample: int
    kind: str            # spike, count, membrane, cycles, protocol
    expected: object
    got: object
    step: int | None = None
    layer: int | None = None
    neuron: int | None = None
    detail: str = ""

    def __str__(self) -> str:
        where = [f"sample {self.sample}"]
        if self.step is not None:
            where.append(f"step {self.step}")
        if self.layer is not None:
            where.append(f"layer {self.layer}")
        if self.neuron is not None:
            where.append(f"neuron {self.neuron}")
        what = f"{self.kind} expected {self.expected}, got {self.got}"
        return ", ".join(where) + ": " + what + (f" ({self.detail})" if self.detail else "")

    def to_dict(self) -> dict:
        return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in self.__dict__.items()}


def compare(expected: Expected, got: HardwareRun, limit: int | None = None) -> list[Mismatch]:
    """Every difference between model and hardware, in time order per sample.

    Within a sample: spikes by step, layer, neuron; then the final spike counts and membranes of
    the output layer; then the cycle count and protocol checks. Samples the hardware never
    finished are one mismatch each. ``limit`` stops after that many.
    """
    out: list[Mismatch] = []
    N = expected.cycles.shape[0]
    problems: dict[int, list[Mismatch]] = {}
    for p in got.problems:
        problems.setdefault(p.sample, []).append(p)
    for s in range(N):
        if limit is not None and len(out) >= limit:
            break
        if s >= got.samples_done:
            out.append(Mismatch(s, "protocol", "a finished run", "none",
                                detail=got.error or "the simulation stopped before this sample"))
            continue
        here: list[Mismatch] = []
        T = expected.spikes[0].shape[1]
        for t in range(T):
            for l, (e, g) in enumerate(zip(expected.spikes, got.spikes)):
                for j in np.flatnonzero(e[s, t] != g[s, t]):
                    here.append(Mismatch(s, "spike", int(e[s, t, j]), int(g[s, t, j]), step=t, layer=l,
                                         neuron=int(j)))
        L = len(expected.spikes) - 1
        for j in np.flatnonzero(expected.counts[s] != got.counts[s]):
            here.append(Mismatch(s, "count", int(expected.counts[s, j]), int(got.counts[s, j]), layer=L,
                                 neuron=int(j)))
        for j in np.flatnonzero(expected.membranes[s] != got.membranes[s]):
            here.append(Mismatch(s, "membrane", int(expected.membranes[s, j]), int(got.membranes[s, j]),
                                 layer=L, neuron=int(j)))
        if expected.cycles[s] != got.cycles[s]:
            here.append(Mismatch(s, "cycles", int(expected.cycles[s]), int(got.cycles[s])))
        if got.measured_cycles[s] != got.cycles[s]:
            here.append(Mismatch(s, "protocol", int(got.measured_cycles[s]), int(got.cycles[s]),
                                 detail="cycles port vs clock edges from start to done"))
        if got.overflow[s]:
            here.append(Mismatch(s, "protocol", 0, int(got.overflow[s]), detail="overflow flag"))
        if got.trace_overflow[s]:
            here.append(Mismatch(s, "protocol", 0, int(got.trace_overflow[s]), detail="trace_overflow flag"))
        if not got.busy_seen[s]:
            here.append(Mismatch(s, "protocol", 1, 0, detail="busy one cycle after start"))
        here.extend(problems.get(s, []))
        out.extend(here)
    return out if limit is None else out[:limit]
