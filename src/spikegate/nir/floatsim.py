"""The float reference: a NIR chain discretised with forward Euler and simulated in float64.

Per step a layer does ``syn = sum_i W[i, j] x_i(t - d_ij) + sum_k R[k, j] s_k(t - 1)``, then
``i <- alpha i + b + syn`` (CubaLIF, CubaLI; the drive is ``i``) or drive ``= b + syn``, then
``v <- beta v + drive``, fire where ``v > threshold``, reset (to 0, or subtract). The per-neuron
input gains (``dt r / tau``, and ``dt w_in / tau_syn`` for a current) are folded into W, R and b,
and per-neuron thresholds are equalised by scaling each neuron's columns: every such neuron is
linear in its state. Quantisation starts from these layers; calibration measures against them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import UserError
from ..model.temporal import MAX_DELAY
from .chain import CUBA, SPIKING, RawLayer, per_neuron, raw_layers

__all__ = ["FloatLayer", "graph_to_float_layers", "simulate_float", "discretise", "check_dt", "spikes_of",
           "run_float_layer"]


@dataclass
class FloatLayer:
    """A layer after forward-Euler discretisation, still in floats (see the module docstring).
    ``threshold`` is one value for the layer (None for a readout)."""
    weights: np.ndarray   # [n_in, n]
    bias: np.ndarray      # [n]
    beta: float
    threshold: float | None
    kind: str
    synapse: str
    neuron: str
    notes: list[str] = field(default_factory=list)
    reset: str = "zero"
    alpha: float | None = None            # the synaptic current's decay (CubaLIF, CubaLI)
    delays: np.ndarray | None = None      # int [n_in, n], steps
    recurrent: np.ndarray | None = None   # [n, n], neuron k to neuron j

    @property
    def readout(self) -> bool:
        return self.threshold is None


def _decay(where: str, node, attr: str, n: int, dt: float) -> np.ndarray:
    tau = per_neuron(where, node, attr, n)
    if np.any(tau <= 0):
        raise UserError(f"NIR node {where!r} ({type(node).__name__}): {attr} = {tau[tau <= 0][0]:g}; {attr} must be > 0")
    if np.any(dt / tau > 1):
        raise UserError(f"NIR node {where!r} ({type(node).__name__}): {attr} = {tau.min():g} is shorter than "
                        f"dt = {dt:g}: forward Euler would give a negative decay 1 - dt/{attr}; use a smaller --dt")
    return tau


def _uniform(where: str, values: np.ndarray, what: str, spread) -> float:
    if values.max() - values.min() > 1e-9 * max(1.0, abs(values.max())):
        raise UserError(f"{where}: {what} differs between neurons ({spread.min():g} .. {spread.max():g}); "
                        "spikegate has one per layer")
    return float(values.mean())


def _delay_steps(raw: RawLayer, dt: float) -> np.ndarray | None:
    if raw.delay is None:
        return None
    steps = raw.delay / dt
    k = np.rint(steps)
    off = np.abs(steps - k) > 1e-6 * np.maximum(1.0, steps)
    if off.any():
        j, i = np.argwhere(off)[0]
        raise UserError(f"NIR layer {raw.neuron!r}: the delay from input {i} to neuron {j} is {raw.delay[j, i]:g} s, "
                        f"not a whole number of steps of dt = {dt:g} s ({steps[j, i]:g} steps)")
    if k.max(initial=0) > MAX_DELAY:
        raise UserError(f"NIR layer {raw.neuron!r}: a delay of {int(k.max())} steps (dt = {dt:g} s) is longer than "
                        f"the {MAX_DELAY} steps spikegate supports")
    return k.T.astype(np.int64)


def discretise(raw: RawLayer, dt: float, reset: str = "zero") -> FloatLayer:
    """One raw layer as a float layer; ``reset`` is the reset mode of a spiking node (callers decide
    it for old files without v_reset, see :func:`spikegate.nir.read.check_v_reset`)."""
    node, name, t = raw.node, raw.neuron, raw.kind
    n = raw.weight.shape[0]
    notes = []
    where = f"NIR node {name!r} ({t})"
    r = per_neuron(name, node, "r", n)
    alpha = None
    if t in ("LIF", "LI", "CubaLIF", "CubaLI"):
        v_leak = per_neuron(name, node, "v_leak", n)
        if np.any(v_leak != 0):
            raise UserError(f"{where}: v_leak = {v_leak[v_leak != 0][0]:g}; only v_leak = 0 is supported "
                            "(spikegate membranes decay towards 0)")
        attr = "tau_mem" if t in CUBA else "tau"
        tau = _decay(name, node, attr, n, dt)
        beta_n = 1.0 - dt / tau
        gain = dt * r / tau
    else:
        tau = beta_n = np.ones(n)
        gain = dt * r
    beta = _uniform(where, beta_n, "tau" if t in ("LIF", "LI") else "tau_mem", tau)
    if t in CUBA:
        tau_syn = _decay(name, node, "tau_syn", n, dt)
        alpha = _uniform(where, 1.0 - dt / tau_syn, "tau_syn", tau_syn)
        gain = gain * dt * per_neuron(name, node, "w_in", n) / tau_syn
    if not np.isfinite(gain).all():
        raise UserError(f"{where}: the input gain (r / tau, w_in / tau_syn) is not finite")
    if np.ptp(gain) != 0:
        notes.append("per-neuron input gain folded into weights and bias")
    W = raw.weight.T * gain[None, :]
    b = raw.bias * gain
    R = raw.recurrent.T * gain[None, :] if raw.recurrent is not None else None
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
            # With v_leak = 0 each neuron is linear in its state: scaling its inputs (feed-forward and
            # recurrent) and its threshold by the same factor leaves its spikes unchanged.
            c = theta / thr
            W, b = W * c[None, :], b * c
            R = R * c[None, :] if R is not None else None
            notes.append("per-neuron thresholds equalised by scaling each neuron's weights and bias")
    return FloatLayer(weights=W, bias=b, beta=beta, threshold=theta, kind=t, synapse=raw.synapse,
                      neuron=name, notes=notes, reset=reset if t in SPIKING else "zero", alpha=alpha,
                      delays=_delay_steps(raw, dt), recurrent=R)


def graph_to_float_layers(graph, dt: float) -> tuple[int, list[FloatLayer]]:
    """Discretise a supported NIR graph with forward Euler; returns ``(n_inputs, layers)``."""
    dt = check_dt(dt)
    n_in, raws = raw_layers(graph)
    return n_in, [discretise(r, dt) for r in raws]


def run_float_layer(L: FloatLayer, x: np.ndarray):
    """One float layer over all steps of ``x`` bool [N, T, n_in]: ``(spikes bool [N, T, n], final v
    [N, n], peak)`` where ``peak`` is the largest |v| or |i| reached (before any reset)."""
    N, T, _ = x.shape
    n = L.weights.shape[1]
    xf = x.astype(np.float64)
    if L.delays is None:
        syn = xf @ L.weights
    else:
        syn = np.zeros((N, T, n))
        for d in np.unique(L.delays):
            if d < T:
                syn[:, d:] += xf[:, :T - d] @ np.where(L.delays == d, L.weights, 0.0)
    syn += L.bias
    v, cur, s = np.zeros((N, n)), np.zeros((N, n)), np.zeros((N, n), bool)
    out = np.zeros((N, T, n), dtype=bool)
    peak = 0.0
    for t in range(T):
        drive = syn[:, t] + (s @ L.recurrent if L.recurrent is not None else 0.0)
        if L.alpha is not None:
            cur = L.alpha * cur + drive
            drive = cur
            peak = max(peak, float(np.abs(cur).max(initial=0.0)))
        v = L.beta * v + drive
        peak = max(peak, float(np.abs(v).max(initial=0.0)))
        if L.readout:
            continue
        s = v > L.threshold
        out[:, t] = s
        v = np.where(s, 0.0 if L.reset == "zero" else v - L.threshold, v)
    return out, v, peak


def simulate_float(layers: list[FloatLayer], spikes: np.ndarray, batch: int = 256, record: bool = False):
    """Run the discretised float layers on spikes [N, T, n_in].

    Returns ``(scores, inputs, peaks)``: per sample the last layer's spike counts (or final
    membranes for a readout); with ``record`` each layer's input spikes bool [N, T, n_in_l] (else
    None); per layer the largest |v| (or synaptic current) reached before any reset.
    """
    spikes = np.asarray(spikes, dtype=bool)
    N, T, _ = spikes.shape
    scores = np.zeros((N, layers[-1].weights.shape[1]))
    inputs = [np.zeros((N, T, L.weights.shape[0]), dtype=bool) for L in layers] if record else None
    peaks = np.zeros(len(layers))
    for lo in range(0, N, batch):
        s = spikes[lo:lo + batch]
        for i, L in enumerate(layers):
            if record:
                inputs[i][lo:lo + batch] = s
            s, v, peak = run_float_layer(L, s)
            peaks[i] = max(peaks[i], peak)
        scores[lo:lo + batch] = v if layers[-1].readout else s.sum(axis=1)
    return scores, inputs, peaks


def spikes_of(L: FloatLayer, x: np.ndarray) -> np.ndarray:
    """The float layer's output spikes bool [N, T, n] for inputs ``x``."""
    return run_float_layer(L, np.asarray(x, dtype=bool))[0]


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
