"""Simulated clock cycles per second of the NetworkCore in Verilator, Icarus and Amaranth's simulator.

All three run the same generated core (default: the built-in digits network, lanes 4) on the same
samples (the first --samples digits test images) with the same port protocol, in this one run, and
each run is checked bit for bit against the model, so a fast but wrong simulator cannot win.

"Simulated cycles" are every clock cycle from reset release to the last read-back (loading and
reading included); the speed is those cycles over the wall time the simulator spent on them (build
and simulator start-up excluded; start-up is shown separately as "launch").

    python bench/sim_speed.py [--samples 20] [--lanes 4] [--net FILE] [--json]
"""
from __future__ import annotations

import argparse
import json
import sys
import time


from spikegate import datasets
from spikegate.sim import runner
from spikegate.sim.core import CoreSim, compare, expected_results, sim_hardware
from spikegate.sim.pysim import run_amaranth
from spikegate.model.procgroup import end_groups_on_sigterm


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--net", default=None, help="network file (default: the built-in digits network)")
    ap.add_argument("--samples", type=int, default=20, help="digits test samples (default: 20)")
    ap.add_argument("--lanes", type=int, default=4)
    ap.add_argument("--simulators", default="verilator,icarus,amaranth")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    end_groups_on_sigterm()

    net = datasets.load_network(args.net)
    x, _ = datasets.load("digits", "test")
    spikes = datasets.encode_for(net, x[:args.samples])
    exp = expected_results(net, spikes, sim_hardware(net, args.lanes))
    rows = []
    for name in args.simulators.split(","):
        print(f"[{name}] building and running {len(spikes)} samples ...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        if name == "amaranth":
            sim = CoreSim(net, lanes=args.lanes, build=False)
            hw = run_amaranth(sim, spikes)
            build_s = 0.0
        else:
            if not runner.simulator_available(name):
                raise SystemExit(f"{name} is not installed")
            sim = CoreSim(net, lanes=args.lanes, simulator=name)
            build_s = sim.build.seconds
            hw = sim.run(spikes)
        mism = compare(exp, hw)
        rows.append({
            "simulator": name, "samples": len(spikes),
            "bit_exact": len(spikes) - len({m.sample for m in mism}),
            "first_mismatch": str(mism[0]) if mism else None,
            "simulated_cycles": hw.sim_cycles, "core_cycles": hw.run_cycles,
            "sim_seconds": hw.sim_seconds, "cycles_per_second": hw.cycles_per_second,
            "launch_seconds": hw.wall_seconds - hw.sim_seconds,
            "build_seconds": build_s, "build_reused": bool(sim.build.reused) if sim.build else None,
            "total_seconds": time.perf_counter() - t0,
        })
    base = {r["simulator"]: r["cycles_per_second"] for r in rows}
    for r in rows:
        r["vs_amaranth"] = r["cycles_per_second"] / base["amaranth"] if base.get("amaranth") else None
        r["vs_icarus"] = r["cycles_per_second"] / base["icarus"] if base.get("icarus") else None
    if args.json:
        print(json.dumps({"network": net.name, "shape": list(net.shape), "lanes": args.lanes, "rows": rows},
                         indent=1))
    else:
        print(f"network {net.name} {'-'.join(map(str, net.shape))}, T={net.timesteps}, lanes={args.lanes}, "
              f"{len(spikes)} digits test samples, mean {exp.cycles.mean():.0f} core cycles/sample")
        print(f"{'simulator':<10} {'bit-exact':>9} {'sim cycles':>10} {'sim s':>8} {'cycles/s':>11} "
              f"{'vs amaranth':>11} {'vs icarus':>9} {'launch s':>8} {'build s':>8}")
        for r in rows:
            va = f"{r['vs_amaranth']:.1f}x" if r["vs_amaranth"] else "-"
            vi = f"{r['vs_icarus']:.2f}x" if r["vs_icarus"] else "-"
            b = "cached" if r["build_reused"] else f"{r['build_seconds']:.1f}"
            print(f"{r['simulator']:<10} {r['bit_exact']:>4}/{r['samples']:<4} {r['simulated_cycles']:>10} "
                  f"{r['sim_seconds']:>8.2f} {r['cycles_per_second']:>11,.0f} {va:>11} {vi:>9} "
                  f"{r['launch_seconds']:>8.2f} {b:>8}")
    return 0 if all(r["bit_exact"] == r["samples"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
