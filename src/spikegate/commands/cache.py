"""``spikegate cache``: what the bitstream and simulator build caches hold, and clearing them."""
from __future__ import annotations

from ..cache_admin import CacheReport, manage_caches
from ._common import add_json_argument, emit


def _size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return ""


def format_report(r: CacheReport) -> str:
    titles = {"build": "bitstream builds", "sim": "simulator builds"}
    lines = []
    for a in r.areas:
        lines.append(f"{titles[a.name]} in {a.path}: {_size(a.total_bytes)}"
                     + (f" (freed {_size(a.removed_bytes)})" if a.removed_bytes else ""))
        for it in a.items:
            if it.kind != "lock":
                lines.append(f"  {it.name[:40]:<40} {it.kind:<8} {_size(it.bytes):>9}  {it.status}")
        if not any(it.kind != "lock" for it in a.items):
            lines.append("  (empty)")
    lines.append(f"total {_size(r.total_bytes)}" + (f", freed {_size(r.removed_bytes)}" if r.action == "clear" else ""))
    return "\n".join(lines)


def run(args) -> int:
    areas = [a for a, on in (("build", args.build), ("sim", args.sim)) if on] or ["build", "sim"]
    r = manage_caches(clear=args.clear, areas=areas)
    emit(args, r, format_report)
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "cache", help="show or clear the bitstream and simulator build caches",
        description="List the entries of the bitstream build cache ($SPIKEGATE_CACHE/builds, default "
                    "~/.cache/spikegate/builds) and the simulator build cache ($SPIKEGATE_SIM_CACHE, "
                    "default ~/.cache/spikegate/sim) with their sizes and state, or clear them. Clearing "
                    "leaves entries alone that a running build or simulation holds, and scratch of "
                    "processes still running.")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--info", action="store_true", help="list entries, sizes and totals (the default)")
    what.add_argument("--clear", action="store_true", help="remove every entry not in use")
    p.add_argument("--build", action="store_true", help="only the bitstream build cache")
    p.add_argument("--sim", action="store_true", help="only the simulator build cache")
    add_json_argument(p)
    p.set_defaults(func=run)
