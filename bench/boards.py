"""Per board and network: fmax at several nextpnr seeds, timing met, cycles and time per sample,
beside the same figures of the design before wave 2, from real builds.

    python bench/boards.py [--boards icebreaker,ulx3s-85f,orangecrab-25f,tangnano9k]
                           [--networks digits,mnist-784-128-10] [--seeds default,1,2,3,4]
                           [--mnist-net FILE] [--data-dir DIR] [--mnist-lanes BOARD=P[,P...] ...]
                           [--lanes-auto] [--clock BOARD=MHZ ...] [--samples N] [--jobs N] [--old FILE]
                           [--[no-]registered-reads] [--json]

Each (network, board, seed) is an ordinary ``spikegate.boards.build`` (YoWASP Yosys + nextpnr;
an unchanged design at an unchanged seed comes from the build cache, so a rerun costs only the
cycle count on the twin). ``default`` is nextpnr's own seed (no ``--seed``), the placement
``spikegate build`` makes. For each network and board the bench prints:

- fmax at each seed and how many of them meet the board's clock (the PLL's, ``spikegate boards``,
  or ``--clock BOARD=MHZ``'s: nextpnr places for the clock it is given, so a build aimed at a faster
  clock is also a different placement, docs/timing.md);
- cycles per sample (mean over the test split, from the core's cycle-exact twin, which the
  gateware tests hold equal to the hardware's cycle counter);
- µs per sample and samples/s at the achieved fmax of the first seed listed (with ``default``
  first: the placement ``spikegate build`` makes), and at the lowest fmax of the seeds;
- the same line for the old design (``--old``, default ``bench/boards_old.json``) and the ratio.

A network that cannot fit a board is reported with the pre-check's reason (needed vs available).

The 784-128-10 network is built as ``MNIST_BUILD`` says: on the iCEBreaker lanes 4 for the hidden
layer and 1 for the readout, a 2,048-word input buffer, no on-chip encoder, the fastest placement
that fits its 30 block RAMs and 5,280 logic cells; on the ULX3S lanes 64 and 4, the fastest of the
lane counts measured there (docs/timing.md), routed by nextpnr's router2 (router1 does not finish
it). ``--mnist-lanes BOARD=P`` builds others; ``--lanes-auto`` lets every build choose its lanes
(README, "Choosing lanes").

``--registered-reads`` / ``--no-registered-reads`` build every design with or without
``HardwareConfig.registered_reads`` (a flip-flop behind every block RAM read; README "Registered
block RAM reads"; by default each board's choice: on for the ECP5 boards); with ``--old`` set to
this bench's ``--json`` output of the other setting, the ratio lines compare the two.

The old figures are this bench's ``--json`` output run against the old commit's package (see
``bench/boards_old.json``'s ``produced_by``): the bench only calls ``build`` with arguments that
commit already had, so ``PYTHONPATH=OLD_CHECKOUT/src python bench/boards.py --json`` measures it.
The ``--json`` output names the commit measured, with ``-dirty`` when the checkout's tracked files
differed from it as the run began.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import spikegate
from spikegate.boards.build import BuildError, TimingError, build
from spikegate.boards.fit import ResourceError
from spikegate.boards.targets import get_board
from spikegate.boards.top import pll_for
from spikegate.errors import UserError
from spikegate.model.procgroup import end_groups_on_sigterm, groups_ended_on_error
from spikegate.model import Network
try:
    from spikegate.boards.toolchain import ROUTERS
except ImportError:  # an old commit's package, built with nextpnr's default router
    ROUTERS = None

HERE = Path(__file__).resolve().parent
MNIST_SUBSET = HERE.parents[1] / "shared" / "datasets" / "mnist-subset"
BOARDS = "icebreaker,ulx3s-85f,orangecrab-25f,tangnano9k"
NETWORKS = ("digits", "mnist-784-128-10")
OLD = HERE / "boards_old.json"
# The 784-128-10 network on the iCEBreaker: lanes (4, 1) put layer 0's weights in the 4 SPRAM tiles
# (64 bits a read) and its neuron state in 14 block RAMs; the largest sample of the MNIST test split
# is 1,887 input words, so 2,048 hold every one (the default, 4,096, is 6 blocks more), and without
# the encoder the design needs 29 of the 30 block RAMs (31 with it). Lanes (8, 1) would need 38.
# The ULX3S (LFE5U-85F), five seeds each (docs/timing.md): lanes 4 took 26,464 cycles a sample at
# 94-100 MHz, 264-282 us; (8, 4) 13,310 at 92-100 MHz, 133-145 us; (16, 4) 6,733 at 84-93 MHz,
# 72-80 us; (32, 4) 3,445 at 84-92 MHz, 37-41 us, in 10,589 of its 83,640 LUTs and 125 of its 208
# block RAMs; (64, 4), which Yosys synthesises since the lowest-lane search is a tree (ca601b7),
# 1,801 at 79-83 MHz (four seeds), 22-23 us, in 18,982 LUTs and 172 block RAMs. The readout stays at 4 lanes:
# at 8 its 2 groups need the accumulators' forwarding, whose multiplexer held (8, 8) to 86-92 MHz.
# nextpnr's router1 no longer routes (64, 4) (stalled with 79,000-90,000 arcs left to route;
# session 35 in docs/timing.md); router2 routes it in about 9 minutes (66.05 MHz at the default seed).
MNIST_BUILD = {"icebreaker": {"lanes": [4, 1], "max_events": 2048, "encoder": False},
               "ulx3s-85f": {"lanes": [64, 4], "router": "router2"}}


def parse_seeds(text: str) -> list[int | None]:
    """``default,1,2`` -> [None, 1, 2]; ValueError naming the item otherwise."""
    out = []
    for item in (x.strip() for x in text.split(",") if x.strip()):
        if item == "default":
            out.append(None)
        elif item.isdigit():
            out.append(int(item))
        else:
            raise ValueError(f"--seeds item {item!r} is not valid; valid: 'default' or a seed >= 0")
    if not out:
        raise ValueError(f"--seeds {text!r} is not valid; valid: a comma-separated list, e.g. default,1,2,3,4")
    return out


def board_key(name: str, option: str) -> str:
    """The board's own name for ``name`` (an alias such as ``ulx3s`` included), so that
    ``MNIST_BUILD``, ``--mnist-lanes`` and the old design's rows find it whichever name was typed;
    ValueError naming ``option`` and the value otherwise."""
    try:
        return get_board(name).name
    except UserError as e:  # its message lists the known boards
        raise ValueError(f"{option} {name!r} is not valid: {e}") from None


def parse_run_options(ap, args) -> tuple[list[str], list[int | None]]:
    """A board bench's ``--networks``, ``--seeds`` and ``--jobs`` (a bad one refused through ``ap``,
    by name): the networks and the seeds."""
    networks = [n.strip() for n in args.networks.split(",") if n.strip()]
    bad = [n for n in networks if n not in NETWORKS]
    if bad:
        ap.error(f"--networks {bad[0]!r} is not valid; valid: {', '.join(NETWORKS)}")
    try:
        seeds = parse_seeds(args.seeds)
    except ValueError as e:
        ap.error(str(e))
    if args.jobs < 1:
        ap.error(f"--jobs {args.jobs} is not valid; valid: an integer >= 1")
    return networks, seeds


def mnist_network(ap, args, networks) -> Network | None:
    """The ``--mnist-net`` network when ``networks`` has the 784-128-10 one (refused through ``ap``
    when it is missing), else None."""
    if "mnist-784-128-10" not in networks:
        return None
    if args.mnist_net is None:
        ap.error("--mnist-net FILE is needed for the 784-128-10 network (e.g. one made by "
                 "`spikegate train --data mnist --hidden 128 --weight-bits 8`)")
    return Network.load(args.mnist_net)


def one_build(board, label, net, options: dict, seed, out: Path, data_dir, samples) -> dict:
    """One placement of one design (``options``: more ``build`` arguments, e.g. lanes): its fmax
    and timing, or why it cannot fit."""
    tag = "default" if seed is None else f"s{seed}"
    try:
        r = build(board, net, out_dir=out / label / board / tag, data_dir=data_dir,
                  samples=samples, seed=seed, **options)
    except ResourceError as e:
        return {"seed": seed, "fits": False, "error": str(e)}
    except TimingError as e:
        r = e.report
    except BuildError as e:
        return {"seed": seed, "fits": None, "error": str(e)}
    return placement(r)


def _placement_text(p: dict) -> str:
    """One build's figures (:func:`one_build`) in a line."""
    if not p["fits"]:
        return f"{'does not fit' if p['fits'] is False else 'failed'}: {p['error']}"
    return (f"{p['fmax_mhz']:.2f} MHz, timing {'met' if p['met'] else 'NOT met'} at {p['clock_mhz']:g} MHz, "
            f"lanes {p['lanes']}, {p['lut']:,} LUT, {p['cycles_per_sample']:,.1f} cycles/sample")


