"""Exact synaptic sums grouped by spike pattern, for the layer-major fast path
(:mod:`spikegate.model.fastsim`).

Over a sample's T steps each input's spikes form a T-bit pattern (its *code*: bit t set when it
spikes at step t). Inputs of one sample with the same code add their weights at the same steps,
so with ``G[c, b] = sum of W[i] over the inputs i of sample b whose code is c``

    sum_i s[b, t, i] W[i] = sum over the codes c with bit t set of G[c, b].

``G`` costs one weight-row addition per active (sample, input) pair rather than one per spike,
and the second sum one row of ``G`` per (step, code) pair. Deterministic codes make few distinct
codes (the rate code: 22 over the MNIST subset at T = 8, where a sample's ~150 active inputs
spike ~820 times), so when a batch is large enough to repay the indexing this is about half the
work of the float product over every (step, sample) row (:mod:`spikegate.model.fastsyn`). Random
spikes make many codes and the product stays cheaper; :func:`pattern_cost` and
:func:`product_cost` estimate both from the codes, and :func:`spikegate.model.fastsim.layer_drive`
takes the cheaper. Either is exact, so the choice only moves time.

Every sum formed here, partial ones included, is a sum of a subset of one weight column, so it
is bounded by the column's absolute sum (:func:`spikegate.model.fastsyn.column_bound`): int16
arithmetic is exact when that bound is below 2^15, which is the only case this module handles.
"""
from __future__ import annotations

import numpy as np

__all__ = ["MAX_STEPS", "INT16_BOUND", "spike_codes", "Patterns", "pattern_cost", "product_cost", "prefer_patterns",
           "pattern_drive", "Router", "MIN_BATCH", "PROBE_SAMPLES", "REPROBE",
           "CHUNK_SAMPLES", "SMALL_STEP_SUMS"]

# Codes up to 16 bits: uint8 / uint16 codes, whose stable argsort numpy does as a radix sort.
MAX_STEPS = 16
# Sums of subsets of a column whose absolute sum is below this are exact in int16.
INT16_BOUND = 1 << 15
# Samples per block of the float product (fastsyn.BLOCK_ROWS rows at T = 8), for its estimate.
_PRODUCT_BLOCK_SAMPLES = 16

# Time per unit of work on the 2-core development machine (ns), from `bench/model_speed.py`'s
# MNIST and digits runs: float product multiply-adds; weight-row element additions in the sparse
# product and in the step sums; index work per active (sample, input); per input slot of the
# codes; per drive element cast; per numpy call; and the fixed cost of one pattern evaluation.
_NS_PRODUCT_MAC = 0.04
_NS_SPARSE_ADD = 0.14
_NS_STEP_ADD = 0.09
_NS_INDEX = 25.0
_NS_SLOT = 2.0
_NS_CAST = 1.0
_NS_CALL = 1_500.0
_NS_FIXED = 40_000.0
# Below this many samples the pattern path's fixed cost is never repaid; the probe judges the rest.
MIN_BATCH = 16
PROBE_SAMPLES = 64
REPROBE = 32
# Up to this many drive values per step the step sums are one float product (fewer numpy calls);
# above it, int16 additions of whole G rows (less memory traffic).
SMALL_STEP_SUMS = 1 << 14
# Samples per chunk of the pattern path. On the MNIST subset's test split (2,000 samples, 128
# neurons), best / median of 25 interleaved runs: 256 samples 14.1 / 15.0 ms, 512 13.4 / 14.7,
# 1,024 17.0 / 18.8, the whole batch at once 18.6 / 19.9 (its G no longer fits the cache).
CHUNK_SAMPLES = 512


def _steps_batch(spikes: np.ndarray, sample_major: bool) -> tuple[int, int]:
    """(T, batch) of spikes [batch, T, n_in] (``sample_major``) or [T, batch, n_in]."""
    return (spikes.shape[1], spikes.shape[0]) if sample_major else spikes.shape[:2]


def spike_codes(spikes: np.ndarray, sample_major: bool) -> np.ndarray:
    """Each input's code [batch, n_in] (uint8 for T <= 8, else uint16) from bool spikes
    [batch, T, n_in] (``sample_major``) or [T, batch, n_in]; T must be at most MAX_STEPS."""
    steps = _steps_batch(spikes, sample_major)[0]
    if steps > MAX_STEPS:
        raise ValueError(f"timesteps = {steps} is not valid for spike codes; valid: 1..{MAX_STEPS}")
    if steps <= 8:
        return _byte_codes(spikes, sample_major)
    lo = _byte_codes(spikes[:, :8] if sample_major else spikes[:8], sample_major).astype(np.uint16)
    hi = _byte_codes(spikes[:, 8:] if sample_major else spikes[8:], sample_major).astype(np.uint16)
    return lo | (hi << 8)


