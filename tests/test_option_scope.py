"""Options a command would ignore or cannot use are refused up front (issue 11 bad-input re-run):
`plot KIND` refuses another kind's options, `import` a --v-reset or --calibrate-samples it would
not use, `learn` a --plot that would overwrite --out, `explore --scheduler` names a malformed address
before a client starts; and the bad-input matrix's cases for them are clean errors."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from spikegate.cli import main

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from bad_input_catalogue import catalogue, make_inputs  # noqa: E402
from bad_inputs import run_matrix  # noqa: E402


@pytest.mark.parametrize("kind, extra, message", [
    ("raster", ["--layer", "3"], "--layer = 3 does not apply to `plot raster`; valid: --layer with plot trace or fields"),
    ("raster", ["--samples", str(10 ** 30)], f"--samples = {10 ** 30} does not apply to `plot raster`; valid: "
                                             "--samples with plot confusion"),
    ("raster", ["--max-tiles", "9"], "--max-tiles = 9 does not apply to `plot raster`; valid: --max-tiles with "
                                     "plot fields"),
    ("raster", ["--lanes", "4,4,4"], "--lanes = [4, 4, 4] does not apply to `plot raster`; valid: --lanes with "
                                     "plot utilisation"),
    ("fields", ["--sample", "2"], "--sample = 2 does not apply to `plot fields`; valid: --sample with plot raster or "
                                  "trace"),
    ("confusion", ["--neurons", "1,2"], "--neurons = '1,2' does not apply to `plot confusion`"),
    ("pareto", ["--net", "n.json", "--results", "r.json"], "--net = 'n.json' does not apply to `plot pareto`"),
    ("trace", ["--board", "ulx3s-85f"], "--board = 'ulx3s-85f' does not apply to `plot trace`"),
])
def test_plot_refuses_options_its_kind_does_not_use(tmp_path, capsys, kind, extra, message):
    out = tmp_path / "p.png"
    assert main(["plot", kind, "-o", str(out), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not out.exists()


def test_plot_utilisation_report_refuses_build_options(tmp_path, capsys):
    f = tmp_path / "report.json"
    f.write_text(json.dumps({"board": "icebreaker"}))
    assert main(["plot", "utilisation", "--report", str(f), "--lanes", "2", "-o", str(tmp_path / "u.png")]) == 2
    assert "--lanes = 2 does not apply to `plot utilisation --report`" in capsys.readouterr().err
    assert main(["plot", "pareto", "--results", str(f), "--dpi", "50", "-o", str(tmp_path / "p.html")]) == 2
    assert "--dpi = 50 does not apply to an HTML report" in capsys.readouterr().err


def test_plot_options_of_the_kind_still_work(tmp_path, capsys):
    out = tmp_path / "t.png"
    assert main(["plot", "trace", "--layer", "0", "--neurons", "1,2", "--sample", "1", "--seed", "0", "-o", str(out),
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["neurons"] == [1, 2]


@pytest.mark.parametrize("address", ["not a url", "http://127.0.0.1:8786", "tcp://127.0.0.1", "tcp://h:70000", ""])
def test_explore_scheduler_is_checked_before_any_work(tmp_path, capsys, address):
    out = tmp_path / "e"
    assert main(["explore", "--scheduler", address, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"--scheduler = {address!r} is not valid; valid: a Dask scheduler address [PROTOCOL://]HOST:PORT" in err
    assert not out.exists()


# The matrix's cases that were wrong successes or unnamed errors (bench/bad_inputs.py, last run).
ONCE_WRONG = {("plot", "int option: --samples huge"), ("plot", "int option: --layer huge"),
              ("plot", "int option: --max-tiles huge"), ("plot", "lanes: --lanes many"),
              ("explore", "scheduler: --scheduler not a URL"),
              ("learn", "output path: --out the same file as --plot"),
              ("import", "v-reset: --v-reset for a file that stores v_reset"),
              ("import", "v-reset: --v-reset for a spikegate export"),
              ("import", "calibration: --calibrate-samples without --calibrate")}


def test_once_wrong_matrix_cases_are_clean(tmp_path):
    cases = [c for c in catalogue(make_inputs(tmp_path / "inputs")) if (c.command, c.label) in ONCE_WRONG]
    assert {(c.command, c.label) for c in cases} == ONCE_WRONG
    results = run_matrix(cases, deadline=60, jobs=1, work=tmp_path)
    assert [(r.case.command, r.case.label, r.outcome, r.error) for r in results if r.outcome != "clean"] == []
