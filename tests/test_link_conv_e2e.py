"""A conv-first network on the simulated board (issue 15): the whole HostLink top in Verilator,
placed as on the iCEBreaker (boards/fit.py: the dense readout's weights and the input buffer in
SPRAM, its cycle model, empty at start; built without the on-chip encoder, `--no-encoder`), driven
by the unmodified `spikegate run` through its socket:// port: the driver sends packed input
addresses, uploads the readout's rows at the conv layer's packed addresses, checks them by
CHECKSUM, and every sample is bit-exact (counts, membranes, cycles) with the model."""
import io
import json
from contextlib import redirect_stdout

import numpy as np
import pytest
from spikegate.model import link as proto
from spikegate.sim.link_bridge import SimulatedBoard
from test_link_conv import conv_net, other_weights

from spikegate import cli
from spikegate.host import Board, ChecksumMismatch

LANES = 2
TIMEOUT = ["--timeout", "20"]


def cli_json(argv):
    out = io.StringIO()
    with redirect_stdout(out):
        status = cli.main(argv)
    return status, json.loads(out.getvalue().strip().splitlines()[-1])


@pytest.fixture(scope="module")
def baked(tmp_path_factory):
    path = tmp_path_factory.mktemp("net") / "conv.json"
    conv_net().save(path)
    return path


@pytest.fixture(scope="module")
def board(baked):
    with SimulatedBoard(baked, lanes=LANES, max_events=1024, encoder=False, weight_ram=("block", "spram"),
                        input_ram="spram") as sb:
        yield sb


def test_conv_network_runs_through_the_driver(board, baked, tmp_path):
    net = conv_net()
    with Board(board.url, timeout=20) as b:
        ident = b.identify()
        assert ident.shape == net.shape and not ident.dirty
        assert not b.check_network(net)            # the readout's SPRAM rows are empty: other weights
    # The upload: the readout at its packed rows, CHECKSUM, SET_NET_ID; then the samples.
    status, r = cli_json(["run", "--board", "sim", "--port", board.url, "--net", str(baked), "--samples", "8"]
                         + TIMEOUT + ["--json"])
    assert status == 0, r
    assert r["weights_loaded"] is True and r["bit_exact"] == 8 and r["cycles_match"] == 8
    status, r = cli_json(["run", "--board", "sim", "--port", board.url, "--net", str(baked), "--samples", "4",
                          "--check"] + TIMEOUT + ["--json"])
    assert status == 0, r
    assert r["weights_loaded"] is False and r["bit_exact"] == 4 and r["cycles_match"] == 4

    # Other readout weights, biases and conv threshold: uploaded at the packed rows, checked, run.
    new = other_weights(net)
    path = tmp_path / "new.json"
    new.save(path)
    status, r = cli_json(["run", "--board", "sim", "--port", board.url, "--net", str(path), "--samples", "8"]
                         + TIMEOUT + ["--json"])
    assert status == 0, r
    assert r["weights_loaded"] is True and r["bit_exact"] == 8 and r["cycles_match"] == 8

    # A conv kernel cannot be loaded over the link: the checksum after the upload says so.
    rng = np.random.default_rng(9)
    conv = net.layers[0]
    kernels = net.replace(layers=[conv.replace(weights=rng.integers(-8, 8, conv.weights.shape)), net.layers[1]])
    with Board(board.url, timeout=20) as b:
        with pytest.raises(ChecksumMismatch, match="kernels and biases are fixed at generation"):
            b.ensure_network(kernels)
        assert b.identify().dirty
        assert b.ensure_network(net) is True and b.checksum() == proto.expected_checksum(net)