def placement(r: dict) -> dict:
    """The bench's figures of one placement from a build report (``spikegate build --json``)."""
    p, t = r["performance"], r["timing"]
    return {"seed": r.get("seed"), "fits": True, "fmax_mhz": t["fmax_mhz"], "met": bool(t["met"]),
            "clock_mhz": r["clock"]["pll_mhz"], "lanes": r["lanes"], "max_events": r["max_events"],
            "cycles_per_sample": p["cycles_per_sample"]["mean"], "workload": p["workload"],
            "lut": r["utilization"]["LUT"]["used"], "lut_available": r["utilization"]["LUT"]["available"],
            "cache_key": r["cache_key"], "cached": r["cached"]}


def summarise(board: str, label: str, builds: list[dict]) -> dict:
    """The bench's line for one (network, board) from its placements."""
    row = {"board": board, "network": label, "builds": builds}
    placed = [b for b in builds if b["fits"]]
    if not placed:
        row.update(fits=builds[0]["fits"], error=builds[0].get("error"))
        return row
    # a seed that did not place or route counts as timing not met, and the line says why
    unplaced = [{"seed": b["seed"], "error": b.get("error")} for b in builds if not b["fits"]]
    first, fmaxes = placed[0], [b["fmax_mhz"] for b in placed]
    cyc = first["cycles_per_sample"]
    row.update(fits=True, lanes=first["lanes"], clock_mhz=first["clock_mhz"], cycles_per_sample=cyc,
               workload=first["workload"], fmax_mhz=fmaxes, seeds=[b["seed"] for b in placed],
               met=[b["met"] for b in placed] + [False] * len(unplaced), met_count=sum(b["met"] for b in placed),
               us_per_sample=round(cyc / fmaxes[0], 2), samples_per_s=round(fmaxes[0] * 1e6 / cyc, 1),
               us_per_sample_worst=round(cyc / min(fmaxes), 2),
               samples_per_s_worst=round(min(fmaxes) * 1e6 / cyc, 1))
    if unplaced:
        row["unplaced"] = unplaced
    return row


