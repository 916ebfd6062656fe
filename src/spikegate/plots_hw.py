"""Figures of hardware results: a build report's utilisation and timing, and the Pareto front of
a design-space sweep (:mod:`spikegate.explore`). Same conventions as :mod:`spikegate.plots`."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from .plots import DPI, new_figure, save

__all__ = ["load_report", "read_json", "utilisation", "save_utilisation", "pareto"]

_RESOURCES = ("LUT", "FF", "LC", "ALU", "BRAM", "SPRAM", "DSP")


def read_json(option: str, path) -> object:
    """The JSON document in the file ``path`` given to ``option``; an error names the option."""
    try:
        return json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{option} = {str(path)!r} is not valid: not JSON ({e})") from None
    except RecursionError:
        raise ValueError(f"{option} = {str(path)!r} is not valid: nested too deeply to read") from None


def load_report(path: str | os.PathLike) -> dict:
    """A build report from ``BOARD-report.json`` or from the output of ``spikegate build --json``
    (which wraps a timing failure's report as ``{"error": ..., "report": {...}}``)."""
    d = read_json("--report", path)
    if isinstance(d, dict) and "utilization" not in d and isinstance(d.get("report"), dict):
        d = d["report"]
    if not isinstance(d, dict) or not all(k in d for k in ("utilization", "timing", "board")):
        raise ValueError(f"--report = {str(path)!r} is not valid; valid: a build report "
                         f"(BOARD-report.json or the output of `spikegate build --json`)")
    return d


def utilisation(report: dict, *, title: str = "", dpi: int = DPI):
    """Left: used / available of each device resource in percent. Right: the achieved fmax of the
    placed design against the clock it has to run at (green when timing is met, red when not)."""
    util = report["utilization"]
    names = [r for r in _RESOURCES if r in util and (util[r]["available"] or util[r]["used"])]
    names += [r for r in util if r not in names and (util[r]["available"] or util[r]["used"])]
    fig = new_figure((8.0, 3.6), dpi)
    ax, tx = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 1.3]})
    pct = [util[r]["percent"] for r in names]
    y = np.arange(len(names))
    colors = ["tab:red" if p > 100 else "tab:orange" if p > 80 else "tab:blue" for p in pct]
    ax.barh(y, pct, color=colors)
    for k, r in enumerate(names):
        ax.text(min(pct[k], 100) + 1, k, f"{util[r]['used']} / {util[r]['available']}", va="center",
                fontsize="small")
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    ax.set_xlim(0, max(125, max(pct, default=0) + 25))
    ax.axvline(100, color="black", linewidth=0.8)
    ax.set_xlabel("utilisation (%)")
    t = report["timing"]
    met = bool(t["met"])
    bars = tx.bar(["fmax", "clock"], [t["fmax_mhz"], t["constraint_mhz"]],
                  color=["tab:green" if met else "tab:red", "tab:gray"])
    tx.bar_label(bars, fmt="%g", fontsize="small")
    tx.set_ylabel("MHz")
    tx.set_ylim(0, 1.2 * max(t["fmax_mhz"], t["constraint_mhz"]))
    tx.set_title(f"timing {'met' if met else 'NOT met'} (slack {t['slack_ns']:+.2f} ns)", fontsize="small")
    shape = "-".join(map(str, report.get("network", {}).get("shape", [])))
    fig.suptitle(title or f"{report.get('title', report['board'])}: {shape}, lanes {report.get('lanes')}")
    return fig


def save_utilisation(report: dict, path, *, dpi: int = DPI) -> Path:
    """:func:`utilisation` of ``report`` written to ``path`` (``spikegate build --plot FILE``)."""
    return save(utilisation(report, dpi=dpi), path)


def pareto(points: list[dict], front: list[int] | None = None, *, title: str = "", dpi: int = DPI):
    """Samples/s against LUT % and against RAM % for every sweep point that met timing; the Pareto
    front (:func:`spikegate.explore.pareto_front`, indices into ``points``) is outlined and joined."""
    from .explore import pareto_front
    if front is None:
        front = pareto_front(points)
    ok = [k for k, p in enumerate(points) if p.get("timing_met")]
    fig = new_figure((9.0, 4.0), dpi)
    axes = fig.subplots(1, 2, sharey=True)
    boards = sorted({points[k]["board"] for k in ok})
    cmap = {b: f"C{i}" for i, b in enumerate(boards)}
    for ax, key, label in ((axes[0], "lut_percent", "logic (LUT %)"), (axes[1], "ram_percent", "block RAM (%)")):
        for b in boards:
            ks = [k for k in ok if points[k]["board"] == b]
            ax.scatter([points[k][key] for k in ks], [points[k]["samples_per_s"] for k in ks], s=18,
                       color=cmap[b], alpha=0.6, label=b)
        fk = sorted(front, key=lambda k: points[k][key])
        ax.plot([points[k][key] for k in fk], [points[k]["samples_per_s"] for k in fk], "-o", color="black",
                markerfacecolor="none", markersize=8, linewidth=0.8, label="Pareto front")
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("samples/s (at the clock)")
    axes[0].legend(fontsize="small")
    failed = len(points) - len(ok)
    fig.suptitle(title or f"design-space sweep: {len(points)} points, {len(ok)} met timing, {failed} did not "
                          f"fit or missed timing")
    return fig
