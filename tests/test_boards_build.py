"""Real bitstream builds (YoWASP Yosys + nextpnr) of the default digits network.

CI builds the iCEBreaker and the ULX3S at their documented clocks; the OrangeCrab, the Tang Nano 9K,
a build that misses timing and the MNIST-sized network on the ULX3S are ``slow`` tests.
"""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

import spikegate
from conftest import cycle_formula
from spikegate import datasets
from spikegate.boards.build import TimingError, build, default_max_events, format_report
from spikegate.boards.targets import get_board
from spikegate.cli import main
from spikegate.model import Network
from spikegate.model.hardware import HardwareConfig

# Bitstream sync words: iCE40 configuration starts with 7EAA997E, ECP5 with the BDB3 preamble.
SYNC = {"ice40": b"\x7e\xaa\x99\x7e", "ecp5": b"\xff\xff\xbd\xb3"}


@pytest.fixture(scope="module")
def cache_base(tmp_path_factory):
    """SPIKEGATE_CACHE for the CLI; the builds themselves go to its ``builds`` folder."""
    return tmp_path_factory.mktemp("spikegate-cache")


@pytest.fixture(scope="module")
def cache(cache_base):
    return cache_base / "builds"


def _net():
    return Network.load(spikegate.default_network_path())


def _formula_cycles(net: Network, lanes: int, registered_reads: bool) -> np.ndarray:
    """Cycles per test sample from the documented formula, with the events taken from the
    contract model (not from the core's twin that the build report uses)."""
    x, _ = datasets.load("digits", "test")
    s = datasets.encode_for(net, x, seed=0)
    # the build's (default) schedule
    return cycle_formula(net, lanes, s, schedule=HardwareConfig().schedule, registered_reads=registered_reads)


def _check_report(r: dict, board_name: str, tmp_path):
    board = get_board(board_name)
    assert r["board"] == board.name and r["device"] == board.device
    t = r["timing"]
    assert t["met"] is True, t
    assert t["fmax_mhz"] >= t["constraint_mhz"] == pytest.approx(board.clock_mhz, abs=1e-3)
    assert r["clock"]["pll_mhz"] == pytest.approx(board.clock_mhz)
    u = r["utilization"]
    for res in ("LUT", "FF", "BRAM", "SPRAM", "DSP"):
        assert set(u[res]) == {"used", "available", "percent"}
        if u[res]["available"]:
            assert u[res]["percent"] == pytest.approx(100 * u[res]["used"] / u[res]["available"], abs=0.05)
    assert 0 < u["LUT"]["used"] <= u["LUT"]["available"]
    # Weights, state and the host link's buffers live in block RAM, not in logic.
    assert u["BRAM"]["used"] >= 4
    assert u["LUT"]["available"] == board.luts and u["BRAM"]["available"] == board.bram_blocks
    # The pre-synthesis estimate is a lower bound of what the tools really use.
    assert 0 < r["memory_estimate"]["blocks"] <= u["BRAM"]["used"]
    p = r["performance"]
    # A default build registers its block RAM reads on the ECP5 (boards.fit.choose_registered_reads).
    assert r["registered_reads"] is (board.family == "ecp5")
    # ... and the ECP5 flow looks for read flip-flops to take into the blocks' output registers
    # (boards.outreg; none here: the digits weights at 4 lanes are 32-bit words, blocks in their
    # 36-bit mode, which it leaves alone; test_mnist_sized_network_on_ulx3s has some)
    assert r["bram_output_registers"] == (0 if board.family == "ecp5" else None)
    expected = _formula_cycles(_net(), r["lanes"], r["registered_reads"])
    assert p["samples"] == len(expected) == 445
    assert p["cycles_per_sample"]["mean"] == pytest.approx(expected.mean(), abs=0.05)
    assert (p["cycles_per_sample"]["min"], p["cycles_per_sample"]["max"]) == (expected.min(), expected.max())
    f = r["clock"]["pll_mhz"]
    assert p["at_clock"]["latency_us"] == pytest.approx(expected.mean() / f, rel=1e-3)
    assert p["at_clock"]["samples_per_s"] == pytest.approx(f * 1e6 / expected.mean(), rel=1e-3)
    assert p["at_fmax"]["mhz"] == pytest.approx(t["fmax_mhz"], abs=1e-3)
    bit = (tmp_path / board.bitstream_name).read_bytes()
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / board.bitstream_name).stat().st_mode & 0o777 == 0o666 & ~umask
    assert SYNC[board.family] in bit[:4096]
    on_disk = json.loads((tmp_path / f"{board.name}-report.json").read_text())
    assert on_disk["bitstream_sha256"] == r["bitstream_sha256"]
    assert r["max_events"] == default_max_events(_net())