def from_reports(paths) -> list[dict]:
    """Summary rows from saved build reports, grouped by board and network (seeds in file order).
    The network is named by its shape: ``digits`` for 64-64-10, else the shape joined by '-'."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for path in paths:
        r = json.loads(Path(path).read_text())
        shape = "-".join(map(str, r["network"]["shape"]))
        label = "digits" if shape == "64-64-10" else f"mnist-{shape}" if shape.startswith("784-") else shape
        groups.setdefault((r["board"], label), []).append(placement(r))
    return [summarise(b, label, builds) for (b, label), builds in groups.items()]


def package_commit(root: Path | None = None) -> str | None:
    """The commit of the spikegate checkout being measured (``root``, by default the package's),
    with ``-dirty`` appended when its tracked files differ from that commit: the gateware built
    is then not the commit's. None outside a git checkout."""
    root = Path(spikegate.__file__).resolve().parents[2] if root is None else root
    try:
        def git(*args):
            return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True).stdout.strip()
        return git("rev-parse", "HEAD") + ("-dirty" if git("status", "--porcelain", "--untracked-files=no") else "")
    except (OSError, subprocess.CalledProcessError):
        return None


def run(boards, networks, seeds, *, mnist_net, data_dir, mnist_lanes, samples, jobs, out,
        registered_reads: bool | None = None, lanes_auto: bool = False, router: str | None = None,
        clocks: dict | None = None) -> list[dict]:
    """Build every (network, board, seed); return one summary row per (network, board). With
    ``lanes_auto`` every build chooses its lanes (``build(lanes="auto")``), ``MNIST_BUILD``'s other
    options kept; ``router``: nextpnr's (``build(router=...)``), None for its default; ``clocks``:
    board -> the PLL clock in MHz its builds are made for (``build(clock_mhz=...)``), else the board's."""
    nets = {"digits": (None, None), "mnist-784-128-10": (mnist_net, data_dir)}
    # seed-major: every board has its first placements before any board gets its last
    jobs_list = [(label, b, s) for s in seeds for label in networks for b in boards]
    def go(item):
        label, b, s = item
        net, ddir = nets[label]
        options = {}
        if label != "digits":
            options = dict(MNIST_BUILD.get(b, {}))
            if b in mnist_lanes:
                options = {"lanes": mnist_lanes[b]}
        if lanes_auto:
            options["lanes"] = "auto"
        if registered_reads is not None:  # (only then: an old commit's build() has no such argument)
            options["registered_reads"] = registered_reads
        if router is not None:  # (the same: an old commit's build() has no router)
            options["router"] = router
        elif ROUTERS is None:  # an old commit's package: MNIST_BUILD's router, too, is nextpnr's default
            options.pop("router", None)
        if b in (clocks or {}):
            options["clock_mhz"] = clocks[b]
        name = f"{label} on {b}, seed {'default' if s is None else s}"
        print(f"== {name}", file=sys.stderr)
        r = one_build(b, label, net, options, s, out, ddir, samples)
        # each as it ends, so a run stopped early still shows the builds it finished
        print(f"== {name}: {_placement_text(r)}", file=sys.stderr)
        return r
    with ThreadPoolExecutor(max_workers=jobs) as pool, groups_ended_on_error():
        done = list(pool.map(go, jobs_list))
    results = dict(zip(jobs_list, done))
    return [summarise(b, label, [results[(label, b, s)] for s in seeds]) for label in networks for b in boards]


