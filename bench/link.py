"""Host-link throughput and weight upload at a board's default clock and baud rate, through the real
host driver and socket to the simulated board, beside the bounds the UART and the core set.

The board is the Verilator simulation of the HostLink top (UART included) behind a TCP socket
(spikegate.sim.link_bridge), driven by the real host driver (spikegate.host.Board). Time is the
board's own: its free-running cycle counter (STATUS uptime) at the board's clock. The bridge
freezes simulated time while the board is idle and the host silent, so the host's turnaround costs
0 to 2 byte times per request; a real host over USB adds its latency per request (an FTDI bridge
in low-latency mode about 1 ms, which the driver asks for; 16 ms with the default latency timer).

For each network (the built-in digits 64-64-10 on the digits test split, and an MNIST-sized
784-128-10 with random 8-bit weights on rate-coded MNIST-like inputs, bench/hw_cycles.py), with the
samples' spikes checked to be exactly what the on-chip encoder (its twin) makes from their 8-bit
levels, and every answer checked against the model and the twin's cycles:

- weight upload (``Board.write_network``: bulk WRITEs filling 512-byte frames, CHECKSUM,
  SET_NET_ID, identify): frames, bytes, line time, board time; and per board at its own default
  clock and baud rate: the line time plus the engine cycles measured here;
- samples/s end to end, for each way of sending the samples: LOAD frames one request at a time,
  LOAD frames pipelined (a streaming board takes the next frame while it runs one), and the levels
  as ENCODE frames and as BATCH frames (as many samples a frame as fit), pipelined; with the link
  bound (baud / 10 / bytes per sample: both directions added when one request is on the line at a
  time, the busier direction when pipelined, the UART being full duplex) and the core bound
  (clock / (cycles per sample + the on-chip encoder's cycles)). A way the board cannot take is
  printed with the reason (a 784-input ENCODE frame is 789 bytes, over the 512-byte request
  buffer; BATCH needs an input buffer of T (n_in + 1) words; the driver pipelines only samples
  that are one LOAD frame).

The simulated board is built as ``spikegate build --board B`` builds it at these lanes and input
buffer (weights in SPRAM where block RAM cannot hold them), streaming unless --no-stream; the
bench prints whether that build streams by default and its block-RAM estimate.

    python bench/link.py [--board icebreaker] [--baud N] [--clock-mhz MHZ] [--lanes P]
                         [--samples 20] [--nets digits,mnist] [--no-stream] [--max-events N]
                         [--max-payload BYTES] [--json]
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
    """(title, network, spikes [N, T, n_in], levels [N, n_in], states [N]): the spikes LOAD sends and
    the levels (and bernoulli states) the on-chip encoder makes the same spikes from."""
    from spikegate.datasets import encode_for, load, load_network
    from spikegate.model.encode import bernoulli_state, quantise
    out = []
    for name in names:
        if name == "digits":
            net = load_network(None)
            x, _ = load("digits", "test")
            title, spikes, levels = "digits 64-64-10", encode_for(net, x[:samples]), quantise(x[:samples])
        elif name == "mnist":
            sys.path.insert(0, str(Path(__file__).parent))
            from hw_cycles import mnist_sized_levels, mnist_sized_network
            net, spikes = mnist_sized_network()
            title, spikes, levels = "MNIST-sized 784-128-10", spikes[:samples], mnist_sized_levels()[:samples]
        else:
            raise SystemExit(f"--nets: {name!r} is not valid; valid: digits, mnist")
        # encode_for's seed 0: sample i's generator starts from bernoulli_state(0, i)
        states = [bernoulli_state(0, i) if net.encoding == "bernoulli" else 0 for i in range(len(levels))]
        _check_levels(title, net, spikes, levels, states)
        out.append((title, net, spikes, levels, states))
    return out


def _check_levels(title, net, spikes, levels, states):
    """The LOAD spikes must be the on-chip encoder's spikes of the levels (its twin), or LOAD and
    ENCODE would run different samples."""
    from spikegate.model.encode import InputEncoder
    enc = InputEncoder(net.n_inputs, net.timesteps)
    if len(levels) != len(spikes):
        raise SystemExit(f"{title}: {len(spikes)} spike trains but {len(levels)} levels")
    for i, (s, q, st) in enumerate(zip(spikes, levels, states)):
        made = enc.spikes(q, net.encoding, st)
        if not np.array_equal(made, s):
            raise SystemExit(f"{title}: sample {i}'s LOAD spikes differ from the on-chip {net.encoding} encoder's "
                             f"spikes of its levels at {int((made != s).sum())} (step, input) pairs")


def _check_answers(title, mode, net, spikes, got, hw):
    """Every run's answer must be the model's (counts, final membranes) and the twin's cycles."""
    from spikegate.model.core import NetworkCore
    from spikegate.model.hardware import HardwareConfig
    from spikegate.model.simulate import simulate
    want = simulate(net, spikes)
    # The twin's SPRAM weights are zero, as at power-up; the board's were uploaded. Where the
    # weights live does not change a run's cycles (without learning), so the twin keeps them in block RAM.
    twin = NetworkCore(net, HardwareConfig(lanes=hw.lanes, max_events=hw.max_events,
                                           registered_reads=hw.registered_reads))
    for i, (counts, membranes, cycles) in enumerate(got):
        if not (np.array_equal(counts, want.counts[i]) and np.array_equal(membranes, want.membranes[-1][i])
                and cycles == twin.cycles(spikes[i])):
            raise SystemExit(f"{title}, {mode}: sample {i}'s answer differs from the model: counts "
                             f"{counts.tolist()} vs {want.counts[i].tolist()}, membranes {membranes.tolist()} vs "
                             f"{want.membranes[-1][i].tolist()}, cycles {cycles} vs {twin.cycles(spikes[i])}")


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


