"""Board-free end to end: the whole HostLink top (UART, framing, command engine, NetworkCore) in
Verilator, bridged to a TCP socket, driven by the unmodified host driver and ``spikegate run``
through pyserial's socket:// URL."""
import io
import json
import os
import select
import signal
import subprocess
import sys
import time
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from spikegate import cli
from spikegate.datasets import encode_for, load, load_network
from spikegate.host import Board, ChecksumMismatch, NetworkMismatch
from spikegate.model import link as proto
from spikegate.model import simulate
from spikegate.model.link import Cmd, encode_request
from spikegate.model.protocol import CfgTarget, value_range
from spikegate.model.network import Network
from spikegate.sim.link_bridge import SimulatedBoard
from spikegate.link_fuzz import drain

LANES = 4
# A simulated UART is far slower than a real one: a 1 kB frame takes about a second of wall time
# on a busy machine, so allow much more silence than on hardware before retrying.
TIMEOUT = 20.0
SLOW = ["--timeout", str(TIMEOUT)]


@pytest.fixture(scope="module")
def net():
    return load_network(None)


@pytest.fixture(scope="module")
def board(net, tmp_path_factory):
    path = tmp_path_factory.mktemp("net") / "digits.json"
    net.save(path)
    with SimulatedBoard(path, lanes=LANES) as sb:
        yield sb


def cli_json(argv):
    out = io.StringIO()
    with redirect_stdout(out):
        status = cli.main(argv)
    return status, json.loads(out.getvalue().strip().splitlines()[-1])


def other_network(net: Network) -> Network:
    """The same structure with different weights, biases and thresholds: the readout layer's
    weight columns rotated by three classes, the hidden biases shifted down."""
    hid, last = net.layers[0], net.layers[-1]
    last = last.replace(weights=np.roll(last.weights, 3, axis=1), bias=np.roll(last.bias, 3))
    lo = hid.v_min
    hid = hid.replace(bias=np.maximum(hid.bias - 3, lo))
    if not hid.readout:
        hid = hid.replace(threshold=max(0, hid.threshold - 1))
    return net.replace(layers=[hid] + list(net.layers[1:-1]) + [last], name="digits-rotated")


def test_run_20_digits_bit_exact(board, net):
    status, r = cli_json(["run", "--board", "sim", "--port", board.url, "--samples", "20"] + SLOW + ["--json"])
    assert status == 0, r
    assert r["samples"] == 20 and r["bit_exact"] == 20 and r["cycles_match"] == 20
    assert r["predictions_agree"] == 20 and r["accuracy"] == r["model_accuracy"]
    assert r["weights_loaded"] is False


def test_registered_reads_board_runs_bit_exact(net, tmp_path):
    """A bitstream with registered block RAM reads (HardwareConfig.registered_reads, identify flag
    bit 2): spike events, the on-chip encoder in batches and the weight checksum, every answer as
    the model says and every run's cycles as the twin the host builds from identify says."""
    path = tmp_path / "digits.json"
    net.save(path)
    with SimulatedBoard(path, lanes=LANES, registered_reads=True) as sb:
        with Board(sb.url, timeout=TIMEOUT) as link:
            assert link.identify().registered_reads
            link.verify_network(net)  # CHECKSUM through the two-cycle parameter reads
        for extra in ([], ["--on-chip", "--batch", "4"]):
            status, r = cli_json(["run", "--board", "sim", "--port", sb.url, "--samples", "12", *extra]
                                 + SLOW + ["--json"])
            assert status == 0, r
            assert r["samples"] == 12 and r["bit_exact"] == 12 and r["cycles_match"] == 12, (extra, r)


