"""bench/boards.py: its seeds option, and its figures recomputed from the placements it keeps
(the checked-in old design's file is such a result)."""
from __future__ import annotations

import json
import subprocess

import pytest

import benches

BENCH = benches.BENCH


def test_seeds_parse_and_refuse_by_name():
    b = benches.load("boards")
    assert b.parse_seeds("default,1, 2,3,4") == [None, 1, 2, 3, 4]
    with pytest.raises(ValueError, match=r"--seeds item 'x1' is not valid; valid: 'default' or a seed >= 0"):
        b.parse_seeds("default,x1")
    with pytest.raises(ValueError, match="comma-separated list"):
        b.parse_seeds(" , ")


def test_old_design_rows_follow_from_their_placements():
    b = benches.load("boards")
    doc = json.loads((BENCH / "boards_old.json").read_text())
    assert doc["commit"].startswith("9d0ad38") and doc["produced_by"]
    rows = doc["rows"]
    assert {(r["board"], r["network"]) for r in rows if r["fits"]} >= {
        (board, "digits") for board in ("icebreaker", "ulx3s-85f", "orangecrab-25f", "tangnano9k")}
    for r in rows:
        again = b.summarise(r["board"], r["network"], r["builds"])
        assert again == {k: v for k, v in r.items() if k != "note"}
        if r["fits"]:
            f, cyc = r["fmax_mhz"][0], r["cycles_per_sample"]
            assert r["us_per_sample"] == round(cyc / f, 2)
            assert r["samples_per_s"] == round(f * 1e6 / cyc, 1)
            assert r["met_count"] == sum(p["met"] for p in r["builds"] if p["fits"])
    # the digits rows carry the issue's "today" figure: 5,389 cycles per sample at P = 2
    ice = next(r for r in rows if (r["board"], r["network"]) == ("icebreaker", "digits"))
    assert (ice["lanes"], ice["cycles_per_sample"]) == (2, 5388.9)


def test_text_pairs_each_line_with_the_old_design():
    b = benches.load("boards")
    doc = json.loads((BENCH / "boards_old.json").read_text())
    old = {(r["board"], r["network"]): r for r in doc["rows"]}
    ice = old[("icebreaker", "digits")]
    text = b.format_text([ice], old)
    lines = text.splitlines()
    assert lines[0] == "icebreaker / digits (lanes 2)"
    assert lines[1].startswith("  new  fmax [") and lines[2].startswith("  old  fmax [")
    assert lines[3] == "  new/old: fmax x1.00, cycles/sample x1.00, samples/s x1.00"


def test_a_seed_that_did_not_place_counts_and_is_shown():
    b = benches.load("boards")
    doc = json.loads((BENCH / "boards_old.json").read_text())
    ice = next(r for r in doc["rows"] if (r["board"], r["network"]) == ("icebreaker", "digits"))
    failed = {"seed": 1, "fits": None, "error": "nextpnr-ice40 failed: routing failed"}
    row = b.summarise("icebreaker", "digits", ice["builds"] + [failed])
    assert row["met"] == ice["met"] + [False] and row["met_count"] == ice["met_count"]
    assert row["seeds"] == ice["seeds"] and row["fmax_mhz"] == ice["fmax_mhz"]
    line = b.format_text([row], None).splitlines()
    assert f"timing met at {ice['met_count']}/{len(ice['met']) + 1}" in line[1]
    assert line[2] == "       seed 1 did not place: nextpnr-ice40 failed: routing failed"


def test_commit_says_when_the_tree_differs_from_it(tmp_path):
    b = benches.load("boards")
    assert b.package_commit(tmp_path) is None  # not a checkout
    def git(*args):
        return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path,
                              capture_output=True, text=True, check=True).stdout.strip()
    git("init", "-q")
    (tmp_path / "a.py").write_text("x = 1\n")
    git("add", "a.py")
    git("commit", "-q", "-m", "a")
    sha = git("rev-parse", "HEAD")
    (tmp_path / "notes.txt").write_text("untracked files are not the build's\n")
    assert b.package_commit(tmp_path) == sha
    (tmp_path / "a.py").write_text("x = 2\n")
    assert b.package_commit(tmp_path) == sha + "-dirty"


