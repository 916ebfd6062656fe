"""What is in spikegate's two caches, and clearing them safely (``spikegate cache``).

The bitstream build cache (:func:`spikegate.boards.cache.cache_root`, ``$SPIKEGATE_CACHE/builds``)
holds one verified entry per design; the simulator build cache
(:func:`spikegate.sim.runner.default_build_root`, ``$SPIKEGATE_SIM_CACHE``) one compiled model
per design plus Verilator's shared runtime objects. Both hold scratch of running (or killed)
processes and lock files.

Clearing removes every entry whose lock it can take at once (a build in progress, or a simulation
running on a model, holds it: that entry stays, reported as in use), the scratch of processes that
are gone, and the debris of older versions. Lock files stay: removing one that another process has
open would let two processes hold "the" lock at once. An entry is moved aside in one rename
before it is deleted, so a reader never sees half of one.
"""
from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .boards import cache as build_cache
from .model.scratch import (LockTimeout, is_locked, locked, owner_pid, remove_tree, scratch_name,
                            stale, tree_size)
from .sim import runner as sim_cache

__all__ = ["AREAS", "CacheItem", "CacheArea", "CacheReport", "manage_caches"]

AREAS = ("build", "sim")

_BUILD_ENTRY = re.compile(r"[0-9a-f]{64}$")
_SIM_ENTRY = re.compile(rf"({'|'.join(sim_cache.SIMULATORS)})-[0-9a-f]{{20}}$")
_RUNTIME = re.compile(r"verilator-runtime-[0-9a-f]{16}$")


@dataclass
class CacheItem:
    """One file or folder of a cache: ``kind`` is entry, runtime, scratch, debris, lock or other;
    ``status`` ok, damaged (with why), in use, stale, removed or kept."""
    name: str
    kind: str
    bytes: int
    status: str


@dataclass
class CacheArea:
    name: str
    path: str
    items: list[CacheItem] = field(default_factory=list)
    total_bytes: int = 0
    removed_bytes: int = 0


@dataclass
class CacheReport:
    action: str
    areas: list[CacheArea]

    @property
    def total_bytes(self) -> int:
        return sum(a.total_bytes for a in self.areas)

    @property
    def removed_bytes(self) -> int:
        return sum(a.removed_bytes for a in self.areas)

    def to_dict(self) -> dict:
        return {"action": self.action, "areas": [asdict(a) for a in self.areas],
                "total_bytes": self.total_bytes, "removed_bytes": self.removed_bytes}


def _roots(build_dir=None, sim_dir=None) -> dict[str, Path]:
    return {"build": build_cache.cache_root(build_dir),
            "sim": Path(sim_dir) if sim_dir is not None else sim_cache.default_build_root()}


def _classify(area: str, p: Path) -> tuple[str, Path | None]:
    """(kind, its lock file or None)."""
    name = p.name
    if name.endswith(".lock"):
        return "lock", None
    if owner_pid(name) is not None:
        return "scratch", None
    if area == "build" and _BUILD_ENTRY.match(name) and p.is_dir():
        return "entry", build_cache.entry_lock(p.parent, name)
    if area == "sim" and _SIM_ENTRY.match(name) and p.is_dir():
        return "entry", sim_cache.build_lock(p)
    if area == "sim" and _RUNTIME.match(name) and p.is_dir():
        return "runtime", sim_cache.build_lock(p)
    legacy = build_cache.LEGACY_DEBRIS if area == "build" else sim_cache.LEGACY_DEBRIS
    if any(fnmatch.fnmatchcase(name, pat) for pat in legacy):
        return "debris", None
    return "other", None


def _health(area: str, p: Path) -> str:
    if area == "build":
        try:
            build_cache.read_entry(p)
        except build_cache.CorruptEntry as e:
            return f"damaged: {e}"
        return "ok"
    return "ok" if (p / sim_cache.MARKER).exists() else "damaged: no build marker"


def _remove_locked(p: Path, lock: Path) -> bool:
    """Remove the entry ``p`` if its lock is free right now (True), else leave it (False)."""
    try:
        with locked(lock, timeout=0, what=f"the cache entry {p.name}"):
            aside = p.with_name(scratch_name(".old"))
            os.rename(p, aside)
            remove_tree(aside)
    except LockTimeout:
        return False
    return True


def _area(area: str, root: Path, clear: bool) -> CacheArea:
    out = CacheArea(area, str(root))
    try:
        items = sorted(root.iterdir())
    except FileNotFoundError:
        return out
    busy_area = any(p.name.endswith(".lock") and is_locked(p) for p in items)
    for p in items:
        kind, lock = _classify(area, p)
        size = tree_size(p)
        if kind in ("entry", "runtime"):
            status = "in use" if is_locked(lock) else (_health(area, p) if kind == "entry" else "ok")
        elif kind == "scratch":
            status = "stale" if stale(p) else "in use"
        elif kind == "debris":
            status = "in use" if busy_area else "stale"
        else:
            status = "kept"
        if clear and status != "in use" and kind != "lock" and kind != "other":
            # The runtime is copied into every Verilator build: it goes only when nothing builds.
            if kind == "runtime" and busy_area:
                status = "in use"
            elif lock is not None:
                status = "removed" if _remove_locked(p, lock) else "in use"
            else:
                remove_tree(p)
                status = "removed"
            if status == "removed":
                out.removed_bytes += size
        if status != "removed":
            out.total_bytes += size
        out.items.append(CacheItem(p.name, kind, size, status))
    return out


def manage_caches(*, clear: bool = False, areas=AREAS, build_dir=None, sim_dir=None) -> CacheReport:
    """List (and with ``clear``, empty) the caches named in ``areas`` ("build", "sim").

    ``build_dir`` / ``sim_dir`` override the caches' locations (default: their environment
    variables, then ``~/.cache/spikegate``). Sizes are bytes; ``total_bytes`` is what stays.
    """
    areas = list(areas)
    for a in areas:
        if a not in AREAS:
            raise ValueError(f"cache area = {a!r} is not valid; valid: {', '.join(AREAS)}")
    roots = _roots(build_dir, sim_dir)
    return CacheReport("clear" if clear else "info", [_area(a, roots[a], clear) for a in areas])
