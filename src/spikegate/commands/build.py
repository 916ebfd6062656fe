"""``spikegate build``: synthesise, place and route and pack a bitstream for a board, with a report."""
from __future__ import annotations

import argparse
import json
import sys


def parse_lanes(text: str):
    """``4`` or a comma-separated list, one lane count per layer (``8,2``)."""
    parts = [p.strip() for p in str(text).split(",")]
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"lanes = {text!r} is not valid; valid: a power of two from 1 to 64, or one per layer "
            f"separated by commas (e.g. 8,2)") from None
    return values[0] if len(values) == 1 else values


def run(args) -> int:
    from ..boards.build import TimingError, build, format_report
    from ..progress import note
    try:
        report = build(args.board, args.net, lanes=args.lanes, clock_mhz=args.clock,
                       out_dir=args.out, max_events=args.max_events, samples=args.samples,
                       data_dir=args.data_dir, force=args.force, seed=args.seed, progress=note)
    except TimingError as e:
        if args.json:
            print(json.dumps({"error": str(e), "report": e.report}, indent=1))
        else:
            print(format_report(e.report))
        print(f"spikegate build: error: {e}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        print(format_report(report))
    return 0


def register(subparsers) -> None:
    from ..boards.targets import board_names
    p = subparsers.add_parser(
        "build", help="build a bitstream and a utilisation/timing/throughput report for a board",
        description="Run Yosys, nextpnr and the bitstream packer (the YoWASP tools from PyPI unless "
                    "YOSYS, NEXTPNR_ICE40, ICEPACK, NEXTPNR_ECP5, ECPPACK, ... name other "
                    "executables) on the board top: PLL clock, the network, the UART host link and "
                    "status LEDs. Writes OUT/BOARD.bin|.bit and OUT/BOARD-report.json. An unchanged "
                    "design is served from the build cache (SPIKEGATE_CACHE, default "
                    "~/.cache/spikegate). A design that misses timing fails with exit status 1. "
                    "On the iCEBreaker, weight arrays the block RAM cannot hold go to SPRAM, which "
                    "starts empty: `spikegate run --net FILE` loads them over the link.")
    p.add_argument("--board", required=True, metavar="NAME",
                   help=f"target board: {', '.join(board_names())}")
    p.add_argument("--net", metavar="FILE", default=None,
                   help="network file (default: the built-in digits network)")
    p.add_argument("--lanes", type=parse_lanes, default=None, metavar="P",
                   help="neurons updated in parallel: a power of two 1..64, or one per layer as "
                        "P1,P2,... (default: the board's, see `spikegate boards`: 2 on the "
                        "iCEBreaker, 4 elsewhere)")
    p.add_argument("--clock", type=float, default=None, metavar="MHZ",
                   help="clock frequency in MHz made by the PLL (default: the board's documented clock)")
    p.add_argument("--out", metavar="DIR", default=None, help="output folder (default: build/BOARD)")
    p.add_argument("--max-events", type=int, default=None, metavar="N",
                   help="input buffer words (default: enough for any sample of the network, <= 4096)")
    p.add_argument("--samples", type=int, default=None, metavar="N",
                   help="samples used to measure cycles per sample (default: the whole test split)")
    p.add_argument("--data-dir", metavar="DIR", default=None,
                   help="MNIST IDX files, for cycles per sample of a 784-input network")
    p.add_argument("--seed", type=int, default=None, metavar="N",
                   help="nextpnr placement seed (default: nextpnr's); another seed can rescue a "
                        "design that narrowly misses timing")
    p.add_argument("--force", action="store_true", help="rebuild even if the cache has this design")
    p.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    p.set_defaults(func=run)
