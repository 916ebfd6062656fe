"""The temporal demo network on the accelerator: cycles per sample, memories, and the Verilator check.

    python bench/temporal_hw.py NET.json [--lanes 1,2,4,8] [--verilator] [--json]

``NET.json`` is what bench/temporal_digits.py writes (``temporal-digits-w8.json``: a recurrent
hidden layer and a CUBA output layer). Its samples are the digits test split read one row per
``T / 8`` steps (bench/temporal_digits.py's ``row_spikes``). For each lane count: cycles per
sample over the whole split from the cycle-exact twin (model.core.NetworkCore, via
``batch_cycles``), the memory bits per layer, and the accuracy of the integer network. With
--verilator the generated core also runs every test sample in Verilator (lanes = the first value)
and must agree with the model bit for bit and cycle for cycle (tests/test_temporal_sim.py does the
same as a slow test).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from spikegate import datasets
from spikegate.model.core import batch_cycles
from spikegate.model.hardware import HardwareConfig
from spikegate.model.network import Network
from spikegate.model.simulate import classify, simulate
from spikegate.model.procgroup import end_groups_on_sigterm

sys.path.insert(0, str(Path(__file__).resolve().parent))
from temporal_digits import row_spikes  # noqa: E402


def measure(net: Network, lanes: list[int], verilator: bool) -> dict:
    x, y = datasets.load("digits", "test")
    spikes = row_spikes(x, net.timesteps // 8)
    res = simulate(net, spikes)
    out = {"samples": int(len(y)), "integer_accuracy": float(np.mean(classify(net, res) == y)), "lanes": {}}
    for P in lanes:
        geos = HardwareConfig(lanes=P).geometry(net)
        cyc = batch_cycles(net, P, spikes, res)
        out["lanes"][P] = {"cycles_mean": float(cyc.mean()), "cycles_min": int(cyc.min()), "cycles_max": int(cyc.max()),
                           "memory_bits": [g.memory_bits() for g in geos]}
    if verilator:
        from spikegate.sim.core import CoreSim
        t0 = time.time()
        hw, exp, mismatches = CoreSim(net, lanes=lanes[0], simulator="verilator").check(spikes)
        out["verilator"] = {"lanes": lanes[0], "samples": hw.samples_done, "mismatches": len(mismatches),
                            "cycles_equal": bool(np.array_equal(hw.cycles, exp.cycles)),
                            "seconds": round(time.time() - t0, 1)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("net")
    ap.add_argument("--lanes", type=lambda v: [int(p) for p in v.split(",")], default=[1, 2, 4, 8])
    ap.add_argument("--verilator", action="store_true")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    end_groups_on_sigterm()
    r = measure(Network.load(args.net), args.lanes, args.verilator)
    if args.json:
        print(json.dumps(r))
        return
    print(f"{r['samples']} test samples, integer accuracy {100 * r['integer_accuracy']:.1f} %")
    for P, d in r["lanes"].items():
        bits = ", ".join(f"layer {l}: {sum(m.values())} bits ({', '.join(f'{k} {v}' for k, v in m.items())})"
                         for l, m in enumerate(d["memory_bits"]))
        print(f"P = {P}: {d['cycles_mean']:.0f} cycles per sample (min {d['cycles_min']}, max {d['cycles_max']}); {bits}")
    if "verilator" in r:
        v = r["verilator"]
        print(f"Verilator, P = {v['lanes']}: {v['samples']} samples, {v['mismatches']} mismatches, cycles "
              f"{'equal' if v['cycles_equal'] else 'DIFFER'} ({v['seconds']} s)")


if __name__ == "__main__":
    main()
