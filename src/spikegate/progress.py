"""Progress reports on stderr for long work, shared by all commands.

On a terminal a single line is redrawn in place (at most ten times a second) with the fraction
done, the count, the elapsed time and an estimate of the time left. When stderr is not a terminal
(CI logs, pipes) the report is compact: one line when the work starts and one when it ends, so
logs stay short. Nothing ever goes to stdout, which belongs to the command's result (``--json``).
Set ``SPIKEGATE_PROGRESS=0`` to silence progress entirely, ``=1`` to force the terminal form.

Usage::

    with progress(len(batches), "simulating", unit="batch") as p:
        for b in batches:
            ...
            p.update()
    note("wrote build/top.bit")

Library functions never print: they take a ``progress`` factory with the signature of
:func:`progress` (``progress(total, desc, unit) -> context manager with update(n)``), default
:func:`silent`, and log one-line messages to the ``spikegate`` logger. The CLI passes
:func:`progress` and routes that logger here with :func:`log_to_stderr`.
"""
from __future__ import annotations

import logging
import os
import sys
import time

__all__ = ["Progress", "progress", "silent", "note", "log_to_stderr", "format_seconds"]

_MIN_REDRAW_S = 0.1


def _mode(stream) -> str:
    env = os.environ.get("SPIKEGATE_PROGRESS", "").strip().lower()
    if env in ("0", "off", "no", "false"):
        return "off"
    if env in ("1", "on", "yes", "true", "tty"):
        return "tty"
    try:
        return "tty" if stream.isatty() else "log"
    except (AttributeError, ValueError):
        return "log"


def format_seconds(s: float) -> str:
    if s < 60:
        return f"{s:.1f}s"
    m, s = divmod(int(s), 60)
    return f"{m}m{s:02d}s" if m < 60 else f"{m // 60}h{m % 60:02d}m"


class Progress:
    """A counter from 0 to ``total`` reported on ``stream`` (stderr by default)."""

    def __init__(self, total: int | None, desc: str, unit: str = "", stream=None):
        self.total = total if total is None else max(int(total), 0)
        self.desc = desc
        self.unit = unit
        self.stream = sys.stderr if stream is None else stream
        self.mode = _mode(self.stream)
        self.count = 0
        self.t0 = time.monotonic()
        self._last_draw = 0.0
        self._closed = False
        self._width = 0
        if self.mode == "log":
            what = f" ({self.total} {self.unit})" if self.total is not None and self.unit else ""
            self._write(f"{self.desc}{what} ...\n")
        elif self.mode == "tty":
            self._draw(force=True)

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):
            self.mode = "off"  # a closed or broken stderr must not break the work itself

    def _line(self) -> str:
        el = time.monotonic() - self.t0
        unit = f" {self.unit}" if self.unit else ""
        if self.total:
            frac = min(self.count / self.total, 1.0)
            eta = f", ~{format_seconds(el / frac - el)} left" if 0 < frac < 1 else ""
            return f"{self.desc}: {100 * frac:3.0f}% {self.count}/{self.total}{unit} [{format_seconds(el)}{eta}]"
        return f"{self.desc}: {self.count}{unit} [{format_seconds(el)}]"

    def _draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_draw < _MIN_REDRAW_S:
            return
        self._last_draw = now
        line = self._line()
        pad = " " * max(self._width - len(line), 0)
        self._width = len(line)
        self._write("\r" + line + pad)

    def update(self, n: int = 1) -> None:
        self.count += n
        if self.mode == "tty":
            self._draw()

    def close(self, failed: bool = False) -> None:
        if self._closed:
            return
        self._closed = True
        el = format_seconds(time.monotonic() - self.t0)
        unit = f" {self.unit}" if self.unit else ""
        status = "stopped" if failed else "done"
        if self.mode == "tty":
            self._draw(force=True)
            self._write(f"\r{self.desc}: {status}, {self.count}{unit} in {el}".ljust(self._width) + "\n")
        elif self.mode == "log":
            self._write(f"{self.desc}: {status}, {self.count}{unit} in {el}\n")

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(failed=exc_type is not None)


def progress(total: int | None, desc: str, unit: str = "", stream=None) -> Progress:
    """Start a progress report; use as a context manager and call ``update(n)``."""
    return Progress(total, desc, unit, stream)


def note(message: str, stream=None) -> None:
    """A one-line status message on stderr (silenced by ``SPIKEGATE_PROGRESS=0``)."""
    stream = sys.stderr if stream is None else stream
    if _mode(stream) == "off":
        return
    try:
        stream.write(message + "\n")
        stream.flush()
    except (OSError, ValueError):
        pass


class _Silent:
    """A progress report that reports nothing (what library functions use when given none)."""
    count = 0

    def update(self, n: int = 1) -> None:
        pass

    def __enter__(self) -> "_Silent":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        pass


def silent(total: int | None, desc: str, unit: str = "", stream=None) -> _Silent:
    """The do-nothing progress factory: the default of every library function's ``progress``."""
    return _Silent()


class _NoteHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        note(self.format(record))


def log_to_stderr() -> None:
    """Show the library's ``spikegate`` log messages (INFO and up) on stderr, as :func:`note`
    does. Idempotent: the CLI calls it on every invocation."""
    logger = logging.getLogger("spikegate")
    if not any(isinstance(h, _NoteHandler) for h in logger.handlers):
        logger.addHandler(_NoteHandler())
    logger.setLevel(logging.INFO)