def test_weight_reload_changes_results_as_the_model_predicts(board, net, tmp_path):
    new = other_network(net)
    path = tmp_path / "rotated.json"
    new.save(path)
    # The board holds the baked network: without loading, the mismatch is an error.
    with Board(board.url, timeout=TIMEOUT) as b:
        with pytest.raises(NetworkMismatch, match="holds network"):
            b.ensure_network(new, load=False)
    status, r = cli_json(["run", "--board", "sim", "--port", board.url, "--net", str(path), "--samples", "20"]
                         + SLOW + ["--json"])
    assert status == 0, r
    assert r["weights_loaded"] is True and r["bit_exact"] == 20 and r["cycles_match"] == 20
    # The new weights really are in use: the board's answers follow the new model, not the old.
    x, _ = load("digits", "test")
    spikes = encode_for(net, x[:20])
    old_res, new_res = simulate(net, spikes), simulate(new, spikes)
    assert not np.array_equal(old_res.membranes[-1], new_res.membranes[-1])
    with Board(board.url, timeout=TIMEOUT) as b:
        assert b.check_network(new)      # identity now names the loaded network
        got = [b.run_sample(s) for s in spikes[:5]]
        for i, (c, m, _) in enumerate(got):
            assert np.array_equal(c, new_res.counts[i]) and np.array_equal(m, new_res.membranes[-1][i])
        # and back to the original
        assert b.ensure_network(net) is True
        c, m, _ = b.run_sample(spikes[0])
        assert np.array_equal(m, old_res.membranes[-1][0]) and np.array_equal(c, old_res.counts[0])


def test_cli_errors(board, net, tmp_path):
    from spikegate.model.random import random_network
    wrong = random_network(1, (64, 5, 10))
    path = tmp_path / "wrong.json"
    wrong.save(path)
    status, r = cli_json(["run", "--board", "sim", "--port", board.url, "--net", str(path), "--samples", "1"]
                         + SLOW + ["--json"])
    assert status == 2 and "rebuild the bitstream" in r["error"]
    small = random_network(2, (12, 5, 10))
    small.save(tmp_path / "small.json")
    status, r = cli_json(["run", "--board", "sim", "--port", board.url, "--net", str(tmp_path / "small.json"),
                          "--json"])
    assert status == 2 and "--data digits has 64 inputs per sample" in r["error"]
    status, r = cli_json(["run", "--board", "nosuchboard", "--port", board.url, "--json"])
    assert status == 2 and "nosuchboard" in r["error"]
    status, r = cli_json(["run", "--board", "sim", "--port", board.url, "--samples", "0", "--json"])
    assert status == 2 and "--samples = 0" in r["error"]
    # Nothing answers on loop://: a clear error after the retries, not a hang.
    status, r = cli_json(["run", "--board", "sim", "--port", "loop://", "--samples", "1", "--timeout", "0.2",
                          "--retries", "1", "--json"])
    assert status == 2 and "failed after 2 attempt(s)" in r["error"]


def test_driver_recovers_a_swallowed_request(board, net):
    """A frame left open on the line (here: a header announcing 16 payload bytes) swallows the
    next request; the board's timeout answer makes the driver resend, and identify succeeds."""
    with Board(board.url, timeout=TIMEOUT, retries=3) as b:
        before = b.status().timeouts
        b.ser.write(bytes([proto.SYNC_REQ, Cmd.STATUS, 0x99]) + proto.to_le(16, 2))
        ident = b.identify()
        assert ident.structure == proto.structure_digest(net)
        assert b.status().timeouts == before + 1


def _responses(data: bytes):
    """Split a byte stream from the board into frames; every frame must be well formed."""
    out, i = [], 0
    while i < len(data):
        assert data[i] == proto.SYNC_RESP, f"stray byte {data[i]:#x} from the board"
        n = proto.from_le(data[i + 4:i + 6])
        out.append(proto.decode_response(data[i:i + 8 + n]))
        i += 8 + n
    return out


def test_checksum_catches_a_write_the_crc_let_through(board, net):
    """A WRITE whose value was damaged but whose CRC-16 still matches (the ~2^-16 of heavy line
    damage) is applied by the board; CHECKSUM shows it before the board is marked."""
    with Board(board.url, timeout=TIMEOUT) as b:
        b.ensure_network(net)
        assert b.checksum() == proto.expected_checksum(net)
        b.verify_network(net)
        w = int(net.layers[0].weights[3, 2])
        vb = b.geo.write_value_bytes(0, CfgTarget.WEIGHT)
        damaged = (bytes([0, CfgTarget.WEIGHT]) + proto.to_le(3, 2) + proto.to_le(2, 2) + proto.to_le(1, 2)
                   + proto.to_le(w ^ 1, vb))
        b.request(Cmd.WRITE, damaged)
        with pytest.raises(ChecksumMismatch, match="not marked"):
            b.verify_network(net)
        b.request(Cmd.SET_NET_ID, proto.content_digest(net))  # now it claims to hold net
        assert b.check_network(net)
    err = io.StringIO()
    with redirect_stderr(err):
        status = cli.main(["run", "--board", "sim", "--port", board.url, "--samples", "1", "--check"] + SLOW)
    assert status != 0 and "CHECKSUM" in err.getvalue() and board.url in err.getvalue()
    with Board(board.url, timeout=TIMEOUT) as b:
        b.write_network(net)  # writes, verifies, then marks
        ident = b.identify()
        assert not ident.dirty and b.checksum() == proto.expected_checksum(net)


