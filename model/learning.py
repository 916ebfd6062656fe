"""Run a network with plastic layers on one sample stream, learning on or off (README, "The
learning contract").

:class:`Learner` holds the learned state (weights and threshold offsets of every plastic layer)
and the per-sample state the contract resets between samples (membranes, traces, eligibility);
:func:`learn_stream` runs a whole stream through one. Layers without plasticity run exactly as in
:func:`spikegate.model.simulate`. :func:`run_competitive_layer` is the batched, learning-off path
:mod:`spikegate.model.fastsim` sends winner-take-all and adaptive-threshold layers to.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .fastsim import run_network
from .learning_rules import (apply_change, decay, eligibility_update, offsets_update, reward_change, stdp_term,
                             trace_update)
from .lif import neuron_update
from .network import Layer, Network
from .params import check_int

__all__ = ["MAX_REWARD", "check_reward", "LayerState", "Learner", "LearnResult", "learn_stream", "run_competitive_layer"]

# Rewards are signed 16-bit integers (what the host sends).
MAX_REWARD = (1 << 15) - 1


@dataclass
class LayerState:
    """The learning state of one plastic layer. ``weights`` and ``offsets`` persist across samples;
    ``pre``/``post`` traces and ``elig`` (rstdp) are reset to 0 at the start of every sample."""
    weights: np.ndarray   # int64 [n_in, n]
    offsets: np.ndarray   # int64 [n]
    pre: np.ndarray       # int64 [n_in]
    post: np.ndarray      # int64 [n]
    elig: np.ndarray | None  # int64 [n_in, n] for rstdp

    def reset_sample(self) -> None:
        self.pre = np.zeros_like(self.pre)
        self.post = np.zeros_like(self.post)
        if self.elig is not None:
            self.elig = np.zeros_like(self.elig)


def check_reward(name: str, value) -> int:
    """A reward: a signed 16-bit integer, else ValueError naming ``name``."""
    return check_int(name, value, -MAX_REWARD - 1, MAX_REWARD)


class Learner:
    """One sample stream through ``net``: :meth:`run` a sample (learning on or off), then
    optionally :meth:`reward` it (rstdp layers); :meth:`network` is the learned network."""

    def __init__(self, net: Network):
        if not isinstance(net, Network):
            raise TypeError(f"net must be a spikegate Network, got {type(net).__name__}")
        self.net = net
        self.state: dict[int, LayerState] = {}
        for l, layer in enumerate(net.layers):
            p = layer.plasticity
            if p is not None:
                self.state[l] = LayerState(
                    weights=layer.weights.copy(), offsets=p.offsets_for(layer).copy(),
                    pre=np.zeros(layer.n_in, np.int64), post=np.zeros(layer.n, np.int64),
                    elig=np.zeros(layer.weights.shape, np.int64) if p.rule == "rstdp" else None)
        if not self.state:
            raise ValueError("the network has no plastic layer (no layer has a plasticity setting); "
                             "valid: a network with at least one Layer(plasticity=Plasticity(...))")

    def run(self, spikes: np.ndarray, learn: bool = True, rewards=None) -> list[np.ndarray]:
        """One sample: input spikes bool [T, n_in]. Returns each layer's spikes bool [T, n_l].

        ``rewards`` (rstdp, learning on): None, or one signed reward per step [T] applied at the end
        of that step. A per-sample reward is :meth:`reward` after the run."""
        x = np.asarray(spikes)
        if x.ndim != 2 or x.shape[1] != self.net.n_inputs or x.dtype != bool:
            raise ValueError(f"spikes must be bool [T, {self.net.n_inputs}] (one sample), got "
                             f"{x.dtype} {x.shape}")
        T = x.shape[0]
        if rewards is not None:
            rewards = [check_reward(f"rewards[{t}]", r) for t, r in enumerate(np.asarray(rewards).tolist())]
            if len(rewards) != T:
                raise ValueError(f"rewards must have one value per step ({T}), got {len(rewards)}")
        out = []
        for l, layer in enumerate(self.net.layers):
            if l in self.state:
                self.state[l].reset_sample()
                x = self._run_plastic(layer, self.state[l], x, learn, rewards)
            else:
                # Through simulate's own dispatch, so a layer of any kind runs as it does there.
                x = run_network([layer], x[None])[0][0][0]
            out.append(x)
        return out

    def _run_plastic(self, layer: Layer, st: LayerState, x: np.ndarray, learn: bool, rewards) -> np.ndarray:
        p = layer.plasticity
        T = x.shape[0]
        bounds = p.weight_bounds(layer)
        top, off_top = p.trace_max, p.offset_max(layer)
        v = np.zeros(layer.n, np.int64)
        r = np.zeros(layer.n, np.int64)
        y_all = np.zeros((T, layer.n), bool)
        for t in range(T):
            xt = x[t]
            # Integration sees the weights and offsets as they were at the start of the step.
            drive = layer.bias + st.weights[xt].sum(axis=0)
            v, r, y = neuron_update(v, r, drive, layer.threshold + st.offsets, layer, p)
            y_all[t] = y
            if not learn:
                continue
            pre = trace_update(st.pre, xt, p.pre_decay, p.pre_inc, top)
            post_decayed = decay(st.post, p.post_decay)
            d = stdp_term(p, st.weights, pre, post_decayed, xt, y)
            if p.rule == "stdp":
                st.weights = apply_change(st.weights, d, bounds)
            else:
                st.elig = eligibility_update(p, st.elig, d)
                if rewards is not None and rewards[t]:
                    st.weights = apply_change(st.weights, reward_change(p, st.elig, rewards[t]), bounds)
            st.post = np.minimum(post_decayed + p.post_inc * y, top)
            st.pre = pre
            st.offsets = offsets_update(p, st.offsets, y, t, off_top)
        return y_all

    def reward(self, reward: int) -> None:
        """A per-sample reward: every rstdp layer's weights change by ``(reward * E) >>> reward_shift``
        from the eligibility the last sample left."""
        reward = check_reward("reward", reward)
        for l, st in self.state.items():
            layer = self.net.layers[l]
            if layer.plasticity.rule == "rstdp" and reward:
                st.weights = apply_change(st.weights, reward_change(layer.plasticity, st.elig, reward),
                                          layer.plasticity.weight_bounds(layer))

    def network(self) -> Network:
        """The network with every plastic layer's learned weights and threshold offsets."""
        layers = list(self.net.layers)
        for l, st in self.state.items():
            layer = layers[l]
            # A readout never fires, so its offsets stay unset.
            p = layer.plasticity if layer.readout else layer.plasticity.replace(offsets=st.offsets.copy())
            layers[l] = layer.replace(weights=st.weights.copy(), plasticity=p)
        return self.net.replace(layers=layers)


