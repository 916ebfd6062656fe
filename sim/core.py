"""Run a network's generated NetworkCore Verilog on a batch of samples and check it against the model.

:class:`CoreSim` generates the core (``hdl.core.NetworkCore`` with a trace memory deep enough for
every spike word of a sample), exports and builds it once per (network, lanes, simulator), and runs
any number of samples per simulator launch through :mod:`spikegate.sim.tb_core`. The hardware's
answers are decoded here (:class:`~.compare.HardwareRun`) and compared with the model's
(:func:`~.compare.expected_results`) by :func:`~.compare.compare` (:mod:`.compare`, whose names
are importable from here too).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import threading
from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np

from ..model.core import NetworkCore as CoreTwin, input_words
from ..model.hardware import MAX_EVENTS, HardwareConfig, read_latency
from ..model.network import Network
from . import runner
from .compare import Expected, HardwareRun, Mismatch, compare, expected_results
from .simulators import check_simulator

__all__ = ["CoreSim", "HardwareRun", "Expected", "Mismatch", "expected_results", "compare", "sim_hardware",
           "TB_MODULE"]

TB_MODULE = "spikegate.sim.tb_core"

# Generous: a hang shows as a timeout, a merely slow core as a cycle-count mismatch.
_TIMEOUT_FACTOR, _TIMEOUT_SLACK = 4, 10_000

# Testbench name -> signature path of the NetworkCore port (see docs/architecture.md).
_PORTS = {
    "load_valid": ("load", "valid"), "load_ready": ("load", "ready"), "load_payload": ("load", "payload"),
    "clear": ("clear",), "start": ("start",), "busy": ("busy",), "done": ("done",), "cycles": ("cycles",),
    "overflow": ("overflow",), "out_addr": ("out_addr",), "out_count": ("out_count",),
    "out_membrane": ("out_membrane",), "cfg_valid": ("cfg", "valid"),
    "trace_addr": ("trace_addr",), "trace_data": ("trace_data",), "trace_count": ("trace_count",),
    "trace_overflow": ("trace_overflow",),
}


def sim_hardware(net: Network, lanes=4, timesteps: int | None = None, schedule: str = "inflight") -> HardwareConfig:
    """The hardware :class:`CoreSim` builds: an input buffer for a sample in which every input
    spikes at every step and a trace memory for every spike word of such a sample, so that one
    build serves any data of up to ``timesteps`` steps (default: the network's). The inflight
    schedule has one trace bank per layer, so each needs only the largest layer's words."""
    T = net.timesteps if timesteps is None else timesteps
    hw = HardwareConfig(lanes=lanes, max_events=min(MAX_EVENTS, T * (net.n_inputs + 1)), schedule=schedule)
    groups = [g.groups for g in hw.geometry(net)]
    return replace(hw, trace_depth=min(MAX_EVENTS, T * (sum(groups) if schedule == "sequential" else max(groups))))


def _check_spikes(net: Network, spikes, timesteps: int) -> np.ndarray:
    spikes = np.asarray(spikes)
    if spikes.ndim == 2:
        spikes = spikes[None]
    if spikes.ndim != 3 or spikes.shape[2] != net.n_inputs:
        raise ValueError(f"spikes must have shape [N, T, {net.n_inputs}] for this network, got {spikes.shape}")
    if spikes.shape[1] > timesteps:
        raise ValueError(f"spikes have T = {spikes.shape[1]} steps but this core was generated for at most "
                         f"timesteps = {timesteps}")
    if spikes.dtype != bool:
        if not np.issubdtype(spikes.dtype, np.integer) or (spikes.size and (spikes.min() < 0 or spikes.max() > 1)):
            raise ValueError("spikes must be 0/1 (bool or integer array)")
        spikes = spikes.astype(bool)
    return spikes


def _field_map(shape) -> dict[str, tuple[int, int]]:
    """name -> (bit offset, width) of a struct-shaped port."""
    from amaranth.lib import data
    return {name: (f.offset, f.width) for name, f in data.Layout.cast(shape)}


def _signed(x: int, width: int) -> int:
    return x - (1 << width) if width and x >> (width - 1) & 1 else x


class CoreSim:
    """A network's NetworkCore, built for one simulator, ready to run batches of samples.

    ``timesteps`` (default: the network's) bounds the steps of a sample; the trace memory holds
    every spike word of such a sample, so it never overflows, and the input buffer holds every
    possible input spike. Neither depends on the samples, so one build serves any data.
    ``schedule``, ``registered_reads``: those fields of
    :class:`~spikegate.model.hardware.HardwareConfig`.
    """

    def __init__(self, net: Network, *, lanes=4, simulator: str = "verilator", timesteps: int | None = None,
                 waves: bool = False, build_root=None, progress: Callable[[str], None] | None = None,
                 build: bool = True, weight_ram="block", schedule: str = "inflight", registered_reads: bool = False):
        if not isinstance(net, Network):
            raise TypeError(f"net must be a spikegate Network, got {type(net).__name__}")
        check_simulator(simulator)
        T = net.timesteps if timesteps is None else timesteps
        if isinstance(T, bool) or not isinstance(T, (int, np.integer)) or not 1 <= T <= 4096:
            raise ValueError(f"timesteps = {T!r} is not valid; valid: an integer from 1 to 4096")
        self.net, self.lanes, self.simulator, self.timesteps = net, lanes, simulator, int(T)
        # SPRAM weights (``weight_ram``) are simulated with hdl.spram.SPRAM256KAModel tiles
        # (the SB_SPRAM256KA cycle model: same tiling, address multiplexing and nibble masks);
        # they start empty, so the testbench loads them through cfg.
        self.hw = replace(sim_hardware(net, lanes, self.timesteps, schedule), weight_ram=weight_ram,
                          registered_reads=registered_reads)
        self.geometry = self.hw.geometry(net)
        try:
            from ..hdl.core import NetworkCore
        except ImportError as e:
            raise runner.SimulatorError(f"the NetworkCore gateware (spikegate.hdl.core) is not available: {e}")
        self.core = NetworkCore(net, self.hw, spram_primitive="model")
        self.verilog = runner.export_verilog(self.core, name="top")
        self._ports = self._port_names()
        members = dict(self.core.signature.members.flatten())
        self._load = _field_map(members[("load", "payload")].shape)
        self._trace = _field_map(members[("trace_data",)].shape)
        from amaranth.hdl import Shape
        self._membrane_width = Shape.cast(members[("out_membrane",)].shape).width
        step_w = self._trace["step"][1]
        if self.timesteps > (1 << step_w):
            raise ValueError(f"timesteps = {self.timesteps} does not fit the trace's {step_w}-bit step field")
        self.build = runner.build(self.verilog, simulator=simulator, waves=waves, build_root=build_root,
                                  progress=progress) if build else None

    def new_core(self):
        """A fresh, identical NetworkCore (an elaborated one cannot be elaborated again)."""
        from ..hdl.core import NetworkCore
        return NetworkCore(self.net, self.hw, spram_primitive="model")

    def _port_names(self) -> dict[str, str]:
        m = re.search(r"module\s+top\s*\(([^)]*)\)", self.verilog)
        declared = {p.strip() for p in m.group(1).split(",")} if m else set()
        members = dict(self.core.signature.members.flatten())
        names = {"clk": "clk", "rst": "rst"}
        for tb_name, path in _PORTS.items():
            if path not in members:
                if tb_name == "cfg_valid":
                    continue
                raise runner.SimulatorError(f"NetworkCore has no port {'.'.join(path)} "
                                            "(see the port table in docs/architecture.md)")
            names[tb_name] = "__".join(path)
        missing = [v for v in names.values() if v not in declared]
        if missing:
            raise runner.SimulatorError(f"the exported Verilog lacks port(s) {missing}")
        return names

    def _pack_load(self, addr: int, end_of_step: int) -> int:
        ao, aw = self._load["addr"]
        eo, _ = self._load["end_of_step"]
        return ((addr & ((1 << aw) - 1)) << ao) | (end_of_step << eo) if aw else end_of_step << eo

    def _decode_trace(self, words: list[int], sample: int, out: list[np.ndarray], problems: list[Mismatch]):
        f = self._trace
        seen = set()
        for w in words:
            layer, step, base, word = ((w >> f[k][0]) & ((1 << f[k][1]) - 1) for k in ("layer", "step", "base", "word"))
            if "valid" in f and not (w >> f["valid"][0]) & 1:
                problems.append(Mismatch(sample, "protocol", "valid=1", "valid=0", step=step, layer=layer,
                                         detail=f"trace word {w:#x}"))
                continue
            if layer >= len(out) or step >= out[0].shape[1]:
                problems.append(Mismatch(sample, "protocol", "a layer/step of this run", f"layer {layer} step {step}",
                                         detail=f"trace word {w:#x}"))
                continue
            n, P = out[layer].shape[2], self.geometry[layer].lanes
            if (layer, step, base) in seen or base % P or word == 0 or word >> P:
                problems.append(Mismatch(sample, "protocol", "one non-zero word per group and step",
                                         f"base {base} word {word:#x}", step=step, layer=layer,
                                         detail="repeated, misaligned, empty or over-wide trace word"))
            seen.add((layer, step, base))
            conv = self.geometry[layer].conv
            for k in range(P):
                if word >> k & 1:
                    # a conv layer's base is a packed (row, column, channel) address
                    j = base + k if conv is None else int(conv.flat_outputs([base + k])[0])
                    if j >= n:
                        problems.append(Mismatch(sample, "spike", 0, 1, step=step, layer=layer, neuron=j,
                                                 detail=f"the layer has only {n} neurons"))
                    else:
                        out[layer][sample, step, j] = True

    def run(self, spikes, *, run_dir=None, keep: bool = False,
            on_sample: Callable[[int], None] | None = None, cycles=None) -> HardwareRun:
        """Run a batch [N, T, n_in] in one simulator launch and decode what the hardware showed.

        ``cycles``: each sample's cycle count by the formula, if the caller has it (e.g.
        ``model.core.batch_cycles``), for the testbench's per-sample timeouts; without it the
        twin counts them, a few seconds a sample for a large conv network.

        ``on_sample(k)`` is called (from a helper thread) as samples finish, for progress reports.
        The run directory is removed afterwards unless ``keep`` (waves are moved out first).
        """
        if self.build is None:
            raise RuntimeError("this CoreSim was made with build=False; it can only be simulated in Amaranth")
        spikes = _check_spikes(self.net, spikes, self.timesteps)
        own_dir = run_dir is None
        rdir = runner.run_scratch(self.build) if own_dir else Path(run_dir)
        rdir.mkdir(parents=True, exist_ok=True)
        try:
            return self._run_in(rdir, spikes, own_dir and not keep, on_sample, cycles)
        except BaseException:
            if own_dir and not keep:  # a failed run's folder (and waves) would stay in the cache
                shutil.rmtree(rdir, ignore_errors=True)
            raise

    def _run_in(self, rdir: Path, spikes, remove: bool, on_sample, cycles) -> HardwareRun:
        N, T, _ = spikes.shape
        words, offsets, timeouts = self.load_words(spikes, cycles)
        (rdir / "job.json").write_text(json.dumps({"ports": self._ports, "n_out": self.net.n_outputs,
                                                   "trace": True, "read_latency": read_latency(self.geometry)}))
        np.savez(rdir / "job.npz", words=np.array(words, np.int64), offsets=np.array(offsets, np.int64),
                 timeout_cycles=np.array(timeouts, np.int64))
        prog = rdir / "progress"
        prog.write_bytes(b"")
        stop = threading.Event()

        def watch():
            last = 0
            while not stop.wait(0.3):
                k = prog.stat().st_size
                if k != last:
                    last = k
                    on_sample(k)

        watcher = threading.Thread(target=watch, daemon=True) if on_sample else None
        if watcher:
            watcher.start()
        try:
            # Wall-clock guard for a simulator that stops advancing time altogether (the testbench's
            # own timeouts are in simulated time): generous even for Icarus on a loaded machine.
            limit = 600 + (sum(timeouts) + len(words)) / 1000
            res = runner.run(self.build, TB_MODULE, run_dir=rdir, env={"SPIKEGATE_SIM_JOB": str(rdir)},
                             timeout=limit)
        finally:
            stop.set()
            if watcher:
                watcher.join()
        try:
            r = np.load(rdir / "result.npz")
        except OSError:
            raise runner.SimulatorError(f"the testbench wrote no results; end of {res.log}:\n"
                                        f"{runner._log_tail(res.log)}") from None
        hw = self.decode(r, N, T, wall_seconds=res.wall_seconds, waves=res.waves)
        if remove:
            if hw.waves is not None:
                moved = self.build.directory.parent / f"waves-{os.getpid()}-{rdir.name}{hw.waves.suffix}"
                shutil.move(str(hw.waves), moved)
                hw.waves = moved
            shutil.rmtree(rdir, ignore_errors=True)
        return hw

    def load_words(self, spikes: np.ndarray, cycles=None):
        """Packed ``load`` words of every sample, their offsets, and per-sample cycle timeouts
        (from ``cycles``, the samples' cycle counts, or else the twin's)."""
        if len(spikes) == 0:
            raise ValueError("spikes hold no samples (N = 0)")
        if cycles is None:
            twin = CoreTwin(self.net, self.hw)
            cycles = [twin.cycles(s) for s in spikes]
        elif len(cycles) != len(spikes):
            raise ValueError(f"cycles holds {len(cycles)} counts for {len(spikes)} samples; valid: one per sample")
        words, offsets, timeouts = [], [0], []
        for s, c in zip(spikes, cycles):
            words.extend(self._pack_load(a, e) for a, e in input_words(s, self.geometry[0]))
            offsets.append(len(words))
            timeouts.append(_TIMEOUT_FACTOR * int(c) + _TIMEOUT_SLACK)
        return words, offsets, timeouts

    def decode(self, r, N: int, T: int, *, wall_seconds: float, waves: Path | None = None,
               simulator: str | None = None) -> HardwareRun:
        """Turn a testbench's raw record (see :mod:`.tb_core`) into a :class:`HardwareRun`."""
        done = int(r["done_samples"])
        out = [np.zeros((N, T, layer.n), bool) for layer in self.net.layers]
        problems: list[Mismatch] = []
        tw, to = [int(x) for x in r["trace_words"]], r["trace_offsets"]
        for s in range(done):
            self._decode_trace(tw[to[s]:to[s + 1]], s, out, problems)
        mw = self._membrane_width
        membranes = np.array([[_signed(int(x), mw) for x in row] for row in r["membranes"]], np.int64)
        membranes = membranes.reshape(np.shape(r["membranes"]))
        return HardwareRun(simulator=simulator or self.simulator, spikes=out, membranes=membranes,
                           counts=np.asarray(r["counts"], np.int64), cycles=np.asarray(r["cycles"], np.int64),
                           measured_cycles=np.asarray(r["measured"], np.int64),
                           overflow=np.asarray(r["overflow"]), trace_overflow=np.asarray(r["trace_overflow"]),
                           busy_seen=np.asarray(r["busy_seen"]), problems=problems, samples_done=done,
                           sim_cycles=int(r["sim_cycles"]), sim_seconds=float(r["wall_seconds"]),
                           wall_seconds=wall_seconds, build_seconds=self.build.seconds if self.build else 0.0,
                           build_reused=self.build.reused if self.build else False, waves=waves,
                           error=str(r["error"]))

    def check(self, spikes, *, expected: Expected | None = None, **kw) -> tuple[HardwareRun, Expected, list[Mismatch]]:
        """Run ``spikes`` and compare with the model (or with ``expected``, if given)."""
        spikes = _check_spikes(self.net, spikes, self.timesteps)
        exp = expected if expected is not None else expected_results(self.net, spikes, self.hw)
        hw = self.run(spikes, cycles=kw.pop("cycles", exp.cycles), **kw)
        return hw, exp, compare(exp, hw)