@pytest.mark.parametrize("board", ["icebreaker", "ulx3s-85f"])
def test_default_network_builds_and_meets_timing(board, cache_base, cache, tmp_path, capsys, monkeypatch):
    heard = []
    r = build(board, None, out_dir=tmp_path, cache_dir=cache, progress=heard.append)
    _check_report(r, board, tmp_path)
    assert r["cached"] is False
    # Progress goes to the callback, one line per step; the library itself prints nothing.
    assert any("synthesis" in line for line in heard) and any("place and route" in line for line in heard)
    assert capsys.readouterr() == ("", "")
    # Unchanged design: served from the cache, identical bitstream, through the CLI this time.
    monkeypatch.setenv("SPIKEGATE_CACHE", str(cache_base))
    monkeypatch.delenv("SPIKEGATE_PROGRESS", raising=False)
    out2 = tmp_path / "again"
    assert main(["build", "--board", board, "--out", str(out2), "--json"]) == 0
    out = capsys.readouterr()
    r2 = json.loads(out.out)
    assert "unchanged design, using the cached build" in out.err  # the CLI shows the progress
    assert r2["cached"] is True and r2["cache_key"] == r["cache_key"]
    assert r2["bitstream_sha256"] == r["bitstream_sha256"]
    assert (out2 / get_board(board).bitstream_name).read_bytes() == (tmp_path / get_board(board).bitstream_name).read_bytes()
    if board == "icebreaker":
        # --lanes auto keeps the iCEBreaker's lanes (tests/test_lanes_auto.py): the same design, cached.
        assert main(["build", "--board", board, "--lanes", "auto", "--out", str(tmp_path / "auto"), "--json"]) == 0
        r3 = json.loads(capsys.readouterr().out)
        assert r3["cached"] is True and r3["cache_key"] == r["cache_key"]
        assert r3["lanes"] == r3["lanes_auto"]["lanes"] == [2, 2] and r3["lanes_auto"]["refused"] == []


LEAN = {"encoder": False, "stream": False}


@pytest.mark.slow
def test_damaged_cache_entry_is_rebuilt_and_force_replaces(tmp_path, caplog):
    """A truncated bitstream in the cache entry is detected and rebuilt (never served as cached),
    and ``force`` replaces an existing entry. A small network, built without the on-chip encoder and
    streaming (what is built does not matter here), keeps each of the three flows short (57 s, not 82).
    Slow (three flows): in CI the cache layer's tests (test_cache_robustness.py) check damage and
    ``force`` with real files, and the clock search's test (test_clock_search.py) rebuilds a real
    build's damaged entry."""
    from spikegate.model.random import random_network
    net = random_network(3, (16, 8), timesteps=4, readout=False)
    cache = tmp_path / "cache"
    first = build("icebreaker", net, out_dir=tmp_path / "a", cache_dir=cache, samples=5, **LEAN)
    good = (tmp_path / "a" / "icebreaker.bin").read_bytes()
    entry = cache / first["cache_key"]
    (entry / "icebreaker.bin").write_bytes(good[:1000])
    with caplog.at_level("WARNING", logger="spikegate.boards.cache"):
        again = build("icebreaker", net, out_dir=tmp_path / "b", cache_dir=cache, samples=5, **LEAN)
    assert again["cached"] is False and "is damaged (icebreaker.bin has 1000 bytes" in caplog.text
    rebuilt = (tmp_path / "b" / "icebreaker.bin").read_bytes()
    assert len(rebuilt) == len(good) and SYNC["ice40"] in rebuilt[:4096]
    assert again["bitstream_sha256"] == json.loads((tmp_path / "b" / "icebreaker-report.json").read_text())[
        "bitstream_sha256"]
    forced = build("icebreaker", net, out_dir=tmp_path / "c", cache_dir=cache, samples=5, force=True, **LEAN)
    assert forced["cached"] is False and forced["cache_key"] == first["cache_key"]
    served = build("icebreaker", net, out_dir=tmp_path / "d", cache_dir=cache, samples=5, **LEAN)
    assert served["cached"] is True and served["bitstream_sha256"] == forced["bitstream_sha256"]
    assert sorted(p.name for p in cache.iterdir()) == [first["cache_key"], first["cache_key"] + ".lock"]


