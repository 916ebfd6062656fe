"""``spikegate export``: write the Verilog of a network's accelerator (NetworkCore)."""
from __future__ import annotations

import json

from .. import datasets
from ..progress import note


def parse_lanes(text: str):
    """``4`` -> 4; ``4,2`` -> [4, 2] (one per layer)."""
    parts = [p.strip() for p in str(text).split(",")]
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise ValueError(f"--lanes = {text!r} is not valid; valid: a power of two from 1 to 64, or a "
                         "comma-separated list of them, one per layer") from None
    return values[0] if len(values) == 1 else values


def parse_weight_ram(text: str):
    parts = [p.strip() for p in str(text).split(",")]
    return parts[0] if len(parts) == 1 else parts


def register(subparsers) -> None:
    p = subparsers.add_parser("export", help="write the accelerator's Verilog for a network",
                              description="Generate the NetworkCore gateware for a network and write it as "
                                          "Verilog. Ports: docs/architecture.md and the header of the file.")
    p.add_argument("--net", metavar="FILE", default=None,
                   help="network file (default: the built-in digits network)")
    p.add_argument("--lanes", metavar="P", default="4",
                   help="neurons updated in parallel: a power of two 1..64, or one per layer as P0,P1,... "
                        "(default: 4)")
    p.add_argument("--max-events", metavar="N", type=int, default=4096,
                   help="input buffer words per sample, end-of-step words included (default: 4096)")
    p.add_argument("--trace-depth", metavar="N", type=int, default=0,
                   help="spike-word trace memory depth, 0 for none (default: 0)")
    p.add_argument("--memory-budget", metavar="BITS", type=int, default=None,
                   help="refuse configurations needing more memory bits than this (default: 4 Mibit)")
    p.add_argument("--weight-ram", default="block", metavar="KIND",
                   help="where weights live: block (block RAM, baked in) or spram (iCE40 UltraPlus SPRAM, "
                        "no initial contents: the host loads them through cfg); one value or one per layer "
                        "as K0,K1,... (default: block)")
    p.add_argument("--name", default="spikegate_top", help="Verilog module name (default: spikegate_top)")
    p.add_argument("-o", "--output", metavar="FILE", required=True, help="Verilog file to write")
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..hdl.export import export_verilog
    from ..model.hardware import DEFAULT_MEMORY_BUDGET, HardwareConfig

    net = datasets.load_network(args.net)
    lanes = parse_lanes(args.lanes)
    budget = DEFAULT_MEMORY_BUDGET if args.memory_budget is None else args.memory_budget
    note(f"export: generating NetworkCore for {'-'.join(map(str, net.shape))} with lanes {lanes}")
    hw = HardwareConfig(lanes=lanes, max_events=args.max_events, trace_depth=args.trace_depth,
                        memory_budget=budget, weight_ram=parse_weight_ram(args.weight_ram))
    summary = export_verilog(net, args.output, hw, name=args.name)
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"wrote {summary['output']}: module {summary['module']}, lanes {summary['lanes']}, "
              f"{summary['memory_bits_total']} memory bits")
        print(f"cycles per sample = {summary['cycle_formula']}")
        if summary["weights_loaded_by_host"]:
            print(f"weights of layer(s) {summary['weights_loaded_by_host']} are in SPRAM "
                  f"({summary['spram_tiles']} tiles) and start at zero: load them through cfg "
                  "(model.core.weight_cfg_words)")
    return 0