def test_board_names_are_the_boards_own_and_unknown_ones_are_refused_by_option():
    # MNIST_BUILD and the old design's rows are keyed by the board's own name: an alias must reach them.
    b = benches.load("boards")
    assert b.board_key("ulx3s", "--boards") == "ulx3s-85f"
    assert b.board_key(" OrangeCrab ", "--boards") == "orangecrab-25f"
    assert set(b.MNIST_BUILD) <= {b.board_key(n, "--boards") for n in b.BOARDS.split(",")}
    with pytest.raises(ValueError, match=r"--mnist-lanes 'ulx9' is not valid: .*known boards: icebreaker"):
        b.board_key("ulx9", "--mnist-lanes")
    with pytest.raises(SystemExit):
        b.main(["--boards", "icebreaker,ulx9", "--networks", "digits"])


def test_clock_option_reaches_each_boards_builds_and_bad_ones_are_refused_by_name(monkeypatch, capsys, tmp_path):
    b = benches.load("boards")
    for item, why in [("ulx3s=abc", "valid: BOARD=MHZ"), ("ulx3s", "valid: BOARD=MHZ"),
                      ("ulx9=100", "known boards: icebreaker"), ("ulx3s=1000", "cannot be produced by the ECP5 PLL")]:
        with pytest.raises(SystemExit):
            b.main(["--networks", "digits", "--clock", item])
        err = capsys.readouterr().err
        assert f"--clock {item.split('=')[0]!r}" in err or f"--clock {item!r}" in err, err
        assert why in err, err
    seen = []

    def fake_build(board, label, net, options, seed, out, data_dir, samples):
        seen.append((board, options))
        return {"seed": seed, "fits": False, "error": "not built here"}
    monkeypatch.setattr(b, "one_build", fake_build)
    b.run(["ulx3s-85f", "icebreaker"], ["digits"], [None], mnist_net=None, data_dir=None, mnist_lanes={},
          samples=None, jobs=1, out=tmp_path, clocks={"ulx3s-85f": 100.0})
    assert sorted(seen, key=str) == sorted([("ulx3s-85f", {"clock_mhz": 100.0}), ("icebreaker", {})], key=str)


def test_mnist_builds_take_their_router_unless_the_package_or_the_options_say_otherwise(monkeypatch, tmp_path):
    # router1 does not finish the ULX3S's (64, 4) build: MNIST_BUILD names router2. An old commit's
    # package (no boards.toolchain.ROUTERS) has no router argument, --router overrides, and
    # --mnist-lanes builds other lanes with nextpnr's default.
    b = benches.load("boards")
    seen = []

    def fake_build(board, label, net, options, seed, out, data_dir, samples):
        seen.append(options)
        return {"seed": seed, "fits": False, "error": "not built here"}
    monkeypatch.setattr(b, "one_build", fake_build)

    def options(**kw):
        seen.clear()
        args = dict(mnist_net=None, data_dir=None, mnist_lanes={}, samples=None, jobs=1, out=tmp_path) | kw
        b.run(["ulx3s-85f"], ["mnist-784-128-10"], [None], **args)
        return seen[0]
    assert options() == {"lanes": [64, 4], "router": "router2"}
    assert options(router="router1") == {"lanes": [64, 4], "router": "router1"}
    assert options(mnist_lanes={"ulx3s-85f": [4]}) == {"lanes": [4]}
    monkeypatch.setattr(b, "ROUTERS", None)
    assert options() == {"lanes": [64, 4]}
    assert b.MNIST_BUILD["ulx3s-85f"]["router"] == "router2"  # not taken out of the table itself
