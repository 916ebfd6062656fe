"""``spikegate build --clock max``: the fastest PLL clock at which a design meets timing
(boards/fastest.py). The search itself runs real YoWASP builds of a small network on the
iCEBreaker; the choice of the next clock and the refusals are checked without tools."""
from __future__ import annotations

import json
import time

import pytest

from spikegate.boards.errors import BuildError
from spikegate.boards.fastest import MAX_ATTEMPTS, _next_clock, build_fastest
from spikegate.boards.report import fastest_pll, format_report
from spikegate.boards.targets import get_board
from spikegate.cli import main
from spikegate.model.random import random_network

LEAN = {"encoder": False, "stream": False}
# Placements of the real search below: the documented clock, then the first placement's fmax.
PLACEMENTS = 2


def test_fastest_pll_is_the_highest_setting_at_or_below_fmax():
    ice = get_board("icebreaker")
    # 12 MHz oscillator, PFD >= 10 MHz: DIVR = 0, so the outputs near 40 MHz are 0.75 MHz apart.
    assert fastest_pll(ice, 40.3).f_out_mhz == 39.75
    assert fastest_pll(ice, 39.75).f_out_mhz == 39.75
    assert fastest_pll(ice, 12.0) is None  # below the iCE40 PLL's 16 MHz floor
    ulx = get_board("ulx3s-85f")
    assert fastest_pll(ulx, 76.09).f_out_mhz <= 76.09


def test_next_clock_rises_only_past_the_fastest_met_clock():
    ice = get_board("icebreaker")
    assert _next_clock(ice, 40.3, None, [], None) == 39.75
    assert _next_clock(ice, 40.3, 16.125, [{"pll_mhz": 16.125}], None) == 39.75
    # Nothing faster than a met clock, and no clock placed twice.
    assert _next_clock(ice, 40.3, 39.75, [], None) is None
    assert _next_clock(ice, 40.3, None, [{"pll_mhz": 39.75}], None) is None
    # A clock the host link's UART cannot run at the board's 3 Mbaud is not tried: the ULX3S's PLL
    # makes 7.14 MHz, where a bit would take fewer than the UART's minimum cycles.
    ulx = get_board("ulx3s-85f")
    assert fastest_pll(ulx, 8.0) is not None and _next_clock(ulx, 8.0, None, [], None) is None
    assert _next_clock(ulx, 8.0, None, [], 115_200) is not None


@pytest.mark.parametrize("attempts", [0, 1, MAX_ATTEMPTS + 1, 2.5, True, "4"])
def test_attempts_are_checked_before_any_tool(attempts, tmp_path):
    t0 = time.monotonic()
    with pytest.raises(ValueError, match=f"attempts = {attempts!r} is not valid; valid: an integer from 2"):
        build_fastest("icebreaker", None, attempts=attempts, out_dir=tmp_path, cache_dir=tmp_path / "c")
    assert time.monotonic() - t0 < 5 and not (tmp_path / "c").exists()


