"""``spikegate explore``: sweep boards x lanes x weight placement x clocks x nextpnr seeds on a Dask
cluster; print every point, the Pareto front and each board's best build."""
from __future__ import annotations

import json
import re
from pathlib import Path

from .. import datasets
from ..errors import UserError
from ..model.fileio import write_atomic
from ..progress import format_seconds, note


def _progress(done: int, total: int, elapsed: float, eta, row: dict) -> None:
    what = row["status"] if row.get("fmax_mhz") is None else f"{row['status']}, fmax {row['fmax_mhz']:.2f} MHz"
    left = f", ~{format_seconds(eta)} left" if eta else ""
    note(f"explore: {done}/{total} points [{format_seconds(elapsed)}{left}] {row['label']}: {what}")


def format_result(r: dict) -> str:
    from ..explore import format_table
    rows = r["points"]
    c = r["counts"]
    lines = [f"network {r['network']['name'] or '(unnamed)'} {'-'.join(map(str, r['network']['shape']))}: "
             f"{len(rows)} points on {r['workers']} workers ({r['scheduler']}) in {r['wall_seconds']:g} s: "
             f"{c['ok']} ok, {c['timing']} missed timing, {c['no-fit']} did not fit, {c['error']} failed",
             format_table(rows, r["pareto"], r["best_index"]),
             "* Pareto front (samples/s vs LUT % and RAM %, timing met)   B best build of its board"]
    for k in r["pareto"]:
        row = rows[k]
        lines.append(f"pareto {row['label']}: {row['samples_per_s']:g} samples/s, LUT {row['lut_percent']:g} %, "
                     f"RAM {row['ram_percent']:g} %")
    for board, path in r["copied"].items():
        row = rows[r["best_index"][board]]
        lines.append(f"best {board}: {row['label']} ({row['samples_per_s']:g} samples/s, fmax "
                     f"{row['fmax_mhz']:.2f} MHz) -> {path}")
    for board in sorted({row["board"] for row in rows} - set(r["copied"])):
        lines.append(f"best {board}: none met timing")
    errors = [row for row in rows if row["status"] == "error"]
    for row in errors[:3]:
        lines.append(f"error {row['label']}: {row['error'].splitlines()[0] if row['error'] else ''}")
    return "\n".join(lines)


def format_regress(r: dict) -> str:
    c = r["counts"]
    lines = [f"{len(r['regress'])} random configurations on {r['workers']} workers ({r['scheduler']}) in "
             f"{r['wall_seconds']:g} s: {c['ok']} bit-exact, {c['mismatch']} mismatched, {c['error']} failed"]
    for row in r["regress"]:
        shape = "-".join(map(str, row.get("shape", []))) or "?"
        why = row["first_mismatch"] if row["status"] == "mismatch" else (row.get("error") or "")
        lines.append(f"  seed {row['seed']:>6}  {shape:<14} lanes {row.get('lanes', '?'):>2}  {row['status']:<8} "
                     f"{why.splitlines()[0] if why else ''}")
    return "\n".join(lines)


def regress(args) -> int:
    from ..explore_dask import run_regress
    r = run_regress(args.regress, first_seed=args.regress_seed, simulator=args.simulator,
                    build_root=args.sim_build_dir, scheduler=args.scheduler, workers=args.workers,
                    on_progress=_progress, start_timeout_s=args.start_timeout, idle_timeout_s=args.timeout)
    print(json.dumps(r, indent=1) if args.json else format_regress(r))
    return 0 if r["counts"]["ok"] == len(r["regress"]) else 1


# Random configurations of one --regress run: beyond this it is a typo (each is a simulation).
MAX_REGRESS = 100_000
# Dask's address forms a CLI user can give: [PROTOCOL://]HOST:PORT (Dask defaults to tcp).
SCHEDULER_PROTOCOLS = ("tcp", "tls", "ucx", "ws", "wss")
_SCHEDULER = re.compile(r"(?:(?P<proto>[a-z]+)://)?(?P<host>[A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\]):(?P<port>[0-9]{1,5})")


