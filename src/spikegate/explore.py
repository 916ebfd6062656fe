"""Design-space exploration: the sweep's points, what one point runs, and how results compare.

A sweep is the product boards x lanes x weight placement x clock targets x nextpnr seeds. Each
point is one ordinary cached board build (:func:`spikegate.boards.build.build`), so a rerun or an
interrupted sweep resumes from the build cache. :func:`run_point` never raises for a design that
does not fit, misses timing or crashes a tool: those are results (``status``), like a success.
The distributed execution (Dask) is in :mod:`spikegate.explore_dask`.
"""
from __future__ import annotations

import io
import traceback
from contextlib import redirect_stderr
from dataclasses import asdict, dataclass
from pathlib import Path

from .model.network import Network

__all__ = ["WEIGHT_RAMS", "STATUSES", "Point", "sweep", "parse_ints", "parse_floats", "parse_lanes_list",
           "run_point", "point_row", "pareto_front", "best_per_board", "format_table"]

# "auto" lets the build choose (block RAM, or SPRAM for the arrays block RAM cannot hold).
WEIGHT_RAMS = ("auto", "block", "spram")
STATUSES = ("ok", "timing", "no-fit", "error")
# Objectives of the Pareto front: (row key, +1 to maximise / -1 to minimise).
OBJECTIVES = (("samples_per_s", 1), ("lut_percent", -1), ("ram_percent", -1))


@dataclass(frozen=True)
class Point:
    board: str
    lanes: int | tuple | None = None      # None: the board's default
    weight_ram: str = "auto"
    clock_mhz: float | None = None        # None: the board's documented clock
    seed: int | None = None               # None: nextpnr's default placement

    @property
    def label(self) -> str:
        lanes = "default" if self.lanes is None else (
            str(self.lanes) if isinstance(self.lanes, int) else "-".join(map(str, self.lanes)))
        clock = "default" if self.clock_mhz is None else f"{self.clock_mhz:g}"
        seed = "default" if self.seed is None else str(self.seed)
        return f"{self.board}_p{lanes}_{self.weight_ram}_{clock}MHz_seed{seed}"

    def build_kwargs(self) -> dict:
        kw = {"lanes": list(self.lanes) if isinstance(self.lanes, tuple) else self.lanes,
              "clock_mhz": self.clock_mhz, "seed": self.seed}
        if self.weight_ram != "auto":
            kw["weight_ram"] = self.weight_ram
        return kw


def _range_items(option: str, text: str, conv, valid: str) -> list:
    out = []
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        try:
            if conv is int and "-" in part[1:]:
                lo, hi = (int(x) for x in part.split("-", 1))
                if hi < lo:
                    raise ValueError
                out.extend(range(lo, hi + 1))
            else:
                out.append(conv(part))
        except ValueError:
            raise ValueError(f"{option} = {text!r} is not valid; valid: {valid}") from None
    if not out:
        raise ValueError(f"{option} = {text!r} is not valid; valid: {valid}")
    return list(dict.fromkeys(out))


def parse_ints(option: str, text: str) -> list[int]:
    """``"1-8"``, ``"1,3,5-7"``: the integers, in order, without repeats."""
    vals = _range_items(option, text, int, "integers >= 0 and ranges, e.g. 1-8 or 1,3,5-7")
    if any(v < 0 for v in vals):
        raise ValueError(f"{option} = {text!r} is not valid; valid: integers >= 0 and ranges, e.g. 1-8")
    return vals


def parse_floats(option: str, text: str) -> list[float]:
    vals = _range_items(option, text, float, "numbers separated by commas, e.g. 16.125,20")
    if any(not v > 0 for v in vals):
        raise ValueError(f"{option} = {text!r} is not valid; valid: frequencies > 0 in MHz")
    return vals


def parse_lanes_list(option: str, text: str) -> list:
    """``"1,2,4"``: one lane count per point; ``"8/2"``: one per layer (8 for layer 0, 2 for layer 1)."""
    valid = "powers of two 1..64 separated by commas; one per layer joined by / (e.g. 1,2,4,8/2)"
    out = []
    for part in _range_items(option, text, str, valid):
        try:
            vals = tuple(int(x) for x in part.split("/"))
        except ValueError:
            raise ValueError(f"{option} = {text!r} is not valid; valid: {valid}") from None
        if any(v < 1 or v > 64 or v & (v - 1) for v in vals):
            raise ValueError(f"{option} = {text!r} is not valid; valid: {valid}")
        out.append(vals[0] if len(vals) == 1 else vals)
    return out


def sweep(boards, lanes=(None,), weight_rams=("auto",), clocks=(None,), seeds=(None,)) -> list[Point]:
    """Every combination, boards outermost. Board names are checked (aliases resolved)."""
    from .boards.targets import get_board
    names = list(dict.fromkeys(get_board(b).name for b in boards))
    if not names:
        raise ValueError("--board is empty; valid: one or more board names (see `spikegate boards`)")
    for r in weight_rams:
        if r not in WEIGHT_RAMS:
            raise ValueError(f"--weight-ram = {r!r} is not valid; valid: {', '.join(WEIGHT_RAMS)}")
    return [Point(b, p, r, c, s) for b in names for p in lanes for r in weight_rams for c in clocks for s in seeds]


