"""The integer LIF arithmetic contract, vectorised with numpy.

This module *is* the specification. For each non-readout neuron j at step t, with input spikes
s_i(t) in {0, 1}:

1. Refractory: if r_j > 0 then r_j <- r_j - 1; no spike; v_j unchanged; inputs ignored. Done.
2. Leak: ``shift k``: v <- v - (v >>> k); ``multiply m/2^F``: v <- (v * m) >>> F; ``none``.
3. Integrate: v <- sat_V(v + b_j + sum_i W[i, j] * s_i(t)); the sum is exact and saturated once
   to [-2^(V-1), 2^(V-1) - 1].
4. Fire: spike_j(t) = (v > theta_j); in a winner-take-all layer only the k neurons above threshold
   with the largest v - theta_j fire (ties to the lowest index), and on a step with a winner the
   others are optionally reset or reduced (README, "The learning contract").
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

__all__ = ["NeuronParams", "Competition", "leak", "integrate_sum", "lif_step", "neuron_update", "saturate",
           "winners"]


class NeuronParams(Protocol):
    """The fixed neuron parameters steps 1-5 need; a :class:`Layer` is one, and so is the twin
    :class:`~spikegate.model.neuron.LIFNeuronUnit`."""
    membrane_bits: int
    leak: Leak
    reset: str
    refractory: int
    readout: bool


class Competition(Protocol):
    """Winner-take-all parameters (a :class:`~spikegate.model.plasticity.Plasticity` is one):
    ``wta`` = k (0: off), ``inhibition`` in none / reset / reduce, ``inhibit`` for reduce."""
    wta: int
    inhibition: str
    inhibit: int


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


def winners(margin: np.ndarray, above: np.ndarray, k: int) -> np.ndarray:
    """The k neurons (last axis) with the largest ``margin`` among those ``above`` threshold; ties go
    to the lowest index. Fewer than k fire when fewer are above threshold."""
    # Below any margin a membrane can make, and safe to negate.
    masked = np.where(above, margin, -(1 << 62))
    if k == 1:
        pick = np.argmax(masked, axis=-1)[..., None]  # argmax: first of equal maxima
    else:
        # A stable sort of the negated margins keeps equal margins in index order.
        pick = np.argsort(-masked, axis=-1, kind="stable")[..., :k]
    chosen = np.zeros(above.shape, bool)
    np.put_along_axis(chosen, pick, True, axis=-1)
    return chosen & above


def neuron_update(v: np.ndarray, r: np.ndarray, drive: np.ndarray, theta, p: NeuronParams,
                  competition: Competition | None = None):
    """Steps 1-5 of the contract, written once: the spec (:func:`lif_step`) and the hardware
    twin (:class:`~spikegate.model.neuron.LIFNeuronUnit`) both call it.

    ``v``, ``r`` are int64 membrane and refractory counters; ``drive`` is ``bias + sum_i W[i, j] *
    s_i`` for this step, exact; ``theta`` the threshold, a scalar or one per neuron (unused for a
    readout layer). ``competition`` with ``wta`` = k > 0 makes the layer winner-take-all. Returns
    ``(v', r', spikes)``; inputs are not modified.
    """
    v_new = saturate(leak(v, p.leak) + drive, p.membrane_bits)
    if p.readout:
        return v_new, r, np.zeros(v_new.shape, dtype=bool)
    refractory = r > 0
    spikes = (v_new > theta) & ~refractory
    k = competition.wta if competition is not None else 0
    if k:
        spikes = winners(v_new - theta, spikes, k)
    v_reset = np.zeros_like(v_new) if p.reset == "zero" else v_new - theta
    v_next = np.where(refractory, v, np.where(spikes, v_reset, v_new))
    if k and competition.inhibition != "none":
        # Inhibition acts on a step with a winner, on every neuron that neither fired nor is refractory.
        losers = ~spikes & ~refractory & spikes.any(axis=-1, keepdims=True)
        if competition.inhibition == "reset":
            v_next = np.where(losers, 0, v_next)
        else:
            v_next = np.where(losers, np.maximum(v_next - competition.inhibit, signed_range(p.membrane_bits)[0]),
                              v_next)
    r_next = np.where(refractory, r - 1, np.where(spikes, p.refractory, 0))
    return v_next, r_next, spikes


def lif_step(layer: Layer, v: np.ndarray, r: np.ndarray, syn: np.ndarray):
    """One step of the contract for a batch of neurons.

    ``v``, ``r`` are the int64 membrane and refractory counters [..., n]; ``syn`` is the exact
    synaptic sum for this step. Returns ``(v', r', spikes)``; inputs are not modified.
    """
    p = layer.plasticity
    theta = layer.threshold if p is None else layer.threshold + p.offsets_for(layer)
    return neuron_update(v, r, neuron_bias(layer) + syn, theta, layer, p)
