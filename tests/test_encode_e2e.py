"""On-chip encoding end to end: the whole HostLink top in Verilator behind a socket, driven by the
unmodified driver and ``spikegate run --on-chip``; every sample's counts, membranes and cycles
against the model on the contract's spikes."""
import io
import json
from contextlib import redirect_stdout

import pytest

from spikegate import cli
from spikegate.datasets import load, load_network, select
from spikegate.host import Board
from spikegate.model import simulate
from spikegate.model.core import HardwareConfig, NetworkCore
from spikegate.model.encode import from_levels, quantise
from spikegate.sim.link_bridge import SimulatedBoard

LANES = 4
SLOW = ["--timeout", "20"]  # a simulated UART is slow: see test_link_e2e


@pytest.fixture(scope="module")
def net():
    return load_network(None).replace(encoding="bernoulli")


@pytest.fixture(scope="module")
def net_path(net, tmp_path_factory):
    path = tmp_path_factory.mktemp("net") / "digits-bernoulli.json"
    net.save(path)
    return path


@pytest.fixture(scope="module")
def board(net_path):
    with SimulatedBoard(net_path, lanes=LANES) as sb:
        yield sb


def cli_run(argv):
    out = io.StringIO()
    with redirect_stdout(out):
        status = cli.main(["run", "--board", "sim"] + argv + SLOW + ["--json"])
    return status, json.loads(out.getvalue().strip().splitlines()[-1])


def test_run_on_chip_bernoulli(board, net_path):
    status, r = cli_run(["--port", board.url, "--net", str(net_path), "--on-chip", "--samples", "12", "--seed", "7"])
    assert status == 0, r
    assert r["samples"] == r["bit_exact"] == r["cycles_match"] == r["predictions_agree"] == 12
    assert r["on_chip"] and r["bytes_sent"] == 12 * 76 and r["link_bound_per_s"] > 0


def test_batch_frames(board, net_path):
    status, r = cli_run(["--port", board.url, "--net", str(net_path), "--on-chip", "--batch", "7", "--samples", "10",
                         "--seed", "2"])
    assert status == 0, r
    assert r["samples"] == r["bit_exact"] == r["cycles_match"] == 10 and r["batch"] == 7
    assert (r["bytes_sent"], r["bytes_received"]) == (2 * 8 + 10 * 68, 2 * 8 + 10 * 44)


def levels_run(board, net, encoding, idx):
    _, x, _ = select(net, "digits", "test", None, None)
    q = quantise(x)
    twin = NetworkCore(net, HardwareConfig(lanes=LANES))
    with Board(board.url, timeout=20.0) as b:
        b.check_network(net)
        for i in idx:
            spikes = from_levels(q[i:i + 1], encoding, net.timesteps, None)
            want = simulate(net, spikes)
            c, m, cycles = b.run_levels(q[i], encoding)
            assert c.tolist() == want.counts[0].tolist() and m.tolist() == want.membranes[-1][0].tolist(), i
            assert cycles == twin.run(spikes[0]).cycles


@pytest.mark.parametrize("encoding", ["rate", "latency"])
def test_rate_and_latency_on_the_same_board(board, net, encoding):
    """The encoding is the ENCODE frame's choice: a board built for a bernoulli network makes the
    others too."""
    levels_run(board, net, encoding, [0, 7, 444])


@pytest.mark.slow
def test_whole_digits_split_every_encoding(board, net, net_path):
    n = len(load("digits", "test")[1])
    status, r = cli_run(["--port", board.url, "--net", str(net_path), "--on-chip", "--seed", "1"])
    assert status == 0 and r["samples"] == r["bit_exact"] == r["cycles_match"] == n, r
    for encoding in ("rate", "latency"):
        levels_run(board, net, encoding, range(n))
