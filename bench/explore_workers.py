"""Wall time of one design-space sweep on a Dask LocalCluster of 1 worker and of 2 workers, in
the same run.

    python bench/explore_workers.py [--points N] [--board icebreaker] [--lanes 1,2] [--seeds 1-4]
                                    [--net FILE] [--samples N] [--workers 1,2] [--keep DIR] [--json]

The sweep (default: the built-in digits network on the iCEBreaker, lanes 1,2 x nextpnr seeds 1-4,
8 points; ``--points N`` keeps the first N) goes through ``spikegate.explore_dask.run_sweep``, the
code path of ``spikegate explore``, once per worker count. Each run gets its own empty build cache
and output folder under a temp dir, so every point is a real Yosys + nextpnr build in every run
(nothing comes from a cache). The runs go in the order given (1 worker first); the YoWASP tools'
one-off WebAssembly compilation is cached on disk beforehand by a first build, so it is in neither.

Prints per run the load average when it starts, the wall time (cluster start-up and shut-down
included), the sweep's own time, the sum of the points' build times, the point outcomes, the ratio of the 1-worker to the 2-worker wall time, whether the runs gave the
same table (the same design and seed must give the same fmax and figures), and the load average
before and after: on a shared machine other work takes cores too.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from spikegate import datasets
from spikegate.explore import parse_ints, parse_lanes_list, sweep
from spikegate.explore_dask import run_sweep
from spikegate.progress import format_seconds, note

# Row fields that differ between two builds of the same point: where and how long, not what.
RUN_FIELDS = {"cached", "seconds", "bitstream", "report_path", "error"}


def same_table(a: list[dict], b: list[dict]) -> bool:
    strip = lambda rows: [{k: v for k, v in r.items() if k not in RUN_FIELDS} for r in rows]  # noqa: E731
    return strip(a) == strip(b)


def progress(done, total, elapsed, eta, row) -> None:
    left = f", ~{format_seconds(eta)} left" if eta else ""
    note(f"  {done}/{total} [{format_seconds(elapsed)}{left}] {row['label']}: {row['status']}")


def one_run(net, points, workers: int, root: Path, samples, data_dir) -> dict:
    """The sweep on a fresh LocalCluster of ``workers`` processes with an empty cache."""
    cache, out = root / f"cache-{workers}w", root / f"out-{workers}w"
    note(f"{len(points)} points on {workers} worker{'s' * (workers > 1)} (cache {cache}) ...")
    load = os.getloadavg()[0]
    t0 = time.monotonic()
    r = run_sweep(net, points, out_dir=out, workers=workers, cache_dir=cache, samples=samples,
                  data_dir=data_dir, on_progress=progress)
    wall = time.monotonic() - t0
    assert not any(row["cached"] for row in r["points"]), "a point came from a cache: the run is not cold"
    return {"workers": r["workers"], "load_average_at_start": round(load, 2), "wall_seconds": round(wall, 1), "sweep_seconds": r["wall_seconds"],
            "build_seconds": round(sum(row["seconds"] or 0 for row in r["points"]), 1),
            "counts": r["counts"], "points": r["points"], "best": r["best"]}


def format_result(result: dict) -> str:
    runs, base = result["runs"], result["runs"][0]
    shape = "-".join(map(str, result["network"]["shape"]))
    lines = [f"sweep: {len(result['points'])} points, {shape} on {result['board']} (lanes {result['lanes']} x "
             f"seeds {result['seeds']}), an empty build cache per run; {result['cpu_count']} cores, load average "
             f"{result['load_average_before'][0]:.2f} before, {result['load_average_after'][0]:.2f} after",
             f"{'workers':>7} {'load':>5} {'wall s':>8} {'sweep s':>8} {'builds s':>9}  outcomes"]
    for r in runs:
        c = r["counts"]
        lines.append(f"{r['workers']:>7} {r['load_average_at_start']:>5.1f} {r['wall_seconds']:>8.1f} "
                     f"{r['sweep_seconds']:>8.1f} {r['build_seconds']:>9.1f}  {c['ok']} ok, {c['timing']} missed "
                     f"timing, {c['no-fit']} no fit, {c['error']} failed")
    for r in runs[1:]:
        lines.append(f"wall time {base['workers']} worker / {r['workers']} workers: "
                     f"{result['speedup'][str(r['workers'])]:.2f}x")
    lines.append(f"same table in every run: {'yes' if result['tables_agree'] else 'NO'}")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--net", default=None, help="network file (default: the built-in digits network)")
    ap.add_argument("--board", default="icebreaker")
    ap.add_argument("--lanes", default="1,2")
    ap.add_argument("--seeds", default="1-4")
    ap.add_argument("--points", type=int, default=None, metavar="N", help="only the first N points (default: all)")
    ap.add_argument("--workers", default="1,2", help="worker counts, one run each, in this order (default: 1,2)")
    ap.add_argument("--samples", type=int, default=None, help="samples for the cycle measurement (default: all)")
    ap.add_argument("--data-dir", default=None, help="MNIST IDX files, for a 784-input network")
    ap.add_argument("--keep", default=None, metavar="DIR", help="keep caches and outputs in DIR (default: a temp dir)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    net = datasets.load_network(args.net)
    points = sweep([args.board], parse_lanes_list("--lanes", args.lanes), ["auto"], [None],
                   parse_ints("--seeds", args.seeds))
    if args.points is not None:
        if not 1 <= args.points <= len(points):
            ap.error(f"--points = {args.points} is not valid; valid: 1 to {len(points)}")
        points = points[:args.points]
    counts = parse_ints("--workers", args.workers)
    if any(w < 1 for w in counts):
        ap.error(f"--workers = {args.workers!r} is not valid; valid: integers >= 1")

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="spikegate-explore-bench-") as tmp:
        root = Path(args.keep) if args.keep else Path(tmp)
        runs = [one_run(net, points, w, root, args.samples, args.data_dir) for w in counts]
    load_after = os.getloadavg()

    agree = all(same_table(runs[0]["points"], r["points"]) for r in runs[1:])
    base = runs[0]
    result = {
        "network": {"name": net.name, "shape": list(net.shape)}, "board": points[0].board,
        "lanes": args.lanes, "seeds": args.seeds,
        "points": [p.label for p in points], "cpu_count": os.cpu_count(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
        "runs": [{k: v for k, v in r.items() if k != "points"} for r in runs],
        "speedup": {str(r["workers"]): round(base["wall_seconds"] / r["wall_seconds"], 3) for r in runs},
        "tables_agree": agree,
        "table": base["points"],
    }
    print(json.dumps(result, indent=1) if args.json else format_result(result))
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