def test_fuzz_random_and_corrupted_frames(board, net):
    """Garbage, corrupted, cut-short and valid frames (valid WRITEs among them) on the live link:
    after each, identify is answered correctly, the status counters show exactly the writes that
    valid frames asked for, and finally the board computes what the model computes with exactly
    those writes applied."""
    # Retries only cover a board still busy with a chunk when the quiet window ended on a
    # starved CI machine; the answers are checked exactly.
    b = Board(board.url, timeout=5.0, retries=2)
    b.ensure_network(net)
    ident0 = b.identify()
    geo = b.geo
    # What the board should hold: the twin's kind of mutable state, made a Network at the end.
    expected = {"weights": [l.weights.copy() for l in net.layers], "bias": [l.bias.copy() for l in net.layers],
                "threshold": [l.threshold for l in net.layers]}
    state = {"writes": b.status().cfg_writes, "dirty": False}
    writes_before = state["writes"]
    ser = b.ser  # raw bytes go through the driver's own connection
    layer0 = net.layers[0]

    @st.composite
    def valid_write(draw):
        row = draw(st.integers(0, layer0.n_in - 1))
        col = draw(st.integers(0, layer0.n - 1))
        count = draw(st.integers(1, min(4, layer0.n - col)))
        lo, hi = value_range(layer0, CfgTarget.WEIGHT)
        vals = draw(st.lists(st.integers(lo, hi), min_size=count, max_size=count))
        vb = geo.write_value_bytes(0, CfgTarget.WEIGHT)
        p = (bytes([0, CfgTarget.WEIGHT]) + proto.to_le(row, 2) + proto.to_le(col, 2) + proto.to_le(count, 2)
             + b"".join(proto.to_le(v, vb) for v in vals))
        return ("write", (row, col, vals), encode_request(Cmd.WRITE, draw(st.integers(0, 255)), p))

    any_frame = st.builds(lambda c, t, p: ("frame", None, encode_request(c, t, p)),
                          st.sampled_from([Cmd.IDENTIFY, Cmd.STATUS, Cmd.READ, Cmd.RUN, Cmd.CLEAR, Cmd.WRITE,
                                           Cmd.SET_NET_ID, 0x00, 0x33, 0xFF]),
                          st.integers(0, 255), st.binary(max_size=24))

    def corrupt(item, flips):
        b = bytearray(item[2])
        for pos, bit in flips:
            b[pos % len(b)] ^= 1 << bit
        return ("bad", None, bytes(b))

    def cut(item, n):
        return ("bad", None, item[2][:max(1, n % len(item[2]))])

    def expected_net():
        return net.replace(layers=[l.replace(weights=w, bias=bi, threshold=t) for l, w, bi, t in
                                   zip(net.layers, expected["weights"], expected["bias"], expected["threshold"])])

    base = st.one_of(valid_write(), any_frame)
    chunk = st.one_of(
        valid_write(), any_frame,
        # one to six flipped bits
        st.builds(corrupt, base, st.lists(st.tuples(st.integers(0, 60), st.integers(0, 7)), min_size=1, max_size=6)),
        st.builds(cut, base, st.integers(1, 60)),
        st.binary(min_size=1, max_size=40).map(lambda g: ("bad", None, g)),
        st.binary(min_size=1, max_size=20).map(lambda g: ("bad", None, bytes([proto.SYNC_REQ]) + g)))

    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    @given(items=st.lists(chunk, min_size=1, max_size=3))
    def fuzz(items):
        for kind, info, data in items:
            ser.write(data)
            ser.flush()
            answers = _responses(drain(ser, 0.3))
            ser.timeout = b.timeout
            if kind == "write":
                assert [a[2] for a in answers] == [proto.Status.OK]
                row, col, vals = info
                expected["weights"][0][row, col:col + len(vals)] = vals
                state["writes"] += len(vals)
                state["dirty"] = True
            if kind == "frame":
                cmd = data[1]
                assert len(answers) == 1 and answers[0][0] == cmd
                if cmd == Cmd.SET_NET_ID and answers[0][2] == proto.Status.OK:
                    state["dirty"] = False
                if cmd == Cmd.WRITE and answers[0][2] == proto.Status.OK:
                    p = data[5:-2]
                    layer, target, row, col, count = p[0], p[1], proto.from_le(p[2:4]), proto.from_le(p[4:6]), \
                        proto.from_le(p[6:8])
                    vb = geo.write_value_bytes(layer, target)
                    vals = [proto.from_le(p[8 + i * vb:8 + (i + 1) * vb], signed=True) for i in range(count)]
                    if target == CfgTarget.WEIGHT:
                        expected["weights"][layer][row, col:col + count] = vals
                    elif target == CfgTarget.BIAS:
                        expected["bias"][layer][col:col + count] = vals
                    else:
                        expected["threshold"][layer] = vals[0]
                    state["writes"] += count
                    state["dirty"] = True
        ident = b.identify()
        assert (ident.structure, ident.baked, ident.shape, ident.lanes) == \
            (ident0.structure, ident0.baked, ident0.shape, ident0.lanes)
        assert ident.dirty == state["dirty"]
        assert b.status().cfg_writes == state["writes"]
        assert b.checksum() == proto.expected_checksum(expected_net())

    fuzz()
    b.close()
    # The examples include valid writes (derandomized, so always the same ones): the check above
    # really compared a changed network.
    assert state["writes"] > writes_before
    x, _ = load("digits", "test")
    spikes = encode_for(net, x[:4])
    want = simulate(expected_net(), spikes)
    with Board(board.url, timeout=TIMEOUT) as b:
        b.check_network(net)
        for i in range(4):
            c, m, _ = b.run_sample(spikes[i])
            assert np.array_equal(c, want.counts[i]) and np.array_equal(m, want.membranes[-1][i])
        b.ensure_network(net)