def _byte_codes(spikes: np.ndarray, sample_major: bool) -> np.ndarray:
    """Codes of at most 8 steps as uint8 [batch, n_in]."""
    steps = _steps_batch(spikes, sample_major)[0]
    n_in = spikes.shape[-1]
    u = spikes.view(np.uint8)
    if n_in % 8 == 0 and spikes.flags.c_contiguous:
        # Eight inputs per 64-bit word: each byte holds 0 or 1, so a word times 2^t (t < 8)
        # moves every byte's bit to bit t of the same byte, and the sum over the steps never
        # carries from one byte into the next.
        u = u.view(np.uint64)
    weights = np.array([1 << t for t in range(steps)], u.dtype)
    codes = np.einsum("btn,t->bn" if sample_major else "tbn,t->bn", u, weights)
    return codes.view(np.uint8).reshape(codes.shape[0], n_in)


class Patterns:
    """The active (sample, input) pairs of ``codes`` [batch, n_in] grouped by code: ``table``
    the distinct nonzero codes, ascending; ``count[k]`` how many pairs have code ``table[k]``;
    ``active`` how many pairs in all."""

    def __init__(self, codes: np.ndarray):
        self.batch, self.n_in = codes.shape
        flat = codes.reshape(-1)
        self._where = np.flatnonzero(flat != 0)
        self._values = flat[self._where]
        present = np.bincount(self._values, minlength=2)
        present[0] = 0
        self.table = np.flatnonzero(present)
        self.count = present[self.table]
        self.active = len(self._where)

    def steps_using(self, t: int) -> np.ndarray:
        """Positions in ``table`` of the codes with bit ``t`` set."""
        return np.flatnonzero((self.table >> t) & 1)

    def step_rows(self, T: int) -> int:
        """Rows of ``G`` the step sums add up: (step, code) pairs with the code's bit set."""
        return sum(len(self.steps_using(t)) for t in range(T))

    def code_sums(self, weights16: np.ndarray) -> np.ndarray:
        """``G`` int16 [codes, batch, n]: per code and sample, the sum of the weight rows of the
        inputs with that code (int16 weights whose column bound is below INT16_BOUND)."""
        C, B = len(self.table), self.batch
        # A stable sort keeps each code's pairs in (sample, input) order: the rows of a CSR
        # matrix with one row per (code, sample) and a 1 per input with that code.
        where = self._where[np.argsort(self._values, kind="stable")]
        samples, inputs = np.divmod(where, self.n_in)
        rows = np.repeat(np.arange(C), self.count) * B + samples
        indptr = np.zeros(C * B + 1, np.int64)
        np.cumsum(np.bincount(rows, minlength=C * B), out=indptr[1:])
        index = np.int32 if self.active < (1 << 31) else np.int64
        import scipy.sparse  # here, not at the top: a third of the time `spikegate` takes to import
        grouping = scipy.sparse.csr_matrix(
            (np.ones(self.active, np.int16), inputs.astype(index), indptr.astype(index)), shape=(C * B, self.n_in))
        return np.asarray(grouping @ weights16).reshape(C, B, weights16.shape[1])


def _per_chunk_cost(step_rows: int, T: int) -> float:
    """The fixed part of one chunk's :func:`pattern_drive` work (ns)."""
    return _NS_CALL * (step_rows + T) + _NS_FIXED


