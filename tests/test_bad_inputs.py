"""The fast subset of the bad-input matrix (bench/bad_inputs.py): every command, each kind of bad
input once, as subprocesses: no traceback, no hang, no partial file, no success."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from bad_input_catalogue import catalogue, commands, make_inputs  # noqa: E402
from bad_inputs import run_matrix, summarise  # noqa: E402


def test_fast_bad_input_matrix(tmp_path):
    cases = [c for c in catalogue(make_inputs(tmp_path / "inputs")) if c.fast]
    assert {c.command for c in cases} == set(commands())
    results = run_matrix(cases, deadline=60, jobs=2, work=tmp_path)
    t = summarise(results)["total"]
    bad = [f"{r.outcome}: {r.case.command} {r.case.label}: {r.error}" for r in results
           if r.outcome in ("traceback", "hang", "partial", "wrong_success")]
    assert t["traceback"] == 0 and t["hang"] == 0 and t["partial"] == 0 and t["wrong_success"] == 0, bad
    assert t["clean"] + t["unnamed"] + t["unclear"] == len(cases) >= 60


# Cases that once hung or raised a traceback (the issue-11 re-run): each must now be a clean error.
ONCE_BROKEN = ("int option: --regress huge", "lanes: --lanes empty", "clock list: --clock empty",
               "seed list: --seeds empty", "weight ram: --weight-ram only commas",
               "input file: utilisation --report /dev/zero", "input file: pareto --results /dev/zero",
               "int option: --samples -5")


def test_once_broken_cases_are_clean(tmp_path):
    cases = [c for c in catalogue(make_inputs(tmp_path / "inputs"))
             if c.command in ("explore", "plot") and c.label in ONCE_BROKEN]
    assert {c.label for c in cases} == set(ONCE_BROKEN)
    results = run_matrix(cases, deadline=60, jobs=2, work=tmp_path)
    assert [(r.case.command, r.case.label, r.outcome) for r in results if r.outcome != "clean"] == []
