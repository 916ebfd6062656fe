"""The content-addressed build cache: one folder per design, named by a hash of everything that
shapes the products (the build plan's files, with every weight, and the tools' versions).

An entry is made in a scratch folder, given a ``manifest.json`` (size and sha256 of every file),
flushed to disk and renamed into place in one step, so the bitstream and its reports appear
together or not at all. Each use re-hashes the entry against its manifest: a damaged entry (a
truncated bitstream, a missing report) is logged, thrown away and rebuilt, never served. One lock
per design makes a second identical build wait for the first's result instead of running the flow
again. Scratch left by killed builds is pruned whenever the cache is opened (:mod:`..model.scratch`).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..model.scratch import (LockTimeout, fsync_dir, fsync_tree, locked, prune, remove_tree,
                             scratch_dir, scratch_name)
from .errors import BuildError
from .targets import Board
from .toolchain import tool_identity

__all__ = ["FLOW_VERSION", "BUILD_TIMEOUT_S", "LOCK_TIMEOUT_S", "MANIFEST", "LEGACY_DEBRIS", "CachedBuild", "CorruptEntry",
           "cache_root", "open_cache", "design_key", "entry_lock", "read_entry", "publish", "fetch"]

log = logging.getLogger(__name__)

# Bump when anything that shapes the products changes outside the plan's files.
FLOW_VERSION = 3  # 3: ECP5 read flip-flops into the block RAMs' output registers (boards.outreg)
MANIFEST = "manifest.json"
# Seconds the tools of one build get together by default (``build(timeout=...)``, `spikegate build
# --timeout`). The largest builds here (784-128-10 on the ULX3S, a conv network on the iCEBreaker)
# take under 10 minutes on one core; a tool that hangs ends the build with an error instead of
# holding it, and its entry's lock, for ever.
BUILD_TIMEOUT_S = 3600.0
# How long a build waits for another process building the same design: longer than that
# process's default deadline, so a default build finishes or fails before its waiters give up.
LOCK_TIMEOUT_S = 2 * BUILD_TIMEOUT_S
# Work folders of builds before scratch names carried their owner (".<key>-<random>").
LEGACY_DEBRIS = (".*",)


class CorruptEntry(Exception):
    """A cache entry that does not match its manifest (or has none)."""


@dataclass(frozen=True)
class CachedBuild:
    """A verified cache entry: the flow's result, the bitstream's bytes, whether it was reused."""
    key: str
    entry: Path
    result: dict
    bitstream: bytes
    cached: bool


def cache_root(cache_dir=None) -> Path:
    """``cache_dir``, else ``$SPIKEGATE_CACHE/builds``, else ``~/.cache/spikegate/builds`` (XDG)."""
    if cache_dir is not None:
        return Path(cache_dir)
    env = os.environ.get("SPIKEGATE_CACHE")
    if env:
        return Path(env) / "builds"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "spikegate" / "builds"


def open_cache(cache_dir=None) -> Path:
    """The cache folder (made if missing), with the debris of killed builds removed."""
    root = cache_root(cache_dir)
    root.mkdir(parents=True, exist_ok=True)
    prune(root, LEGACY_DEBRIS, log.info)
    return root


def design_key(plan, board: Board, tools: dict[str, str]) -> str:
    """The cache key of an Amaranth build plan on ``board`` with these tools (name -> path)."""
    h = hashlib.sha256()
    h.update(f"spikegate-build {FLOW_VERSION} {board.name}\n".encode())
    for name in sorted(plan.files):
        content = plan.files[name]
        if isinstance(content, str):
            content = content.encode()
        h.update(f"{name} {len(content)}\n".encode())
        h.update(content)
    for name in sorted(tools):
        h.update(f"tool {name} {tool_identity(name, tools[name])}\n".encode())
    return h.hexdigest()


def entry_lock(root: Path, key: str) -> Path:
    return root / f"{key}.lock"


def _digest(data: bytes) -> dict:
    return {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def read_entry(entry: Path, bitstream_name: str | None = None) -> tuple[dict, bytes]:
    """The flow's result and the bitstream of ``entry`` (named ``bitstream_name``, default: as the
    manifest says), every file checked against the manifest; raises :class:`CorruptEntry` naming
    the first problem."""
    try:
        manifest = json.loads((entry / MANIFEST).read_text())
        files = manifest["files"]
        bitstream_name = bitstream_name or manifest["bitstream"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CorruptEntry(f"no readable {MANIFEST} ({e})") from None
    for need in (bitstream_name, "result.json"):
        if need not in files:
            raise CorruptEntry(f"the manifest does not list {need}")
    data = {}
    for name, want in files.items():
        try:
            data[name] = (entry / name).read_bytes()
        except OSError as e:
            raise CorruptEntry(f"{name} is unreadable ({e.strerror})") from None
        got = _digest(data[name])
        if got != want:
            raise CorruptEntry(f"{name} has {got['size']} bytes, sha256 {got['sha256'][:16]}..., but the "
                               f"manifest says {want.get('size')} bytes, sha256 {str(want.get('sha256'))[:16]}...")
    try:
        result = json.loads(data["result.json"])
    except ValueError as e:
        raise CorruptEntry(f"result.json is not JSON ({e})") from None
    return result, data[bitstream_name]


def publish(staged: Path, entry: Path, bitstream_name: str) -> None:
    """Give the finished folder ``staged`` its manifest, flush it to disk and rename it to ``entry``
    in one step; an existing ``entry`` (``--force``, or a damaged one) is moved aside first.
    The caller holds the entry's lock."""
    files = {p.name: _digest(p.read_bytes()) for p in sorted(staged.iterdir()) if p.is_file()}
    manifest = {"flow_version": FLOW_VERSION, "bitstream": bitstream_name, "files": files}
    (staged / MANIFEST).write_text(json.dumps(manifest, indent=1))
    fsync_tree(staged)
    old = None
    if entry.exists():
        old = entry.parent / scratch_name(".old")
        os.rename(entry, old)
    os.rename(staged, entry)
    fsync_dir(entry.parent)
    if old is not None:
        remove_tree(old)


def fetch(root: Path, key: str, bitstream_name: str, make: Callable[[Path, Path], None], *,
          force: bool = False, progress: Callable[[str], None] = lambda text: None,
          lock_timeout: float = LOCK_TIMEOUT_S) -> CachedBuild:
    """The verified entry ``key`` of the cache ``root``; built first with ``make(work, products)``
    when missing, damaged or ``force``d.

    ``make`` runs the tools in the scratch folder ``work`` and leaves the entry's files (the
    bitstream named ``bitstream_name``, ``result.json``, reports) in the empty folder ``products``.
    Concurrent calls for one key run ``make`` once: the others wait (at most ``lock_timeout``
    seconds) and get its entry.
    """
    entry = root / key
    try:
        with locked(entry_lock(root, key), timeout=lock_timeout, what=f"the build cache entry {key[:12]}",
                    on_wait=progress):
            if not force and entry.exists():
                try:
                    result, bit = read_entry(entry, bitstream_name)
                    return CachedBuild(key, entry, result, bit, True)
                except CorruptEntry as e:
                    log.warning("the cached build %s is damaged (%s); rebuilding it", entry, e)
            stage = scratch_dir(root, f".build-{key[:12]}")
            try:
                products = stage / "entry"
                products.mkdir()
                make(stage, products)
                publish(products, entry, bitstream_name)
            finally:
                remove_tree(stage)
            result, bit = read_entry(entry, bitstream_name)
            return CachedBuild(key, entry, result, bit, False)
    except LockTimeout as e:
        raise BuildError(str(e)) from None