def _modes(b, net, spikes, levels, states):
    """(name, pipelined, encoder cycles per sample, action or the reason the board cannot) of every
    way to send the samples: LOADs one request at a time (the board before streaming) and
    pipelined; ENCODE and BATCH (as many samples a frame as fit), pipelined on a streaming board."""
    from spikegate.model.encode import InputEncoder
    from spikegate.model.link import (BATCH_HEADER, BATCH_RECORD, ENCODE_HEADER_LEN, batch_fits, encode_fits,
                                      layout_len)
    g = b.geo
    piped = b.identity.stream
    how = ", pipelined" if piped else ", one request at a time"
    modes = [("LOAD, one request at a time", False, 0, lambda b: [b.run_sample(s) for s in spikes])]
    frames = max(len(b.load_frames(s)) for s in spikes)
    if piped and frames > 1:
        # (Board.run_samples would send them one request at a time: a lost answer to an appending
        # LOAD cannot be resent, so only one-frame samples are pipelined.)
        modes.append(("LOAD, pipelined", True, 0, f"a sample takes up to {frames} LOAD frames of at most "
                      f"{g.max_payload} bytes, and the driver pipelines one-frame samples only"))
    elif piped:
        modes.append(("LOAD, pipelined", True, 0, lambda b: b.run_samples(spikes)))
    enc = InputEncoder(net.n_inputs, net.timesteps).cycles
    if not encode_fits(g):
        modes.append(("ENCODE" + how, piped, enc, f"its frame ({ENCODE_HEADER_LEN + g.n_in} bytes: header and {g.n_in} levels) "
                      f"exceeds max_payload = {g.max_payload}"))
    else:
        modes.append(("ENCODE" + how, piped, enc, lambda b: b.run_levels_many(levels, net.encoding, states)))
    k = b.batch_limit()
    if k > 1:
        modes.append((f"BATCH of {k}" + how, piped, enc,
                      lambda b: b.run_levels_many(levels, net.encoding, states, batch=k)))
    else:
        two = layout_len(BATCH_HEADER) + 2 * (layout_len(BATCH_RECORD) + g.n_in)
        why = ([f"a sample may need T (n_in + 1) = {g.timesteps * (g.n_in + 1)} input words, more than max_events "
                f"= {g.max_events}"] if not batch_fits(g) else []) + (
               [f"two samples are {two} bytes, more than max_payload = {g.max_payload}"] if two > g.max_payload else [])
        modes.append(("BATCH" + how, piped, enc, "; ".join(why)))
    return modes


def _board_config(board, net, spikes, lanes, max_events, stream):
    """The HardwareConfig the board's own build makes at these lanes and input buffer (weights in
    SPRAM where block RAM cannot hold them), and whether it streams by default, by its block-RAM
    estimate (boards.fit; logic cells are only known after synthesis)."""
    from spikegate.boards import fit
    from spikegate.boards.build import default_max_events
    from spikegate.model.hardware import HardwareConfig
    words = int(spikes.sum(axis=(1, 2)).max()) + net.timesteps
    if max_events is None:
        max_events = max(default_max_events(net), words)
    elif max_events < words:
        raise SystemExit(f"--max-events {max_events} is not valid here; valid: at least {words} (the samples' "
                         "largest spike count plus T end-of-step words)")
    hw = fit.choose_weight_ram(board, net, HardwareConfig(lanes=lanes, max_events=max_events))
    est = fit.estimate(board, net, hw, stream=stream)
    return hw, {"weight_ram": est["weight_ram"], "input_ram": est["input_ram"], "max_events": max_events,
                "streams_by_default": fit.choose_stream(board, net, hw),
                "bram_blocks": est["blocks"], "bram_available": est["available"]}


