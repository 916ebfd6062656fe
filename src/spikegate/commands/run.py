"""``spikegate run``: inference on a flashed (or simulated) board over its UART link."""
from __future__ import annotations

import json
import statistics
import sys
import time

import numpy as np


def register(subparsers):
    p = subparsers.add_parser(
        "run", help="run a data set on a board over its UART link and check it against the model",
        description="Check the board's identity, load the network's weights over the link if the board holds "
                    "others (same structure only), stream the samples and report accuracy, bit-exact agreement "
                    "with the model, latency and samples/s measured on the link.")
    p.add_argument("--board", required=True,
                   help="board name (see `spikegate boards`), or 'sim' for a simulated board")
    p.add_argument("--port", required=True,
                   help="serial port or pyserial URL: /dev/ttyUSB1, COM3, socket://127.0.0.1:PORT, loop://")
    p.add_argument("--net", default=None, help="network file (default: the built-in digits network)")
    p.add_argument("--data", default="digits", choices=["digits", "mnist"], help="data set (test split)")
    p.add_argument("--data-dir", default=None, help="folder with the MNIST IDX files (for --data mnist)")
    p.add_argument("--samples", type=int, default=None, help="number of test samples (default: all)")
    p.add_argument("--baud", type=int, default=115_200, help="UART baud rate the bitstream was built with")
    p.add_argument("--no-load", action="store_true",
                   help="never write weights: fail if the board holds a different network")
    p.add_argument("--timeout", type=float, default=2.0, help="seconds of silence before a request is retried")
    p.add_argument("--retries", type=int, default=3, help="resends of a request without a valid answer")
    p.add_argument("--seed", type=int, default=0, help="seed of the poisson encoder")
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    p.set_defaults(func=run)


def _check_board(name: str) -> str:
    if name == "sim":
        return name
    from ..boards.targets import get_board
    return get_board(name).name


def run(args) -> int:
    from ..datasets import encode_for, load, load_network
    from ..host import Board
    from ..model import classify, simulate
    from ..model.core import HardwareConfig, NetworkCore
    from ..progress import note, progress

    board_name = _check_board(args.board)
    net = load_network(args.net)
    net_name = args.net or "the built-in digits network"
    x, y = load(args.data, "test", args.data_dir)
    n = len(x) if args.samples is None else args.samples
    if isinstance(n, bool) or n < 1 or n > len(x):
        raise ValueError(f"--samples = {args.samples} is not valid; valid: 1 to {len(x)} "
                         f"(the {args.data} test split)")
    x, y = x[:n], y[:n]
    if x.shape[1] != net.n_inputs:
        raise ValueError(f"--data {args.data} has {x.shape[1]} inputs per sample but {net_name} has "
                         f"{net.n_inputs} inputs; valid: a network with {x.shape[1]} inputs")
    spikes = encode_for(net, x, seed=args.seed)
    expected = simulate(net, spikes)
    model_pred = classify(net, expected)

    with Board(args.port, baud=args.baud, timeout=args.timeout, retries=args.retries) as board:
        ident = board.identify()
        note(f"board on {args.port}: protocol {ident.version}, shape {list(ident.shape)}, lanes "
             f"{list(ident.lanes)}, {ident.clk_freq / 1e6:g} MHz, {ident.baud} baud")
        loaded = False
        if not board.check_network(net, name=net_name):
            if args.no_load:
                board.ensure_network(net, load=False, name=net_name)  # raises NetworkMismatch
            with progress(len(board.write_frames(net)), "loading weights", unit="frames") as pr:
                board.write_network(net, progress=pr.update)
            loaded = True
        twin = NetworkCore(net, HardwareConfig(lanes=list(ident.lanes), max_events=ident.max_events))
        cycles_twin = [twin.run(s).cycles for s in spikes]

        counts = np.zeros((n, net.n_outputs), np.int64)
        membranes = np.zeros((n, net.n_outputs), np.int64)
        cycles = np.zeros(n, np.int64)
        latency = []
        sent0, recv0 = board.bytes_sent, board.bytes_received
        t_start = time.perf_counter()
        with progress(n, "running samples", unit="samples") as pr:
            for i in range(n):
                t0 = time.perf_counter()
                counts[i], membranes[i], cycles[i] = board.run_sample(spikes[i])
                latency.append(time.perf_counter() - t0)
                pr.update()
        wall = time.perf_counter() - t_start
        sent, recv = board.bytes_sent - sent0, board.bytes_received - recv0

    exact = (counts == expected.counts).all(axis=1) & (membranes == expected.membranes[-1]).all(axis=1)
    cycles_ok = cycles == np.array(cycles_twin)
    pred = np.argmax(membranes, axis=1) if net.readout else np.argmax(counts, axis=1)
    result = {
        "board": board_name, "port": args.port, "network": net_name, "data": args.data, "samples": n,
        "weights_loaded": bool(loaded),
        "accuracy": float((pred == y).mean()), "model_accuracy": float((model_pred == y).mean()),
        "bit_exact": int(exact.sum()), "predictions_agree": int((pred == model_pred).sum()),
        "cycles_match": int(cycles_ok.sum()), "cycles_per_sample": float(cycles.mean()),
        "latency_ms_mean": 1e3 * statistics.fmean(latency), "latency_ms_median": 1e3 * statistics.median(latency),
        "samples_per_s": n / wall, "wall_seconds": wall,
        "bytes_sent": sent, "bytes_received": recv,
    }
    bad = np.flatnonzero(~exact)
    if len(bad):
        i = int(bad[0])
        result["first_mismatch"] = {
            "sample": i, "expected_counts": expected.counts[i].tolist(), "board_counts": counts[i].tolist(),
            "expected_membranes": expected.membranes[-1][i].tolist(), "board_membranes": membranes[i].tolist()}
    if args.json:
        print(json.dumps(result))
    else:
        print(f"board {board_name} on {args.port}: {n} {args.data} test samples"
              f"{' (weights loaded over the link)' if loaded else ''}")
        print(f"  accuracy        {result['accuracy']:.4f} (model {result['model_accuracy']:.4f})")
        print(f"  bit-exact       {result['bit_exact']} of {n} samples (counts and final membranes)")
        print(f"  cycles          {result['cycles_match']} of {n} equal the cycle formula; "
              f"{result['cycles_per_sample']:.1f} per sample")
        print(f"  latency         {result['latency_ms_mean']:.2f} ms mean, {result['latency_ms_median']:.2f} ms median "
              f"per sample on the link")
        print(f"  throughput      {result['samples_per_s']:.2f} samples/s ({sent} bytes sent, {recv} received)")
        if len(bad):
            m = result["first_mismatch"]
            print(f"  first mismatch: sample {m['sample']}: counts {m['board_counts']} vs model "
                  f"{m['expected_counts']}, membranes {m['board_membranes']} vs model {m['expected_membranes']}",
                  file=sys.stderr)
    return 0 if exact.all() and cycles_ok.all() else 1
