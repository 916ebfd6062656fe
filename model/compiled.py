"""A dense layer's drive (bias plus exact synaptic sums) from a compiled kernel (numba): the fast
path's heaviest step (:func:`spikegate.model.fastsim.layer_drive`).

The kernel computes exactly what the numpy paths compute (:mod:`spikegate.model.fastsyn`,
:mod:`spikegate.model.patterns`): per sample and step, the bias plus the sum of the weight rows of
the inputs that spiked. It only sums; the neuron arithmetic stays in numpy
(:func:`spikegate.model.fastsim.run_drive`), written once. Per sample and group of up to eight
steps it forms each input's spike pattern over the group (its code, as in ``patterns``), adds the
weight row of every active input to its code's row of G, and adds to each step's sums the G rows
of the codes with that step's bit: one row addition per active input and one per (code, step),
not one per spike, with every row in the core's cache.

Integer arithmetic in the narrowest type that is exact: every value formed is the bias plus a
subset sum of a weight column, so its magnitude is at most |bias| + the column's absolute sum
(:func:`accumulator_dtype`). numba compiles the kernel once per argument types and keeps it in its
on-disk cache (``cache=True``), so later processes load it.

When the kernel runs is :data:`MODE` (environment variable ``SPIKEGATE_JIT``): ``auto`` (the
default) takes it once this process has spent :data:`LOAD_AFTER` seconds in the numpy paths'
drives, about what importing numba and loading the kernel costs, so a short run (one command on
the digits split) never pays that and a long one (sweeps, training, benchmarks) pays it at most
once, when it has already spent as much; ``on`` takes it from the first call, ``off`` never.
Without numba the numpy paths run. Both are exact, so the choice only moves time.
"""
from __future__ import annotations

import contextlib
import importlib.util
import logging
import os

import numpy as np

from .fastsyn import column_bound

log = logging.getLogger(__name__)

__all__ = ["MODE", "MODES", "LOAD_AFTER", "GROUP_STEPS", "accumulator_dtype", "code_drive", "ready", "spent",
           "switched", "wanted"]

# Steps per code: an 8-bit code indexes a 256-entry table, which stays in the cache however
# random the spikes are.
GROUP_STEPS = 8
_ACCUMULATORS = ((np.int16, 1 << 15), (np.int32, 1 << 31))

MODES = ("auto", "on", "off")
MODE = os.environ.get("SPIKEGATE_JIT", "").strip().lower() or "auto"
# Seconds in the numpy paths' drives after which ``auto`` loads the kernel: on the development
# machine importing numba takes 0.27 s and loading the cached kernel on its first call 0.45 s.
LOAD_AFTER = 0.7
_numpy_seconds = 0.0
_kernel = None
_broken = False  # numba is installed but does not import
_BIT_COUNT = np.array([bin(c).count("1") for c in range(1 << GROUP_STEPS)], np.int64)
_BIT_STEPS = np.array([[t for t in range(GROUP_STEPS) if c >> t & 1] + [0] * (GROUP_STEPS - int(_BIT_COUNT[c]))
                       for c in range(1 << GROUP_STEPS)], np.int64)


@contextlib.contextmanager
def switched(on: bool):
    """Within the block the fast path takes the kernel from the first call (``on``, when numba
    imports) or never; for tests and benchmarks that measure or check both. Yields whether the
    kernel runs."""
    global MODE
    kept = MODE
    MODE = "on" if on else "off"
    try:
        yield bool(on) and ready()
    finally:
        MODE = kept


def wanted() -> bool:
    """Whether a dense layer's drive comes from the kernel now (:data:`MODE`)."""
    if MODE not in MODES:
        raise ValueError(f"SPIKEGATE_JIT = {MODE!r} is not valid; valid: {', '.join(MODES)}")
    if MODE == "off" or (MODE == "auto" and _numpy_seconds < LOAD_AFTER):
        return False
    return ready()


def spent(seconds: float) -> None:
    """Counts time spent in the numpy paths' drives, which ``auto`` weighs against loading."""
    global _numpy_seconds
    _numpy_seconds += seconds


def accumulator_dtype(weights: np.ndarray, bias: np.ndarray):
    """int16 or int32, the narrowest in which the bias plus any subset sum of a weight column is
    exact (narrower: more additions per SIMD instruction), or None when int32 is not enough."""
    bound = int(np.abs(bias).max(initial=0)) + column_bound(weights)
    for dtype, limit in _ACCUMULATORS:
        if bound < limit:
            return dtype
    return None


