"""``spikegate export``: write the Verilog of a network's accelerator (NetworkCore)."""
from __future__ import annotations

from .. import datasets
from ..checks import check_int, check_output_file
from ..errors import UserError
from ..extras import require_extra
from ..model.hardware import MAX_EVENTS
from ..netinfo import DEFAULT_LANES, DEFAULT_MAX_EVENTS
from ..progress import note
from ._common import (add_json_argument, add_lanes_argument, add_net_argument, add_registered_reads_argument,
                      add_schedule_argument, emit,
                      parse_lanes)


def parse_weight_ram(text: str):
    parts = [p.strip() for p in str(text).split(",")]
    return parts[0] if len(parts) == 1 else parts


def register(subparsers) -> None:
    p = subparsers.add_parser("export", help="write the accelerator's Verilog for a network",
                              description="Generate the NetworkCore gateware for a network and write it as "
                                          "Verilog. Ports: docs/architecture.md and the header of the file.")
    add_net_argument(p)
    add_lanes_argument(p, str(DEFAULT_LANES), str(DEFAULT_LANES))
    p.add_argument("--max-events", metavar="N", type=int, default=DEFAULT_MAX_EVENTS,
                   help=f"input buffer words per sample, end-of-step words included (default: {DEFAULT_MAX_EVENTS})")
    p.add_argument("--trace-depth", metavar="N", type=int, default=0,
                   help="spike-word trace memory depth, 0 for none (default: 0)")
    p.add_argument("--memory-budget", metavar="BITS", type=int, default=None,
                   help="refuse configurations needing more memory bits than this (default: 4 Mibit)")
    p.add_argument("--weight-ram", default="block", metavar="KIND",
                   help="where weights live: block (block RAM, baked in) or spram (iCE40 UltraPlus SPRAM, "
                        "no initial contents: the host loads them through cfg); one value or one per layer "
                        "as K0,K1,... (default: block)")
    add_schedule_argument(p)
    add_registered_reads_argument(p)
    p.add_argument("--name", default="spikegate_top", help="Verilog module name (default: spikegate_top)")
    p.add_argument("-o", "--output", metavar="FILE", required=True, help="Verilog file to write")
    add_json_argument(p)
    p.set_defaults(func=run)


def run(args) -> int:
    check_output_file("-o/--output", args.output)
    check_int("--max-events", args.max_events, 1, MAX_EVENTS)
    check_int("--trace-depth", args.trace_depth, 0, MAX_EVENTS)
    check_int("--memory-budget", args.memory_budget, 1)
    if not args.name.isidentifier() or not args.name.isascii():
        raise UserError(f"--name = {args.name!r} is not valid; valid: a Verilog identifier (letters, digits "
                        "and _, not starting with a digit)")
    require_extra("hw", ["amaranth"])  # the Verilog only; no board files
    from ..hdl.export import export_verilog
    from ..model.hardware import DEFAULT_MEMORY_BUDGET, HardwareConfig

    net = datasets.load_network(args.net)
    lanes = parse_lanes(args.lanes)
    budget = DEFAULT_MEMORY_BUDGET if args.memory_budget is None else args.memory_budget
    note(f"export: generating NetworkCore for {'-'.join(map(str, net.shape))} with lanes {lanes}")
    hw = HardwareConfig(lanes=lanes, max_events=args.max_events, trace_depth=args.trace_depth,
                        memory_budget=budget, weight_ram=parse_weight_ram(args.weight_ram), schedule=args.schedule,
                        registered_reads=args.registered_reads)
    summary = export_verilog(net, args.output, hw, name=args.name)
    emit(args, summary, format_summary, compact=True)
    return 0


def format_summary(summary: dict) -> str:
    lines = [f"wrote {summary['output']}: module {summary['module']}, lanes {summary['lanes']}, "
             f"{summary['memory_bits_total']} memory bits",
             f"cycles per sample ({summary['schedule']} schedule"
             f"{', registered reads' if summary['registered_reads'] else ''}) = {summary['cycle_formula']}"]
    if summary["weights_loaded_by_host"]:
        lines.append(f"weights of layer(s) {summary['weights_loaded_by_host']} are in SPRAM "
                     f"({summary['spram_tiles']} tiles) and start at zero: load them through cfg "
                     "(model.core.weight_cfg_words)")
    return "\n".join(lines)
