"""One self-contained HTML file for a build report or a design-space sweep: its tables, and its
figures (:mod:`spikegate.plots_hw`) embedded as base64 PNG, with no scripts and no other files.

``spikegate explore --html FILE`` writes :func:`sweep_html`; ``spikegate plot utilisation -o
FILE.html`` writes :func:`build_html` and ``spikegate plot pareto -o FILE.html`` :func:`sweep_html`.
"""
from __future__ import annotations

import base64
import io
import json
from html import escape
from pathlib import Path

from .model.fileio import write_atomic
from .plots_hw import pareto, utilisation

__all__ = ["HTML_SUFFIXES", "check_html_file", "figure_img", "table", "build_html", "sweep_html", "save_html",
           "best_reports"]

HTML_SUFFIXES = (".html", ".htm")

# Small: a report is meant to be mailed or attached to a CI run.
HTML_DPI = 80
STYLE = ("body{font-family:sans-serif;margin:1.5em;max-width:72em}table{border-collapse:collapse;"
         "font-size:0.85em;margin:0.5em 0 1.5em}th,td{border:1px solid #ccc;padding:2px 6px;text-align:right}"
         "th{background:#eee}td:first-child,th:first-child{text-align:left}tr.front{font-weight:bold}"
         "tr.fail{color:#a00}img{max-width:100%}")


def check_html_file(path, option: str = "--html") -> Path:
    """Before any work: ``path`` names an .html file that can be written, and matplotlib is installed."""
    from .checks import check_output_file
    from .plots import require_matplotlib
    if Path(path).suffix.lower() not in HTML_SUFFIXES:
        raise ValueError(f"{option} = {str(path)!r} is not valid; valid: a name ending in .html")
    check_output_file(option, path)
    require_matplotlib()
    return Path(path)


def figure_img(fig, alt: str) -> str:
    """``<img>`` with the figure as an embedded PNG."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=fig.dpi)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img alt="{escape(alt)}" src="data:image/png;base64,{data}">'


def _cell(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1e4 else f"{v:,.0f}"
    if isinstance(v, (list, tuple)):
        return "/".join(map(str, v))
    return str(v)


def table(head: list[str], rows: list[list], classes: list[str] | None = None) -> str:
    """An HTML table; ``classes`` gives each row's class attribute ("" for none)."""
    out = ["<table>", "<tr>" + "".join(f"<th>{escape(h)}</th>" for h in head) + "</tr>"]
    for k, r in enumerate(rows):
        cls = classes[k] if classes else ""
        attr = f' class="{cls}"' if cls else ""
        out.append(f"<tr{attr}>" + "".join(f"<td>{escape(_cell(v))}</td>" for v in r) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def _page(title: str, body: list[str]) -> str:
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f"<style>{STYLE}</style></head><body>\n<h1>{escape(title)}</h1>\n" + "\n".join(body) +
            "\n</body></html>\n")


def _build_sections(rep: dict, level: str = "h2") -> list[str]:
    t, perf = rep["timing"], rep.get("performance", {})
    at = perf.get("at_clock", {})
    shape = "-".join(map(str, rep.get("network", {}).get("shape", [])))
    summary = [["board", rep["board"]], ["device", rep.get("device")], ["network", shape],
               ["lanes", rep.get("lanes")], ["clock (MHz)", rep.get("clock", {}).get("pll_mhz", t["constraint_mhz"])],
               ["fmax (MHz)", t["fmax_mhz"]], ["timing met", "yes" if t["met"] else "NO"],
               ["slack (ns)", t["slack_ns"]],
               ["cycles per sample", perf.get("cycles_per_sample", {}).get("mean")],
               ["latency (µs)", at.get("latency_us")], ["samples/s", at.get("samples_per_s")]]
    util = rep["utilization"]
    res = [[name, u["used"], u["available"], u["percent"]] for name, u in util.items()
           if u["available"] or u["used"]]
    return [f"<{level}>Summary</{level}>", table(["", "value"], summary),
            f"<{level}>Utilisation and timing</{level}>",
            figure_img(utilisation(rep, dpi=HTML_DPI), f"utilisation of the {rep['board']} build"),
            table(["resource", "used", "available", "%"], res)]


def build_html(report: dict) -> str:
    """A build report (``BOARD-report.json``) as a page: summary, utilisation figure and table."""
    shape = "-".join(map(str, report.get("network", {}).get("shape", [])))
    return _page(f"spikegate build: {report.get('title', report['board'])}, {shape}", _build_sections(report))


POINT_COLUMNS = [("label", "point"), ("board", "board"), ("lanes", "lanes"), ("weight_ram", "RAM"),
                 ("clock_pll_mhz", "clock MHz"), ("seed", "seed"), ("status", "status"), ("fmax_mhz", "fmax MHz"),
                 ("lut_percent", "LUT %"), ("ram_percent", "RAM %"), ("cycles", "cycles"),
                 ("latency_us", "µs"), ("samples_per_s", "samples/s"), ("seconds", "build s")]


def best_reports(result: dict) -> dict[str, dict]:
    """Each board's best build's report, from the folder its bitstream was copied to."""
    out = {}
    for board, bit in result.get("copied", {}).items():
        f = Path(bit).parent / f"{board}-report.json"
        if f.is_file():
            out[board] = json.loads(f.read_text())
    return out


def sweep_html(result: dict, reports: dict[str, dict] | None = None) -> str:
    """A sweep (``spikegate explore --json``) as a page: counts, the Pareto figure, every point
    (front in bold, failures in red) and each board's best build with its utilisation."""
    rows, front = result["points"], result.get("pareto", [])
    best = result.get("best_index", {})
    net = result.get("network", {})
    shape = "-".join(map(str, net.get("shape", [])))
    c = result.get("counts", {})
    body = [f"<p>{len(rows)} points on {result.get('workers')} workers ({escape(str(result.get('scheduler')))}) in "
            f"{result.get('wall_seconds')} s: {c.get('ok', 0)} ok, {c.get('timing', 0)} missed timing, "
            f"{c.get('no-fit', 0)} did not fit, {c.get('error', 0)} failed.</p>",
            "<h2>Pareto front</h2>", figure_img(pareto(rows, front, dpi=HTML_DPI), "Pareto front of the sweep"),
            "<h2>Every point</h2>",
            table([h for _, h in POINT_COLUMNS], [[r.get(k) for k, _ in POINT_COLUMNS] for r in rows],
                  ["front" if k in front else "" if r["status"] == "ok" else "fail" for k, r in enumerate(rows)]),
            "<h2>Best build per board</h2>"]
    bests = [[b, rows[k]["label"], rows[k]["samples_per_s"], rows[k]["fmax_mhz"], result.get("copied", {}).get(b)]
             for b, k in best.items()]
    body.append(table(["board", "point", "samples/s", "fmax MHz", "bitstream"], bests) if bests
                else "<p>No point met timing.</p>")
    for board, rep in (reports or {}).items():
        body.append(f"<h3>{escape(board)}: {escape(rows[best[board]]['label'])}</h3>" if board in best
                    else f"<h3>{escape(board)}</h3>")
        body.extend(_build_sections(rep, "h4"))
    return _page(f"spikegate explore: {net.get('name') or 'network'} {shape}", body)


def save_html(text: str, path) -> Path:
    """Write the page atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, text)
    return path