def check_scheduler(address) -> None:
    """``--scheduler`` is a Dask scheduler address, checked before a client tries to reach it."""
    if address is None:
        return
    m = _SCHEDULER.fullmatch(str(address))
    if m is None or (m["proto"] or "tcp") not in SCHEDULER_PROTOCOLS or not 1 <= int(m["port"]) <= 65535:
        raise UserError(f"--scheduler = {address!r} is not valid; valid: a Dask scheduler address "
                        f"[PROTOCOL://]HOST:PORT with PROTOCOL one of {', '.join(SCHEDULER_PROTOCOLS)} and "
                        "PORT 1..65535, e.g. tcp://127.0.0.1:8786")


def check_arguments(args) -> None:
    """Every option that needs no network, before a cluster starts or a build runs."""
    from ..boards.build import MAX_SAMPLES
    from ..checks import check_float, check_input_dir, check_int, check_output_dir
    check_int("--workers", args.workers, 1, 256)
    check_int("--samples", args.samples, 1, MAX_SAMPLES)
    check_int("--regress", args.regress, 1)
    check_int("--regress", args.regress, hi=MAX_REGRESS)
    check_int("--regress-seed", args.regress_seed, 0, 2**31 - 1)
    check_float("--timeout", args.timeout, 0, 7 * 86400, lo_open=True)
    check_float("--start-timeout", args.start_timeout, 0, 86400, lo_open=True)
    check_input_dir("--data-dir", args.data_dir)
    check_scheduler(args.scheduler)
    for option, path in (("--out", args.out), ("--cache-dir", args.cache_dir), ("--sim-build-dir", args.sim_build_dir)):
        check_output_dir(option, path)
    if args.plot is not None:
        from ..plots import check_plot_file
        check_plot_file(args.plot)
    if args.html is not None:
        from ..plots_html import check_html_file
        check_html_file(args.html)


def run(args) -> int:
    check_arguments(args)
    if args.regress is not None:
        return regress(args)
    from ..explore import parse_floats, parse_ints, parse_lanes_list, sweep
    from ..explore_dask import run_sweep
    # An empty list is a bad input (it is not "the default"), so only a missing option means the default.
    lanes = parse_lanes_list("--lanes", args.lanes) if args.lanes is not None else [None]
    # Nothing but commas and spaces: sweep() names it as a bad --weight-ram value.
    rams = [x.strip() for x in args.weight_ram.split(",") if x.strip()] or [args.weight_ram.strip()]
    clocks = parse_floats("--clock", args.clock) if args.clock is not None else [None]
    seeds = parse_ints("--seeds", args.seeds) if args.seeds is not None else [None]
    points = sweep(args.board.split(","), lanes, rams, clocks, seeds)
    net = datasets.load_network(args.net)
    out = Path(args.out)
    r = run_sweep(net, points, out_dir=out, scheduler=args.scheduler, workers=args.workers,
                  cache_dir=args.cache_dir, samples=args.samples, data_dir=args.data_dir, on_progress=_progress,
                  start_timeout_s=args.start_timeout, idle_timeout_s=args.timeout)
    # Nothing else creates the folder when no point fits.
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / "explore.json", json.dumps(r, indent=1) + "\n")
    if args.plot is not None:
        from ..plots import save
        from ..plots_hw import pareto
        save(pareto(r["points"], r["pareto"]), args.plot)
        note(f"explore: wrote {args.plot}")
    if args.html is not None:
        from ..plots_html import best_reports, save_html, sweep_html
        note(f"explore: wrote {save_html(sweep_html(r, best_reports(r)), args.html)}")
    print(json.dumps(r, indent=1) if args.json else format_result(r))
    return 0 if r["best"] else 1


