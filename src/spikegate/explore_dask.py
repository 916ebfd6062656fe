"""Running a sweep (:mod:`spikegate.explore`) on Dask distributed.

:func:`run_sweep` uses a ``LocalCluster`` (one single-threaded worker process per core) unless it
is given the address of a running scheduler; both take the same path from there. Rows stream
back as points finish and are reported through ``on_progress``. Every wait has a deadline: the
cluster must come up within ``start_timeout_s`` and some point must finish at least every
``idle_timeout_s``; points still pending then are recorded as errors, never left hanging.
"""
from __future__ import annotations

import inspect
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Callable

from .errors import UserError
from .explore import Point, best_per_board, pareto_front, point_row, run_point
from .model.network import Network

__all__ = ["EXPLORE_EXTRA", "open_client", "run_sweep", "copy_best", "check_points"]

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
        # and the build's progress redirection is per process.
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
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


def check_points(net: Network, points: list[Point]) -> None:
    """Refuse bad requests before any worker starts: clocks the PLL cannot make, lane counts the
    network cannot use, or a weight placement this build function does not take."""
    from .boards.build import build, default_max_events
    from .boards.targets import get_board
    from .boards.top import pll_for
    from .model.core import check_hardware
    for b, c in dict.fromkeys((p.board, p.clock_mhz) for p in points):
        try:
            pll_for(get_board(b), c)
        except ValueError as e:
            raise ValueError(f"--clock = {c:g} is not valid for {b}: {e}") from None
    for lanes in dict.fromkeys(p.lanes for p in points if p.lanes is not None):
        try:
            check_hardware(net, list(lanes) if isinstance(lanes, tuple) else lanes, default_max_events(net))
        except ValueError as e:
            raise ValueError(f"--lanes = {lanes} is not valid for this network: {e}") from None
    if any(p.weight_ram != "auto" for p in points) and "weight_ram" not in inspect.signature(build).parameters:
        raise UserError("--weight-ram block/spram needs a board build that takes weight_ram; this "
                        "version chooses the placement itself: use --weight-ram auto")


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
    client, cluster = open_client(scheduler, workers, start_timeout_s)
    try:
        n_workers = len(client.scheduler_info(n_workers=-1)["workers"])
        rows = _collect(client, net, points, out_dir, cache_dir, samples, data_dir, on_progress,
                        idle_timeout_s, t0)
        address = client.scheduler.address
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    wall = time.monotonic() - t0
    front = pareto_front(rows)
    best = best_per_board(rows)
    copied = copy_best(net, rows, best, out_dir, cache_dir, samples, data_dir)
    return {"network": {"name": net.name, "shape": list(net.shape), "digest": net.digest()},
            "scheduler": scheduler or "local", "address": address, "workers": n_workers,
            "points": rows, "pareto": front, "best": {b: rows[k]["label"] for b, k in best.items()},
            "best_index": best, "copied": copied, "wall_seconds": round(wall, 1),
            "counts": {s: sum(r["status"] == s for r in rows) for s in ("ok", "timing", "no-fit", "error")}}


def _collect(client, net, points, out_dir, cache_dir, samples, data_dir, on_progress, idle_timeout_s, t0):
    from distributed import wait
    tag = uuid.uuid4().hex[:8]
    netd = net.to_dict()
    [net_future] = client.scatter([netd], broadcast=True, hash=False)
    futures = {}
    for k, p in enumerate(points):
        f = client.submit(run_point, p, net_future, out_root=str(out_dir / "points"), cache_dir=cache_dir,
                          samples=samples, data_dir=None if data_dir is None else str(data_dir),
                          key=f"spikegate-explore-{tag}-{k}", pure=False, retries=0)
        futures[f] = k
    rows: list = [None] * len(points)
    pending = set(futures)
    done = 0
    while pending:
        try:
            finished = wait(pending, timeout=idle_timeout_s, return_when="FIRST_COMPLETED").done
        except TimeoutError:
            for f in pending:
                f.cancel()
                rows[futures[f]] = point_row(points[futures[f]], None, "error",
                                             f"no point finished within --timeout {idle_timeout_s:g} s; cancelled")
            break
        for f in finished:
            pending.discard(f)
            k = futures[f]
            if f.status == "finished":
                rows[k] = f.result()
            else:  # the worker died, or the task was cancelled by the scheduler
                exc = f.exception() if f.status == "error" else None
                rows[k] = point_row(points[k], None, "error", f"{f.status}: {exc!r}")
            done += 1
            if on_progress is not None:
                el = time.monotonic() - t0
                on_progress(done, len(points), el, el / done * (len(points) - done) if done < len(points) else 0.0,
                            rows[k])
    return rows


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
