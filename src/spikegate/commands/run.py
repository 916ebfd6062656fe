"""``spikegate run``: inference on a flashed (or simulated) board over its UART link."""
from __future__ import annotations

import sys

from .. import datasets
from ..board_run import BoardRun, check_board_name, run_on_board
from ..progress import progress
from ..checks import check_float, check_int
from ._common import (BUILTIN_NET, check_data_arguments, add_board_argument, add_data_arguments, add_json_argument, add_net_argument,
                      emit)

# Serial ports run from 300 baud to a few Mbaud; seconds of silence and resends beyond these
# limits only turn a dead link into a wait of hours.
MIN_BAUD, MAX_BAUD = 300, 12_000_000
MAX_TIMEOUT = 3600.0
MAX_RETRIES = 100


def _registered(stages: int) -> str:
    return f" (block RAM reads registered: {'a cycle' if stages == 1 else f'{stages} cycles'} more per layer step)"


def format_run(r: BoardRun) -> str:
    n = r.samples
    lines = [
        f"board {r.board} on {r.port}: {n} {r.data} {r.split} samples"
        f"{' (weights loaded over the link)' if r.weights_loaded else ''}",
        f"  accuracy        {r.accuracy:.4f} (model {r.model_accuracy:.4f})",
        f"  bit-exact       {r.bit_exact} of {n} samples (counts and final membranes)",
        f"  cycles          {r.cycles_match} of {n} equal the cycle formula; {r.cycles_per_sample:.1f} per sample"
        f"{_registered(r.read_stages) if r.registered_reads else ''}",
        f"  latency         {r.latency_ms_mean:.2f} ms mean, {r.latency_ms_median:.2f} ms median per sample on the link",
        f"  throughput      {r.samples_per_s:.2f} samples/s ({r.bytes_sent} bytes sent, {r.bytes_received} received"
        f"{'; spikes made on the chip' if r.on_chip else ''}{f'; {r.batch} samples a frame' if r.batch > 1 else ''})",
        f"  bounds          link {r.link_bound_per_s:.1f} samples/s (these bytes at the baud rate, no pauses"
        f"{'; streaming board, requests pipelined: the busier direction' if r.stream else ''}), "
        f"core {r.core_bound_per_s:.1f} samples/s (runs back to back at the board's clock)",
    ]
    return "\n".join(lines)


def run(args) -> int:
    check_data_arguments(args)
    check_int("--baud", args.baud, MIN_BAUD, MAX_BAUD)
    check_float("--timeout", args.timeout, 0, MAX_TIMEOUT, lo_open=True)
    check_int("--retries", args.retries, 0, MAX_RETRIES)
    check_int("--batch", args.batch, 1, 0xFFFF)
    from ..host import default_baud
    baud = args.baud if args.baud is not None else default_baud(check_board_name(args.board))
    net = datasets.load_network(args.net)
    r = run_on_board(net, args.port, board=args.board, net_name=args.net or BUILTIN_NET, data=args.data,
                     split=args.split, data_dir=args.data_dir, samples=args.samples, seed=args.seed,
                     baud=baud, timeout=args.timeout, retries=args.retries, load=not args.no_load,
                     check=args.check, on_chip=args.on_chip, batch=args.batch, progress=progress)
    emit(args, r, format_run, compact=True)
    if r.first_mismatch and not args.json:
        m = r.first_mismatch
        print(f"  first mismatch: sample {m['sample']}: counts {m['board_counts']} vs model "
              f"{m['expected_counts']}, membranes {m['board_membranes']} vs model {m['expected_membranes']}",
              file=sys.stderr)
    return 0 if r.ok else 1


def register(subparsers):
    p = subparsers.add_parser(
        "run", help="run a data set on a board over its UART link and check it against the model",
        description="Check the board's identity, load the network's weights over the link if the board holds "
                    "others (same structure only), stream the samples and report accuracy, bit-exact agreement "
                    "with the model, latency and samples/s measured on the link.")
    add_board_argument(p, ", or 'sim' for a simulated board")
    p.add_argument("--port", required=True,
                   help="serial port or pyserial URL: /dev/ttyUSB1, COM3, socket://127.0.0.1:PORT, loop://")
    add_net_argument(p)
    add_data_arguments(p)
    p.add_argument("--baud", type=int, default=None,
                   help="UART baud rate the bitstream was built with (default: the board's, see `spikegate "
                        "boards`: 3000000 on the iCEBreaker, ULX3S and Tang Nano 9K, 921600 on the OrangeCrab)")
    p.add_argument("--no-load", action="store_true",
                   help="never write weights: fail if the board holds a different network")
    p.add_argument("--check", action="store_true",
                   help="verify the board's weights, biases and thresholds by CHECKSUM even if it claims to hold the network")
    p.add_argument("--on-chip", action="store_true",
                   help="send each sample's input levels (a byte per input) and let the board make the spikes of the "
                        "network's encoding (rate, latency or bernoulli) instead of sending every spike")
    p.add_argument("--batch", type=int, default=1,
                   help="with --on-chip: samples per frame (BATCH command, one answer block per sample; at most what "
                        "one frame holds, e.g. 7 for the digits network's 64 inputs in 512 bytes)")
    p.add_argument("--timeout", type=float, default=2.0, help="seconds of silence before a request is retried")
    p.add_argument("--retries", type=int, default=3, help="resends of a request without a valid answer")
    add_json_argument(p)
    p.set_defaults(func=run)