def pattern_cost(p: Patterns, T: int, n_out: int, batch: int | None = None) -> float:
    """Estimated time (ns) of :func:`pattern_drive` over ``batch`` samples (default: those of
    ``p``) whose codes are like those of ``p``."""
    batch = p.batch if batch is None else batch
    step_rows = p.step_rows(T)
    per_sample = (_NS_SPARSE_ADD * p.active * n_out + _NS_STEP_ADD * step_rows * p.batch * n_out
                  + _NS_INDEX * p.active + _NS_SLOT * p.batch * p.n_in + _NS_CAST * T * p.batch * n_out) / p.batch
    return batch * per_sample + -(-batch // CHUNK_SAMPLES) * _per_chunk_cost(step_rows, T)


def product_cost(codes: np.ndarray, T: int, n_out: int) -> float:
    """Estimated time (ns) of the float product over every (step, sample) row, compacted per
    block of samples to the inputs the block uses (:func:`spikegate.model.fastsyn.drive_sample_major`)."""
    active = codes != 0
    starts = np.arange(0, len(active), _PRODUCT_BLOCK_SAMPLES)
    if not len(starts):
        return 0.0
    used = np.logical_or.reduceat(active, starts, axis=0).sum(axis=1)
    samples = np.diff(np.append(starts, len(active)))
    return _NS_PRODUCT_MAC * T * n_out * float((used * samples).sum())


def prefer_patterns(spikes: np.ndarray, sample_major: bool, n_out: int) -> bool:
    """Whether :func:`pattern_drive` is estimated faster than the float product for bool spikes
    [batch, T, n_in] (``sample_major``) or [T, batch, n_in], judged on the first PROBE_SAMPLES
    samples."""
    T, batch = _steps_batch(spikes, sample_major)
    if T > MAX_STEPS or batch < MIN_BATCH:
        return False
    probe = spikes[:PROBE_SAMPLES] if sample_major else spikes[:, :PROBE_SAMPLES]
    codes = spike_codes(probe, sample_major)
    if not codes.any():
        return False  # no spikes: both paths are a bias fill; the product's is the simpler
    scale = batch / len(codes)
    return pattern_cost(Patterns(codes), T, n_out, batch) < scale * product_cost(codes, T, n_out)


class Router:
    """Which drive one layer's calls take. A probe costs about a tenth of a millisecond, a large
    part of a small batch's run, so its answer is kept per kind of call (steps, input order,
    batch size to a power of two) and asked again every REPROBE calls of that kind, which
    follows a change of input statistics (a rate code, then random spikes) within a few calls."""

    def __init__(self):
        self._kept: dict[tuple, tuple[bool, int]] = {}

    def patterns(self, spikes: np.ndarray, sample_major: bool, n_out: int) -> bool:
        T, batch = _steps_batch(spikes, sample_major)
        kind = (T, sample_major, batch.bit_length())
        choice, left = self._kept.get(kind, (False, 0))
        if left <= 0:
            choice, left = prefer_patterns(spikes, sample_major, n_out), REPROBE
        self._kept[kind] = (choice, left - 1)
        return choice


def pattern_drive(weights16: np.ndarray, spikes: np.ndarray, sample_major: bool, state, bias: np.ndarray) -> np.ndarray:
    """``bias + spikes @ weights`` step-major [T, batch, n] in the integer type ``state`` for bool
    spikes [batch, T, n_in] (``sample_major``) or [T, batch, n_in], by spike pattern, in chunks
    of CHUNK_SAMPLES samples (their G stays in the cache, and their temporaries reuse memory,
    which steadies the time on machines where fresh pages are dear). ``weights16``: int16
    weights whose column bound is below INT16_BOUND."""
    T, batch = _steps_batch(spikes, sample_major)
    drive = np.empty((T, batch, weights16.shape[1]), state)
    for b0 in range(0, batch, CHUNK_SAMPLES):
        part = spikes[b0:b0 + CHUNK_SAMPLES] if sample_major else spikes[:, b0:b0 + CHUNK_SAMPLES]
        _chunk_drive(weights16, Patterns(spike_codes(part, sample_major)), drive[:, b0:b0 + CHUNK_SAMPLES], bias)
    return drive


def _chunk_drive(weights16, p: Patterns, out: np.ndarray, bias: np.ndarray) -> None:
    """Writes one chunk's drive into ``out`` [T, chunk, n]: per step, the sum of the ``G`` rows
    of the codes with that bit, plus the bias."""
    T, B, n = out.shape
    if not p.active:
        out[...] = bias
        return
    if B * n <= SMALL_STEP_SUMS:
        # One float product (exact: every sum is below 2^15) instead of a numpy call per (step,
        # code) pair, which a small chunk pays mostly in call overhead.
        G = p.code_sums(weights16).astype(np.float32)
        A = ((p.table[None, :] >> np.arange(T)[:, None]) & 1).astype(np.float32)
        np.copyto(out, (A @ G.reshape(len(p.table), -1)).reshape(T, B, n), casting="unsafe")
        out += bias
        return
    G = p.code_sums(weights16)
    own = out.dtype == np.int16
    scratch = None if own else np.empty((B, n), np.int16)
    for t in range(T):
        uses = p.steps_using(t)
        if not len(uses):
            out[t] = bias
            continue
        acc = out[t] if own else scratch
        acc[...] = G[uses[0]]
        for k in uses[1:]:
            acc += G[k]
        if own:
            acc += bias
        else:
            np.add(acc, bias, out=out[t])