def measure(title, net, spikes, levels, states, board, clk, baud, lanes, stream=True, max_events=None,
            max_payload=None):
    from spikegate.host import Board
    from spikegate.model.uart import baud_divisor
    from spikegate.sim.link_bridge import SimulatedBoard
    byte_cycles = 10 * float(baud_divisor(clk, baud))
    hw, build = _board_config(board, net, spikes, lanes, max_events, stream)
    n = len(spikes)
    runs = []
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "net.json"
        net.save(path)
        print(f"{title}: building and starting the simulated board ({clk / 1e6:g} MHz, {baud} baud, "
              f"{float(baud_divisor(clk, baud)):.4g} cycles per bit, lanes {lanes}, max_events {hw.max_events}, "
              f"weight_ram {build['weight_ram']}) ...", file=sys.stderr)
        payload = {} if max_payload is None else {"max_payload": max_payload}
        with SimulatedBoard(path, lanes=lanes, clk_freq=clk, baud=baud, max_events=hw.max_events, stream=stream,
                            weight_ram=hw.weight_ram, input_ram=hw.input_ram, **payload) as sb, \
                Board(sb.url, baud=baud, timeout=30) as b:
            b.check_network(net)
            frames = len(b.write_frames(net))
            print(f"{title}: uploading the weights ({frames} WRITE frames) ...", file=sys.stderr)
            up_cycles, up_sent, up_recv, _ = _uptime_span(b, lambda b: b.write_network(net), byte_cycles)
            for name, pipelined, enc, action in _modes(b, net, spikes, levels, states):
                if isinstance(action, str):
                    runs.append({"mode": name, "unavailable": action})
                    continue
                print(f"{title}: running {n} samples, {name} ...", file=sys.stderr)
                s_cycles, s_sent, s_recv, got = _uptime_span(b, action, byte_cycles)
                _check_answers(title, name, net, spikes, got, hw)
                cycles = float(np.mean([g[2] for g in got]))
                line = max(s_sent, s_recv) if pipelined else s_sent + s_recv
                runs.append({"mode": name, "pipelined": pipelined, "bytes_sent_per_sample": s_sent / n,
                             "bytes_received_per_sample": s_recv / n, "cycles_per_sample": cycles,
                             "encoder_cycles_per_sample": enc, "samples_per_s": n / (s_cycles / clk),
                             "link_bound": baud / 10 * n / line, "core_bound": clk / (cycles + enc)})
            max_payload = b.geo.max_payload
    up_line = (up_sent + up_recv) * byte_cycles
    return {
        "network": title, "shape": list(net.shape), "clock_hz": clk, "baud": baud, "lanes": lanes,
        "stream": stream, "max_payload": max_payload, "board_build": build,
        "upload": {"write_frames": frames, "bytes_sent": up_sent, "bytes_received": up_recv,
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
    ap.add_argument("--max-events", type=int, default=None,
                    help="input buffer words (default: the build's, spikegate build --max-events)")
    ap.add_argument("--max-payload", type=int, default=None,
                    help="request buffer bytes (default: the board top's 512; no build option sets it)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    from spikegate.model.procgroup import end_groups_on_sigterm
    end_groups_on_sigterm()
    board = get_board(a.board)
    clk = int(round((a.clock_mhz or board.clock_mhz) * 1e6))
    baud = a.baud or board.baud
    lanes = a.lanes or board.default_lanes
    results = []
    for title, net, spikes, levels, states in _networks(a.nets.split(","), a.samples):
        r = measure(title, net, spikes, levels, states, board, clk, baud, lanes, stream=not a.no_stream,
                    max_events=a.max_events, max_payload=a.max_payload)
        r["upload"]["per_board"] = per_board(r)
        results.append(r)
    if a.json:
        print(json.dumps(results, indent=1))
        return 0
    for r in results:
        u = r["upload"]
        c = r["board_build"]
        print(f"{r['network']}, {board.name} defaults: {r['clock_hz'] / 1e6:g} MHz, {r['baud']} baud, "
              f"lanes {r['lanes']}, {'streaming' if r['stream'] else 'one request at a time (--no-stream)'}, "
              f"max_events {c['max_events']}, max_payload {r['max_payload']}, weight_ram {c['weight_ram']}")
        print(f"  the {board.name} build at these: block RAM {c['bram_blocks']} of {c['bram_available']} blocks "
              f"(estimate), {'streams' if c['streams_by_default'] else 'does not stream'} by default")
        print(f"  weight upload     : {u['write_frames']} WRITE frames, {u['bytes_sent']} bytes sent, "
              f"{u['bytes_received']} received; line {u['line_s'] * 1e3:.1f} ms, board {u['board_s'] * 1e3:.1f} ms "
              f"(engine {u['engine_cycles']:.0f} cycles)")
        for row in u["per_board"]:
            print(f"    {row['board']:<15} {row['clock_mhz']:>7g} MHz {row['baud']:>8} baud: "
                  f"line {row['line_s'] * 1e3:7.1f} ms, board {row['board_s'] * 1e3:7.1f} ms, "
                  f"+1 ms USB per request {row['with_usb_1ms_s'] * 1e3:7.1f} ms")
        for m in r["runs"]:
            if "unavailable" in m:
                print(f"  {m['mode']:<28}: not possible on this board: {m['unavailable']}")
                continue
            print(f"  {m['mode']:<28}: {m['samples_per_s']:7.1f} samples/s end to end; link bound "
                  f"{m['link_bound']:7.1f} ({m['bytes_sent_per_sample']:.1f} bytes out, "
                  f"{m['bytes_received_per_sample']:.1f} back per sample"
                  f"{', full duplex' if m['pipelined'] else ', half duplex'}), core bound {m['core_bound']:7.1f} "
                  f"({m['cycles_per_sample']:.0f} + {m['encoder_cycles_per_sample']} encoder cycles)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
