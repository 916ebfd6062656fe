"""``build(..., clock_mhz="max")``: the fastest PLL clock at which the design meets timing.

A board's documented clock is a safe default for every network kind, so it sits well below what
most designs reach (the ULX3S runs the digits network at 35 MHz, and places it at 72-78 MHz). The
search places the design at the documented clock first (usually a cached build), then at the
highest PLL frequency at or below the fmax nextpnr reported, and again from each new placement's
fmax, until a placement's fmax offers no faster PLL setting than the fastest met one, or after
``attempts`` placements. A placement that misses timing is not an error while another one met:
the result is the bitstream of the fastest met placement. Each placement is an ordinary cached
build (served from the cache on the next search), into a scratch folder that is removed
afterwards; the output folder gets the chosen build only, and its report lists every placement
under ``clock.search``.
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

from ..model.fileio import write_atomic
from .errors import TimingError
from .targets import Board, get_board

# The modules that elaborate and build (Amaranth, the 'hw' extra) are imported where they are
# used: the CLI reads this module's limits to describe and check --placements without them.

__all__ = ["build_fastest", "MIN_ATTEMPTS", "MAX_ATTEMPTS", "DEFAULT_ATTEMPTS"]

# Placements a search may run: each is a full place and route (minutes on a large device). The
# first is at the documented clock, so a search of fewer than two would not search.
MIN_ATTEMPTS = 2
MAX_ATTEMPTS = 8
# Enough in practice: the second placement, at the first one's fmax, nearly always meets or
# misses by a few percent, and the third settles it.
DEFAULT_ATTEMPTS = 4


def _check_attempts(attempts) -> int:
    if isinstance(attempts, bool) or not isinstance(attempts, int) or not MIN_ATTEMPTS <= attempts <= MAX_ATTEMPTS:
        raise ValueError(f"attempts = {attempts!r} is not valid; valid: an integer from {MIN_ATTEMPTS} to "
                         f"{MAX_ATTEMPTS} (placements the clock search may run)")
    return attempts


def _next_clock(board: Board, fmax: float, best: float | None, tried: list, baud) -> float | None:
    """The next clock to place at: the fastest PLL setting at or below ``fmax``, if it is faster
    than the fastest met clock ``best``, not tried yet, and runs the host link's baud."""
    from .report import fastest_pll
    from .top import link_baud
    p = fastest_pll(board, fmax)
    if p is None or (best is not None and p.f_out_mhz <= best):
        return None
    if any(abs(a["pll_mhz"] - p.f_out_mhz) < 1e-6 for a in tried):
        return None
    try:
        link_baud(board, baud, p.f_out_mhz * 1e6)
    except ValueError:
        return None
    return p.f_out_mhz


def build_fastest(board, net=None, *, attempts: int = DEFAULT_ATTEMPTS, out_dir=None, samples=None,
                  force: bool = False, progress=None, **options) -> dict:
    """The search described in the module docstring; ``options`` are :func:`.build.build`'s other
    keyword arguments (not ``clock_mhz``: the search chooses it). Returns the chosen
    build's report with ``clock.search``: one entry per placement, in order (``pll_mhz``,
    ``fmax_mhz``, ``met``, ``cached``). Raises the first placement's :class:`TimingError` when no
    placement meets timing."""
    from .build import build, check_arguments
    say = progress if progress is not None else (lambda text: None)
    board = get_board(board) if not isinstance(board, Board) else board
    _check_attempts(attempts)
    if "clock_mhz" in options:
        raise TypeError("build_fastest chooses the clock: clock_mhz is not an argument")
    # What build() checks before its tools run, checked before the first placement too: the
    # output folder is written only after every placement.
    check_arguments(options.get("seed"), samples, out_dir, options.get("timeout"), options.get("router"))
    tried: list[dict] = []
    best, first_error = None, None
    clock = board.clock_mhz
    with tempfile.TemporaryDirectory(prefix="spikegate-clock-") as scratch:
        for i in range(attempts):
            say(f"build {board.name}: clock search, placement {i + 1} at {clock:g} MHz")
            try:
                # One sample for cycles per sample: the chosen build measures the real workload.
                r = build(board, net, clock_mhz=clock, out_dir=Path(scratch) / str(i), samples=1, force=force,
                          progress=progress, **options)
                met = True
            except TimingError as e:
                r, met = e.report, False
                first_error = first_error or e
            fmax = r["timing"]["fmax_mhz"]
            tried.append({"pll_mhz": r["clock"]["pll_mhz"], "fmax_mhz": fmax, "met": met, "cached": r["cached"]})
            if met:
                best = max(best or 0.0, r["clock"]["pll_mhz"])
            clock = _next_clock(board, fmax, best, tried, options.get("baud"))
            if clock is None:
                break
    if best is None:
        raise first_error
    say(f"build {board.name}: clock search chose {best:g} MHz")
    report = build(board, net, clock_mhz=best, out_dir=out_dir, samples=samples, progress=progress, **options)
    report["clock"]["search"] = tried
    # The report beside the bitstream says how its clock was chosen (its sha256 entry is unchanged).
    rep = Path(report["report_path"])
    on_disk = json.loads(rep.read_text())
    on_disk["clock"]["search"] = tried
    write_atomic(rep, (json.dumps(on_disk, indent=1) + "\n").encode())
    return report
