"""``spikegate build``: synthesise, place and route and pack a bitstream for a board, with a report."""
from __future__ import annotations

import argparse
import sys

from ..boards.cache import BUILD_TIMEOUT_S
from ..boards.fastest import DEFAULT_ATTEMPTS, MAX_ATTEMPTS, MIN_ATTEMPTS
from ..boards.toolchain import ROUTERS
from ..boards.lanes import MIN_GAIN
from ..checks import check_float, check_input_dir, check_int, check_output_dir
from ..errors import UserError
from ..extras import require_extra
from ..model.hardware import MAX_EVENTS
from ..model.protocol import DEFAULT_MAX_PAYLOAD, MAX_PAYLOAD, MIN_PAYLOAD
from .run import MAX_BAUD, MIN_BAUD
from ._common import (add_board_argument, add_json_argument, add_lanes_argument, add_net_argument,
                      add_registered_reads_argument, add_schedule_argument, emit, parse_lanes)

# No supported FPGA runs the core faster than this; the PLL check names the board's real limit.
MAX_CLOCK_MHZ = 1000.0
# The longest --timeout a build accepts: a day.
MAX_TIMEOUT_S = 86_400.0


def _plot(args, report: dict) -> None:
    if args.plot is not None:
        from ..plots_hw import save_utilisation
        from ..progress import note
        note(f"build: wrote {save_utilisation(report, args.plot)}")


def _clock(text: str | None):
    """--clock: None (the board's documented clock), "max" (the clock search) or MHz."""
    if text is None or text == "max":
        return text
    try:
        mhz = float(text)
    except ValueError:
        raise UserError(f"--clock = {text!r} is not valid; valid: a frequency in MHz (0 < --clock <= "
                        f"{MAX_CLOCK_MHZ:g}) or max") from None
    return check_float("--clock", mhz, 0, MAX_CLOCK_MHZ, lo_open=True)


