"""Twin of :class:`spikegate.hdl.learning_engine.LearningEngine`: stage 5 of a plastic layer's step.

The gateware keeps, beside the layer's weights, a pre-synaptic trace per input (with the step's
spike flag) and a post-synaptic trace per neuron in the group layout ([G, P], decayed by the
sweep). After the sweep, with learning on, it

1. WALK: decays every pre trace (n_in cycles, one trace a cycle);
2. for every input event i of the step: adds ``pre_inc`` to P_i (saturating) and, with depression
   (a_minus > 0), read-modify-writes weight word (i, g) of every group g that emitted no spike
   (depression only, from the post traces Q' the sweep left);
3. for every non-zero spike word (g, y) of the step (when any weight can change): read-modify-writes
   weight word (i, g) for every input i, potentiation on the spiking lanes plus depression where
   input i spiked, from Q' kept with the word, so a synapse whose input and neuron both spiked
   gets one saturation of the exact sum.

Every weight word is written at most once per step (step 2 and 3 touch disjoint groups), so the
arithmetic is :mod:`spikegate.model.learning_rules`' on the [n_in, n] view: this twin calls it.

``rule = "rstdp"`` (hdl.eligibility): the eligibility E sits beside the weights in the same
layout. Every E decays every step, so after WALK and the pre-trace bumps (no weight word is
touched there) one eligibility sweep visits every synapse word (i, g), i outer: it adds the
step's STDP change D to the decayed E, and with a non-zero reward R (the core's ``step_reward``,
held for the run) writes W + ((R * E) >>> reward_shift) back, saturated, in the same cycle's
pipeline. A per-sample reward (the core's ``reward`` stream, while idle) is one more sweep that
applies the same formula to the E the last sample left (:meth:`LearningEngine.reward`).
Adaptive thresholds cost no cycles: the sweep reads a group's offsets with its membranes (the
neurons fire above threshold + offset) and writes the updated offsets back with them (step 6 of
the contract; learning on only). The cycle count is
:meth:`spikegate.model.layer.LearningGeometry.cycles`.
"""
from __future__ import annotations

from enum import IntEnum

import numpy as np

from .learning_rules import (apply_change, decay, eligibility_update, offsets_update, reward_change, stdp_term,
                             trace_update)
from .network import Layer

__all__ = ["LearningEngine", "LearnState", "hardware_refusal", "has_offsets", "is_rstdp"]


class LearnState(IntEnum):
    """Which learning state the core's ``learn_state_addr`` reads (hdl.learning_state); weights are
    read through ``param_addr``. The values follow the host link's READ_STATE kinds."""
    OFFSET = 1       # threshold offset off[col]
    PRE_TRACE = 2    # pre-synaptic trace P[row]
    POST_TRACE = 3   # post-synaptic trace Q[col]
    ELIGIBILITY = 4  # rstdp: E[row, col]


def hardware_refusal(layer: Layer) -> str | None:
    """Why the learning gateware cannot build this plastic layer, or None when it can."""
    p = layer.plasticity
    if p.wta and layer.refractory:
        return f"winner-take-all in a layer with a refractory period (refractory = {layer.refractory})"
    return None


def is_rstdp(p) -> bool:
    """Reward-modulated STDP: the layer keeps an eligibility per synapse and takes rewards."""
    return p.rule == "rstdp"


def has_offsets(p) -> bool:
    """Whether the layer keeps per-neuron threshold offsets (adaptive thresholds, or fixed non-zero
    offsets); otherwise every offset is 0 for ever and the layer's threshold is one register."""
    return bool(p.theta_inc or p.theta_decay or (p.offsets is not None and p.offsets.any()))


