"""Errors of a bitstream build (a design that does not fit raises :class:`.fit.ResourceError`)."""
from __future__ import annotations

from ..errors import UserError

__all__ = ["BuildError", "TimingError"]


class BuildError(UserError):
    """A tool failed; the message carries the tool's error lines and where its log is."""


class TimingError(BuildError):
    """Place and route finished but the design is slower than the clock constraint."""

    def __init__(self, message: str, report: dict):
        super().__init__(message)
        self.report = report
