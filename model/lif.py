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

from typing import Protocol

import numpy as np

from .conv import neuron_bias
from .conv_eval import conv_sums
from .fastsim import exact_float_dtype, synaptic_input
from .network import Layer, Leak, signed_range

__all__ = ["NeuronParams", "leak", "integrate_sum", "lif_step", "neuron_update", "saturate"]


class NeuronParams(Protocol):
    """The fixed neuron parameters steps 1-5 need; a :class:`Layer` is one, and so is the twin
    :class:`~spikegate.model.neuron.LIFNeuronUnit`."""
    membrane_bits: int
    leak: Leak
    reset: str
    refractory: int
    readout: bool


def saturate(x: np.ndarray, bits: int) -> np.ndarray:
    lo, hi = signed_range(bits)
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
    if layer.conv is not None:
        return conv_sums(layer, s.reshape(-1, layer.n_in)).astype(np.int64).reshape(*s.shape[:-1], layer.n)
    dtype = exact_float_dtype(layer.weights, layer.weight_bits)
    flat = synaptic_input(layer.weights, s.reshape(-1, layer.n_in), dtype)
    return flat.astype(np.int64).reshape(*s.shape[:-1], layer.n)


def neuron_update(v: np.ndarray, r: np.ndarray, drive: np.ndarray, theta, p: NeuronParams):
    """Steps 1-5 of the contract, written once: the spec (:func:`lif_step`) and the hardware
    twin (:class:`~spikegate.model.neuron.LIFNeuronUnit`) both call it.

    ``v``, ``r`` are int64 membrane and refractory counters; ``drive`` is ``bias + sum_i W[i, j] *
    s_i`` for this step, exact; ``theta`` the threshold (unused for a readout layer). Returns
    ``(v', r', spikes)``; inputs are not modified.
    """
    v_new = saturate(leak(v, p.leak) + drive, p.membrane_bits)
    if p.readout:
        return v_new, r, np.zeros(v_new.shape, dtype=bool)
    refractory = r > 0
    spikes = (v_new > theta) & ~refractory
    v_reset = np.zeros_like(v_new) if p.reset == "zero" else v_new - theta
    v_next = np.where(refractory, v, np.where(spikes, v_reset, v_new))
    r_next = np.where(refractory, r - 1, np.where(spikes, p.refractory, 0))
    return v_next, r_next, spikes


def lif_step(layer: Layer, v: np.ndarray, r: np.ndarray, syn: np.ndarray):
    """One step of the contract for a batch of neurons.

    ``v``, ``r`` are the int64 membrane and refractory counters [..., n]; ``syn`` is the exact
    synaptic sum for this step. Returns ``(v', r', spikes)``; inputs are not modified.
    """
    return neuron_update(v, r, neuron_bias(layer) + syn, layer.threshold, layer)
