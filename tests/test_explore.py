"""Design-space exploration: sweep points, Pareto front and best-build choice on given rows, point
outcomes from the real build, and a real sweep through a separately started Dask scheduler with
two workers (then the same sweep again on a local cluster, served from the build cache)."""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from spikegate.explore import (Point, best_per_board, format_table, parse_floats, parse_ints,
                               parse_lanes_list, pareto_front, point_row, run_point, sweep)
from spikegate.model.network import Layer, Network
from spikegate.model.random import random_network


def row(board="icebreaker", sps=1000.0, lut=50.0, ram=50.0, fmax=20.0, met=True, seed=1, status="ok"):
    """A result row as :func:`point_row` makes it, with the figures that decide the comparisons."""
    r = point_row(Point(board, 2, "auto", None, seed), None, status)
    r.update(timing_met=met, samples_per_s=sps, lut_percent=lut, ram_percent=ram, fmax_mhz=fmax)
    return r


def tiny_net() -> Network:
    return random_network(3, (16, 8, 4), timesteps=8, weight_bits=4, membrane_bits=8, leak="none",
                          reset="subtract", refractory=0, readout=False)


def test_parsers_expand_ranges_and_name_bad_values():
    assert parse_ints("--seeds", "1-4,7,3") == [1, 2, 3, 4, 7]
    assert parse_floats("--clock", "16.125, 20") == [16.125, 20.0]
    assert parse_lanes_list("--lanes", "1,2,8/2") == [1, 2, (8, 2)]
    with pytest.raises(ValueError, match=r"--seeds = '4-1' is not valid; valid: integers >= 0 and ranges"):
        parse_ints("--seeds", "4-1")
    with pytest.raises(ValueError, match=r"--lanes = '3' is not valid; valid: powers of two 1..64"):
        parse_lanes_list("--lanes", "3")
    with pytest.raises(ValueError, match=r"--clock = '0' is not valid; valid: frequencies > 0"):
        parse_floats("--clock", "0")


def test_sweep_is_the_product_with_boards_resolved():
    pts = sweep(["icebreaker", "ulx3s"], [1, 2], ["auto"], [None, 20.0], [1, 2, 3])
    assert len(pts) == 2 * 2 * 2 * 3
    assert {p.board for p in pts} == {"icebreaker", "ulx3s-85f"}
    assert len({p.label for p in pts}) == len(pts)
    with pytest.raises(ValueError, match=r"--weight-ram = 'sram' is not valid; valid: auto, block, spram"):
        sweep(["icebreaker"], weight_rams=["sram"])
    with pytest.raises(Exception, match=r"board = 'icestick' is not a known board"):
        sweep(["icestick"])


def test_pareto_front_keeps_only_undominated_timing_clean_rows():
    rows = [row(sps=1000, lut=40, ram=30),              # 0 front
            row(sps=2000, lut=60, ram=30),              # 1 front: faster, more logic
            row(sps=900, lut=45, ram=35),               # 2 dominated by 0
            row(sps=5000, lut=10, ram=10, met=False),   # 3 missed timing: never on the front
            row(sps=1000, lut=40, ram=30, fmax=22, seed=2),  # 4 same figures as 0, more fmax
            row(sps=1500, lut=50, ram=20),              # 5 front: least RAM
            row(status="no-fit", met=None)]             # 6
    rows[6].update(samples_per_s=None, lut_percent=None, ram_percent=None)
    assert pareto_front(rows) == [1, 4, 5]
    assert best_per_board(rows) == {"icebreaker": 1}
    rows.append(row(board="ulx3s-85f", sps=3000, lut=5, ram=5, met=False))
    assert best_per_board(rows) == {"icebreaker": 1}
    table = format_table(rows, pareto_front(rows), best_per_board(rows))
    lines = table.splitlines()
    assert len(lines) == 1 + len(rows)
    assert lines[2].startswith("*B") and lines[1].startswith("  ") and "no-fit" in lines[7]


def test_best_prefers_fmax_between_equal_designs():
    rows = [row(seed=1, fmax=16.5), row(seed=2, fmax=18.0), row(seed=3, fmax=15.0, met=False)]
    assert best_per_board(rows) == {"icebreaker": 1}
    assert pareto_front(rows) == [1]


def test_points_that_cannot_be_built_are_results(tmp_path):
    """A network too big for the board's RAM and a rejected build option come back as rows."""
    rng = np.random.default_rng(0)
    big = Network(layers=[Layer(weights=rng.integers(-8, 8, (784, 512)), bias=np.zeros(512, np.int64),
                                threshold=10, weight_bits=8, membrane_bits=16)], timesteps=8)
    r = run_point(Point("icebreaker", 2), big.to_dict(), out_root=tmp_path / "o", cache_dir=tmp_path / "c")
    assert r["status"] == "no-fit" and r["fits"] is False and "does not fit" in r["error"]
    r = run_point(Point("icebreaker", 1, seed=-1), tiny_net().to_dict(), out_root=tmp_path / "o",
                  cache_dir=tmp_path / "c")
    assert r["status"] == "error" and "seed = -1 is not valid" in r["error"]
    assert not list((tmp_path / "c").glob("*/result.json"))


