"""The build report: timing at the PLL's exact clock, advice when it is missed, and the text the
CLI prints."""
from __future__ import annotations

from .targets import Board
from .top import pll_for

__all__ = ["pll_timing", "fastest_pll", "safe_clock_advice", "format_report"]


def pll_timing(timing: dict, pll) -> dict:
    """nextpnr's timing (from the cache entry) judged against the PLL's exact output frequency.

    nextpnr derives the constraint from the oscillator through the PLL and rounds the period;
    the report states the PLL's exact frequency and requires both to be met.
    """
    timing = dict(timing)
    fmax = timing["fmax_mhz"]
    timing["constraint_mhz"] = round(pll.f_out_mhz, 3)
    timing["slack_ns"] = round(1e3 / pll.f_out_mhz - 1e3 / fmax, 3)
    timing["met"] = bool(timing["met"] and fmax >= pll.f_out_mhz)
    return timing


def fastest_pll(board: Board, fmax: float):
    """The PLL setting with the highest output frequency at or below ``fmax`` MHz that the board can
    make (searched in 0.25 MHz steps down from ``fmax``), or None."""
    f = fmax
    for _ in range(400):
        try:
            p = pll_for(board, f)
        except ValueError:
            return None
        if p.f_out_mhz <= fmax:
            return p
        f -= 0.25
    return None


def safe_clock_advice(board: Board, fmax: float) -> str:
    """Advice: the highest PLL frequency at or below ``fmax`` the board can make."""
    p = fastest_pll(board, fmax)
    if p is not None:
        return (f"Build at --clock {p.f_out_mhz:g} or lower (or --clock max), use fewer lanes, or try "
                f"another placement (--seed N)")
    return (f"The {board.family} PLL cannot make a clock at or below {fmax:.2f} MHz: use fewer "
            f"lanes or narrower membranes, or try another placement (--seed N)")


def format_report(r: dict) -> str:
    """The build report as the text the CLI prints."""
    n = r["network"]
    lines = [f"{r['title']} ({r['device']}): network {n['source']} {'-'.join(map(str, n['shape']))} "
             f"(T = {n['timesteps']}{', readout' if n['readout'] else ''}), lanes {r['lanes']}",
             f"clock: {r['clock']['pll_mhz']:g} MHz from the {r['clock']['oscillator_mhz']:g} MHz "
             f"oscillator through the PLL"
             + ("" if r.get("encoder", True) else "; on-chip input encoder left out (ENCODE, BATCH unavailable)")
             + ("; block RAM reads registered" if r.get("registered_reads") else ""),
             "resource      used / available      %"]
    search = r["clock"].get("search")
    if search:
        steps = ", ".join(f"{a['pll_mhz']:g} MHz (fmax {a['fmax_mhz']:.2f}, {'met' if a['met'] else 'not met'})"
                          for a in search)
        lines.insert(2, f"clock search (--clock max), placed at: {steps}")
    auto = r.get("lanes_auto")
    if auto:
        steps = " -> ".join(f"{s['lanes']} {s['cycles_per_sample']:g}" for s in auto["steps"])
        refused = "".join(f"; {a['lanes']} did not fit after synthesis" for a in auto["refused"])
        lines.insert(1, f"lanes auto: cycles a sample over the first {auto['samples']} samples {steps}{refused}")
    link = r.get("host_link", {})
    if "max_payload" in link:
        lines.insert(2, f"host link: {link['baud']} baud, request payload buffer {link['max_payload']} bytes"
                        + (" a bank (streaming)" if r.get("stream") else ""))
    for res, u in r["utilization"].items():
        if u["available"] or u["used"]:
            lines.append(f"  {res:<8} {u['used']:>8} / {u['available']:<9} {u['percent']:6.1f}")
    t = r["timing"]
    lines.append(f"timing: fmax {t['fmax_mhz']:.2f} MHz vs {t['constraint_mhz']:g} MHz constraint: "
                 f"{'met' if t['met'] else 'NOT MET'} (slack {t['slack_ns']:+.2f} ns)")
    p = r["performance"]
    c = p["cycles_per_sample"]
    lines.append(f"cycles per sample: mean {c['mean']:g} (min {c['min']}, max {c['max']}) over "
                 f"{p['workload']}")
    for key, label in (("at_clock", "at the PLL clock"), ("at_fmax", "at the achieved fmax")):
        if key in p:
            a = p[key]
            lines.append(f"  {label} {a['mhz']:g} MHz: {a['latency_us']:g} us per sample "
                         f"(worst {a['worst_latency_us']:g} us), {a['samples_per_s']:g} samples/s")
    rams = r.get("weight_ram", "block")
    if not isinstance(rams, str):
        spram = [str(l) for l, ram in enumerate(rams) if ram == "spram"]
        lines.append(f"weights of layer {', '.join(spram)} in SPRAM: zero after configuration; "
                     f"`spikegate run --net FILE` loads them over the host link")
    if r.get("bitstream"):
        lines.append(f"bitstream: {r['bitstream']}{' (cached build)' if r['cached'] else ''}")
    return "\n".join(lines)
