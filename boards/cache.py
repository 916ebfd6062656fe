"""The content-addressed build cache: one folder per design, named by a hash of everything that
shapes the products (the build plan's files, with every weight, and the tools' versions)."""
from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from .targets import Board
from .toolchain import tool_identity

__all__ = ["FLOW_VERSION", "cache_root", "design_key", "publish"]

# Bump when anything that shapes the products changes outside the plan's files.
FLOW_VERSION = 1


def cache_root(cache_dir=None) -> Path:
    """``cache_dir``, else ``$SPIKEGATE_CACHE/builds``, else ``~/.cache/spikegate/builds`` (XDG)."""
    if cache_dir is not None:
        return Path(cache_dir)
    env = os.environ.get("SPIKEGATE_CACHE")
    if env:
        return Path(env) / "builds"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "spikegate" / "builds"


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


def publish(done: Path, entry: Path) -> None:
    """Move a finished build folder into place as the cache entry, atomically.

    A concurrent build of the same design may have published first; its entry is as good as
    ours, so it stays unless it is incomplete.
    """
    try:
        os.replace(done, entry)
    except OSError:
        if not (entry / "result.json").is_file():
            shutil.rmtree(entry, ignore_errors=True)
            os.replace(done, entry)