def point_row(point: Point, report: dict | None, status: str, error: str | None = None,
              seconds: float | None = None) -> dict:
    """One row of the result table: the point, its outcome and the report's key figures."""
    row = {"label": point.label, **asdict(point), "status": status, "fits": status in ("ok", "timing"),
           "timing_met": None, "fmax_mhz": None, "clock_pll_mhz": None, "slack_ns": None,
           "lut_percent": None, "ff_percent": None, "ram_percent": None, "spram_percent": None,
           "cycles": None, "latency_us": None, "samples_per_s": None, "weight_ram_used": None,
           "cached": None, "seconds": seconds, "error": error, "bitstream": None, "report_path": None}
    if isinstance(point.lanes, tuple):
        row["lanes"] = list(point.lanes)
    if report:
        u, t, perf = report["utilization"], report["timing"], report["performance"]
        row.update(timing_met=bool(t["met"]), fmax_mhz=t["fmax_mhz"], clock_pll_mhz=report["clock"]["pll_mhz"],
                   slack_ns=t["slack_ns"], lut_percent=u["LUT"]["percent"], ff_percent=u["FF"]["percent"],
                   ram_percent=u["BRAM"]["percent"], spram_percent=u.get("SPRAM", {}).get("percent", 0.0),
                   cycles=perf["cycles_per_sample"]["mean"], latency_us=perf["at_clock"]["latency_us"],
                   samples_per_s=perf["at_clock"]["samples_per_s"], weight_ram_used=report.get("weight_ram"),
                   cached=report.get("cached"), bitstream=report.get("bitstream"),
                   report_path=report.get("report_path"))
        if row["lanes"] is None:
            row["lanes"] = report.get("lanes")
    return row


def run_point(point: Point, net: dict, *, out_root, cache_dir=None, samples=None, data_dir=None) -> dict:
    """Build one point (runs on a Dask worker) and return its row; never raises for a failed build.

    ``net`` is the network as :meth:`Network.to_dict` (plain data travels to remote workers). The
    build's progress lines are kept out of the worker's log; a failure's row carries its message.
    """
    import time
    from .boards.build import BuildError, TimingError, build
    from .boards.fit import ResourceError
    t0 = time.monotonic()
    out = Path(out_root) / point.label
    log = io.StringIO()
    try:
        with redirect_stderr(log):
            rep = build(point.board, Network.from_dict(net), out_dir=out, cache_dir=cache_dir, samples=samples,
                        data_dir=data_dir, **point.build_kwargs())
        status, error = "ok", None
    except TimingError as e:
        rep, status, error = dict(e.report, report_path=str(out / f"{point.board}-report.json")), "timing", str(e)
    except ResourceError as e:
        rep, status, error = None, "no-fit", str(e)
    except BuildError as e:  # a tool failed
        rep, status, error = None, "error", str(e)
    except Exception as e:  # noqa: BLE001 - any crash of one point is that point's result
        tail = traceback.format_exception_only(type(e), e)[-1].strip()
        rep, status, error = None, "error", f"{tail} (log: {log.getvalue()[-500:].strip()})"
    return point_row(point, rep, status, error, round(time.monotonic() - t0, 1))


def _vector(row: dict) -> tuple:
    return tuple(sign * row[key] for key, sign in OBJECTIVES)


def pareto_front(rows: list[dict]) -> list[int]:
    """Indices of the rows that met timing and that no other such row beats in every objective
    (samples/s up, LUT % and RAM % down). Rows with the same figures (e.g. the same design with
    other seeds) are represented once, by the one with the highest fmax, then the lowest index."""
    best = {}
    for k, r in enumerate(rows):
        if not r.get("timing_met") or any(r.get(key) is None for key, _ in OBJECTIVES):
            continue
        v = _vector(r)
        if v not in best or r["fmax_mhz"] > rows[best[v]]["fmax_mhz"]:
            best[v] = k
    front = []
    for v, k in best.items():
        if not any(all(a >= b for a, b in zip(w, v)) and w != v for w in best):
            front.append(k)
    return sorted(front)


def best_per_board(rows: list[dict]) -> dict[str, int]:
    """Per board, the row that met timing with the most samples/s (then fewer LUTs, less RAM,
    more fmax): the build a user would pick without naming a seed."""
    out = {}
    for k, r in enumerate(rows):
        if not r.get("timing_met"):
            continue
        key = (*_vector(r), r["fmax_mhz"])
        b = r["board"]
        if b not in out or key > (*_vector(rows[out[b]]), rows[out[b]]["fmax_mhz"]):
            out[b] = k
    return out


def _fmt(v, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def format_table(rows: list[dict], front=(), best=None) -> str:
    """The rows as text; ``*`` marks the Pareto front, ``B`` each board's best."""
    best_idx = set((best or {}).values())
    head = (f"{'':2} {'board':<15} {'lanes':>5} {'ram':<5} {'clock':>7} {'seed':>4}  {'status':<6} {'fmax':>7} "
            f"{'LUT%':>5} {'RAM%':>5} {'cycles':>7} {'us':>8} {'samples/s':>10}  {'s':>5}")
    lines = [head]
    for k, r in enumerate(rows):
        mark = ("*" if k in front else " ") + ("B" if k in best_idx else " ")
        lanes = r["lanes"] if not isinstance(r["lanes"], list) else "/".join(map(str, r["lanes"]))
        clock = r["clock_pll_mhz"] if r["clock_pll_mhz"] is not None else r["clock_mhz"]
        lines.append(
            f"{mark} {r['board']:<15} {_fmt(lanes, ''):>5} {r['weight_ram']:<5} {_fmt(clock, '.3f'):>7} "
            f"{_fmt(r['seed'], ''):>4}  {r['status']:<6} {_fmt(r['fmax_mhz'], '.2f'):>7} "
            f"{_fmt(r['lut_percent'], '.1f'):>5} {_fmt(r['ram_percent'], '.1f'):>5} {_fmt(r['cycles'], '.0f'):>7} "
            f"{_fmt(r['latency_us'], '.2f'):>8} {_fmt(r['samples_per_s'], '.0f'):>10}  {_fmt(r['seconds'], '.0f'):>5}")
    return "\n".join(lines)
