"""``spikegate boards``: the supported boards with their device, resources, clock and programmer."""
from __future__ import annotations

from ._common import add_json_argument, emit


def format_boards(d: dict) -> str:
    rows = d["boards"]
    lines = [f"{'board':<16} {'device':<20} {'LUT4':>6} {'FF':>6} {'BRAM':>12} {'SPRAM':>10} {'DSP':>4} "
             f"{'clock':>12} {'lanes':>5}  programmer"]
    for r in rows:
        bram = f"{r['bram_blocks']}x {r['bram_kbit'] // max(r['bram_blocks'], 1)}k"
        spram = f"{r['spram_blocks']}x {r['spram_kbit'] // r['spram_blocks']}k" if r["spram_blocks"] else "-"
        lines.append(f"{r['name']:<16} {r['device']:<20} {r['luts']:>6} {r['ffs']:>6} {bram:>12} {spram:>10} "
                     f"{r['dsps']:>4} {r['clock_mhz']:>8g} MHz {r['default_lanes']:>5}  {r['programmer']}")
    lines.append("")
    for r in rows:
        lines.append(f"{r['name']}: {r['title']}; {r['oscillator_mhz']:g} MHz oscillator -> PLL "
                     f"{r['clock_mhz']:g} MHz; host link UART: {r['uart']}; LEDs: {r['leds']}"
                     + (f"; {r['notes']}" if r["notes"] else ""))
    return "\n".join(lines)


def run(args) -> int:
    from ..boards.targets import BOARDS
    emit(args, {"boards": [b.summary() for b in BOARDS.values()]}, format_boards)
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "boards", help="list the supported boards, their devices and resources",
        description="List the boards `spikegate build` and `spikegate flash` support: FPGA device, "
                    "logic, block RAM, SPRAM and DSP resources, the documented clock, the programmer.")
    add_json_argument(p)
    p.set_defaults(func=run)