def test_a_sweep_in_which_nothing_fits_still_writes_its_result(tmp_path, capsys):
    """Every point refused by the resource pre-check: the run reports them and exits 1, and
    OUT/explore.json exists although no build ever made the output folder."""
    from spikegate.cli import main
    rng = np.random.default_rng(0)
    big = Network(layers=[Layer(weights=rng.integers(-8, 8, (784, 512)), bias=np.zeros(512, np.int64),
                                threshold=10, weight_bits=8, membrane_bits=16)], timesteps=8)
    net_file = tmp_path / "big.json"
    big.save(net_file)
    out = tmp_path / "new" / "out"
    assert main(["explore", "--net", str(net_file), "--board", "icebreaker", "--lanes", "2", "--workers", "1",
                 "--cache-dir", str(tmp_path / "c"), "--out", str(out), "--json"]) == 1
    result = json.loads((out / "explore.json").read_text())
    assert [p["status"] for p in result["points"]] == ["no-fit"]
    assert json.loads(capsys.readouterr().out) == result


def test_bad_requests_are_refused_before_the_cluster_starts(tmp_path):
    from spikegate.explore_dask import check_points
    net = tiny_net()
    with pytest.raises(ValueError, match=r"--clock = 1000 is not valid for icebreaker"):
        check_points(net, [Point("icebreaker", 1, clock_mhz=1000.0)])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_real_sweep_through_a_separate_scheduler_and_two_workers(tmp_path, capsys, monkeypatch):
    """`dask scheduler` + 2 `dask worker` processes on 127.0.0.1; then the same sweep on a local
    cluster gives the same table, every point served from the build cache; then `build --plot`
    and `plot utilisation` of the sweep's points (their real builds, served from that cache: a
    tiny network keeps them short; the default network's full build is test_boards_build.py's)."""
    pytest.importorskip("distributed")
    from distributed import Client
    from spikegate.cli import main
    net_file = tmp_path / "tiny.json"
    tiny_net().save(net_file)
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    # `dask scheduler` / `dask worker`, from this interpreter's environment.
    scheduler_cmd, worker_cmd = [sys.executable, "-m", "dask", "scheduler"], [sys.executable, "-m", "dask", "worker"]
    procs = []
    log = open(tmp_path / "dask.log", "wb")
    try:
        procs.append(subprocess.Popen(scheduler_cmd + ["--host", "127.0.0.1", "--port", str(port),
                                                       "--no-dashboard"], cwd=tmp_path,
                                      stdout=log, stderr=subprocess.STDOUT))
        for _ in range(2):
            procs.append(subprocess.Popen(worker_cmd + [address, "--nthreads", "1", "--host", "127.0.0.1",
                                                        "--no-dashboard", "--local-directory", str(tmp_path)],
                                          cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT))
        with Client(address, timeout=60) as c:
            c.wait_for_workers(2, timeout=120)
        args = ["explore", "--net", str(net_file), "--board", "icebreaker", "--lanes", "1",
                "--clock", "16.125,40", "--cache-dir", str(tmp_path / "sg" / "builds"),
                "--timeout", "900"]
        out1 = tmp_path / "out-remote"
        status = main(args + ["--scheduler", address, "--out", str(out1), "--json",
                              "--plot", str(tmp_path / "pareto.png"), "--html", str(tmp_path / "sweep.html")])
        remote = json.loads(capsys.readouterr().out)
    finally:
        for p in reversed(procs):
            p.kill()
        for p in procs:
            p.wait(timeout=30)
        log.close()
    assert status == 0
    assert remote["workers"] == 2 and remote["address"] == address
    rows = remote["points"]
    assert [r["clock_mhz"] for r in rows] == [16.125, 40.0]
    # 16.125 MHz is met by this small design; 40 MHz is beyond the iCE40's reach: a result, not a crash.
    assert [r["status"] for r in rows] == ["ok", "timing"]
    assert rows[1]["timing_met"] is False and rows[1]["fmax_mhz"] < 40
    assert remote["pareto"] == [0] and remote["best"] == {"icebreaker": rows[0]["label"]}
    best = Path(remote["copied"]["icebreaker"])
    assert best == out1 / "icebreaker" / "icebreaker.bin" and best.stat().st_size > 100_000
    assert json.loads((out1 / "explore.json").read_text())["points"] == rows
    from test_plots import assert_drawn, parse_report, png_pixels, svg_root
    assert_drawn(tmp_path / "pareto.png")
    page = parse_report(tmp_path / "sweep.html")
    assert [row[0] for row in page.tables[0][1:]] == [r["label"] for r in rows]
    assert page.row_classes[0][1:] == ["front", "fail"]
    assert [alt for alt, _ in page.images] == ["Pareto front of the sweep", "utilisation of the icebreaker build"]
    assert dict(page.tables[2][1:])["fmax (MHz)"] == f"{rows[0]['fmax_mhz']:.4g}"

    local = tmp_path / "out-local"
    assert main(args + ["--workers", "1", "--out", str(local), "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["workers"] == 1 and again["scheduler"] == "local"
    assert all(r["cached"] for r in again["points"])
    skip = {"cached", "seconds", "bitstream", "report_path", "error"}
    assert [{k: v for k, v in r.items() if k not in skip} for r in again["points"]] == \
           [{k: v for k, v in r.items() if k not in skip} for r in rows]

    from spikegate import plots_hw
    fig = plots_hw.utilisation(plots_hw.load_report(out1 / "icebreaker" / "icebreaker-report.json"))
    assert [p.get_width() for p in fig.axes[0].patches][0] == rows[0]["lut_percent"]

    # `build --plot` of the point that missed timing (served from the sweep's cache): the build
    # fails with status 1 and still draws its report, timing NOT met.
    monkeypatch.setenv("SPIKEGATE_CACHE", str(tmp_path / "sg"))
    missed = tmp_path / "missed.png"
    assert main(["build", "--net", str(net_file), "--board", "icebreaker", "--lanes", "1", "--clock", "40",
                 "--out", str(tmp_path / "b40"), "--plot", str(missed), "--json"]) == 1
    failed = json.loads(capsys.readouterr().out)
    assert failed["report"]["cached"] is True and failed["report"]["timing"]["fmax_mhz"] == rows[1]["fmax_mhz"]
    assert assert_drawn(missed) == (800, 360)

    # `build --plot` of the point that met (the board's documented clock, served from the sweep's
    # cache) draws its report; `plot utilisation --board --net` draws the same build, pixel for
    # pixel; `--plot FILE.svg` writes SVG.
    png = tmp_path / "build.png"
    assert main(["build", "--board", "icebreaker", "--net", str(net_file), "--lanes", "1", "--out",
                 str(tmp_path / "b"), "--plot", str(png), "--json"]) == 0
    cap = capsys.readouterr()
    rep = json.loads(cap.out)
    assert rep["cached"] is True and rep["timing"]["fmax_mhz"] == rows[0]["fmax_mhz"]
    assert f"build: wrote {png}" in cap.err
    assert assert_drawn(png) == (800, 360)
    fig = plots_hw.utilisation(rep)
    assert [p.get_width() for p in fig.axes[0].patches][:2] == [rep["utilization"]["LUT"]["percent"],
                                                                 rep["utilization"]["FF"]["percent"]]
    assert [p.get_height() for p in fig.axes[1].patches] == [rep["timing"]["fmax_mhz"], rep["timing"]["constraint_mhz"]]
    out = tmp_path / "u.png"
    assert main(["plot", "utilisation", "--board", "icebreaker", "--net", str(net_file), "--lanes", "1", "-o", str(out),
                 "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["cached"] is True and (r["width"], r["height"]) == (800, 360)
    assert np.array_equal(png_pixels(out), png_pixels(png))
    svg = tmp_path / "build.svg"
    assert main(["build", "--board", "icebreaker", "--net", str(net_file), "--lanes", "1", "--out",
                 str(tmp_path / "b"), "--plot", str(svg)]) == 0
    svg_root(svg)


def test_regress_runs_random_configurations_in_verilator(tmp_path, capsys):
    """Two random configurations through a local Dask cluster, each checked against the model."""
    pytest.importorskip("distributed")
    from spikegate.cli import main
    from spikegate.explore_regress import regress_config
    net, lanes, spikes = regress_config(5)
    assert (net, lanes) == regress_config(5)[:2] and spikes[-1].all() and len(spikes) == 9
    assert main(["explore", "--regress", "2", "--regress-seed", "4", "--workers", "1",
                 "--sim-build-dir", str(tmp_path / "sim"), "--timeout", "600", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert [row["seed"] for row in r["regress"]] == [4, 5]
    assert [row["status"] for row in r["regress"]] == ["ok", "ok"]
    assert r["regress"][1]["shape"] == list(net.shape) and r["regress"][1]["lanes"] == lanes
    assert main(["explore", "--regress", "0"]) == 2
    assert "--regress = 0 is not valid; valid: an integer >= 1" in capsys.readouterr().err


def test_an_unreachable_scheduler_is_an_error_within_the_deadline(tmp_path, capsys):
    pytest.importorskip("distributed")
    from spikegate.cli import main
    address = f"tcp://127.0.0.1:{_free_port()}"
    t0 = time.monotonic()
    assert main(["explore", "--scheduler", address, "--start-timeout", "2", "--out", str(tmp_path)]) == 2
    assert time.monotonic() - t0 < 60
    assert f"--scheduler = '{address}': no worker became ready within 2 s" in capsys.readouterr().err
