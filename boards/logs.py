"""What the tools said: synthesised cell counts, error lines, nextpnr's resource errors, its
utilisation and timing report (``--report FILE.json``), in the build report's terms."""
from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

from . import fit
from .errors import BuildError
from .targets import Board

__all__ = ["cell_counts", "error_lines", "raise_pnr_resource_error", "utilisation", "timing",
           "constraint_from"]


def cell_counts(netlist: Path) -> Counter:
    """Cells by type in the top module of a Yosys JSON netlist."""
    d = json.loads(netlist.read_text())
    counts = Counter()
    for mod in d.get("modules", {}).values():
        # Yosys writes attribute values as binary strings ("000...1").
        if str(mod.get("attributes", {}).get("top", "0")).strip("0"):
            for cell in mod.get("cells", {}).values():
                counts[cell["type"]] += 1
    return counts


def error_lines(log: Path, *more: Path, limit: int = 8) -> str:
    """The error lines of ``log`` and then of the ``more`` logs (or ``log``'s last lines when none
    says error), for a one-screen message."""
    texts = []
    for path in (log, *more):
        try:
            texts.append(path.read_text(errors="replace").splitlines())
        except OSError:
            texts.append([])
    # A tool may print an error and write it to its own log too: each line once.
    errs = list(dict.fromkeys(l.strip() for lines in texts for l in lines
                              if "ERROR" in l or "error:" in l.lower()))
    pick = errs[-limit:] if errs else [l.strip() for l in texts[0][-limit:]]
    return "\n  ".join(pick)


def raise_pnr_resource_error(log: Path, board: Board, lanes) -> None:
    """Map nextpnr's 'out of resources' errors in ``log`` to a ResourceError (else return)."""
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return
    m = re.search(r"Failed to expand region .* of (\d+) (\w+?)s?\b", text)
    if m:
        needed, cell = int(m.group(1)), m.group(2)
        res = {"ICESTORM_LC": "LC", "TRELLIS_COMB": "LUT", "TRELLIS_SLICE": "LUT"}.get(cell, cell)
        avail = board.luts if res in ("LC", "LUT") else -1
        raise fit.ResourceError(
            f"the design does not fit the {board.title} ({board.device}): placement needs {needed} "
            f"{cell} logic cells but the device has {avail} (lanes = {lanes}); use fewer lanes or "
            f"narrower membranes (membrane_bits), or a larger board", res, needed, avail)
    m = re.search(r"no BELs remaining to implement cell type '(\w+)'", text)
    if m:
        cell = m.group(1)
        res = {"ICESTORM_RAM": "BRAM", "ICESTORM_SPRAM": "SPRAM", "ICESTORM_DSP": "DSP",
               "ICESTORM_LC": "LUT", "DP16KD": "BRAM", "MULT18X18D": "DSP",
               "TRELLIS_COMB": "LUT", "TRELLIS_FF": "FF"}.get(cell, cell)
        raise fit.ResourceError(
            f"the design does not fit the {board.title} ({board.device}): place and route ran out "
            f"of {res} ({cell}) with lanes = {lanes}; use fewer lanes, fewer weight bits or a "
            f"larger board", res, -1, -1)


def utilisation(board: Board, cells: dict[str, int], rep: dict) -> dict:
    """Used / available / percent per resource, from nextpnr's report and the synthesised cells."""
    u = rep.get("utilization", {})

    def row(used, avail):
        return {"used": int(used), "available": int(avail),
                "percent": round(100.0 * used / avail, 1) if avail else 0.0}

    if board.family == "ice40":
        lc = u.get("ICESTORM_LC", {"used": 0, "available": board.luts})
        return {"LUT": row(cells.get("LUT", 0), lc["available"]),
                "FF": row(cells.get("FF", 0), lc["available"]),
                "LC": row(lc["used"], lc["available"]),
                "BRAM": row(*_ua(u, "ICESTORM_RAM", board.bram_blocks)),
                "SPRAM": row(*_ua(u, "ICESTORM_SPRAM", board.spram_blocks)),
                "DSP": row(*_ua(u, "ICESTORM_DSP", board.dsps))}
    if board.family == "ecp5":
        return {"LUT": row(*_ua(u, "TRELLIS_COMB", board.luts)),
                "FF": row(*_ua(u, "TRELLIS_FF", board.ffs)),
                "BRAM": row(*_ua(u, "DP16KD", board.bram_blocks)),
                "SPRAM": row(0, 0),
                "DSP": row(*_ua(u, "MULT18X18D", board.dsps))}
    return {"LUT": row(*_ua(u, "LUT4", board.luts)), "FF": row(*_ua(u, "DFF", board.ffs)),
            "ALU": row(*_ua(u, "ALU", board.ffs)),
            "BRAM": row(*_ua(u, "BSRAM", board.bram_blocks)), "SPRAM": row(0, 0),
            "DSP": row(*_ua(u, "MULT18X18", board.dsps))}


def _ua(u: dict, key: str, default_avail: int) -> tuple[int, int]:
    e = u.get(key)
    if e is None:
        return 0, default_avail
    return e["used"], e["available"]


def timing(rep: dict, clock_mhz: float) -> dict:
    """The main clock's achieved fmax against ``clock_mhz``, and every clock nextpnr reported."""
    clocks = {k: {"achieved_mhz": round(v["achieved"], 3), "constraint_mhz": round(v["constraint"], 3)}
              for k, v in rep.get("fmax", {}).items()}
    if not clocks:
        raise BuildError("place and route reported no clock: the design has no clocked logic "
                         "or the clock constraint was lost")
    main = next((k for k in clocks if "cd_sync" in k or k.endswith("sync.clk")), None)
    if main is None:
        main = min(clocks, key=lambda k: abs(clocks[k]["constraint_mhz"] - clock_mhz))
    fmax = clocks[main]["achieved_mhz"]
    met = all(c["achieved_mhz"] >= c["constraint_mhz"] for c in clocks.values())
    return {"clock": main, "constraint_mhz": round(clock_mhz, 3), "fmax_mhz": fmax,
            "slack_ns": round(1e3 / clock_mhz - 1e3 / fmax, 3), "met": met, "clocks": clocks}


def constraint_from(rep: dict) -> float:
    """The highest clock constraint in nextpnr's report (MHz)."""
    f = rep.get("fmax", {})
    return max((v["constraint"] for v in f.values()), default=0.0)
