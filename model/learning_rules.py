"""Stage 5 of a layer's step, the learning contract (README, "The learning contract"), vectorised
over one layer's synapses for one sample stream.

Every function takes the state at the start of the step and returns the new state; nothing is
modified in place. ``x`` are the step's input (pre-synaptic) spikes bool [n_in], ``y`` the step's
output (post-synaptic) spikes bool [n]. ``>>`` on int64 is the contract's ``>>>`` (rounds towards
minus infinity).
"""
from __future__ import annotations

import numpy as np

from .plasticity import Plasticity
from .protocol import signed_range

__all__ = ["decay", "trace_update", "stdp_term", "apply_change", "eligibility_update", "reward_change",
           "offsets_update"]


def decay(x: np.ndarray, k: int) -> np.ndarray:
    """``x - (x >>> k)``: the shift leak of the neuron contract."""
    return x - (x >> k)


def trace_update(trace: np.ndarray, spikes: np.ndarray, k: int, inc: int, top: int) -> np.ndarray:
    """Decay, then add ``inc`` on a spike, saturating at ``top`` (= 2^trace_bits - 1)."""
    return np.minimum(decay(trace, k) + inc * spikes, top)


def stdp_term(p: Plasticity, w: np.ndarray, pre_new: np.ndarray, post_decayed: np.ndarray,
              x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The pair-STDP change D [n_in, n] of one step, before any saturation.

    Potentiation, for every neuron j that fired: ``(a_plus * P_i) >>> rate_shift - ltp_offset
    - (W[i, j] >>> weight_decay if weight_decay)``, with P the pre trace *after* this step's update
    (a pre spike in the same step as the post spike counts as causal). Depression, for every input
    i that spiked: ``(a_minus * Q_j) >>> rate_shift`` with Q the post trace decayed but *before* this
    step's post spikes are added (so a simultaneous pair is never also acausal)."""
    d = np.zeros(w.shape, np.int64)
    if y.any():
        pot = ((p.a_plus * pre_new) >> p.rate_shift) - p.ltp_offset
        cols = np.flatnonzero(y)
        change = np.repeat(pot[:, None], len(cols), axis=1)
        if p.weight_decay:
            change -= w[:, cols] >> p.weight_decay
        d[:, cols] = change
    if x.any():
        dep = (p.a_minus * post_decayed) >> p.rate_shift
        d[np.flatnonzero(x)] -= dep
    return d


def apply_change(w: np.ndarray, change: np.ndarray, bounds: tuple[int, int]) -> np.ndarray:
    """``W <- clip(W + change, w_min, w_max)``: one saturation of the exact sum."""
    return np.clip(w + change, bounds[0], bounds[1])


def eligibility_update(p: Plasticity, e: np.ndarray, d: np.ndarray) -> np.ndarray:
    """rstdp: ``E <- sat_E(E - (E >>> elig_decay) + D)`` to the signed ``elig_bits`` range."""
    lo, hi = signed_range(p.elig_bits)
    return np.clip(decay(e, p.elig_decay) + d, lo, hi)


def reward_change(p: Plasticity, e: np.ndarray, reward: int) -> np.ndarray:
    """rstdp: the weight change ``(reward * E) >>> reward_shift`` a reward makes."""
    return (int(reward) * e) >> p.reward_shift


def offsets_update(p: Plasticity, off: np.ndarray, y: np.ndarray, t: int, top: int) -> np.ndarray:
    """Adaptive thresholds at step t: decay by ``theta_decay`` when (t + 1) is a multiple of
    ``theta_every`` (never when theta_decay = 0), then add ``theta_inc`` for a spike, saturating at
    ``top`` (threshold + offset stays a valid threshold)."""
    if p.theta_decay and (t + 1) % p.theta_every == 0:
        off = decay(off, p.theta_decay)
    return np.minimum(off + p.theta_inc * y, top)