class LearningEngine:
    """Traces of one plastic layer, in the gateware's layout, and stage 5 of its step."""

    def __init__(self, layer: Layer, lanes: int):
        self.layer, self.p = layer, layer.plasticity
        self.lanes = lanes
        self.groups = -(-layer.n // lanes)
        self.bounds = self.p.weight_bounds(layer)
        self.pre = np.zeros(layer.n_in, np.int64)
        self.post = np.zeros((self.groups, lanes), np.int64)
        # Threshold offsets persist across samples (learned state), in the group layout.
        self.offsets = None
        if has_offsets(self.p):
            self.offsets = np.zeros((self.groups, lanes), np.int64)
            self.offsets.reshape(-1)[:layer.n] = self.p.offsets_for(layer)
        # rstdp: the eligibility [n_in, n] (reset with the traces at the start of every sample)
        self.elig = np.zeros(layer.weights.shape, np.int64) if is_rstdp(self.p) else None
        self.t = 0

    def reset_sample(self) -> None:
        self.pre[:] = 0
        self.post[:] = 0
        if self.elig is not None:
            self.elig[:] = 0
        self.t = 0

    def thresholds(self, theta: int, g: int):
        """The thresholds the sweep uses for group g: theta + offsets (offsets at the start of the step)."""
        return theta if self.offsets is None else theta + self.offsets[g]

    def step(self, weights: np.ndarray, events, words, reward: int = 0) -> None:
        """Stage 5: ``weights`` [n_in, G, P] (the synapse memory, updated in place), the step's input
        events and non-zero spike words (g, word); ``reward`` (rstdp) this step's reward R(t)."""
        p, n, P = self.p, self.layer.n, self.lanes
        x = np.zeros(self.layer.n_in, bool)
        x[list(events)] = True
        y = np.zeros(self.groups * P, bool)
        for g, w in words:
            y[g * P:(g + 1) * P] = [(w >> k) & 1 for k in range(P)]
        pre = trace_update(self.pre, x, p.pre_decay, p.pre_inc, p.trace_max)
        post_decayed = decay(self.post.reshape(-1), p.post_decay)
        view = weights.reshape(self.layer.n_in, -1)
        w = view[:, :n]
        d = stdp_term(p, w, pre, post_decayed[:n], x, y[:n])
        if self.elig is None:
            view[:, :n] = apply_change(w, d, self.bounds)
        else:
            self.elig = eligibility_update(p, self.elig, d)
            if reward:
                view[:, :n] = apply_change(w, reward_change(p, self.elig, reward), self.bounds)
        self.post = np.minimum(post_decayed + p.post_inc * y, p.trace_max).reshape(self.groups, P)
        self.pre = pre
        if self.offsets is not None:
            flat = self.offsets.reshape(-1)
            flat[:n] = offsets_update(p, flat[:n], y[:n], self.t, p.offset_max(self.layer))
        self.t += 1

    def reward(self, weights: np.ndarray, reward: int) -> None:
        """A per-sample reward (rstdp): W <- clip(W + ((R * E) >>> reward_shift)) from the E the last
        sample left; R = 0 changes nothing."""
        if reward and self.elig is not None:
            view = weights.reshape(self.layer.n_in, -1)
            n = self.layer.n
            view[:, :n] = apply_change(view[:, :n], reward_change(self.p, self.elig, reward), self.bounds)

    def neuron_offsets(self) -> np.ndarray:
        """The threshold offsets [n] (zeros when the layer keeps none)."""
        return np.zeros(self.layer.n, np.int64) if self.offsets is None else self.offsets.reshape(-1)[:self.layer.n].copy()

    def state(self, kind: int, row: int, col: int) -> int:
        """The value the gateware's idle-time state read answers (0 for state the layer lacks)."""
        if kind == LearnState.PRE_TRACE:
            return int(self.pre[row])
        if kind == LearnState.POST_TRACE:
            return int(self.post.reshape(-1)[col])
        if kind == LearnState.OFFSET:
            return int(self.neuron_offsets()[col])
        if kind == LearnState.ELIGIBILITY and self.elig is not None:
            return int(self.elig[row, col])
        return 0

    def traces(self) -> tuple[np.ndarray, np.ndarray]:
        """(pre [n_in], post [n]) as the contract numbers them."""
        return self.pre.copy(), self.post.reshape(-1)[:self.layer.n].copy()
