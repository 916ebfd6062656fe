"""The integer LIF arithmetic contract, vectorised with numpy.

This module *is* the specification. For each non-readout neuron j at step t, with input spikes
s_i(t) in {0, 1}:

1. Refractory: if r_j > 0 then r_j <- r_j - 1; no spike; v_j unchanged; inputs ignored. Done.
2. Leak: ``shift k``: v <- v - (v >>> k); ``multiply m/2^F``: v <- (v * m) >>> F; ``none``.
3. Integrate: v <- sat_V(v + b_j + sum_i W[i, j] * s_i(t)); the sum is exact and saturated once
   to [-2^(V-1), 2^(V-1) - 1].
4. Fire: spike_j(t) = (v > theta).
5. Reset on a spike: ``zero``: v <- 0; ``subtract``: v <- v - theta. Then r_j <- R.

A readout layer does steps 2 and 3 only (it never fires, so it is never refractory).
``>>>`` is an arithmetic shift, rounding towards minus infinity (numpy's ``>>`` on signed ints).
"""
from __future__ import annotations

import numpy as np

from .fastsim import exact_float_dtype, synaptic_input
from .network import Layer, Leak

__all__ = ["leak", "integrate_sum", "lif_step", "saturate"]


def saturate(x: np.ndarray, bits: int) -> np.ndarray:
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return np.clip(x, lo, hi)


def leak(v: np.ndarray, lk: Leak) -> np.ndarray:
    """Step 2 of the contract on int64 membranes."""
    if lk.kind == "shift":
        return v - (v >> lk.k)
    if lk.kind == "multiply":
        return (v * lk.m) >> lk.frac_bits
    return v


def integrate_sum(layer: Layer, s: np.ndarray) -> np.ndarray:
    """The exact synaptic sum ``sum_i W[i, j] * s_i`` for spikes ``s`` of shape [..., n_in], int64."""
    s = np.asarray(s)
    dtype = exact_float_dtype(layer.weights, layer.weight_bits)
    flat = synaptic_input(layer.weights, s.reshape(-1, layer.n_in), dtype)
    return flat.astype(np.int64).reshape(*s.shape[:-1], layer.n)


def lif_step(layer: Layer, v: np.ndarray, r: np.ndarray, syn: np.ndarray):
    """One step of the contract for a batch of neurons.

    ``v``, ``r`` are the int64 membrane and refractory counters [..., n]; ``syn`` is the exact
    synaptic sum for this step. Returns ``(v', r', spikes)``; inputs are not modified.
    """
    refractory = r > 0
    v_new = saturate(leak(v, layer.leak) + layer.bias + syn, layer.membrane_bits)
    if layer.readout:
        return v_new, r, np.zeros(v.shape, dtype=bool)
    v_new = np.where(refractory, v, v_new)
    spikes = (v_new > layer.threshold) & ~refractory
    if layer.reset == "zero":
        v_reset = np.zeros_like(v_new)
    else:
        v_reset = v_new - layer.threshold
    v_new = np.where(spikes, v_reset, v_new)
    r_new = np.where(refractory, r - 1, np.where(spikes, layer.refractory, 0))
    return v_new, r_new, spikes
