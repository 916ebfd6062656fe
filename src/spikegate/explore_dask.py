"""Running a sweep (:mod:`spikegate.explore`) on Dask distributed.

:func:`run_sweep` uses a ``LocalCluster`` (one single-threaded worker process per core) unless it
is given the address of a running scheduler; both take the same path from there. Rows stream
back as points finish and are reported through ``on_progress``. Every wait has a deadline: the
cluster must come up within ``start_timeout_s`` and some point must finish at least every
``idle_timeout_s``; points still pending then are recorded as errors, never left hanging.
"""
from __future__ import annotations

import os
import shutil
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

from .errors import UserError
from .explore import Point, best_per_board, pareto_front, point_row, run_point
from .model.network import Network

__all__ = ["EXPLORE_EXTRA", "open_client", "run_sweep", "run_regress", "copy_best", "check_points"]

EXPLORE_EXTRA = 'needs the \'explore\' extra: pip install "spikegate[explore]"'

# (done, total, elapsed seconds, estimated seconds left or None, the row that just finished)
ProgressFn = Callable[[int, int, float, "float | None", dict], None]


def open_client(scheduler: str | None = None, workers: int | None = None, start_timeout_s: float = 120):
    """``(client, cluster)``: a client of the scheduler at ``scheduler`` (cluster None), or of a
    new LocalCluster with ``workers`` processes (default: the number of cores)."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise UserError(EXPLORE_EXTRA) from None
    cluster = None
    if scheduler is None:
        n = (os.cpu_count() or 1) if workers is None else workers
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"--workers = {workers!r} is not valid; valid: an integer >= 1")
        # One thread per worker: a build is one single-threaded tool process at a time anyway,
        # and the build's progress redirection is per process. The scheduler's HTTP server starts
        # even without a dashboard; ":0" gives it a free port instead of fighting over 8787.
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0",
                               silence_logs=40)
    try:
        client = Client(cluster if cluster is not None else scheduler, timeout=start_timeout_s)
        client.wait_for_workers(1, timeout=start_timeout_s)
    except (OSError, TimeoutError) as e:
        if cluster is not None:
            cluster.close()
        where = "the local cluster" if scheduler is None else f"--scheduler = {scheduler!r}"
        raise UserError(f"{where}: no worker became ready within {start_timeout_s:g} s ({e})") from None
    return client, cluster


@contextmanager
def connected(scheduler: str | None, workers: int | None, start_timeout_s: float):
    """A client (see :func:`open_client`) that is closed, with its local cluster, on exit."""
    client, cluster = open_client(scheduler, workers, start_timeout_s)
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def check_points(net: Network, points: list[Point]) -> None:
    """Refuse bad requests before any worker starts: clocks the PLL cannot make and lane counts the
    network cannot use. (A weight placement a board cannot take is a point's result: no fit.)"""
    from .boards.build import default_max_events
    from .boards.targets import get_board
    from .boards.top import pll_for
    from .model.hardware import HardwareConfig
    for b, c in dict.fromkeys((p.board, p.clock_mhz) for p in points):
        try:
            pll_for(get_board(b), c)
        except ValueError as e:
            raise ValueError(f"--clock = {c:g} is not valid for {b}: {e}") from None
    for lanes in dict.fromkeys(p.lanes for p in points if p.lanes is not None):
        try:
            HardwareConfig(lanes=lanes, max_events=default_max_events(net)).geometry(net)
        except ValueError as e:
            raise ValueError(f"--lanes = {lanes} is not valid for this network: {e}") from None


def run_sweep(net: Network, points: list[Point], *, out_dir, scheduler: str | None = None,
              workers: int | None = None, cache_dir=None, samples: int | None = None, data_dir=None,
              on_progress: ProgressFn | None = None, start_timeout_s: float = 120,
              idle_timeout_s: float = 3600) -> dict:
    """Build every point on the cluster; the rows (in point order), the Pareto front, each
    board's best build (copied to ``out_dir/BOARD/``) and how long it took."""
    if not points:
        raise ValueError("the sweep has no points")
    if not idle_timeout_s > 0:
        raise ValueError(f"--timeout = {idle_timeout_s!r} is not valid; valid: seconds > 0")
    check_points(net, points)
    out_dir = Path(out_dir).resolve()
    cache_dir = None if cache_dir is None else str(Path(cache_dir).resolve())
    t0 = time.monotonic()
    with connected(scheduler, workers, start_timeout_s) as client:
        n_workers = len(client.scheduler_info(n_workers=-1)["workers"])
        address = client.scheduler.address
        rows = _collect(client, net, points, out_dir, cache_dir, samples, data_dir, on_progress,
                        idle_timeout_s, t0)
    wall = time.monotonic() - t0
    front = pareto_front(rows)
    best = best_per_board(rows)
    copied = copy_best(net, rows, best, out_dir, cache_dir, samples, data_dir)
    return {"network": {"name": net.name, "shape": list(net.shape), "digest": net.digest()},
            "scheduler": scheduler or "local", "address": address, "workers": n_workers,
            "points": rows, "pareto": front, "best": {b: rows[k]["label"] for b, k in best.items()},
            "best_index": best, "copied": copied, "wall_seconds": round(wall, 1),
            "counts": {s: sum(r["status"] == s for r in rows) for s in ("ok", "timing", "no-fit", "error")}}


def _stream(client, calls: list, failed: Callable[[int, str], dict], on_progress, idle_timeout_s, t0) -> list:
    """Submit ``calls`` (function, args, kwargs) and gather their rows in call order as they
    finish; a task that dies or outlives the deadline gets ``failed(index, why)``."""
    from distributed import wait
    tag = uuid.uuid4().hex[:8]
    futures = {client.submit(fn, *a, key=f"spikegate-explore-{tag}-{k}", pure=False, retries=0, **kw): k
               for k, (fn, a, kw) in enumerate(calls)}
    rows: list = [None] * len(calls)
    pending = set(futures)
    done = 0
    while pending:
        try:
            finished = wait(pending, timeout=idle_timeout_s, return_when="FIRST_COMPLETED").done
        except TimeoutError:
            for f in pending:
                f.cancel()
                rows[futures[f]] = failed(futures[f], f"nothing finished within --timeout {idle_timeout_s:g} s; cancelled")
            break
        for f in finished:
            pending.discard(f)
            k = futures[f]
            if f.status == "finished":
                rows[k] = f.result()
            else:  # the worker died, or the scheduler cancelled the task
                exc = f.exception() if f.status == "error" else None
                rows[k] = failed(k, f"{f.status}: {exc!r}")
            done += 1
            if on_progress is not None:
                el = time.monotonic() - t0
                on_progress(done, len(calls), el, el / done * (len(calls) - done), rows[k])
    return rows


def _collect(client, net, points, out_dir, cache_dir, samples, data_dir, on_progress, idle_timeout_s, t0):
    [net_future] = client.scatter([net.to_dict()], broadcast=True, hash=False)
    kw = dict(out_root=str(out_dir / "points"), cache_dir=cache_dir, samples=samples,
              data_dir=None if data_dir is None else str(data_dir))
    calls = [(run_point, (p, net_future), kw) for p in points]
    return _stream(client, calls, lambda k, why: point_row(points[k], None, "error", why), on_progress,
                   idle_timeout_s, t0)


def run_regress(n: int, *, first_seed: int = 0, simulator: str = "verilator", build_root=None,
                samples: int = 8, scheduler: str | None = None, workers: int | None = None,
                on_progress: ProgressFn | None = None, start_timeout_s: float = 120,
                idle_timeout_s: float = 3600) -> dict:
    """``n`` random configurations (seeds ``first_seed`` ...) simulated and compared with the model."""
    from .explore_regress import regress_point
    from .sim.runner import SIMULATORS
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"--regress = {n!r} is not valid; valid: an integer >= 1")
    if simulator not in SIMULATORS:
        raise ValueError(f"--simulator = {simulator!r} is not valid; valid: {', '.join(SIMULATORS)}")
    t0 = time.monotonic()
    with connected(scheduler, workers, start_timeout_s) as client:
        n_workers = len(client.scheduler_info(n_workers=-1)["workers"])
        seeds = list(range(first_seed, first_seed + n))
        kw = dict(simulator=simulator, samples=samples,
                  build_root=None if build_root is None else str(Path(build_root).resolve()))
        rows = _stream(client, [(regress_point, (s,), kw) for s in seeds],
                       lambda k, why: {"label": f"regress_seed{seeds[k]}", "seed": seeds[k], "status": "error",
                                       "error": why, "mismatches": 0},
                       on_progress, idle_timeout_s, t0)
    return {"regress": rows, "workers": n_workers, "scheduler": scheduler or "local",
            "wall_seconds": round(time.monotonic() - t0, 1),
            "counts": {s: sum(r["status"] == s for r in rows) for s in ("ok", "mismatch", "error")}}


def copy_best(net: Network, rows: list[dict], best: dict[str, int], out_dir: Path, cache_dir=None,
              samples=None, data_dir=None) -> dict[str, str]:
    """Each board's best bitstream and report into ``out_dir/BOARD/``. The worker's files are
    copied when this machine sees them; otherwise the point is built here from the (shared or
    local) cache, which gives the same bitstream."""
    from .boards.build import build
    copied = {}
    for board, k in best.items():
        r, dest = rows[k], out_dir / board
        src_bit, src_rep = r.get("bitstream"), r.get("report_path")
        if src_bit and src_rep and Path(src_bit).is_file() and Path(src_rep).is_file():
            dest.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src_bit, dest / Path(src_bit).name)
            shutil.copyfile(src_rep, dest / Path(src_rep).name)
            copied[board] = str(dest / Path(src_bit).name)
        else:
            p = Point(r["board"], tuple(r["lanes"]) if isinstance(r["lanes"], list) else r["lanes"],
                      r["weight_ram"], r["clock_mhz"], r["seed"])
            rep = build(board, net, out_dir=dest, cache_dir=cache_dir, samples=samples, data_dir=data_dir,
                        **p.build_kwargs())
            copied[board] = rep["bitstream"]
    return copied
