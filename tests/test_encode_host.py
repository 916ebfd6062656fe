"""The host side of on-chip encoding: Board.run_levels, run_on_board(on_chip=True) and
``spikegate run --on-chip`` against the link's byte-level twin on a socket."""
import json

import numpy as np
import pytest

from test_host import TwinServer

from spikegate import datasets
from spikegate.board_run import core_bound, link_bound, run_on_board
from spikegate.cli import main
from spikegate.host import Board, DeviceError, encode_payload
from spikegate.model import link as proto
from spikegate.model import simulate
from spikegate.model.encode import bernoulli_state, from_levels
from spikegate.model.random import random_network


@pytest.fixture
def net():
    return random_network(8, (10, 6, 3), readout=False, timesteps=6, weight_bits=8, membrane_bits=16)


def test_run_levels_every_encoding(net):
    srv = TwinServer(proto.HostLink(net, lanes=2, max_payload=64))
    levels = np.random.default_rng(2).integers(0, 256, size=(3, 10))
    try:
        with Board(srv.url, timeout=1.0) as b:
            b.check_network(net)
            for encoding in ("rate", "latency", "bernoulli"):
                for i in range(3):
                    state = bernoulli_state(4, i) if encoding == "bernoulli" else 0
                    c, m, cycles = b.run_levels(levels[i], encoding, state)
                    spikes = from_levels(levels[i:i + 1], encoding, 6, [state] if state else None)
                    want = simulate(net, spikes)
                    assert c.tolist() == want.counts[0].tolist() and m.tolist() == want.membranes[-1][0].tolist()
                    assert cycles > 0
    finally:
        srv.close()


def test_payload_refusals_name_the_parameter(net):
    geo = proto.LinkGeometry.of(net, 2, 1, 1, 64, 64)
    good = np.zeros(10, dtype=np.int64)
    assert encode_payload(geo, good, "bernoulli", 7) == bytes([2, 7, 0, 0, 0]) + bytes(10)
    for args, word in [((good, "poisson", 0), "encoding"), ((good, "bernoulli", 0), "state"),
                       ((good, "rate", 3), "state"), ((good[:9], "rate", 0), "levels"),
                       ((good + 256, "rate", 0), "levels")]:
        with pytest.raises(ValueError, match=word):
            encode_payload(geo, *args)
    # 5 header bytes and 10 levels do not fit a 14-byte request buffer: refused before the board's BAD_LENGTH.
    assert proto.encode_fits(geo) and not proto.encode_fits(proto.LinkGeometry.of(net, 2, 1, 1, 14, 64))
    with pytest.raises(ValueError, match="15 bytes, more than the board's max_payload = 14"):
        encode_payload(proto.LinkGeometry.of(net, 2, 1, 1, 14, 64), good, "rate")


def test_a_board_without_encode_says_so(net):
    srv = TwinServer(proto.HostLink(net, lanes=2, encoder=False))   # as an older bitstream, or one built without
    try:
        with Board(srv.url, timeout=1.0) as b:
            b.check_network(net)
            with pytest.raises(DeviceError, match="no on-chip encoder"):
                b.run_levels(np.zeros(10, dtype=np.int64), "rate")
            with pytest.raises(DeviceError, match="no on-chip encoder"):
                b.run_batch(np.zeros((1, 10), dtype=np.int64), "rate")
    finally:
        srv.close()


def test_board_run_on_chip_digits_and_cli(tmp_path, capsys):
    digits = datasets.load_network(None).replace(encoding="bernoulli")
    srv = TwinServer(proto.HostLink(digits, lanes=4))
    try:
        r = run_on_board(digits, srv.url, data="digits", samples=12, seed=3, on_chip=True)
        assert r.ok and r.bit_exact == r.samples == 12 and r.on_chip
        # a streaming board (the default): pipelined, the busier direction bounds the line
        assert r.stream and r.link_bound_per_s == pytest.approx(115_200 / 10 / (max(r.bytes_sent, r.bytes_received) / 12))
        # 76-byte requests (sync, 4 header bytes, 5 + 64 payload, CRC) and 52-byte answers per sample
        assert (r.bytes_sent, r.bytes_received) == (12 * (7 + 5 + 64), 12 * (8 + 4 + 10 * 4))
        assert 0 < r.core_bound_per_s < 12e6 / 521
        path = tmp_path / "digits-bernoulli.json"
        digits.save(path)
        assert main(["run", "--board", "sim", "--port", srv.url, "--net", str(path), "--on-chip", "--samples", "4",
                     "--seed", "3", "--json"]) == 0
        out = json.loads(capsys.readouterr().out)
        assert out["bit_exact"] == 4 and out["on_chip"] and out["core_bound_per_s"] > 0
    finally:
        srv.close()
    with pytest.raises(ValueError, match="--on-chip.*poisson"):
        run_on_board(digits.replace(encoding="poisson"), "no-such-port", on_chip=True)


def test_batches_on_digits(tmp_path, capsys):
    digits = datasets.load_network(None).replace(encoding="bernoulli")
    srv = TwinServer(proto.HostLink(digits, lanes=4))
    try:
        r = run_on_board(digits, srv.url, data="digits", samples=12, seed=3, on_chip=True, batch=5)
        assert r.ok and r.bit_exact == 12 and r.batch == 5
        # frames of 5, 5 and 2 samples: 8 bytes of frame and encoding byte, then 68 a sample; 44-byte blocks
        assert (r.bytes_sent, r.bytes_received) == (3 * 8 + 12 * 68, 3 * 8 + 12 * 44)
        one = run_on_board(digits, srv.url, data="digits", samples=12, seed=3, on_chip=True)
        assert r.bit_exact == one.bit_exact and r.cycles_per_sample == one.cycles_per_sample
        with Board(srv.url) as b:
            b.check_network(digits)
            assert b.batch_limit() == 7                         # (512 - 1) // (4 + 64)
            with pytest.raises(ValueError, match="states"):
                b.run_batch(np.zeros((2, 64), np.int64), "bernoulli", [1])
        with pytest.raises(ValueError, match="--batch = 8 .* 1 to 7"):
            run_on_board(digits, srv.url, data="digits", samples=12, on_chip=True, batch=8)
        path = tmp_path / "digits-bernoulli.json"
        digits.save(path)
        assert main(["run", "--board", "sim", "--port", srv.url, "--net", str(path), "--on-chip", "--batch", "7",
                     "--samples", "9", "--json"]) == 0
        out = json.loads(capsys.readouterr().out)
        assert out["bit_exact"] == 9 and out["batch"] == 7
    finally:
        srv.close()
    with pytest.raises(ValueError, match="--batch"):
        run_on_board(digits, "no-such-port", batch=2)


def test_bounds():
    assert link_bound(115_200, 77 * 10, 52 * 10, 10) == pytest.approx(11_520 / 129)      # half duplex: both add
    assert link_bound(115_200, 77 * 10, 52 * 10, 10, stream=True) == pytest.approx(11_520 / 77)
    assert core_bound(12_000_000, np.array([5000, 7000]), 1041) == pytest.approx(12e6 / 7041)
