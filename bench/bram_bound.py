"""How fast the ECP5 boards could clock if every block RAM read were registered: a timing bound
for the design change issue 12 still needs, measured before making it.

    python bench/bram_bound.py [--boards ulx3s-85f,orangecrab-25f] [--networks digits[,mnist-784-128-10]]
                               [--seeds default,1,2,3,4] [--mnist-net FILE] [--cache DIR] [--jobs N] [--json]

On the ECP5 every critical path of the ULX3S builds starts at a DP16KD read (5.83 ns from clock
to data at speed grade 6), and Yosys maps memories without the block's own output register. For
each (board, network, seed) this bench places the design twice with the same tools and seed:

- as ``spikegate build`` makes it;
- with every DP16KD and PDPW16KD switched to its output register after synthesis (``setparam
  REGMODE OUTREG``): the same netlist with each block RAM read a cycle later.

The second bitstream computes wrong results (every read arrives a cycle late), so it is only a
timing figure: the fmax a design reaches once each block RAM read goes into a register before any
logic. Its critical path says what limits that design next (a mux over the blocks of a memory
split by depth is after the register, so it stays). Both builds go to ``--cache`` (default: a
temporary folder, so the bound's bitstreams never reach the cache ``spikegate build`` serves);
the normal design's figures equal ``bench/boards.py``'s at the same seed.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import spikegate.boards.build as board_build
from spikegate.boards.build import TimingError, build
from spikegate.boards.cache import cache_root
from spikegate.boards.fit import ResourceError
from spikegate.boards.targets import get_board
from spikegate.errors import UserError
from spikegate.model.procgroup import end_groups_on_sigterm, groups_ended_on_error

HERE = Path(__file__).resolve().parent


def _sibling(name: str):
    """bench/NAME.py as a module (a plain ``import boards`` could find the repository's ``boards``
    package first)."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", HERE / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


_boards_bench = _sibling("boards")
package_commit, parse_run_options, mnist_network = (_boards_bench.package_commit, _boards_bench.parse_run_options,
                                                   _boards_bench.mnist_network)
NETWORKS = _boards_bench.NETWORKS
SAMPLES = 20
# Yosys commands run after synthesis: every block RAM's read data goes through its output register.
OUTREG = ('setparam -set REGMODE_A "OUTREG" -set REGMODE_B "OUTREG" t:DP16KD\n'
          'setparam -set REGMODE "OUTREG" t:PDPW16KD')


def critical_path(report: Path) -> dict:
    """The main clock's critical path in a nextpnr report: where it starts and ends, its delay and
    how much of it is logic, routing and the start cell's clock-to-data time."""
    rep = json.loads(report.read_text())
    paths = [p for p in rep.get("critical_paths", []) if p["from"].startswith("posedge")
             and p["to"].startswith("posedge")]
    if not paths:
        return {}
    hops = paths[0]["path"]
    kinds = {k: round(sum(h["delay"] for h in hops if h["type"] == k), 2) for k in ("clk-to-q", "logic", "routing")}
    return {"from": hops[0]["from"]["cell"], "to": hops[-1]["to"]["cell"],
            "ns": round(sum(h["delay"] for h in hops), 2), **kinds}


def one(board: str, label: str, net, seed, bound: bool, cache: Path, out: Path) -> dict:
    """One placement of network ``label``; ``bound``: with the block RAMs' output registers on. A design the board
    cannot hold is refused by ``build``'s pre-check, before any tool runs, and reported."""
    # (cycles per sample are not this bench's figure: a few samples keep the twin's part short)
    options = dict(cache_dir=cache, seed=seed, samples=SAMPLES, out_dir=out / label / board / ("bound" if bound else "design")
                   / ("default" if seed is None else f"s{seed}"))
    try:
        r = build(board, net, **options)
    except ResourceError as e:
        return {"fits": False, "error": str(e)}
    except TimingError as e:
        r = e.report
    cp = critical_path(cache_root(cache) / r["cache_key"] / "report.json")
    return {"fits": True, "fmax_mhz": r["timing"]["fmax_mhz"], "clock_mhz": r["clock"]["pll_mhz"], "critical_path": cp}