def code_drive(weights: np.ndarray, bias: np.ndarray, spikes: np.ndarray, sample_major: bool, state) -> np.ndarray:
    """``bias + spikes @ weights`` step-major [T, batch, n] in the integer type ``state`` for bool
    spikes [batch, T, n_in] (``sample_major``) or [T, batch, n_in]; ``weights`` [n_in, n] and
    ``bias`` [n] in :func:`accumulator_dtype`, which the caller has checked; ``state`` holds
    every drive value (the steps' sums are added up in it; it is at least as wide as the
    accumulator type whenever it is the layer's own type or that accumulator type)."""
    if not ready():
        raise RuntimeError("the compiled drive needs numba, which is missing or does not import")
    if spikes.dtype != bool:  # the kernel reads each spike as a 0/1 byte
        raise ValueError(f"spikes must be a bool array, got dtype {spikes.dtype}")
    T, batch = (spikes.shape[1], spikes.shape[0]) if sample_major else spikes.shape[:2]
    n_in = spikes.shape[2]
    drive = np.empty((T, batch, weights.shape[1]), state)
    if not drive.size:
        return drive
    if n_in % 8 or not spikes.flags.c_contiguous:
        # The kernel reads eight inputs as one 64-bit word, so a row must fill whole words.
        padded = np.zeros(spikes.shape[:2] + (-(-n_in // 8) * 8,), bool)
        padded[..., :n_in] = spikes
        spikes = padded
    words = spikes.view(np.uint64)
    _kernel(words if sample_major else words.transpose(1, 0, 2), n_in, weights, bias, drive, _BIT_STEPS, _BIT_COUNT)
    return drive


def ready() -> bool:
    """Whether the kernel can run: numba imports (the first call imports it and wraps the
    kernel). A numba that is installed but fails to import (say, built for another numpy) gives
    one logged warning, and the numpy paths run."""
    global _kernel, _broken
    if _kernel is None and not _broken:
        if importlib.util.find_spec("numba") is None:
            return False
        try:
            import numba  # here, not at the top: importing it costs about 0.3 s
        except ImportError as e:
            log.warning("numba does not import (%s): the model runs its numpy paths", e)
            _broken = True
            return False
        _kernel = numba.njit(cache=True, nogil=True)(_code_drive)
    return _kernel is not None


def _code_drive(words, n_in, weights, bias, drive, bit_steps, bit_count):
    """The kernel (plain Python until numba compiles it). ``words`` uint64 [batch, T, n_in / 8] in
    any layout, each the 0/1 bytes of eight inputs' spikes; ``drive`` [T, batch, n] written
    whole; ``bit_steps[c, :bit_count[c]]`` the set bits of code c."""
    batch, T, n_words = words.shape
    n = weights.shape[1]
    rows = min(n_in, (1 << GROUP_STEPS) - 1)  # distinct nonzero codes one sample can have
    G = np.empty((rows, n), weights.dtype)
    slot = np.full(1 << GROUP_STEPS, -1, np.int64)  # code -> its row of G in this sample, or -1
    code_of_row = np.empty(rows, np.int64)
    code_words = np.empty(n_words, np.uint64)
    codes = code_words.view(np.uint8)  # input i's code is byte i
    active = np.empty(n_in, np.int64)
    for b in range(batch):
        for t0 in range(0, T, GROUP_STEPS):
            steps = min(GROUP_STEPS, T - t0)
            # Each byte of a word is 0 or 1, so shifting the word by t < 8 moves every byte's
            # bit to bit t of the same byte: eight codes formed per operation, never carrying.
            for w in range(n_words):
                code_words[w] = words[b, t0, w]
            for t in range(1, steps):
                for w in range(n_words):
                    code_words[w] |= words[b, t0 + t, w] << np.uint64(t)
            # The active inputs listed without a branch per input: most inputs are silent, and a
            # data-dependent branch on each would be mispredicted often.
            na = 0
            for i in range(n_in):
                active[na] = i
                na += codes[i] != 0
            used = 0
            for a in range(na):
                i = active[a]
                c = codes[i]
                k = slot[c]
                if k < 0:
                    k = used
                    slot[c] = k
                    code_of_row[k] = c
                    used += 1
                    for j in range(n):
                        G[k, j] = weights[i, j]
                else:
                    for j in range(n):
                        G[k, j] += weights[i, j]
            # Each step's sums go straight into its drive row, in a type at least as wide as G's.
            for t in range(steps):
                row = drive[t0 + t, b]
                for j in range(n):
                    row[j] = bias[j]
            for k in range(used):
                c = code_of_row[k]
                slot[c] = -1
                # The steps of the code's set bits from a table: a test of each bit would be a
                # branch mispredicted about every other time.
                for q in range(bit_count[c]):
                    row = drive[t0 + bit_steps[c, q], b]
                    for j in range(n):
                        row[j] += G[k, j]
