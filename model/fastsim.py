"""Layer-major evaluation of the contract: the fast path behind :func:`spikegate.model.simulate`.

Layer l+1 at step t depends only on layer l's spikes up to step t, so running all T steps of
layer l before layer l+1 computes exactly what the contract's step-major order computes. That
turns each layer's synaptic input into one matrix product over every (step, sample) row, done
in a floating type only when every partial sum is provably an exactly representable integer and,
block by block, over only the inputs the block's spikes use (:mod:`spikegate.model.fastsyn`), or
grouped by each input's spike pattern over the steps when that is estimated cheaper
(:mod:`spikegate.model.patterns`); with numba installed, a compiled kernel forms those sums
instead, grouped the same way, in integers (:mod:`spikegate.model.compiled`),
and leaves a short loop over steps for the neuron state, in the narrowest integer type that
holds every intermediate value, working in place in the step-major drive.
``tests/test_model_speed.py`` checks this module against the per-step
:func:`spikegate.model.lif.lif_step` evaluation and the scalar transcription of the contract in
``tests/test_model.py``.
"""
from __future__ import annotations

import time

import numpy as np

from . import compiled
from .conv_eval import conv_sums
from .fastsyn import (drive_sample_major, drive_step_major, exact_float_dtype, float_for,
                      synaptic_input)
from .network import Layer
from .patterns import pattern_drive
from .prepared import holds_the_run, prepared, rails_can_act

__all__ = ["exact_float_dtype", "synaptic_input", "layer_drive", "readout_totals", "run_layer", "run_network",
           "prepared"]

def step_counts(spikes: np.ndarray, axis: int) -> np.ndarray:
    """Spike counts of bool ``spikes`` over their steps ``axis``: added as bytes when every count
    fits one (numpy's bool sum into a wider type casts element by element, several times slower)."""
    if spikes.shape[axis] <= np.iinfo(np.uint8).max:
        return spikes.view(np.uint8).sum(axis=axis, dtype=np.uint8)
    return spikes.sum(axis=axis, dtype=np.int32)


def readout_totals(layer: Layer, counts: np.ndarray, T: int):
    """Final membranes int64 [batch, n] of a leak-free readout layer from its input spike counts
    [batch, n_in] over T steps, or None when a running sum might reach a rail.

    Each step adds bias + sum_i W[i, j] s_i; every running sum lies between the totals of the
    negative and of the positive terms, so when those stay inside the membrane range no
    saturation ever acts and the final membrane is the plain total."""
    n = layer.n
    # counts <= T, so every partial sum of the products is at most T times a column's bound.
    dtype = float_for(T * (layer.n_in << (layer.weight_bits - 1)))
    if dtype is None or not counts.size:
        return None
    p, b = prepared(layer), layer.bias
    if p.rails(T) == (False, False):  # the weights alone keep every running sum off the rails
        return (counts.astype(dtype) @ p.weights(dtype)).astype(np.int64) + T * b
    pos_neg = (counts.astype(dtype) @ p.split(dtype)).astype(np.int64)
    pos, neg = pos_neg[:, :n], pos_neg[:, n:]
    if (pos + T * np.maximum(b, 0)).max() > layer.v_max or (neg + T * np.minimum(b, 0)).min() < layer.v_min:
        return None
    return pos + neg + T * b


def layer_drive(layer: Layer, spikes: np.ndarray, sample_major: bool) -> np.ndarray:
    """Bias plus the exact synaptic sums of a dense layer, step-major [T, batch, n] in its neuron
    state type (:func:`spikegate.model.prepared.state_dtype`, which bounds every such value; from
    the compiled kernel, in its accumulator type when that is narrower: :func:`run_drive`), for
    its input spikes bool [batch, T, n_in] (``sample_major``, the network's input) or
    [T, batch, n_in]: from the compiled kernel (:mod:`spikegate.model.compiled`) when its mode
    wants it and an integer type holds the sums exactly; otherwise grouped by spike pattern or as a
    float product, whichever the layer's router (:class:`spikegate.model.patterns.Router`)
    estimates cheaper."""
    p = prepared(layer)
    if compiled.wanted() and p.summed() is not None:
        # The drive type may be narrower than the state's: run_drive keeps it if the data allow,
        # which halves the neuron loop's memory traffic.
        weights, bias, out = p.summed()
        return compiled.code_drive(weights, bias, spikes, sample_major, out)
    start = time.perf_counter()
    if p.int16() is not None and p.router.patterns(spikes, sample_major, layer.n):
        drive = pattern_drive(p.int16(), spikes, sample_major, p.state, p.bias)
    else:
        make = drive_sample_major if sample_major else drive_step_major
        drive = make(layer.weights, spikes, p.float, p.state, p.bias, p.weights(p.float), p.biased())
    compiled.spent(time.perf_counter() - start)
    return drive


