"""Optional dependencies: which extra a feature needs, and one clear error when it is missing.

The core install (numpy, scikit-learn, nir, h5py, pyserial) runs the model, the data sets, NIR
import/export and the host driver. Gateware needs the ``hw`` extra (Amaranth and its board
files; the YoWASP tools and programmers come with it too, but their own lookup names the missing
executable), RTL simulation the ``sim`` extra (Amaranth for the Verilog, cocotb to drive it).
Only Python packages are checked here, with :func:`importlib.util.find_spec`, so nothing heavy is
imported to find out.
"""
from __future__ import annotations

import importlib.util

from .errors import UserError

__all__ = ["EXTRAS", "MissingExtra", "missing_modules", "require_extra", "missing_extra_error"]

# extra -> the importable modules a command of that extra cannot start without
EXTRAS = {
    "hw": ("amaranth", "amaranth_boards"),
    "sim": ("amaranth", "cocotb"),
}


class MissingExtra(UserError):
    """An optional dependency group is not installed."""


def _missing(extra: str, modules: list[str]) -> MissingExtra:
    return MissingExtra(f"this command needs the '{extra}' extra: pip install \"spikegate[{extra}]\" "
                        f"({', '.join(modules)} not installed)")


def missing_modules(extra: str, modules=None) -> list[str]:
    """The modules of ``extra`` (or just ``modules`` of it) that cannot be imported here."""
    if extra not in EXTRAS:
        raise ValueError(f"extra = {extra!r} is not valid; valid: {', '.join(EXTRAS)}")
    wanted = EXTRAS[extra] if modules is None else modules
    if not set(wanted) <= set(EXTRAS[extra]):
        raise ValueError(f"modules = {list(wanted)} are not all in the {extra!r} extra; valid: {list(EXTRAS[extra])}")
    missing = []
    for name in wanted:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):  # a broken or half-removed installation
            found = False
        if not found:
            missing.append(name)
    return missing


def require_extra(extra: str, modules=None) -> None:
    """Raise :class:`MissingExtra` naming ``extra`` and how to install it when any of its modules
    (or of ``modules``, the ones a command needs from it) is missing."""
    missing = missing_modules(extra, modules)
    if missing:
        raise _missing(extra, missing)


def missing_extra_error(e: ModuleNotFoundError) -> Exception:
    """:class:`MissingExtra` for an import that failed on a module of an extra, else ``e`` itself."""
    root = (e.name or "").split(".")[0]
    for extra, modules in EXTRAS.items():
        if root in modules:
            return _missing(extra, [root])
    return e