def _line(design: str, r: dict | None) -> str:
    if r is None:
        return f"  {design:<4} (not measured)"
    note = f"\n       ({r['note']})" if r.get("note") else ""
    for u in r.get("unplaced", []):
        note += f"\n       seed {'default' if u['seed'] is None else u['seed']} did not place: {u['error']}"
    if not r["fits"]:
        return f"  {design:<4} does not fit: {r.get('error')}{note}"
    fm = " ".join(f"{f:6.2f}" for f in r["fmax_mhz"])
    seeds = ",".join("default" if s is None else str(s) for s in r["seeds"])
    return (f"  {design:<4} fmax [{fm}] MHz (seeds {seeds}), timing met at {r['met_count']}/{len(r['met'])} "
            f"({r['clock_mhz']:g} MHz clock), {r['cycles_per_sample']:,.1f} cycles/sample, "
            f"{r['us_per_sample']:,.1f} us/sample, {r['samples_per_s']:,.0f} samples/s "
            f"(lowest fmax: {r['us_per_sample_worst']:,.1f} us, {r['samples_per_s_worst']:,.0f}/s){note}")


def format_text(rows: list[dict], old: dict | None) -> str:
    """The text the bench prints; ``old`` None leaves out the old design's lines."""
    lines = []
    for r in rows:
        o = (old or {}).get((r["board"], r["network"]))
        lines.append(f"{r['board']} / {r['network']}" + (f" (lanes {r['lanes']})" if r.get("fits") else ""))
        lines.append(_line("new", r))
        if old is not None:
            lines.append(_line("old", o))
        if r.get("fits") and o and o.get("fits"):
            lines.append(f"  new/old: fmax x{r['fmax_mhz'][0] / o['fmax_mhz'][0]:.2f}, cycles/sample "
                         f"x{r['cycles_per_sample'] / o['cycles_per_sample']:.2f}, samples/s "
                         f"x{r['samples_per_s'] / o['samples_per_s']:.2f}")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--boards", default=BOARDS)
    ap.add_argument("--networks", default=",".join(NETWORKS), help=f"any of {', '.join(NETWORKS)}")
    ap.add_argument("--seeds", default="default,1,2,3,4", help="nextpnr seeds; 'default' is nextpnr's own")
    ap.add_argument("--mnist-net", type=Path, default=None, help="the 784-128-10 network file")
    ap.add_argument("--data-dir", type=Path, default=MNIST_SUBSET)
    ap.add_argument("--mnist-lanes", action="append", default=[], metavar="BOARD=P",
                    help="lanes of the 784-128-10 builds on BOARD, P or one per layer P0,P1 (default: "
                         "MNIST_BUILD's: on the iCEBreaker lanes 4,1 with a 2048-word input buffer and no "
                         "encoder, on the ULX3S lanes 32,4; the board's default elsewhere)")
    ap.add_argument("--lanes-auto", action="store_true",
                    help="every build chooses its lanes (spikegate build --lanes auto; MNIST_BUILD's other "
                         "options kept, --mnist-lanes ignored)")
    ap.add_argument("--clock", action="append", default=[], metavar="BOARD=MHZ",
                    help="build BOARD's designs for this PLL clock (spikegate build --clock) instead of the "
                         "board's documented one: timing met is then judged at it, and nextpnr places for it")
    ap.add_argument("--samples", type=int, default=None, help="samples per split for cycles/sample")
    ap.add_argument("--jobs", type=int, default=1, help="builds at the same time")
    ap.add_argument("--old", type=Path, default=OLD, help="the old design's figures (this bench's --json)")
    ap.add_argument("--registered-reads", action=argparse.BooleanOptionalAction, default=None,
                    help="build with (or without) a flip-flop behind every block RAM read "
                         "(HardwareConfig.registered_reads; default: the board's choice, on for the ECP5 boards)")
    ap.add_argument("--router", choices=ROUTERS, default=None,
                    help="nextpnr's routing algorithm for every build (default: nextpnr's, router1)")
    ap.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "spikegate-bench-boards")
    ap.add_argument("--reports", type=Path, nargs="+", default=None, metavar="REPORT",
                    help="summarise these saved build reports (BOARD-report.json) instead of building")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    end_groups_on_sigterm()
    try:
        boards = [board_key(b.strip(), "--boards") for b in args.boards.split(",") if b.strip()]
    except ValueError as e:
        ap.error(str(e))
    networks, seeds = parse_run_options(ap, args)
    lanes = {}
    for item in args.mnist_lanes:
        b, _, p = item.partition("=")
        if not all(x.isdigit() for x in p.split(",")):
            ap.error(f"--mnist-lanes {item!r} is not valid; valid: BOARD=P or BOARD=P0,P1, e.g. icebreaker=1")
        try:
            b = board_key(b, "--mnist-lanes")
        except ValueError as e:
            ap.error(str(e))
        lanes[b] = int(p) if p.isdigit() else [int(x) for x in p.split(",")]
    clocks = {}
    for item in args.clock:
        b, sep, f = item.partition("=")
        form = f"--clock {item!r} is not valid; valid: BOARD=MHZ, e.g. ulx3s-85f=100"
        if not sep:
            ap.error(form)
        try:
            b = board_key(b, "--clock")
        except ValueError as e:
            ap.error(str(e))
        try:
            mhz = float(f)
        except ValueError:
            ap.error(form)
        try:
            pll_for(get_board(b), mhz)  # refused here, by name, before any build
        except ValueError as e:
            ap.error(f"--clock {item!r} is not valid: {e}")
        clocks[b] = mhz
    mnist = None if args.reports else mnist_network(ap, args, networks)
    if args.reports:
        missing = [str(f) for f in args.reports if not f.is_file()]
        if missing:
            ap.error(f"--reports {missing[0]} is not valid; valid: existing build report files")
        rows = from_reports(args.reports)
        if args.json:
            print(json.dumps({"commit": None, "rows": rows}, indent=1))
            return 0
    else:
        commit = package_commit()   # before the builds: a commit made during a long run is not what it built
        rows = run(boards, networks, seeds, mnist_net=mnist, data_dir=args.data_dir, mnist_lanes=lanes,
                   samples=args.samples, jobs=args.jobs, out=args.out, registered_reads=args.registered_reads,
                   lanes_auto=args.lanes_auto, router=args.router, clocks=clocks)
        if args.json:
            print(json.dumps({"commit": commit, "seeds": seeds, "registered_reads": args.registered_reads,
                              "lanes_auto": args.lanes_auto, "router": args.router, "clocks": clocks,
                              "rows": rows}, indent=1))
            return 0
    old = None
    if args.old.is_file():
        doc = json.loads(args.old.read_text())
        old = {(r["board"], r["network"]): r for r in doc["rows"]}
        print(f"old design: {doc.get('produced_by', args.old)}")
    print(format_text(rows, old))
    return 0


if __name__ == "__main__":
    sys.exit(main())