def run_layer(layer: Layer, syn: np.ndarray, traces: bool = False):
    """All steps of one layer from its exact synaptic sums ``syn`` [T, batch, n] (step-major;
    integer values in any numeric type).

    Returns ``(spikes bool [T, batch, n], v int64 [batch, n], r int64 [batch, n], trace)`` with
    ``trace`` int64 [T, batch, n] or None. The arithmetic is the contract's (spikegate.model.lif):
    steps 1-5 in order, one saturation of leak + bias + synaptic sum."""
    p = prepared(layer)
    drive = syn.astype(p.state)
    drive += p.bias
    return run_drive(layer, drive, traces)


def run_drive(layer: Layer, drive: np.ndarray, traces: bool = False, rails=(True, True)):
    """:func:`run_layer` from bias + synaptic sums ``drive`` [T, batch, n] in the layer's state
    type, or in a narrower integer type that holds every drive value: the run then stays in it
    when the drive's own bounds show every value of the update fits
    (:func:`spikegate.model.prepared.holds_the_run`), and widens it to the state type if not.
    ``drive`` is used as the work space (each step's membranes overwrite that step's drive), so
    the caller gives it up. ``rails``: whether the lower / upper rail may act as far as the caller
    knows (:func:`rails_can_act`); a rail left open is judged again from the drive itself."""
    T, batch, n = drive.shape
    lo, hi = layer.v_min, layer.v_max
    lk, theta = layer.leak, layer.threshold
    spikes = np.zeros((T, batch, n), bool)
    if layer.readout and lk.kind == "none":
        # Without a leak a readout only accumulates: if no running sum reaches a rail, no
        # saturation ever acted and the membranes are the running sums.
        sums = np.empty(drive.shape, np.int64)
        np.copyto(sums[:1], drive[:1])
        for t in range(1, T):  # numpy's cumsum along the first axis is ~10x slower than this
            np.add(sums[t - 1], drive[t], out=sums[t])
        if sums.size and sums.min() >= lo and sums.max() <= hi:
            return spikes, sums[-1], np.zeros((batch, n), np.int64), sums if traces else None
    lower, upper = rails
    state = prepared(layer).state
    narrow = drive.dtype.itemsize < np.dtype(state).itemsize
    if lower or upper or narrow:  # a pass over the drive for each bound wanted
        low = int(drive.min()) if (lower or narrow) and drive.size else 0
        high = int(drive.max()) if (upper or narrow) and drive.size else 0
        if lower or upper:
            data = rails_can_act(layer, T, low, high)
            lower, upper = lower and data[0], upper and data[1]
        if narrow and not holds_the_run(layer, T, low, high, drive.dtype):
            drive = drive.astype(state)
    dt = drive.dtype.type
    # v is always a value of the state type, so shifting by its width - 1 equals any larger shift.
    k = min(lk.k, 8 * np.dtype(dt).itemsize - 1)
    # A rail beyond a narrow type is never reached (holds_the_run), so clipping at the type's end
    # instead changes nothing.
    info = np.iinfo(dt)
    lo, hi = max(lo, int(info.min)), min(hi, int(info.max))
    v = np.zeros((batch, n), dt)
    r = np.zeros((batch, n), dt)
    refractory = not layer.readout and layer.refractory > 0
    # Masked ufuncs (where=) and np.where are many times slower than SIMD arithmetic on these
    # arrays, so selections are written as products with 0/1 masks; np.clip pays a fixed Python
    # cost that only large arrays repay.
    lo, hi, theta_dt, refr = dt(lo), dt(hi), dt(theta), dt(layer.refractory)
    clip = upper and lower and batch * n >= 2048
    taken = np.empty((batch, n), dt)  # theta where a neuron fired
    for t in range(T):
        x = drive[t]  # becomes this step's membrane in place: the drive is used once
        if t:  # v = 0 before the first step, and every leak maps 0 to 0
            if lk.kind == "shift":
                x += v - (v >> k)
            elif lk.kind == "multiply":
                x += (v * lk.m) >> lk.frac_bits
            else:
                x += v
        if clip:
            np.clip(x, lo, hi, out=x)
        else:
            if lower:
                np.maximum(x, lo, out=x)
            if upper:
                np.minimum(x, hi, out=x)
        if not layer.readout:
            if refractory:
                frozen = r > 0
                x -= (x - v) * frozen  # a refractory neuron keeps its membrane
            s = np.greater(x, theta_dt, out=spikes[t])
            if refractory:
                s &= ~frozen
            if layer.reset == "zero":
                x *= ~s
            else:
                x -= np.multiply(s, theta_dt, out=taken)
            if refractory:
                r = r - frozen + s * refr  # not frozen means r == 0
        v = x
    # The drive now holds the membranes after every step.
    r = r.astype(np.int64) if refractory else np.zeros((batch, n), np.int64)  # (r never left 0)
    return spikes, v.astype(np.int64), r, drive.astype(np.int64) if traces else None


