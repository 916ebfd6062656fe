"""The float reference: a NIR chain discretised with forward Euler and simulated in float64.

Per step a layer does ``v <- beta v + (s @ W + b)``; the per-neuron input gain ``dt r / tau`` is
folded into W and b, and per-neuron thresholds are equalised by scaling each neuron's column.
Quantisation starts from these layers and calibration measures the integer layers against them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import UserError
from .chain import SPIKING, RawLayer, per_neuron, raw_layers

__all__ = ["FloatLayer", "graph_to_float_layers", "simulate_float", "discretise", "check_dt", "spikes_of"]


@dataclass
class FloatLayer:
    """A layer after forward-Euler discretisation, still in floats.

    Per step: ``v <- beta v + (s @ weights + bias)``; a spiking layer fires where ``v > threshold``
    and resets those neurons to 0. ``threshold`` is one value for the layer (None for a readout).
    """
    weights: np.ndarray   # [n_in, n]
    bias: np.ndarray      # [n]
    beta: float
    threshold: float | None
    kind: str
    synapse: str
    neuron: str
    notes: list[str] = field(default_factory=list)

    @property
    def readout(self) -> bool:
        return self.threshold is None


def discretise(raw: RawLayer, dt: float) -> FloatLayer:
    node, name, t = raw.node, raw.neuron, raw.kind
    n = raw.weight.shape[0]
    notes = []
    where = f"NIR node {name!r} ({t})"
    r = per_neuron(name, node, "r", n)
    if t in ("LIF", "LI"):
        tau = per_neuron(name, node, "tau", n)
        v_leak = per_neuron(name, node, "v_leak", n)
        if np.any(v_leak != 0):
            raise UserError(f"{where}: v_leak = {v_leak[v_leak != 0][0]:g}; only v_leak = 0 is supported "
                            "(spikegate membranes decay towards 0)")
        if np.any(tau <= 0):
            raise UserError(f"{where}: tau = {tau[tau <= 0][0]:g}; tau must be > 0")
        alpha = dt / tau
        if np.any(alpha > 1):
            raise UserError(f"{where}: tau = {tau.min():g} is shorter than dt = {dt:g}: forward Euler would "
                            "give a negative decay 1 - dt/tau; use a smaller --dt")
        beta_n = 1.0 - alpha
        gain = dt * r / tau
    else:
        beta_n = np.ones(n)
        gain = dt * r
    if beta_n.max() - beta_n.min() > 1e-9 * max(1.0, abs(beta_n.max())):
        raise UserError(f"{where}: tau differs between neurons ({node.tau.min():g} .. {node.tau.max():g}); "
                        "spikegate has one leak per layer")
    beta = float(beta_n.mean())
    if not np.isfinite(gain).all():
        raise UserError(f"{where}: r / tau is not finite")
    if np.ptp(gain) != 0:
        notes.append("per-neuron input gain dt*r/tau folded into weights and bias")
    W = raw.weight.T * gain[None, :]
    b = raw.bias * gain
    theta = None
    if t in SPIKING:
        thr = per_neuron(name, node, "v_threshold", n)
        v_reset = per_neuron(name, node, "v_reset", n)
        if np.any(v_reset != 0):
            raise UserError(f"{where}: v_reset = {v_reset[v_reset != 0][0]:g}; only v_reset = 0 is "
                            "supported (spikegate resets a neuron that fires to 0)")
        if np.any(thr < 0):
            raise UserError(f"{where}: v_threshold = {thr[thr < 0][0]:g}; thresholds must be >= 0")
        theta = float(thr.max())
        if np.any(thr != theta):
            if np.any(thr == 0):
                raise UserError(f"{where}: v_threshold mixes 0 and positive values; spikegate has one "
                                "threshold per layer and a zero threshold cannot be rescaled to match")
            # v_leak = 0 and v_reset = 0 make each neuron linear in v: scaling its inputs and its
            # threshold by the same factor leaves its spikes unchanged.
            c = theta / thr
            W = W * c[None, :]
            b = b * c
            notes.append("per-neuron thresholds equalised by scaling each neuron's weights and bias")
    return FloatLayer(weights=W, bias=b, beta=beta, threshold=theta, kind=t, synapse=raw.synapse,
                      neuron=name, notes=notes)


def graph_to_float_layers(graph, dt: float) -> tuple[int, list[FloatLayer]]:
    """Discretise a supported NIR graph with forward Euler; returns ``(n_inputs, layers)``."""
    dt = check_dt(dt)
    n_in, raws = raw_layers(graph)
    return n_in, [discretise(r, dt) for r in raws]


def simulate_float(layers: list[FloatLayer], spikes: np.ndarray, batch: int = 256, record: bool = False):
    """Run the discretised float layers on spikes [N, T, n_in].

    Returns ``(scores, inputs, peaks)``: per sample the last layer's spike counts (or final
    membranes for a readout); with ``record`` each layer's input spikes bool [N, T, n_in_l] (else
    None); per layer the largest |v| reached after integrating (before any reset).
    """
    spikes = np.asarray(spikes, dtype=bool)
    N, T, _ = spikes.shape
    n_out = layers[-1].weights.shape[1]
    scores = np.zeros((N, n_out))
    inputs = [np.zeros((N, T, L.weights.shape[0]), dtype=bool) for L in layers] if record else None
    peaks = np.zeros(len(layers))
    for lo in range(0, N, batch):
        s_all = spikes[lo:lo + batch]
        v = [np.zeros((s_all.shape[0], L.weights.shape[1])) for L in layers]
        counts = np.zeros((s_all.shape[0], n_out))
        for t in range(T):
            s = s_all[:, t, :]
            for i, L in enumerate(layers):
                if record:
                    inputs[i][lo:lo + batch, t] = s
                v[i] = L.beta * v[i] + s.astype(np.float64) @ L.weights + L.bias
                peaks[i] = max(peaks[i], float(np.abs(v[i]).max(initial=0.0)))
                if L.readout:
                    s = None
                else:
                    s = v[i] > L.threshold
                    v[i] = np.where(s, 0.0, v[i])
            if s is not None:
                counts += s
        scores[lo:lo + batch] = v[-1] if layers[-1].readout else counts
    return scores, inputs, peaks


def spikes_of(L: FloatLayer, x: np.ndarray) -> np.ndarray:
    """The float layer's output spikes bool [N, T, n] for inputs ``x``."""
    N, T, _ = x.shape
    v = np.zeros((N, L.weights.shape[1]))
    out = np.zeros((N, T, L.weights.shape[1]), dtype=bool)
    for t in range(T):
        v = L.beta * v + x[:, t].astype(np.float64) @ L.weights + L.bias
        out[:, t] = v > L.threshold
        v = np.where(out[:, t], 0.0, v)
    return out


def check_dt(dt) -> float:
    if dt is None:
        raise UserError("--dt is required")
    try:
        dt = float(dt)
    except (TypeError, ValueError):
        raise ValueError(f"dt = {dt!r} is not valid; valid: a number of seconds > 0") from None
    if not (math.isfinite(dt) and dt > 0):
        raise ValueError(f"dt = {dt!r} is not valid; valid: a number of seconds > 0")
    return dt
