"""Run a network over a batch of input spike trains, bit-exactly per the contract."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .conv import fan_out
from .fastsim import run_network
from .lif import integrate_sum, lif_step
from .network import Network

__all__ = ["SimResult", "simulate", "simulate_steps", "classify"]


@dataclass
class SimResult:
    """Everything one batch run produced.

    ``spikes[l]``: bool [batch, T, n_l], the output spikes of layer l at every step.
    ``membranes[l]`` / ``refractory[l]``: int64 [batch, n_l], the state after the last step.
    ``traces[l]``: int64 [batch, T, n_l], membranes after each step (only if requested).
    """
    spikes: list[np.ndarray]
    membranes: list[np.ndarray]
    refractory: list[np.ndarray]
    traces: list[np.ndarray] | None = None

    @property
    def counts(self) -> np.ndarray:
        """Spike counts of the last layer over all steps, int64 [batch, n_out]."""
        return self.spikes[-1].sum(axis=1, dtype=np.int64)

    def synaptic_events(self, input_spikes: np.ndarray, net: Network) -> np.ndarray:
        """Synaptic operations per sample: every spike into a dense layer touches all its neurons,
        one into a conv or pooling layer the outputs whose window holds it (:func:`fan_out`)."""
        ops = np.zeros(len(input_spikes), np.int64)
        for l, layer in enumerate(net.layers):
            spikes = input_spikes if l == 0 else self.spikes[l - 1]
            if layer.conv is None:
                ops = ops + spikes.sum(axis=(1, 2), dtype=np.int64) * layer.n
            else:
                ops = ops + spikes.sum(axis=1, dtype=np.int64) @ fan_out(layer)
        return ops


def _check_input(net: Network, spikes: np.ndarray) -> np.ndarray:
    spikes = np.asarray(spikes)
    if spikes.ndim == 2:
        spikes = spikes[None]
    if spikes.ndim != 3 or spikes.shape[2] != net.n_inputs:
        raise ValueError(f"input spikes must have shape [batch, T, {net.n_inputs}] for this network, "
                         f"got {spikes.shape}")
    if spikes.dtype != bool:
        if not np.issubdtype(spikes.dtype, np.integer) or spikes.size and (spikes.min() < 0 or spikes.max() > 1):
            raise ValueError("input spikes must be 0/1 (bool or integer array)")
        spikes = spikes.astype(bool)
    return spikes


def simulate(net: Network, spikes: np.ndarray, *, traces: bool = False) -> SimResult:
    """Run ``net`` on input spikes [batch, T, n_in] (a single [T, n_in] sample is accepted).

    Layer-major (:mod:`spikegate.model.fastsim`): layer l+1 at step t needs only layer l's spikes
    up to t, so each layer runs all its steps before the next one starts; the results equal the
    contract's step-by-step order (:func:`simulate_steps`) bit for bit.
    """
    spikes = _check_input(net, spikes)
    out, v, r, tr = run_network(net.layers, spikes, traces)
    return SimResult(spikes=out, membranes=v, refractory=r, traces=tr)


def simulate_steps(net: Network, spikes: np.ndarray, *, traces: bool = False) -> SimResult:
    """:func:`simulate` written as the contract orders it: per step, each layer in turn on the
    spikes layer l-1 made in the same step, through :func:`spikegate.model.lif.lif_step`. Slow;
    kept as the plain reference the fast path is tested against."""
    spikes = _check_input(net, spikes)
    for l, layer in enumerate(net.layers):
        if layer.temporal is not None:
            raise ValueError(f"simulate_steps covers the plain contract only; layer {l} is a temporal layer "
                             "(its reference is spikegate.model.temporal): use simulate")
    batch, T, _ = spikes.shape
    v = [np.zeros((batch, layer.n), np.int64) for layer in net.layers]
    r = [np.zeros((batch, layer.n), np.int64) for layer in net.layers]
    out = [np.zeros((batch, T, layer.n), bool) for layer in net.layers]
    tr = [np.zeros((batch, T, layer.n), np.int64) for layer in net.layers] if traces else None
    for t in range(T):
        s = spikes[:, t, :]
        for l, layer in enumerate(net.layers):
            v[l], r[l], s = lif_step(layer, v[l], r[l], integrate_sum(layer, s))
            out[l][:, t, :] = s
            if traces:
                tr[l][:, t, :] = v[l]
    return SimResult(spikes=out, membranes=v, refractory=r, traces=tr)


def classify(net: Network, result: SimResult) -> np.ndarray:
    """Predicted class per sample: final-membrane argmax for a readout network, else spike-count
    argmax. ``np.argmax`` breaks ties towards the lowest index, as the contract says."""
    if net.readout:
        return np.argmax(result.membranes[-1], axis=1)
    return np.argmax(result.counts, axis=1)