def run_network(layers: list[Layer], spikes: np.ndarray, traces: bool = False):
    """Every layer over all steps for input spikes bool [batch, T, n_in].

    Returns per-layer lists ``(spikes [batch, T, n], v, r, traces or None)`` as SimResult wants."""
    batch, T, n_in = spikes.shape
    out, vs, rs, trs = [], [], [], []
    s = None  # the previous layer's spikes, step-major [T, batch, n]
    for i, layer in enumerate(layers):
        if layer.temporal is not None:
            from .temporal import run_temporal_layer  # imported here: it builds on this module
            x = spikes.transpose(1, 0, 2) if i == 0 else s
            s, v, r, tr = run_temporal_layer(layer, x, traces)
            out.append(np.ascontiguousarray(s.transpose(1, 0, 2)))
            vs.append(v)
            rs.append(r)
            trs.append(np.ascontiguousarray(tr.transpose(1, 0, 2)) if traces else None)
            continue
        if layer.readout and layer.leak.kind == "none" and not traces:
            # Only the final membranes are wanted: they follow from spike counts when no rail acts.
            counts = step_counts(spikes, 1) if i == 0 else step_counts(s, 0)
            v = readout_totals(layer, counts, T)
            if v is not None:
                s = np.zeros((T, batch, layer.n), bool)  # a readout never fires
                out.append(np.zeros((batch, T, layer.n), bool))
                vs.append(v)
                rs.append(np.zeros((batch, layer.n), np.int64))
                trs.append(None)
                continue
        competitive = layer.plasticity is not None and layer.plasticity.changes_inference
        if layer.conv is None and not competitive:
            s, v, r, tr = run_drive(layer, layer_drive(layer, spikes if i == 0 else s, i == 0), traces,
                                    prepared(layer).rails(T))
        else:
            if layer.conv is not None:
                # Convolution / pooling: the synaptic-sum seam; every row is independent of the others.
                rows = spikes.reshape(batch * T, n_in) if i == 0 else s.reshape(T * batch, layer.n_in)
                syn = conv_sums(layer, rows)
            else:
                dtype = exact_float_dtype(layer.weights, layer.weight_bits)
                rows = spikes.reshape(batch * T, n_in) if i == 0 else s.reshape(T * batch, layer.n_in)
                syn = synaptic_input(layer.weights, rows, dtype)
            # The input's rows are sample-major; reorder the (smaller) sums to step-major.
            syn = (syn.reshape(batch, T, layer.n).transpose(1, 0, 2) if i == 0
                   else syn.reshape(T, batch, layer.n))
            if competitive:
                from .learning import run_competitive_layer  # here: model.learning imports this module
                s, v, r, tr = run_competitive_layer(layer, syn, traces)
            else:
                s, v, r, tr = run_layer(layer, syn, traces)
        out.append(np.ascontiguousarray(s.transpose(1, 0, 2)))
        vs.append(v)
        rs.append(r)
        trs.append(np.ascontiguousarray(tr.transpose(1, 0, 2)) if traces else None)
    return out, vs, rs, (trs if traces else None)
