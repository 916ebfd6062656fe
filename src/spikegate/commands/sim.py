"""``spikegate sim``: run a data set through the network's generated Verilog in Verilator or Icarus
and check every sample against the bit-exact model (per-layer spikes at every step, final
membranes, spike counts, exact cycle count)."""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np

from .. import datasets
from ..model.fileio import atomic_path
from ..progress import note, progress
from ..sim.runner import SIMULATORS
from .export import parse_lanes
from .model import add_data_arguments, add_net_argument, load_data, network_summary


def _predict(net, membranes: np.ndarray, counts: np.ndarray) -> np.ndarray:
    # The model's rule (model.classify): readout networks by final membrane, others by spike count,
    # ties to the lowest index.
    return np.argmax(membranes if net.readout else counts, axis=1)


def _write_waves(src: Path, dest: Path) -> Path:
    dest = dest.resolve()
    dest.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(dest) as tmp:
        shutil.copyfile(src, tmp)
    return dest


def simulate_dataset(net, net_path, *, data=None, split="test", data_dir=None, samples=None, seed=0,
                     simulator="verilator", lanes=4, build_dir=None, waves=None, waves_sample=None) -> dict:
    """Everything ``spikegate sim`` reports, as one JSON-able dict."""
    from ..sim.core import CoreSim, compare, expected_results

    if simulator not in SIMULATORS:
        raise ValueError(f"--simulator = {simulator!r} is not valid; valid: {', '.join(SIMULATORS)}")
    data, x, y = load_data(net, data, split, data_dir, samples)
    N = len(y)
    if waves_sample is not None and not 0 <= waves_sample < N:
        raise ValueError(f"--waves-sample = {waves_sample} is not valid; valid: 0 <= sample < {N}")
    t0 = time.perf_counter()
    spikes = datasets.encode_for(net, x, seed=seed)
    sim = CoreSim(net, lanes=lanes, simulator=simulator, build_root=build_dir, progress=note)
    with progress(N, f"{simulator} simulation of {data} {split}", unit="samples") as p:
        hw = sim.run(spikes, on_sample=lambda k: p.update(k - p.count))
        p.update(hw.samples_done - p.count)
    exp = expected_results(net, spikes, sim.hw)
    mismatches = compare(exp, hw)
    bad = sorted({m.sample for m in mismatches})
    done = hw.samples_done
    hw_pred = _predict(net, hw.membranes[:done], hw.counts[:done])
    model_pred = _predict(net, exp.membranes, exp.counts)
    result = {
        "network": network_summary(net, net_path), "data": data, "split": split, "seed": seed,
        "simulator": simulator, "lanes": sim.lanes, "samples": N,
        "bit_exact": N - len(bad), "mismatched_samples": bad[:100],
        "first_mismatch": mismatches[0].to_dict() | {"text": str(mismatches[0])} if mismatches else None,
        "mismatches": len(mismatches),
        "accuracy": float(np.mean(hw_pred == y[:done])) if done else 0.0,
        "model_accuracy": float(np.mean(model_pred == y)),
        "cycles_per_sample": {"mean": float(hw.cycles[:done].mean()) if done else 0.0,
                              "min": int(hw.cycles[:done].min()) if done else 0,
                              "max": int(hw.cycles[:done].max()) if done else 0},
        "simulated_cycles": hw.sim_cycles,
        "core_cycles": hw.run_cycles,
        "sim_seconds": round(hw.sim_seconds, 3),
        "cycles_per_second": round(hw.cycles_per_second, 1),
        "build_seconds": round(hw.build_seconds, 3), "build_reused": hw.build_reused,
        "build_dir": str(sim.build.directory),
        "waves": None, "waves_sample": None,
    }
    if waves is not None:
        k = bad[0] if bad else (waves_sample or 0)
        wsim = CoreSim(net, lanes=lanes, simulator=simulator, build_root=build_dir, waves=True, progress=note)
        note(f"recording waves of sample {k}" + (" (the first mismatching one)" if bad else ""))
        whw = wsim.run(spikes[k:k + 1])
        if whw.waves is None:
            raise RuntimeError(f"{simulator} wrote no waveform file")
        dest = Path(waves) if waves else Path(f"sim-{simulator}-sample{k}{whw.waves.suffix}")
        result["waves"] = str(_write_waves(whw.waves, dest))
        whw.waves.unlink(missing_ok=True)
        result["waves_sample"] = k
    result["wall_seconds"] = round(time.perf_counter() - t0, 3)
    return result