@dataclass
class LearnResult:
    """:func:`learn_stream`'s output: ``spikes[l]`` bool [N, T, n_l]; ``network`` the learned
    network; per plastic layer l, ``state[l]`` its :class:`LayerState` after the last sample."""
    spikes: list[np.ndarray]
    network: Network
    state: dict[int, LayerState]


def learn_stream(net: Network, spikes: np.ndarray, learn: bool = True, rewards=None) -> LearnResult:
    """Run samples bool [N, T, n_in] in order through one :class:`Learner`. ``rewards`` (rstdp):
    None, one per sample [N] (applied after the sample), or one per step [N, T]."""
    spikes = np.asarray(spikes, dtype=bool)
    if spikes.ndim != 3:
        raise ValueError(f"spikes must be bool [N, T, n_in], got shape {spikes.shape}")
    per_step = rewards is not None and np.ndim(rewards) == 2
    if rewards is not None and len(rewards) != len(spikes):
        raise ValueError(f"rewards must have one entry per sample ({len(spikes)}), got {len(rewards)}")
    learner = Learner(net)
    outs = []
    for i, sample in enumerate(spikes):
        outs.append(learner.run(sample, learn, rewards[i] if per_step else None))
        if rewards is not None and not per_step and learn:
            learner.reward(rewards[i])
    L = len(net.layers)
    stacked = [np.stack([o[l] for o in outs]) if outs else np.zeros((0, 0, net.layers[l].n), bool) for l in range(L)]
    return LearnResult(spikes=stacked, network=learner.network(), state=learner.state)


def run_competitive_layer(layer: Layer, syn: np.ndarray, traces: bool = False):
    """A plastic layer with learning off, over a batch: ``syn`` [T, batch, n] exact synaptic sums.
    Same return value as :func:`spikegate.model.fastsim.run_layer`; the neuron arithmetic is
    :func:`spikegate.model.lif.neuron_update` with thresholds threshold + offsets and the layer's
    winner-take-all."""
    p = layer.plasticity
    T, batch, n = syn.shape
    theta = layer.threshold + p.offsets_for(layer)
    v = np.zeros((batch, n), np.int64)
    r = np.zeros((batch, n), np.int64)
    spikes = np.zeros((T, batch, n), bool)
    trace = np.empty((T, batch, n), np.int64) if traces else None
    for t in range(T):
        v, r, spikes[t] = neuron_update(v, r, layer.bias + syn[t].astype(np.int64), theta, layer, p)
        if traces:
            trace[t] = v
    return spikes, v, r, trace