def run(args) -> int:
    clock = _clock(args.clock)
    if args.placements is not None and clock != "max":
        raise UserError(f"--placements = {args.placements} does not apply to a build at one clock; valid: "
                        "--placements with --clock max")
    check_float("--timeout", args.timeout, 0, MAX_TIMEOUT_S, lo_open=True)
    check_output_dir("--out", args.out)
    check_int("--max-events", args.max_events, 1, MAX_EVENTS)
    if args.data_dir is not None:
        check_input_dir("--data-dir", args.data_dir)
    if args.plot is not None:
        from ..plots import check_plot_file
        check_plot_file(args.plot)
    require_extra("hw")
    from ..boards.build import MAX_SAMPLES, MAX_SEED, TimingError, build, format_report
    check_int("--samples", args.samples, 1, MAX_SAMPLES)
    check_int("--seed", args.seed, 0, MAX_SEED)
    check_int("--baud", args.baud, MIN_BAUD, MAX_BAUD)
    check_int("--max-payload", args.max_payload, MIN_PAYLOAD, MAX_PAYLOAD)
    check_int("--placements", args.placements, MIN_ATTEMPTS, MAX_ATTEMPTS)
    from ..progress import note
    options = dict(lanes=parse_lanes(args.lanes, auto=True), out_dir=args.out, max_events=args.max_events,
                   samples=args.samples, data_dir=args.data_dir, force=args.force, seed=args.seed, router=args.router,
                   baud=args.baud,
                   encoder=args.encoder, schedule=args.schedule, max_payload=args.max_payload,
                   registered_reads=args.registered_reads,
                   stream=False if args.no_stream else None, timeout=args.timeout, progress=note)
    try:
        if clock == "max":
            from ..boards.fastest import build_fastest
            report = build_fastest(args.board, args.net, attempts=args.placements or DEFAULT_ATTEMPTS, **options)
        else:
            report = build(args.board, args.net, clock_mhz=clock, **options)
    except TimingError as e:
        _plot(args, e.report)
        emit(args, {"error": str(e), "report": e.report}, lambda d: format_report(d["report"]))
        print(f"spikegate build: error: {e}", file=sys.stderr)
        return 1
    _plot(args, report)
    emit(args, report, format_report)
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "build", help="build a bitstream and a utilisation/timing/throughput report for a board",
        description="Run Yosys, nextpnr and the bitstream packer (the YoWASP tools from PyPI unless "
                    "YOSYS, NEXTPNR_ICE40, ICEPACK, NEXTPNR_ECP5, ECPPACK, ... name other "
                    "executables) on the board top: PLL clock, the network, the UART host link and "
                    "status LEDs. Writes OUT/BOARD.bin|.bit and OUT/BOARD-report.json. An unchanged "
                    "design is served from the build cache (SPIKEGATE_CACHE, default "
                    "~/.cache/spikegate). A design that misses timing fails with exit status 1. "
                    "On the iCEBreaker, weight arrays the block RAM cannot hold go to SPRAM, which "
                    "starts empty: `spikegate run --net FILE` loads them over the link. Needs the 'hw' extra.")
    add_board_argument(p)
    add_net_argument(p)
    add_lanes_argument(p, None, "the board's, see `spikegate boards`: 2 on the iCEBreaker, 4 elsewhere; auto: each "
                                f"layer's doubled while that saves >= {MIN_GAIN * 100:.0f}%% of the cycles and the "
                                "design fits")
    p.add_argument("--clock", default=None, metavar="MHZ|max",
                   help="clock frequency in MHz made by the PLL (default: the board's documented clock, a safe "
                        "one for every network kind); max: the fastest PLL clock at which this design meets "
                        "timing, found by placing it again at each placement's fmax (2 to --placements "
                        "place-and-route runs, each cached; the report lists them)")
    p.add_argument("--placements", type=int, default=None, metavar="N",
                   help=f"with --clock max: at most N place-and-route runs, {MIN_ATTEMPTS} to {MAX_ATTEMPTS} "
                        f"(default {DEFAULT_ATTEMPTS}); each one takes minutes, on a large device an hour")
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
    p.add_argument("--router", choices=ROUTERS, default=None,
                   help="nextpnr's routing algorithm (default: nextpnr's, router1 on the iCE40 and ECP5); "
                        "router2 routes some large ECP5 designs on which router1 stalls, "
                        "e.g. 784-128-10 at --lanes 64,4 on the ULX3S (docs/timing.md)")
    p.add_argument("--baud", type=int, default=None, metavar="N",
                   help="host link baud rate (default: the board's fastest reliable rate, see `spikegate "
                        "boards`; refused if the board's USB-serial bridge or the clock cannot run it)")
    p.add_argument("--max-payload", type=int, default=DEFAULT_MAX_PAYLOAD, metavar="BYTES",
                   help=f"host link request payload buffer in bytes, {MIN_PAYLOAD} to {MAX_PAYLOAD} (default "
                        f"{DEFAULT_MAX_PAYLOAD}); an ENCODE of one sample takes 5 + inputs bytes, so a 784-input "
                        "network needs at least 789 (1024 costs two more iCE40 block RAMs when streaming, one without; "
                        "an ECP5 DP16KD holds it either way; docs/protocol.md)")
    p.add_argument("--encoder", action=argparse.BooleanOptionalAction, default=None,
                   help="with or without the on-chip input encoder (the ENCODE and BATCH commands) in the host "
                        "link; without it, about 450 iCE40 logic cells and a block RAM less, for a network that "
                        "fits only without it, and the host sends spikes (`spikegate run` without --on-chip; "
                        "`spikegate learn --board` always does). Default: with it, except for a plastic network")
    p.add_argument("--no-stream", action="store_true",
                   help="a host link that takes one request at a time (default: streaming where its two block "
                        "RAMs fit: the next frame is received while one runs, answers leave while the next runs; "
                        "about 125 iCE40 logic cells more)")
    add_schedule_argument(p)
    add_registered_reads_argument(p, board_default=True)
    p.add_argument("--timeout", type=float, default=None, metavar="S",
                   help=f"seconds Yosys, nextpnr and the packer get together (default {BUILD_TIMEOUT_S:g}); past it "
                        "the build is stopped and fails, and nothing is cached")
    p.add_argument("--force", action="store_true", help="rebuild even if the cache has this design")
    p.add_argument("--plot", metavar="FILE", default=None,
                   help="also draw the report's utilisation and fmax vs clock (.png, or .svg); needs the 'plot' extra")
    add_json_argument(p)
    p.set_defaults(func=run)
