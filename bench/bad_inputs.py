"""The bad-input matrix: every ``spikegate`` command run with a catalogue of bad inputs, each in a
subprocess with a deadline, and each result classified:

- ``clean``: exit status 2, one ``error:`` line, no traceback (``unnamed`` counts the clean ones
  whose message names neither the option nor the value);
- ``traceback``: Python's traceback on stderr;
- ``hang``: the deadline passed (the process group is then killed);
- ``partial``: the run failed but left a file behind in its working directory;
- ``wrong_success``: exit status 0 for a bad input;
- ``unclear``: any other failure (another exit status, no or several error lines).

The commands are read from the CLI parser, so a new command gets the generic cases (unknown
option, wrong types, bad values of its int/float/choice options, bad --net files, bad output
paths, a full stdout) without touching this file. Cases fail before any synthesis or board access.

    python bench/bad_inputs.py [--fast] [--only CMD,...] [--deadline S] [--jobs N] [--json]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bad_input_catalogue import Case, catalogue, make_inputs  # noqa: E402  (the sibling module)

OUTCOMES = ("clean", "unnamed", "unclear", "traceback", "hang", "partial", "wrong_success")


@dataclass
class Result:
    case: Case
    outcome: str
    status: int | None
    seconds: float
    error: str = ""
    left: list = field(default_factory=list)


def _snapshot(d: Path) -> set:
    return {str(p.relative_to(d)) for p in d.rglob("*")}


def run_case(case: Case, work: Path, env: dict, deadline: float) -> Result:
    """Run one case in its own empty working directory and classify what happened."""
    cwd = Path(tempfile.mkdtemp(prefix=f"{case.command}-", dir=work))
    before = _snapshot(cwd)
    stdout = open("/dev/full", "w") if case.stdout_full else subprocess.DEVNULL
    t0 = time.monotonic()
    p = subprocess.Popen([sys.executable, "-m", "spikegate", case.command, *map(str, case.args)], cwd=cwd,
                         env=env, stdout=stdout, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                         start_new_session=True)
    try:
        _, err = p.communicate(timeout=deadline)
        status = p.returncode
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        _, err = p.communicate()
        status = None
    finally:
        if case.stdout_full:
            stdout.close()
    seconds = time.monotonic() - t0
    text = err.decode("utf-8", "replace")
    errors = [l for l in text.splitlines() if ": error:" in l]
    left = sorted(_snapshot(cwd) - before)
    if status is None:
        outcome = "hang"
    elif "Traceback (most recent call last)" in text:
        outcome = "traceback"
    elif status == 0:
        outcome = "wrong_success"
    elif left:
        outcome = "partial"
    elif status == 2 and len(errors) == 1:
        msg = errors[0].lower()
        names = [case.option.lower(), case.option.lstrip("-").replace("-", "_").lower()]
        outcome = "clean" if not case.option or any(n and n in msg for n in names) else "unnamed"
    else:
        outcome = "unclear"
    return Result(case, outcome, status, round(seconds, 2), (errors[-1] if errors else text.strip()[-300:]), left)


def run_matrix(cases: list, *, deadline: float = 60.0, jobs: int = 2, work: Path | None = None,
               progress=None) -> list:
    """Run ``cases`` (``jobs`` at a time) and return their :class:`Result` in order."""
    work = Path(work or tempfile.mkdtemp(prefix="spikegate-bad-inputs-"))
    env = dict(os.environ)
    # Caches of their own, so that nothing the cases do reaches the user's caches.
    env["SPIKEGATE_CACHE"] = str(work / "cache")
    env["SPIKEGATE_SIM_CACHE"] = str(work / "sim-cache")
    env["PYTHONWARNINGS"] = "ignore"
    runs = work / "runs"
    runs.mkdir(parents=True, exist_ok=True)

    def one(case):
        r = run_case(case, runs, env, deadline)
        if progress:
            progress(r)
        return r

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return list(pool.map(one, cases))


def summarise(results: list) -> dict:
    """Counts per command and in total: cases and each outcome."""
    table: dict = {}
    for r in results:
        row = table.setdefault(r.case.command, {"cases": 0, **{o: 0 for o in OUTCOMES}})
        row["cases"] += 1
        row[r.outcome] += 1
    total = {"cases": len(results), **{o: sum(t[o] for t in table.values()) for o in OUTCOMES}}
    return {"commands": table, "total": total}


def format_table(summary: dict) -> str:
    cols = ("cases",) + OUTCOMES
    lines = [f"{'command':<12}" + "".join(f"{c:>14}" for c in cols)]
    for name, row in sorted(summary["commands"].items()):
        lines.append(f"{name:<12}" + "".join(f"{row[c]:>14}" for c in cols))
    lines.append(f"{'total':<12}" + "".join(f"{summary['total'][c]:>14}" for c in cols))
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fast", action="store_true", help="only the CI subset")
    ap.add_argument("--only", default=None, help="comma-separated commands")
    ap.add_argument("--deadline", type=float, default=60.0, help="seconds per case (default 60)")
    ap.add_argument("--jobs", type=int, default=2, help="cases run at once (default 2)")
    ap.add_argument("--json", action="store_true", help="every result and the counts as JSON")
    ap.add_argument("--keep", action="store_true", help="keep the scratch directory (inputs, runs, caches)")
    a = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="spikegate-bad-inputs-"))
    try:
        return _report(a, work)
    finally:
        if a.keep:
            print(f"scratch directory kept: {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


def _report(a, work: Path) -> int:
    cases = catalogue(make_inputs(work / "inputs"))
    if a.fast:
        cases = [c for c in cases if c.fast]
    if a.only:
        cases = [c for c in cases if c.command in a.only.split(",")]
    results = run_matrix(cases, deadline=a.deadline, jobs=a.jobs, work=work)
    summary = summarise(results)
    if a.json:
        print(json.dumps({**summary, "results": [{**asdict(r.case), "outcome": r.outcome, "status": r.status,
                                                  "seconds": r.seconds, "error": r.error, "left": r.left}
                                                 for r in results]}, indent=1))
    else:
        for r in results:
            if r.outcome not in ("clean",):
                print(f"{r.outcome:<14} {r.case.command} {r.case.label}: {r.error}")
        print(format_table(summary))
    t = summary["total"]
    return 1 if t["traceback"] or t["hang"] or t["partial"] else 0


if __name__ == "__main__":
    sys.exit(main())
