"""The network description's value rules: widths and bounds, the encodings and reset modes, the
integer checks every field goes through, and the membrane leak.

:mod:`spikegate.model.network` builds layers and networks from these (and re-exports them);
the arithmetic they parametrise is :mod:`spikegate.model.lif`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "Leak", "NetworkFormatError", "FORMAT_NAME", "FORMAT_VERSION", "READABLE_VERSIONS", "ENCODINGS", "RESET_MODES", "LEAK_KINDS",
    "MAX_WEIGHT_BITS", "MAX_MEMBRANE_BITS", "MAX_NETWORK_FILE_BYTES", "MAX_REFRACTORY", "MAX_FRAC_BITS",
    "MAX_TIMESTEPS", "check_int", "int_array", "frozen_array",
]

FORMAT_NAME = "spikegate-network"
# Version 2 adds wave-2 layer features (layer kinds, delays, synaptic currents, recurrence,
# plasticity). A network that uses none of them is still written as version 1, byte for byte as
# before, so its file, its digest and every cache key derived from it do not change.
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)

# Bounds that keep every intermediate value of the contract inside int64 in the model and
# give the hardware generator widths it can always build.
MAX_WEIGHT_BITS = 16
MAX_MEMBRANE_BITS = 32
MAX_REFRACTORY = 255
MAX_FRAC_BITS = 16
MAX_TIMESTEPS = 4096
# Network files larger than this are refused before they are read (a pipe or /dev/zero would
# otherwise be read until memory runs out). The largest network that fits the largest supported
# board (4 Mibit of weights at 2 bits each: 2 Mi weights) takes under 16 MiB of JSON at up to 7
# characters a weight; 256 MiB leaves room for model-only networks 16 times larger.
MAX_NETWORK_FILE_BYTES = 256 << 20

ENCODINGS = ("rate", "poisson", "latency", "bernoulli")
RESET_MODES = ("zero", "subtract")
LEAK_KINDS = ("none", "shift", "multiply")


class NetworkFormatError(ValueError):
    """A network file that is corrupt, foreign, or of an unsupported version."""


def check_int(name: str, value: Any, lo: int | None = None, hi: int | None = None) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    value = int(value)
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        lo_s = "-inf" if lo is None else str(lo)
        hi_s = "+inf" if hi is None else str(hi)
        raise ValueError(f"{name} = {value} is out of range; valid: {lo_s} <= {name} <= {hi_s}")
    return value


def int_array(name: str, value: Any, ndim: int) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.integer)
                                 or (arr.size == 0 and arr.dtype == np.float64)):
        raise TypeError(f"{name} must be an integer array, got dtype {arr.dtype}")
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-dimensional, got shape {arr.shape}")
    return arr.astype(np.int64)


def frozen_array(arr: np.ndarray) -> np.ndarray:
    arr.flags.writeable = False
    return arr


@dataclass(frozen=True)
class Leak:
    """Membrane leak applied at the start of every non-refractory step.

    - ``none``: v unchanged.
    - ``shift`` with ``k >= 1``: ``v <- v - (v >>> k)`` (a decay of 2^-k per step).
    - ``multiply`` with ``0 <= m <= 2^F``: ``v <- (v * m) >>> F`` (a decay factor m / 2^F).

    ``>>>`` is an arithmetic shift: it rounds towards minus infinity.
    """
    kind: str = "none"
    k: int = 0
    m: int = 0
    frac_bits: int = 0

    @classmethod
    def none(cls) -> "Leak":
        return cls("none")

    @classmethod
    def shift(cls, k: int) -> "Leak":
        return cls("shift", k=k)

    @classmethod
    def multiply(cls, m: int, frac_bits: int) -> "Leak":
        return cls("multiply", m=m, frac_bits=frac_bits)

    def __post_init__(self):
        if self.kind not in LEAK_KINDS:
            raise ValueError(f"leak.kind = {self.kind!r} is not valid; valid: {', '.join(LEAK_KINDS)}")
        if self.kind == "shift":
            check_int("leak.k", self.k, 1, MAX_MEMBRANE_BITS)
        elif self.k != 0:
            raise ValueError(f"leak.k = {self.k!r} is only used by the 'shift' leak; leave it 0 for '{self.kind}'")
        if self.kind == "multiply":
            f = check_int("leak.frac_bits", self.frac_bits, 1, MAX_FRAC_BITS)
            check_int("leak.m", self.m, 0, 1 << f)
        elif self.m != 0 or self.frac_bits != 0:
            raise ValueError(f"leak.m / leak.frac_bits are only used by the 'multiply' leak; "
                             f"leave them 0 for '{self.kind}'")

    @property
    def factor(self) -> float:
        """The per-step decay factor this leak approximates (1.0 = no leak)."""
        if self.kind == "shift":
            return 1.0 - 2.0 ** -self.k
        if self.kind == "multiply":
            return self.m / (1 << self.frac_bits)
        return 1.0

    def to_dict(self) -> dict:
        if self.kind == "shift":
            return {"kind": "shift", "k": self.k}
        if self.kind == "multiply":
            return {"kind": "multiply", "m": self.m, "frac_bits": self.frac_bits}
        return {"kind": "none"}

    @classmethod
    def from_dict(cls, d: dict) -> "Leak":
        # A file's leak is data, so a wrong shape is a format error, not a Python call error.
        if not isinstance(d, dict):
            raise ValueError(f"leak = {d!r} is not valid; valid: an object such as "
                             '{"kind": "shift", "k": 4} (kinds: ' + ", ".join(LEAK_KINDS) + ")")
        unknown = set(d) - {"kind", "k", "m", "frac_bits"}
        if unknown:
            raise ValueError(f"leak has unknown field(s) {sorted(unknown)}; valid: kind, k, m, frac_bits")
        return cls(**d)
