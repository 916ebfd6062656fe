"""Exact synaptic products ``spikes @ weights`` for the layer-major fast path
(:mod:`spikegate.model.fastsim`).

For 0/1 spikes every partial sum of a product column is the sum of a subset of the weight
column, so it is bounded by the column's absolute sum; a floating type holds every integer up to
2^mantissa, so below that bound a BLAS float product is exact. Input spikes are sparse (the MNIST
rate code: ~13 % of the inputs in a step, ~19 % in some step of a sample, ~45 % in some step of
16 samples), so rows are taken in blocks of a few samples and a block whose spikes use at most
three quarters of the inputs multiplies only those columns by only those weight rows: the same
sums from fewer terms (dropping rows of W only lowers the bound on the partial sums). Once a
block is denser than that, the rest of the rows go through the plain product in large chunks.
"""
from __future__ import annotations

import numpy as np

__all__ = ["exact_float_dtype", "synaptic_input", "product_blocks", "compacts", "drive_step_major",
           "drive_sample_major", "BLOCK_ROWS", "MIN_SAVED", "float_for", "column_bound"]

# Floating types whose integers are exact up to 2^mantissa, narrowest first.
_EXACT_FLOATS = ((np.float32, 1 << 24), (np.float64, 1 << 53))
# Rows per compacted block: enough for an efficient product, few enough samples (16 of 8 steps)
# that the inputs they use stay a small part of all inputs.
BLOCK_ROWS = 128
# Multiply-adds a compacted block must save over the plain product to repay its gathers.
MIN_SAVED = 1 << 20
# Rows per chunk of the plain product: its float copy of the spikes and its sums stay in the
# core's cache (4096 rows ran the digits network at a third of the speed).
_DENSE_ROWS = 512


def float_for(bound: int):
    """The narrowest floating type holding every integer of magnitude <= ``bound``, or None."""
    for dtype, limit in _EXACT_FLOATS:
        if bound <= limit:
            return dtype
    return None


def column_bound(weights: np.ndarray) -> int:
    """The largest absolute column sum of ``weights``: a bound on every subset sum of a column."""
    return int(np.abs(weights).sum(axis=0).max()) if weights.size else 0


def exact_float_dtype(weights: np.ndarray, weight_bits: int | None = None):
    """The narrowest floating type in which ``spikes @ weights`` is exact for any 0/1 spikes, or
    None. Every partial sum of a column is a sum of a subset of its entries, so it is bounded by
    the column's absolute sum; a float holds every integer up to 2^mantissa in magnitude. With
    ``weight_bits``, the free bound n_in * 2^(weight_bits - 1) is tried before the weights' own,
    which are read only when the free bound does not already give the narrowest type."""
    if weight_bits is not None:
        dtype = float_for(weights.shape[0] << (weight_bits - 1))
        if dtype is _EXACT_FLOATS[0][0]:
            return dtype
    return float_for(column_bound(weights))


class _Converted:
    """``weights`` in a floating type, converted whole only once a second block asks for rows:
    a single small block (batch 1) converts just the rows it uses. ``full``: the conversion,
    when the caller keeps one (a layer's, :func:`spikegate.model.prepared.prepared`)."""

    def __init__(self, weights, dtype, full=None):
        self.weights, self.dtype, self.full, self.asked = weights, dtype, full, 0

    def all(self):
        if self.full is None:
            self.full = self.weights.astype(self.dtype)
        return self.full

    def rows(self, used):
        self.asked += 1
        if self.full is None and self.asked == 1:
            return self.weights[used].astype(self.dtype)
        return self.all()[used]


def compacts(rows: int, used: int, n_in: int, n: int) -> bool:
    """Whether a block of ``rows`` rows whose spikes use ``used`` of the ``n_in`` inputs
    multiplies only those (into ``n`` sums). Gathering the used columns and weight rows pays off
    up to three quarters of the inputs, when it saves at least MIN_SAVED multiply-adds (about
    what a block's gathers and calls cost) or when fewer rows than sums make the product a pass
    over the weights rather than arithmetic."""
    return 4 * used <= 3 * n_in and (rows * (n_in - used) * n >= MIN_SAVED or rows < n)