_synth_options = board_build.synth_options


def synth_with_outreg(board) -> dict:
    """``board``'s synthesis options (boards.flow.synth_options) with OUTREG run after synthesis."""
    opts = dict(_synth_options(board))
    opts["script_after_synth"] = "\n".join(x for x in (opts.get("script_after_synth"), OUTREG) if x)
    return opts


def run(boards, networks, seeds, *, mnist_net, cache: Path, out: Path, jobs: int) -> list[dict]:
    """Place every (network, board, seed) as built, then with the output registers on: one row each
    with both placements (``one``)."""
    nets = {"digits": None, "mnist-784-128-10": mnist_net}
    items = [(label, b, s) for s in seeds for label in networks for b in boards]

    def phase(bound):
        def go(item):
            label, b, s = item
            print(f"== {label} on {b}, seed {'default' if s is None else s}"
                  f"{', output registers on' if bound else ''}", file=sys.stderr)
            return one(b, label, nets[label], s, bound, cache, out)
        with ThreadPoolExecutor(max_workers=jobs) as pool, groups_ended_on_error():
            return list(pool.map(go, items))

    design = phase(False)
    # build() takes its synthesis options from board_build.synth_options; the bound's placements
    # alone see the extra commands (their plan, and so their cache key, differs from the design's).
    board_build.synth_options = synth_with_outreg
    try:
        bound = phase(True)
    finally:
        board_build.synth_options = _synth_options
    return [{"board": b, "network": label, "seed": s, "design": d, "bound": o}
            for (label, b, s), d, o in zip(items, design, bound)]


def format_text(rows: list[dict]) -> str:
    lines = []
    for r in rows:
        d, o = r["design"], r["bound"]
        head = f"{r['board']} / {r['network']}, seed {'default' if r['seed'] is None else r['seed']}: "
        if not d["fits"]:
            lines.append(head + f"does not fit: {d['error']}")
            continue
        cp = o["critical_path"]
        lines.append(head + f"fmax {d['fmax_mhz']:.2f} MHz, with registered block RAM reads {o['fmax_mhz']:.2f} MHz "
                     f"(x{o['fmax_mhz'] / d['fmax_mhz']:.2f})")
        if cp:
            lines.append(f"  bound's critical path {cp['ns']:.2f} ns (clock-to-data {cp['clk-to-q']:.2f}, "
                         f"logic {cp['logic']:.2f}, routing {cp['routing']:.2f}): {cp['from']} -> {cp['to']}")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--boards", default="ulx3s-85f,orangecrab-25f")
    ap.add_argument("--networks", default="digits", help=f"any of {', '.join(NETWORKS)}")
    ap.add_argument("--seeds", default="default", help="nextpnr seeds; 'default' is nextpnr's own")
    ap.add_argument("--mnist-net", type=Path, default=None, help="the 784-128-10 network file")
    ap.add_argument("--cache", type=Path, default=None, help="build cache of both designs (default: a temporary one)")
    ap.add_argument("--jobs", type=int, default=1, help="builds at the same time")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    end_groups_on_sigterm()
    boards = [b.strip() for b in args.boards.split(",") if b.strip()]
    for b in boards:
        try:
            family = get_board(b).family
        except UserError as e:
            ap.error(f"--boards: {e}")
        if family != "ecp5":
            ap.error(f"--boards {b!r} is not valid; valid: ECP5 boards (ulx3s-85f, orangecrab-25f): "
                     "the output registers this bench switches on are the DP16KD's")
    networks, seeds = parse_run_options(ap, args)
    mnist = mnist_network(ap, args, networks)
    commit = package_commit()
    with tempfile.TemporaryDirectory(prefix="spikegate-bram-bound-") as tmp:
        cache = args.cache if args.cache is not None else Path(tmp) / "cache"
        rows = run(boards, networks, seeds, mnist_net=mnist, cache=cache, out=Path(tmp) / "out", jobs=args.jobs)
    if args.json:
        print(json.dumps({"commit": commit, "outreg": OUTREG, "rows": rows}, indent=1))
    else:
        print(format_text(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