def register(subparsers) -> None:
    from ..boards.targets import board_names
    p = subparsers.add_parser(
        "explore", help="sweep boards, lanes, weight placement, clocks and nextpnr seeds on a Dask cluster",
        description="Build every combination of the given boards, lanes, weight placements, clocks and nextpnr "
                    "seeds on Dask distributed: a local cluster (one worker process per core) or the scheduler "
                    "at --scheduler. Each point is an ordinary cached build, so a rerun or an interrupted sweep "
                    "resumes. Points that do not fit, miss timing or crash a tool are reported as such. Prints "
                    "every point, the Pareto front (samples/s vs LUT and RAM) and each board's best build, "
                    "copied to OUT/BOARD/; OUT/explore.json holds the whole result. Exits 1 when no point met "
                    "timing. Needs the 'explore' extra (pip install \"spikegate[explore]\").")
    p.add_argument("--net", metavar="FILE", default=None, help="network file (default: the built-in digits network)")
    p.add_argument("--board", default="icebreaker", metavar="NAME[,NAME...]",
                   help=f"boards to sweep (default: icebreaker): {', '.join(board_names())}")
    p.add_argument("--lanes", default=None, metavar="P[,P...]",
                   help="lane counts, e.g. 1,2,4; per layer joined by / (8/2) (default: each board's)")
    p.add_argument("--weight-ram", default="auto", metavar="R[,R...]",
                   help="weight placement: auto (the build's choice), block, spram (default: auto)")
    p.add_argument("--clock", default=None, metavar="MHZ[,MHZ...]", help="clock targets (default: each board's)")
    p.add_argument("--seeds", default=None, metavar="LIST", help="nextpnr seeds, e.g. 1-8 or 1,3,5 (default: nextpnr's)")
    p.add_argument("--scheduler", default=None, metavar="tcp://HOST:PORT",
                   help="a running Dask scheduler (default: start a local cluster)")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="local cluster worker processes (default: the number of cores)")
    p.add_argument("--out", default="explore", metavar="DIR",
                   help="output folder: explore.json, points/, and BOARD/ with the best build (default: explore)")
    p.add_argument("--cache-dir", default=None, metavar="DIR",
                   help="build cache, seen by every worker (default: SPIKEGATE_CACHE or ~/.cache/spikegate)")
    p.add_argument("--samples", type=int, default=None, metavar="N", help="samples to measure cycles on (default: all)")
    p.add_argument("--data-dir", default=None, metavar="DIR", help="MNIST IDX files, for a 784-input network")
    p.add_argument("--timeout", type=float, default=3600, metavar="S",
                   help="give up on the pending points when none finishes for S seconds (default: 3600)")
    p.add_argument("--start-timeout", type=float, default=120, metavar="S",
                   help="seconds for the cluster to come up (default: 120)")
    p.add_argument("--regress", type=int, default=None, metavar="N",
                   help="instead of a sweep: N random network configurations (random layer parameters and "
                        "lanes) simulated in Verilator/Icarus and compared with the model, one task each")
    p.add_argument("--regress-seed", type=int, default=0, metavar="S",
                   help="seed of the first random configuration (default: 0)")
    p.add_argument("--simulator", default="verilator", choices=("verilator", "icarus"),
                   help="--regress: the simulator (default: verilator)")
    p.add_argument("--sim-build-dir", default=None, metavar="DIR",
                   help="--regress: simulator build cache (default: $SPIKEGATE_SIM_CACHE or ~/.cache/spikegate/sim)")
    p.add_argument("--plot", default=None, metavar="FILE", help="also draw the Pareto front (.png or .svg)")
    p.add_argument("--html", default=None, metavar="FILE",
                   help="also write a self-contained HTML report: every point, the Pareto front, each board's "
                        "best build with its utilisation (figures embedded)")
    p.add_argument("--json", action="store_true", help="print the whole result as JSON on stdout")
    p.set_defaults(func=run)