@pytest.mark.slow
def test_whole_digits_test_split(board, net):
    status, r = cli_json(["run", "--board", "sim", "--port", board.url] + SLOW + ["--json"])
    x, _ = load("digits", "test")
    assert status == 0, r
    assert r["samples"] == len(x) and r["bit_exact"] == len(x) and r["cycles_match"] == len(x)
    assert r["accuracy"] == r["model_accuracy"]
    print(r)


def _descendants(pid: int) -> list[int]:
    kids = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        kids.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        for kid in kids.get(todo.pop(), []):
            out.append(kid)
            todo.append(kid)
    return out


def _running(pid: int) -> bool:
    try:  # a zombie has finished: only its parent's wait is missing
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="walks the process tree through /proc")
def test_board_stops_when_its_owner_is_killed(net, tmp_path):
    # A host killed without running SimulatedBoard.__exit__ (SIGKILL, a runner's timeout) never
    # touches the stop file: the bridge must notice its owner is gone, or the simulator spins on.
    path = tmp_path / "digits.json"
    net.save(path)
    script = ("import sys, time\n"
              "from spikegate.sim.link_bridge import SimulatedBoard\n"
              f"with SimulatedBoard({str(path)!r}, lanes={LANES}) as sb:\n"
              "    print(sb.proc.pid, flush=True)\n"
              "    time.sleep(900)\n")
    owner = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    board = []
    try:
        ready, _, _ = select.select([owner.stdout], [], [], 900)
        assert ready, "the simulated board did not start within 900 s"
        bridge = int(owner.stdout.readline())
        board = [bridge] + _descendants(bridge)
        assert len(board) >= 2, "expected the bridge and its simulator process"
        owner.kill()
        owner.wait(timeout=30)
        deadline = time.monotonic() + 60
        while any(_running(p) for p in board) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [p for p in board if _running(p)], "the board outlived its owner by 60 s"
    finally:
        owner.kill()
        for pid in board:
            if _running(pid):
                os.kill(pid, signal.SIGKILL)
