"""Host-link throughput and weight upload at a board's default clock and baud rate, through the real
host driver and socket to the simulated board, beside the bounds the UART and the core set.

The board is the Verilator simulation of the HostLink top (UART included) behind a TCP socket
(spikegate.sim.link_bridge), driven by the real host driver (spikegate.host.Board). Time is the
board's own: its free-running cycle counter (STATUS uptime) at the board's clock. The bridge
freezes simulated time while the board is idle and the host silent, so the host's turnaround costs
0 to 2 byte times per request; a real host over USB adds its latency per request (an FTDI bridge
in low-latency mode about 1 ms, which the driver asks for; 16 ms with the default latency timer).

For each network (the built-in digits 64-64-10, and an MNIST-sized 784-128-10 with random 8-bit
weights on rate-coded MNIST-like inputs, bench/hw_cycles.py):

- weight upload (``Board.write_network``: bulk WRITEs filling 512-byte frames, CHECKSUM,
  SET_NET_ID, identify): frames, bytes, line time, board time; and per board at its own default
  clock and baud rate: the line time plus the engine cycles measured here;
- samples/s end to end, for each way of sending the samples: LOAD frames one request at a time,
  LOAD frames pipelined (a streaming board takes the next frame while it runs one), and, for digits,
  the levels as ENCODE frames and as BATCH frames (as many samples a frame as fit), pipelined; with
  the link bound (baud / 10 / bytes per sample: both directions added when one request is on the
  line at a time, the busier direction when pipelined, the UART being full duplex) and the core
  bound (clock / (cycles per sample + the on-chip encoder's cycles)).

    python bench/link.py [--board icebreaker] [--baud N] [--clock-mhz MHZ] [--lanes P]
                         [--samples 20] [--nets digits,mnist] [--no-stream] [--json]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

STATUS_REQUEST = 7  # sync, header, CRC of the STATUS request the second uptime snapshot needs


def _networks(names, samples):
    """(title, network, spikes [N, T, n_in], levels [N, n_in] or None: the on-chip encoder's input)."""
    from spikegate.datasets import encode_for, load, load_network
    from spikegate.model.encode import quantise
    out = []
    for name in names:
        if name == "digits":
            net = load_network(None)
            x, _ = load("digits", "test")
            out.append(("digits 64-64-10", net, encode_for(net, x[:samples]), quantise(x[:samples])))
        elif name == "mnist":
            sys.path.insert(0, str(Path(__file__).parent))
            from hw_cycles import mnist_sized_network
            net, spikes = mnist_sized_network()
            out.append(("MNIST-sized 784-128-10", net, spikes[:samples], None))
        else:
            raise SystemExit(f"--nets: {name!r} is not valid; valid: digits, mnist")
    return out


def _uptime_span(b, action, byte_cycles):
    """Board cycles ``action(b)`` takes, between two STATUS snapshots (their own line time out),
    and the bytes it sent and received."""
    from spikegate.model.protocol import STATUS_LEN
    t0 = b.status().uptime
    s0, r0 = b.bytes_sent, b.bytes_received
    result = action(b)
    sent, received = b.bytes_sent - s0, b.bytes_received - r0
    t1 = b.status().uptime
    status_bytes = (8 + STATUS_LEN) + STATUS_REQUEST
    return (t1 - t0) - status_bytes * byte_cycles, sent, received, result


def _modes(b, net, spikes, levels):
    """(name, pipelined, encoder cycles per sample, action) of every way to send the samples: LOADs
    one request at a time (the board before streaming) and pipelined; with levels, ENCODE and
    BATCH (as many samples a frame as fit), pipelined on a streaming board."""
    from spikegate.model.encode import InputEncoder
    piped = b.identity.stream
    how = ", pipelined" if piped else ", one request at a time"
    modes = [("LOAD, one request at a time", False, 0, lambda b: [b.run_sample(s) for s in spikes])]
    if piped:
        modes.append(("LOAD, pipelined", True, 0, lambda b: b.run_samples(spikes)))
    if levels is not None:
        enc = InputEncoder(net.n_inputs, net.timesteps).cycles
        k = b.batch_limit()
        modes.append(("ENCODE" + how, piped, enc, lambda b: b.run_levels_many(levels, net.encoding)))
        if k > 1:
            modes.append((f"BATCH of {k}" + how, piped, enc,
                          lambda b: b.run_levels_many(levels, net.encoding, batch=k)))
    return modes


def measure(title, net, spikes, levels, clk, baud, lanes, stream=True):
    from spikegate.boards.build import default_max_events
    from spikegate.host import Board
    from spikegate.model.uart import baud_divisor
    from spikegate.sim.link_bridge import SimulatedBoard
    byte_cycles = 10 * float(baud_divisor(clk, baud))
    max_events = max(default_max_events(net), int(spikes.sum(axis=(1, 2)).max()) + net.timesteps)
    n = len(spikes)
    runs = []
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "net.json"
        net.save(path)
        print(f"{title}: building and starting the simulated board ({clk / 1e6:g} MHz, {baud} baud, "
              f"{float(baud_divisor(clk, baud)):.4g} cycles per bit, lanes {lanes}) ...", file=sys.stderr)
        with SimulatedBoard(path, lanes=lanes, clk_freq=clk, baud=baud, max_events=max_events,
                            stream=stream) as sb, \
                Board(sb.url, baud=baud, timeout=30) as b:
            b.check_network(net)
            frames = len(b.write_frames(net))
            print(f"{title}: uploading the weights ({frames} WRITE frames) ...", file=sys.stderr)
            up_cycles, up_sent, up_recv, _ = _uptime_span(b, lambda b: b.write_network(net), byte_cycles)
            for name, pipelined, enc, action in _modes(b, net, spikes, levels):
                print(f"{title}: running {n} samples, {name} ...", file=sys.stderr)
                s_cycles, s_sent, s_recv, got = _uptime_span(b, action, byte_cycles)
                cycles = float(np.mean([g[2] for g in got]))
                line = max(s_sent, s_recv) if pipelined else s_sent + s_recv
                runs.append({"mode": name, "pipelined": pipelined, "bytes_sent_per_sample": s_sent / n,
                             "bytes_received_per_sample": s_recv / n, "cycles_per_sample": cycles,
                             "encoder_cycles_per_sample": enc, "samples_per_s": n / (s_cycles / clk),
                             "link_bound": baud / 10 * n / line, "core_bound": clk / (cycles + enc)})
    up_line = (up_sent + up_recv) * byte_cycles
    return {
        "network": title, "shape": list(net.shape), "clock_hz": clk, "baud": baud, "lanes": lanes,
        "stream": stream, "upload": {"write_frames": frames, "bytes_sent": up_sent, "bytes_received": up_recv,
                   "line_s": up_line / clk, "board_s": up_cycles / clk,
                   "engine_cycles": up_cycles - up_line},
        "samples": n, "runs": runs,
    }


def per_board(r):
    """Upload time on every board at its default clock and baud: the same bytes on the line, the
    same engine cycles (they do not depend on the clock), plus 1 ms of USB turnaround a request."""
    from spikegate.boards.targets import BOARDS
    u = r["upload"]
    requests = u["write_frames"] + 4  # + CHECKSUM, SET_NET_ID, identify and the first identify
    rows = []
    for b in BOARDS.values():
        line = (u["bytes_sent"] + u["bytes_received"]) * 10 / b.baud
        engine = u["engine_cycles"] / (b.clock_mhz * 1e6)
        rows.append({"board": b.name, "clock_mhz": b.clock_mhz, "baud": b.baud, "line_s": line,
                     "board_s": line + engine, "with_usb_1ms_s": line + engine + requests * 1e-3})
    return rows


def main(argv=None) -> int:
    from spikegate.boards.targets import get_board
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--board", default="icebreaker", help="clock, baud rate and lanes from this board's defaults")
    ap.add_argument("--clock-mhz", type=float, default=None, help="board clock (default: the board's)")
    ap.add_argument("--baud", type=int, default=None, help="baud rate (default: the board's)")
    ap.add_argument("--lanes", type=int, default=None, help="lanes (default: the board's)")
    ap.add_argument("--samples", type=int, default=20)
    ap.add_argument("--nets", default="digits,mnist", help="digits, mnist or both (default)")
    ap.add_argument("--no-stream", action="store_true", help="a board that takes one request at a time")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    board = get_board(a.board)
    clk = int(round((a.clock_mhz or board.clock_mhz) * 1e6))
    baud = a.baud or board.baud
    lanes = a.lanes or board.default_lanes
    results = []
    for title, net, spikes, levels in _networks(a.nets.split(","), a.samples):
        r = measure(title, net, spikes, levels, clk, baud, lanes, stream=not a.no_stream)
        r["upload"]["per_board"] = per_board(r)
        results.append(r)
    if a.json:
        print(json.dumps(results, indent=1))
        return 0
    for r in results:
        u = r["upload"]
        print(f"{r['network']}, {board.name} defaults: {r['clock_hz'] / 1e6:g} MHz, {r['baud']} baud, "
              f"lanes {r['lanes']}, {'streaming' if r['stream'] else 'one request at a time (--no-stream)'}")
        print(f"  weight upload     : {u['write_frames']} WRITE frames, {u['bytes_sent']} bytes sent, "
              f"{u['bytes_received']} received; line {u['line_s'] * 1e3:.1f} ms, board {u['board_s'] * 1e3:.1f} ms "
              f"(engine {u['engine_cycles']:.0f} cycles)")
        for row in u["per_board"]:
            print(f"    {row['board']:<15} {row['clock_mhz']:>7g} MHz {row['baud']:>8} baud: "
                  f"line {row['line_s'] * 1e3:7.1f} ms, board {row['board_s'] * 1e3:7.1f} ms, "
                  f"+1 ms USB per request {row['with_usb_1ms_s'] * 1e3:7.1f} ms")
        for m in r["runs"]:
            print(f"  {m['mode']:<28}: {m['samples_per_s']:7.1f} samples/s end to end; link bound "
                  f"{m['link_bound']:7.1f} ({m['bytes_sent_per_sample']:.1f} bytes out, "
                  f"{m['bytes_received_per_sample']:.1f} back per sample"
                  f"{', full duplex' if m['pipelined'] else ', half duplex'}), core bound {m['core_bound']:7.1f} "
                  f"({m['cycles_per_sample']:.0f} + {m['encoder_cycles_per_sample']} encoder cycles)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