def test_bad_output_folder_is_refused_before_the_first_placement(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(BuildError, match="out_dir = .* is not a directory"):
        build_fastest("icebreaker", None, out_dir=afile, cache_dir=tmp_path / "c")
    assert not (tmp_path / "c").exists()


def test_clock_is_not_an_argument_of_the_search(tmp_path):
    with pytest.raises(TypeError, match="chooses the clock"):
        build_fastest("icebreaker", None, clock_mhz=20, out_dir=tmp_path)


@pytest.mark.parametrize("args, message", [
    (["--placements", "3"], "--placements = 3 does not apply to a build at one clock; valid: --placements with "
                            "--clock max"),
    (["--clock", "max", "--placements", "1"], f"--placements = 1 is not valid; valid: an integer from 2 to "
                                              f"{MAX_ATTEMPTS}"),
])
def test_cli_refuses_placements_outside_a_search_or_its_limits(args, message, capsys):
    assert main(["build", "--board", "icebreaker", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize("value", ["fast", "", "MAX"])
def test_cli_refuses_a_clock_that_is_neither_a_number_nor_max(value, capsys):
    assert main(["build", "--board", "icebreaker", "--clock", value]) == 2
    err = capsys.readouterr().err
    assert f"--clock = {value!r} is not valid; valid: a frequency in MHz" in err and "or max" in err
    assert "Traceback" not in err


def test_search_places_at_each_fmax_and_keeps_the_fastest_met_build(tmp_path, monkeypatch, capsys, caplog):
    """Real builds of a small network: the documented clock first, then the fastest PLL setting at
    or below its fmax; the output folder gets the fastest met build only. (Where the search stops
    is test_next_clock_rises_only_past_the_fastest_met_clock's; two placements keep this short.)
    Again through the CLI, with a damaged cache entry rebuilt."""
    net = random_network(3, (16, 8), timesteps=4, readout=False)
    cache = tmp_path / "sg" / "builds"
    out = tmp_path / "out"
    heard = []
    r = build_fastest("icebreaker", net, attempts=PLACEMENTS, out_dir=out, cache_dir=cache, samples=5,
                      progress=heard.append, **LEAN)
    board = get_board("icebreaker")
    search = r["clock"]["search"]
    assert len(search) == PLACEMENTS  # the first placement's fmax is far above the documented clock
    assert search[0]["pll_mhz"] == board.clock_mhz and search[0]["met"]
    for prev, nxt in zip(search, search[1:]):
        assert nxt["pll_mhz"] == fastest_pll(board, prev["fmax_mhz"]).f_out_mhz
    # The second placement, at the first one's fmax, meets or misses by where nextpnr puts things
    # (with one gateware change it missed): either way the search keeps the fastest met one.
    met = [a["pll_mhz"] for a in search if a["met"]]
    assert r["clock"]["pll_mhz"] == max(met)
    assert r["timing"]["met"] and r["timing"]["fmax_mhz"] >= r["clock"]["pll_mhz"]
    # The chosen build's performance covers the requested samples, at its own clock.
    assert r["performance"]["samples"] == 5
    assert r["performance"]["at_clock"]["mhz"] == pytest.approx(r["clock"]["pll_mhz"])
    # The output folder: the chosen bitstream and its report (with the search), nothing else.
    assert sorted(p.name for p in out.iterdir()) == ["icebreaker-report.json", "icebreaker.bin"]
    on_disk = json.loads((out / "icebreaker-report.json").read_text())
    assert on_disk["clock"]["search"] == search and on_disk["bitstream_sha256"] == r["bitstream_sha256"]
    assert any("clock search chose" in line for line in heard)
    assert "clock search (--clock max), placed at: 16.125 MHz" in format_report(r)
    assert capsys.readouterr() == ("", "")

    # Again through the CLI, with the chosen placement's cached bitstream cut short (a full disk, a
    # killed copy): that placement is rebuilt, never served, to the same bitstream (a build is
    # deterministic for its netlist and seed); every other placement is served from the cache.
    chosen = next(i for i, a in enumerate(search) if a["pll_mhz"] == r["clock"]["pll_mhz"])
    damaged = cache / r["cache_key"] / "icebreaker.bin"
    damaged.write_bytes(damaged.read_bytes()[:1000])
    net_file = tmp_path / "net.json"
    net.save(net_file)
    monkeypatch.setenv("SPIKEGATE_CACHE", str(tmp_path / "sg"))
    with caplog.at_level("WARNING", logger="spikegate.boards.cache"):
        assert main(["build", "--board", "icebreaker", "--net", str(net_file), "--clock", "max",
                     "--placements", str(PLACEMENTS), "--no-encoder", "--no-stream", "--samples", "5",
                     "--out", str(tmp_path / "again"), "--json"]) == 0
    assert "is damaged (icebreaker.bin has 1000 bytes" in caplog.text
    r2 = json.loads(capsys.readouterr().out)
    assert [a["pll_mhz"] for a in r2["clock"]["search"]] == [a["pll_mhz"] for a in search]
    assert [a["cached"] for a in r2["clock"]["search"]] == [i != chosen for i in range(len(search))]
    assert r2["cached"] is True  # the final build at the chosen clock: the entry just rebuilt
    assert r2["bitstream_sha256"] == r["bitstream_sha256"]