def format_report(r: dict) -> str:
    n = r["network"]
    shape = "-".join(str(k) for k in n["shape"])
    c = r["cycles_per_sample"]
    lanes = r["lanes"] if isinstance(r["lanes"], int) else ",".join(map(str, r["lanes"]))
    lines = [
        f"network        {n['name'] or '(unnamed)'} [{n['file']}]  {shape}  T={n['timesteps']}  lanes={lanes}",
        f"data           {r['data']} {r['split']} split, {r['samples']} samples",
        f"simulator      {r['simulator']} ({'cached build' if r['build_reused'] else 'built in %.1f s' % r['build_seconds']})",
        f"bit-exact      {r['bit_exact']} of {r['samples']} samples match the model "
        f"(spikes of every layer at every step, final membranes, counts, cycles)",
        f"accuracy       {100 * r['accuracy']:6.2f} % on the hardware, {100 * r['model_accuracy']:6.2f} % in the model",
        f"cycles/sample  {c['mean']:.1f} (min {c['min']}, max {c['max']})",
        f"speed          {r['cycles_per_second']:,.0f} simulated cycles/s ({r['simulated_cycles']} cycles in "
        f"{r['sim_seconds']:.2f} s, loading and read-back included)",
        f"wall time      {r['wall_seconds']:.1f} s",
    ]
    if r["first_mismatch"]:
        lines.append(f"FIRST MISMATCH {r['first_mismatch']['text']}  ({r['mismatches']} differences in "
                     f"{r['samples'] - r['bit_exact']} samples)")
    if r["waves"]:
        lines.append(f"waves          {r['waves']} (sample {r['waves_sample']})")
    return "\n".join(lines)


def run(args) -> int:
    net = datasets.load_network(args.net)
    r = simulate_dataset(net, args.net, data=args.data, split=args.split, data_dir=args.data_dir,
                         samples=args.samples, seed=args.seed, simulator=args.simulator,
                         lanes=parse_lanes(args.lanes), build_dir=args.build_dir, waves=args.waves,
                         waves_sample=args.waves_sample)
    print(json.dumps(r, indent=1) if args.json else format_report(r))
    return 0 if r["bit_exact"] == r["samples"] else 1


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "sim", help="run a data set through the generated Verilog (Verilator/Icarus) and check it bit for bit",
        description="Generate the network's NetworkCore, build it with Verilator (default) or Icarus through "
                    "cocotb (builds are cached per design), run the data set's samples through it and compare "
                    "every layer's spikes at every step, the final membranes and spike counts and the cycle "
                    "count with the bit-exact model. Exits 1 if any sample differs, naming the first "
                    "difference (sample, step, layer, neuron, expected vs got).")
    add_net_argument(p)
    add_data_arguments(p)
    p.add_argument("--simulator", choices=SIMULATORS, default="verilator", help="(default: verilator)")
    p.add_argument("--lanes", metavar="P", default="4",
                   help="neurons updated in parallel: a power of two 1..64, or one per layer as P0,P1,... "
                        "(default: 4)")
    p.add_argument("--waves", metavar="FILE", nargs="?", const="", default=None,
                   help="also write a waveform of one sample (VCD from Verilator, FST from Icarus): the first "
                        "mismatching one, else --waves-sample; FILE defaults to sim-<simulator>-sample<k>.vcd/.fst")
    p.add_argument("--waves-sample", metavar="K", type=int, default=None,
                   help="sample whose waves to write when all match (default: 0)")
    p.add_argument("--build-dir", metavar="DIR", default=None,
                   help="simulator build cache (default: $SPIKEGATE_SIM_CACHE or ~/.cache/spikegate/sim)")
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    p.set_defaults(func=run)
