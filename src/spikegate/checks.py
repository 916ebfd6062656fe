"""Checks of command-line values, run before any work: a bad value fails in milliseconds with a
message naming the option, the value and what is valid, never after minutes of synthesis or
simulation and never naming an internal temporary file.

Every function raises :class:`~spikegate.errors.UserError` and returns the checked value.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

from .errors import UserError

__all__ = ["check_int", "check_float", "check_output_file", "check_output_dir", "check_input_file",
           "check_input_dir"]


def check_int(option: str, value, lo: int | None = None, hi: int | None = None):
    """``value`` (None passes) is an integer with ``lo <= value <= hi`` (None: unbounded)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or (lo is not None and value < lo) \
            or (hi is not None and value > hi):
        if lo is not None and hi is not None:
            valid = f"an integer from {lo} to {hi}"
        elif lo is not None:
            valid = f"an integer >= {lo}"
        else:
            valid = f"an integer <= {hi}"
        raise UserError(f"{option} = {value!r} is not valid; valid: {valid}")
    return value


def check_float(option: str, value, lo: float | None = None, hi: float | None = None, *,
                lo_open: bool = False):
    """``value`` (None passes) is a finite number in [lo, hi] (``lo_open``: lo itself excluded)."""
    if value is None:
        return None
    bad = isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
    if not bad:
        bad = (lo is not None and (value <= lo if lo_open else value < lo)) or (hi is not None and value > hi)
    if bad:
        lo_s = "" if lo is None else f"{lo:g} {'<' if lo_open else '<='} "
        hi_s = "" if hi is None else f" <= {hi:g}"
        raise UserError(f"{option} = {value!r} is not valid; valid: a finite number {lo_s}{option}{hi_s}".strip())
    return value


def _writable_dir(option: str, path: str, parent: Path) -> None:
    if not parent.exists():
        raise UserError(f"{option} = {path!r} is not valid: the output directory {str(parent)!r} does not exist; "
                        "valid: a path in an existing, writable directory")
    if not parent.is_dir():
        raise UserError(f"{option} = {path!r} is not valid: {str(parent)!r} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"{option} = {path!r} is not valid: the directory {str(parent)!r} is not writable")


def _path(option: str, path, what: str) -> Path:
    text = os.fspath(path)
    if text == "" or "\0" in text:
        raise UserError(f"{option} = {text!r} is not valid; valid: a {what} path")
    return Path(text)


def check_output_file(option: str, path):
    """``path`` (None passes) can be written as a file: it is not a directory, and its directory exists
    and is writable (outputs are written atomically beside their final name)."""
    if path is None:
        return None
    p, text = _path(option, path, "file"), os.fspath(path)
    if p.is_dir():
        raise UserError(f"{option} = {text!r} is a directory; valid: a file path")
    if p.exists() and not p.is_file():
        raise UserError(f"{option} = {text!r} is not a regular file (a device or a pipe); valid: a file path")
    if p.exists() and not os.access(p, os.W_OK):
        raise UserError(f"{option} = {text!r} exists and is not writable")
    _writable_dir(option, text, p.parent if str(p.parent) else Path("."))
    return path


def check_output_dir(option: str, path):
    """``path`` (None passes) is a writable directory or can be made as one: it is not a file, and
    its nearest existing ancestor is a writable directory."""
    if path is None:
        return None
    p, text = _path(option, path, "directory"), os.fspath(path)
    if p.exists():
        if not p.is_dir():
            raise UserError(f"{option} = {text!r} is not a directory; valid: a directory path (it is made if missing)")
        if not os.access(p, os.W_OK | os.X_OK):
            raise UserError(f"{option} = {text!r} is not writable")
        return path
    ancestor = p.absolute().parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise UserError(f"{option} = {text!r} is not valid: {str(ancestor)!r} is a file, not a directory")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise UserError(f"{option} = {text!r} cannot be made: {str(ancestor)!r} is not writable")
    return path


def _existing(option: str, path, what: str) -> Path:
    text = os.fspath(path)
    if text == "" or "\0" in text or not Path(text).exists():
        raise UserError(f"{option} = {text!r} does not exist; valid: an existing {what}")
    return Path(text)


def check_input_file(option: str, path, max_bytes: int | None = None):
    """``path`` (None passes) is an existing, readable regular file of at most ``max_bytes``."""
    if path is None:
        return None
    p, text = _existing(option, path, "file"), os.fspath(path)
    if p.is_dir():
        raise UserError(f"{option} = {text!r} is a directory; valid: a file")
    if not p.is_file():
        raise UserError(f"{option} = {text!r} is not a regular file (a device or a pipe); valid: a file")
    if not os.access(p, os.R_OK):
        raise UserError(f"{option} = {text!r} is not readable")
    if max_bytes is not None and p.stat().st_size > max_bytes:
        raise UserError(f"{option} = {text!r} is {p.stat().st_size} bytes; valid: a file of at most "
                        f"{max_bytes} bytes")
    return path


def check_input_dir(option: str, path):
    """``path`` (None passes) is an existing, readable directory."""
    if path is None:
        return None
    p, text = _existing(option, path, "directory"), os.fspath(path)
    if not p.is_dir():
        raise UserError(f"{option} = {text!r} is not a directory; valid: an existing directory")
    if not os.access(p, os.R_OK | os.X_OK):
        raise UserError(f"{option} = {text!r} is not readable")
    return path
