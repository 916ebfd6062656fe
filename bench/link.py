"""Host-link throughput: samples/s of the whole link at the configured clock and baud rate, and
its ratio to the bound set by the bytes each sample must cross the UART.

The board is the Verilator simulation of the HostLink top (UART included) behind a TCP socket
(spikegate.sim.link_bridge), driven by the real host driver. Time is the board's own: its
free-running cycle counter (STATUS uptime) at the configured clock. The bridge freezes simulated
time while the board is idle and the host silent, so the host's turnaround costs 0 to 2 byte times
per sample (a real host over USB adds more); everything else - frames on the line at the baud
rate, the network's cycles, the answer - is what the board does.

    python bench/link.py [--samples 20] [--board icebreaker | --clock-mhz MHZ] [--baud 115200] [--lanes 4]
                         [--net FILE]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np


def main(argv=None) -> int:
    from spikegate.datasets import encode_for, load, load_network
    from spikegate.host import Board
    from spikegate.model import link as proto
    from spikegate.model.uart import baud_divisor
    from spikegate.sim.link_bridge import SimulatedBoard

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--samples", type=int, default=20)
    ap.add_argument("--board", default="icebreaker",
                    help="take the clock from this board's documented default (see `spikegate boards`)")
    ap.add_argument("--clock-mhz", type=float, default=None, help="board clock (overrides --board)")
    ap.add_argument("--baud", type=int, default=115_200)
    ap.add_argument("--lanes", type=int, default=4)
    ap.add_argument("--net", default=None, help="network file (default: the built-in digits network)")
    a = ap.parse_args(argv)
    if a.clock_mhz is None:
        from spikegate.boards.targets import get_board
        a.clock_mhz = get_board(a.board).clock_mhz
    clk = int(round(a.clock_mhz * 1e6))
    div = baud_divisor(clk, a.baud)
    net = load_network(a.net)
    x, _ = load("digits", "test")
    spikes = encode_for(net, x[:a.samples])

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "net.json"
        net.save(path)
        print(f"building and starting the simulated board ({clk / 1e6:g} MHz, {a.baud} baud, "
              f"{div} cycles per bit, lanes {a.lanes}) ...", file=sys.stderr)
        with SimulatedBoard(path, lanes=a.lanes, clk_freq=clk, baud=a.baud) as sb, Board(sb.url, timeout=10) as b:
            b.ensure_network(net)
            frames = [b.load_frames(s) for s in spikes]
            t0 = b.status().uptime
            cycles = []
            for s in spikes:
                cycles.append(b.run_sample(s)[2])
            t1 = b.status().uptime
            geo = b.geo

    # Between the two uptime snapshots: the first STATUS answer, the samples, the second STATUS
    # request. Take the status frames' own line time out.
    status_bytes = (8 + proto.STATUS_LEN) + 7
    byte_cycles = 10 * div
    sample_cycles = (t1 - t0) - status_bytes * byte_cycles
    n = len(spikes)
    req = sum(sum(7 + len(p) for p in f) for f in frames)
    resp = sum(8 + 4 + geo.output_bytes for f in frames) + sum(8 * (len(f) - 1) for f in frames)
    measured = n / (sample_cycles / clk)
    bound = (a.baud / 10) * n / (req + resp)
    line_cycles = (req + resp) * byte_cycles
    print(f"network {list(net.shape)}, T = {net.timesteps}, {n} digits test samples, "
          f"{clk / 1e6:g} MHz, {a.baud} baud")
    print(f"bytes per sample on the UART : {req / n:.1f} request + {resp / n:.1f} response "
          f"= {(req + resp) / n:.1f} ({(req + resp) / n * 10 / a.baud * 1e3:.3f} ms of line time)")
    print(f"network cycles per sample    : {np.mean(cycles):.1f} ({np.mean(cycles) / clk * 1e6:.1f} us)")
    print(f"board time per sample        : {sample_cycles / n:.0f} cycles = {sample_cycles / n / clk * 1e3:.3f} ms "
          f"(line {line_cycles / n:.0f}, compute and turnaround {(sample_cycles - line_cycles) / n:.0f})")
    print(f"link throughput              : {measured:.1f} samples/s")
    print(f"UART bound                   : {bound:.1f} samples/s (baud / 10 / bytes per sample)")
    print(f"ratio measured / bound       : {measured / bound:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