def product_blocks(weights: np.ndarray, spikes: np.ndarray, dtype, block_rows: int = BLOCK_ROWS, out=None,
                   converted=None, ones: bool = False):
    """Yield ``(start, stop, sums)`` for consecutive row ranges covering ``spikes`` [rows, n_in]:
    ``sums`` [stop - start, n] are the exact ``spikes[start:stop] @ weights`` in ``dtype`` (a
    floating type the caller knows is exact, or None for numpy's integer product). Every range
    starts at a multiple of ``block_rows``. ``sums`` is a view of ``out`` [rows, n] when given,
    else of a buffer the next block reuses: consume it before asking for the next. ``converted``:
    ``weights`` already in ``dtype``, if the caller has them.

    ``ones`` (with a floating ``dtype``): every row of spikes gets a trailing input that always
    spikes, whose weight row is the last of ``converted`` [n_in + 1, n], which must be given (a
    bias: the sums come out with it added, which spares a pass over them; the caller knows the
    bias row keeps every partial sum exact)."""
    rows, n_in = spikes.shape
    if ones and (dtype is None or converted is None or len(converted) != n_in + 1):
        raise ValueError("ones = True needs a floating dtype and converted weights with the bias as a last row")
    if dtype is None:
        sums = spikes.astype(np.int64) @ weights
        if out is not None:
            out[...] = sums
        yield 0, rows, sums
        return
    w = _Converted(weights, dtype, converted)
    n = weights.shape[1]
    chunk = block_rows * max(1, _DENSE_ROWS // block_rows)
    if out is None:
        buf = np.empty((min(rows, chunk), n), dtype)
    start = 0
    # A block that would not compact even with no input in use skips the test.
    while start < rows and compacts(min(block_rows, rows - start), 0, n_in, n):
        stop = min(rows, start + block_rows)
        part = spikes[start:stop]
        used = np.flatnonzero(part.any(axis=0))
        if not compacts(len(part), len(used), n_in, n):
            break
        dst = out[start:stop] if out is not None else buf[:stop - start]
        np.matmul(np.take(part, used, axis=1).astype(dtype), w.rows(used), out=dst)
        if ones:  # a small block: the bias row added to its sums costs less than a column of ones
            dst += w.all()[n_in]
        yield start, stop, dst
        start = stop
    if start < rows:
        # The float copy of the spikes, with its column of ones written once.
        xbuf = np.ones((min(rows - start, chunk), n_in + int(ones)), dtype)
        for i in range(start, rows, chunk):
            part = spikes[i:i + chunk]
            x = xbuf[:len(part)]
            np.copyto(x[:, :n_in], part, casting="unsafe")
            dst = out[i:i + len(part)] if out is not None else buf[:len(part)]
            np.matmul(x, w.all(), out=dst)
            yield i, i + len(part), dst


def synaptic_input(weights: np.ndarray, spikes: np.ndarray, dtype="auto") -> np.ndarray:
    """The exact sums ``spikes @ weights`` [rows, n] for 0/1 ``spikes`` [rows, n_in], as integer
    values in the product's type (a float type holds them exactly; convert with ``astype``).

    ``dtype``: "auto" picks :func:`exact_float_dtype`; a floating type forces that product
    (callers must know it is exact); None forces numpy's integer product (no BLAS, slow).
    """
    if isinstance(dtype, str):
        if dtype != "auto":
            raise ValueError(f"dtype = {dtype!r} is not valid; valid: 'auto', np.float32, np.float64 or None")
        dtype = exact_float_dtype(weights)
    if dtype is None:
        return spikes.astype(np.int64) @ weights
    out = np.empty((spikes.shape[0], weights.shape[1]), dtype)
    for _ in product_blocks(weights, spikes, dtype, out=out):
        pass
    return out


def drive_step_major(weights, spikes, dtype, state, bias, converted=None, biased=None) -> np.ndarray:
    """``bias + spikes @ weights`` [T, batch, n] in the integer type ``state`` (which the caller
    knows holds every such value) for step-major spikes bool [T, batch, n_in]; ``dtype`` and
    ``converted`` as in :func:`product_blocks`. ``biased``: the weights with ``bias`` as a last
    row [n_in + 1, n] in ``dtype``, when the caller knows every partial sum of its columns is
    exact there: the product then adds the bias (:func:`product_blocks`' ``ones``)."""
    T, batch, n_in = spikes.shape
    drive = np.empty((T, batch, weights.shape[1]), state)
    flat = drive.reshape(T * batch, weights.shape[1])
    for start, stop, sums, put in _drive_blocks(weights, spikes.reshape(T * batch, n_in), dtype, bias, converted,
                                                biased):
        put(flat[start:stop], sums)
    return drive


def _drive_blocks(weights, rows, dtype, bias, converted, biased, block_rows=BLOCK_ROWS):
    """:func:`product_blocks` of the drives, with the bias as the product's last input where
    ``biased`` allows it; each block comes with ``put(dst, sums)``, which casts its sums into the
    drive and adds the bias there if the product did not."""
    ones = biased is not None and dtype is not None
    if ones:
        def put(dst, sums):
            np.copyto(dst, sums, casting="unsafe")
    else:
        def put(dst, sums):  # the bias goes in as the sums are cast: one pass over the drive, not two
            np.add(sums, bias, out=dst, casting="unsafe")
    for start, stop, sums in product_blocks(weights, rows, dtype, block_rows, converted=biased if ones else converted,
                                            ones=ones):
        yield start, stop, sums, put


def drive_sample_major(weights, spikes, dtype, state, bias, converted=None, biased=None) -> np.ndarray:
    """:func:`drive_step_major` for sample-major spikes bool [batch, T, n_in] (the network's
    input): the product runs over its rows as they are, in blocks of whole samples, and each
    block's sums are reordered to step-major by the cast into the drive, a pass made anyway, so
    the input is never transposed."""
    batch, T, n_in = spikes.shape
    n = weights.shape[1]
    drive = np.empty((T, batch, n), state)
    if not spikes.size or not T:
        drive[...] = bias
        return drive
    per = max(1, BLOCK_ROWS // T)  # samples per block: every block, and so every range, holds whole samples
    for start, stop, sums, put in _drive_blocks(weights, spikes.reshape(batch * T, n_in), dtype, bias, converted,
                                                biased, block_rows=T * per):
        put(drive[:, start // T:stop // T], sums.reshape(-1, T, n).transpose(1, 0, 2))
    return drive