def test_a_build_past_its_deadline_is_stopped_and_leaves_nothing(tmp_path, monkeypatch, capsys):
    """A build's tools get ``--timeout`` seconds together (boards.cache.BUILD_TIMEOUT_S unless
    told): past it the running tool (here Yosys, given 2 s) is stopped, the build fails naming the
    stage and the limit, no cache entry and no output is left, and the CLI says so without a
    traceback and exits non-zero; a bad value is refused before any work, naming the option."""
    from spikegate.boards.cache import BUILD_TIMEOUT_S, LOCK_TIMEOUT_S
    assert BUILD_TIMEOUT_S < LOCK_TIMEOUT_S  # a waiter for the same entry outlasts a default build
    monkeypatch.setenv("SPIKEGATE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("SPIKEGATE_PROGRESS", raising=False)
    out = tmp_path / "out"
    code = main(["build", "--board", "icebreaker", "--out", str(out), "--timeout", "2"])
    err = capsys.readouterr().err
    assert code != 0 and "Traceback" not in err
    assert "synthesis" in err and "did not finish within the 2 s a build's tools get together" in err
    assert [p.name for p in (tmp_path / "cache" / "builds").iterdir() if not p.name.endswith(".lock")] == []
    assert not out.exists() or list(out.iterdir()) == []
    assert main(["build", "--board", "icebreaker", "--out", str(out), "--timeout", "0"]) != 0
    assert "--timeout = 0.0 is not valid; valid: a finite number 0 < --timeout <= 86400" in capsys.readouterr().err
    with pytest.raises(ValueError, match="timeout = -1 is not valid; valid: seconds > 0"):
        build("icebreaker", None, out_dir=out, timeout=-1)


@pytest.mark.slow
def test_orangecrab_builds_and_meets_timing(cache, tmp_path):
    r = build("orangecrab-25f", None, out_dir=tmp_path, cache_dir=cache)
    _check_report(r, "orangecrab-25f", tmp_path)
    # The DFU suffix the OrangeCrab bootloader expects ends the file.
    assert (tmp_path / "orangecrab-25f.bit").read_bytes()[-8:-4] == b"UFD\x10"


@pytest.mark.slow
def test_tangnano9k_builds(cache, tmp_path):
    r = build("tangnano9k", None, out_dir=tmp_path, cache_dir=cache)
    assert r["timing"]["met"] and r["utilization"]["BRAM"]["used"] >= 4
    assert (tmp_path / "tangnano9k.fs").stat().st_size > 100_000


@pytest.mark.slow
def test_missed_timing_fails_loudly_without_bitstream(cache, tmp_path, capsys):
    stale = tmp_path / "icebreaker.bin"
    stale.write_bytes(b"old")
    code = main(["build", "--board", "icebreaker", "--clock", "48", "--out", str(tmp_path)])
    assert code == 1
    err = capsys.readouterr().err
    assert "timing NOT met on the iCEBreaker v1.0" in err and "48.000 MHz" in err
    assert not stale.exists()
    rep = json.loads((tmp_path / "icebreaker-report.json").read_text())
    assert rep["timing"]["met"] is False and rep["timing"]["fmax_mhz"] < 48 and rep["bitstream"] is None
    with pytest.raises(TimingError):
        build("icebreaker", None, clock_mhz=48, out_dir=tmp_path)  # cached failure, same verdict


@pytest.mark.slow
def test_auto_lanes_on_ulx3s(cache, tmp_path):
    # tests/test_lanes_auto.py: (4, 4) -> ... -> (64, 4) -> (64, 8) -> (64, 16) by the twin's cycles.
    r = build("ulx3s-85f", None, lanes="auto", out_dir=tmp_path, cache_dir=cache)
    assert r["lanes"] == r["lanes_auto"]["lanes"] == [64, 16] and r["lanes_auto"]["refused"] == []
    assert [s["lanes"] for s in r["lanes_auto"]["steps"]] == [[4, 4], [8, 4], [16, 4], [32, 4], [64, 4], [64, 8],
                                                             [64, 16]]
    assert r["utilization"]["LUT"]["used"] <= r["lanes_auto"]["logic_estimate_luts"]
    _check_report(r, "ulx3s-85f", tmp_path)


@pytest.mark.slow
def test_auto_lanes_fall_back_a_step_when_synthesis_needs_more_block_ram(cache, tmp_path):
    from spikegate.model.random import random_network
    net = random_network(0, (64, 48, 10), weight_bits=8, membrane_bits=14, readout=True, timesteps=8)
    # By the pre-check's estimate (a lower bound) lanes (8, 4) take all 26 of the Tang Nano 9K's
    # blocks; synthesis makes 27.
    r = build("tangnano9k", net, lanes="auto", samples=50, out_dir=tmp_path, cache_dir=cache)
    auto = r["lanes_auto"]
    assert auto["lanes"] == [8, 4] and [a["lanes"] for a in auto["refused"]] == [[8, 4]]
    assert "BRAM needs 27 but the device has 26" in auto["refused"][0]["error"]
    assert r["lanes"] == [4, 4] and r["timing"]["met"] and r["utilization"]["BRAM"]["used"] <= 26
    assert "[8, 4] did not fit after synthesis" in format_report(r)


@pytest.mark.slow
def test_mnist_sized_network_on_ulx3s(cache, tmp_path):
    from spikegate.model.random import random_network
    net = random_network(0, (784, 128, 10), weight_bits=8, membrane_bits=16, readout=False, timesteps=16)
    # 16-bit membranes and spike counters make this random network's datapath slower than the
    # digits network's: it is built at 30 MHz (it reaches about 32 MHz).
    r = build("ulx3s-85f", net, clock_mhz=30, out_dir=tmp_path, cache_dir=cache, samples=20)
    assert r["timing"]["met"]
    # 802816 weight bits need at least 44 DP16KD blocks of 18 kbit.
    assert r["utilization"]["BRAM"]["used"] >= 44
    # Layer 0's weights at 4 lanes are 32 one-bit slices two blocks deep, each block's word
    # registered before the multiplexer: those 64 flip-flops become the blocks' output registers.
    assert r["bram_output_registers"] >= 64


@pytest.mark.slow
def test_mnist_sized_network_on_icebreaker(cache, tmp_path):
    """784-128-10 with 8-bit weights on the UP5K: layer 0's weights (802816 bits) go to the four
    SPRAM tiles and the block RAM holds the rest. With the streaming link and the on-chip encoder
    (the defaults) synthesis makes 32 of the 30 EBR, which the pre-check's lower bound (27) could
    not see: the build stops before placement and says so with the numbers. Without them it fits
    (measured: 29 EBR, 4,550 of 5,280 cells, 33.11 MHz for 16.125)."""
    from spikegate.boards.fit import ResourceError, choose_weight_ram, precheck
    from spikegate.model.hardware import HardwareConfig
    from spikegate.model.random import random_network
    net = random_network(0, (784, 128, 10), weight_bits=8, membrane_bits=16, readout=False, timesteps=16)
    board = get_board("icebreaker")
    hw = choose_weight_ram(board, net, HardwareConfig(lanes=2, max_events=2048))
    assert precheck(board, net, hw)["weight_ram"] == ["spram", "block"]
    with pytest.raises(ResourceError) as e:
        build(board, net, max_events=2048, out_dir=tmp_path, cache_dir=cache, samples=20)
    err = e.value
    assert err.resource == "BRAM" and err.available == 30 and err.needed > 30
    assert f"BRAM needs {err.needed} but the device has 30 (after synthesis, lanes = 2)" in str(err)
    assert not (tmp_path / "icebreaker.bin").exists()
    r = build(board, net, max_events=2048, stream=False, encoder=False, out_dir=tmp_path, cache_dir=cache,
              samples=20)
    assert r["timing"]["met"] and r["weight_ram"] == ["spram", "block"]
    assert r["utilization"]["BRAM"]["used"] <= 30 and (tmp_path / "icebreaker.bin").exists()


@pytest.mark.slow
def test_a_design_over_the_logic_cells_stops_at_placement_with_the_numbers(cache, tmp_path):
    """The plastic digits network (below) at 4 lanes: its block RAM fits and synthesis passes, but
    placement needs more logic cells than the UP5K has (measured: 6,555; at 2 lanes 5,204 fit)."""
    from spikegate.boards.fit import ResourceError
    from spikegate.learn_run import LearnConfig, initial_network
    net = initial_network(LearnConfig(), datasets.load("digits", "train")[0])
    with pytest.raises(ResourceError) as e:
        build("icebreaker", net, lanes=4, out_dir=tmp_path, cache_dir=cache, samples=5)
    err = e.value
    assert err.resource == "LC" and err.available == 5280 and err.needed > 5280
    assert f"placement needs {err.needed} ICESTORM_LC logic cells but the device has 5280" in str(err)
    assert not (tmp_path / "icebreaker.bin").exists()


@pytest.mark.slow
def test_plastic_digits_network_builds_for_the_icebreaker(cache, tmp_path):
    """The network `spikegate learn --board` trains (`learn --init-out`: 64 -> 100 plastic, WTA,
    adaptive thresholds), built with the defaults `boards.fit` chooses for it (no streaming, no
    on-chip encoder, identify payload in block RAM) at 1 lane: it fits the UP5K and meets timing
    (measured 4,977 of 5,280 cells, fmax 21.21 MHz at 16.125)."""
    from spikegate.learn_run import LearnConfig, initial_network
    net = initial_network(LearnConfig(), datasets.load("digits", "train")[0])
    r = build("icebreaker", net, lanes=1, out_dir=tmp_path, cache_dir=cache, samples=5)
    assert r["timing"]["met"]
    assert r["utilization"]["LC"]["used"] <= 5280 and (tmp_path / "icebreaker.bin").exists()
