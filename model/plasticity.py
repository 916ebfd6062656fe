"""The learning configuration of a plastic layer: one frozen, validated value (README, "The
learning contract"; the arithmetic is :mod:`spikegate.model.learning_rules`).

A :class:`Plasticity` holds the rule's constants (traces, STDP rates, weight bounds,
winner-take-all, adaptive thresholds, reward modulation) and the layer's learned threshold
offsets, the one piece of learned state besides the weights. Its fields are checked when it is
made; :meth:`Plasticity.check_layer` checks the ones that depend on the layer (weight bounds,
offsets, k), and :class:`~spikegate.model.network.Layer` calls it.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from .params import MAX_TIMESTEPS, check_int, frozen_array, int_array
from .protocol import CfgTarget, threshold_range, value_range

__all__ = ["Plasticity", "RULES", "INHIBITIONS", "MAX_TRACE_BITS", "MAX_ELIG_BITS", "MAX_SHIFT", "MAX_RATE"]

RULES = ("stdp", "rstdp")
INHIBITIONS = ("none", "reset", "reduce")
MAX_TRACE_BITS = 16
MAX_ELIG_BITS = 32
MAX_SHIFT = 32
MAX_RATE = (1 << 16) - 1  # a_plus, a_minus, theta_inc, inhibit, ltp_offset: 16-bit constants
# Fields that only the reward-modulated rule uses, with the value they must keep otherwise.
_RSTDP_ONLY = {"elig_bits": 16, "elig_decay": 4, "reward_shift": 0}


@dataclass(frozen=True, eq=False)
class Plasticity:
    """How a layer learns and competes. Defaults: pair STDP with 8-bit traces, no winner-take-all,
    fixed thresholds. See README, "The learning contract", for what every field does."""
    rule: str = "stdp"
    trace_bits: int = 8
    pre_decay: int = 2           # pre trace: P <- P - (P >>> pre_decay) every step
    post_decay: int = 2
    pre_inc: int | None = None   # added (saturating) on a spike; None: 2^trace_bits - 1, set-to-max
    post_inc: int | None = None
    a_plus: int = 1              # potentiation (a_plus * P_i) >>> rate_shift on a post spike
    a_minus: int = 1             # depression (a_minus * Q_j) >>> rate_shift on a pre spike
    rate_shift: int = 4
    ltp_offset: int = 0          # subtracted from every synapse of a neuron that fires
    weight_decay: int = 0        # 0: off; k: a firing neuron's synapses also lose W >>> k
    w_min: int | None = None     # None: the weight_bits range
    w_max: int | None = None
    wta: int = 0                 # 0: off; k: at most k neurons fire per step
    inhibition: str = "none"     # what a step with a winner does to the other neurons
    inhibit: int = 0             # the amount "reduce" takes off
    theta_inc: int = 0           # 0: fixed thresholds; else added to a firing neuron's offset
    theta_decay: int = 0         # 0: offsets never decay; k: off <- off - (off >>> k) ...
    theta_every: int = 1         # ... at steps t with (t + 1) % theta_every == 0
    offsets: Any = None          # learned threshold offsets [n] (None: all zero)
    elig_bits: int = 16          # rstdp: signed eligibility width
    elig_decay: int = 4          # rstdp: E <- E - (E >>> elig_decay) every step
    reward_shift: int = 0        # rstdp: W += (reward * E) >>> reward_shift

    def __post_init__(self):
        def put(name, value):
            object.__setattr__(self, name, value)
        if self.rule not in RULES:
            raise ValueError(f"plasticity.rule = {self.rule!r} is not valid; valid: {', '.join(RULES)}")
        tb = check_int("plasticity.trace_bits", self.trace_bits, 1, MAX_TRACE_BITS)
        put("trace_bits", tb)
        for name in ("pre_decay", "post_decay"):
            put(name, check_int(f"plasticity.{name}", getattr(self, name), 1, MAX_SHIFT))
        for name in ("pre_inc", "post_inc"):
            if getattr(self, name) is None:
                put(name, (1 << tb) - 1)
            put(name, check_int(f"plasticity.{name}", getattr(self, name), 1, (1 << tb) - 1))
        for name in ("a_plus", "a_minus", "ltp_offset", "theta_inc", "inhibit"):
            put(name, check_int(f"plasticity.{name}", getattr(self, name), 0, MAX_RATE))
        for name in ("rate_shift", "weight_decay", "theta_decay", "reward_shift"):
            put(name, check_int(f"plasticity.{name}", getattr(self, name), 0, MAX_SHIFT))
        put("theta_every", check_int("plasticity.theta_every", self.theta_every, 1, MAX_TIMESTEPS))
        put("wta", check_int("plasticity.wta", self.wta, 0, None))
        put("elig_bits", check_int("plasticity.elig_bits", self.elig_bits, 2, MAX_ELIG_BITS))
        put("elig_decay", check_int("plasticity.elig_decay", self.elig_decay, 1, MAX_SHIFT))
        for name in ("w_min", "w_max"):
            if getattr(self, name) is not None:
                put(name, check_int(f"plasticity.{name}", getattr(self, name)))
        if self.w_min is not None and self.w_max is not None and self.w_min > self.w_max:
            raise ValueError(f"plasticity.w_min = {self.w_min} is above plasticity.w_max = {self.w_max}; "
                             "valid: w_min <= w_max")
        if self.inhibition not in INHIBITIONS:
            raise ValueError(f"plasticity.inhibition = {self.inhibition!r} is not valid; "
                             f"valid: {', '.join(INHIBITIONS)}")
        if self.inhibition != "none" and not self.wta:
            raise ValueError(f"plasticity.inhibition = {self.inhibition!r} needs winner-take-all; "
                             "valid: set plasticity.wta >= 1, or inhibition = 'none'")
        if self.inhibit and self.inhibition != "reduce":
            raise ValueError(f"plasticity.inhibit = {self.inhibit} is only used by inhibition = 'reduce'; "
                             "leave it 0")
        if self.rule != "rstdp":
            for name, default in _RSTDP_ONLY.items():
                if getattr(self, name) != default:
                    raise ValueError(f"plasticity.{name} = {getattr(self, name)} is only used by rule = 'rstdp'; "
                                     f"leave it {default} for rule = {self.rule!r}")
        if self.offsets is not None:
            put("offsets", frozen_array(int_array("plasticity.offsets", self.offsets, 1)))

    # --- derived values ------------------------------------------------------------------

    @property
    def trace_max(self) -> int:
        return (1 << self.trace_bits) - 1

    @property
    def adaptive(self) -> bool:
        return self.theta_inc > 0

    @property
    def changes_inference(self) -> bool:
        """True when the layer's spikes with learning off differ from a plain layer's: winner-take-all,
        or threshold offsets that are not all zero."""
        return self.wta > 0 or (self.offsets is not None and bool(self.offsets.any()))

    def weight_bounds(self, layer) -> tuple[int, int]:
        lo, hi = value_range(layer, CfgTarget.WEIGHT)
        return (lo if self.w_min is None else self.w_min), (hi if self.w_max is None else self.w_max)

    def offset_max(self, layer) -> int:
        """The largest offset: threshold + offset stays a valid threshold (<= 2^(V-1) - 2)."""
        return threshold_range(layer.membrane_bits)[1] - layer.threshold

    def offsets_for(self, layer) -> np.ndarray:
        return np.zeros(layer.n, np.int64) if self.offsets is None else self.offsets

    def check_layer(self, layer, where: str = "plasticity") -> None:
        """The rules that depend on the layer; ``ValueError`` naming the field otherwise."""
        wlo, whi = value_range(layer, CfgTarget.WEIGHT)
        for name in ("w_min", "w_max"):
            value = getattr(self, name)
            if value is not None and not wlo <= value <= whi:
                raise ValueError(f"{where}.{name} = {value} is outside the {layer.weight_bits}-bit weight range; "
                                 f"valid: {wlo} <= {name} <= {whi}")
        lo, hi = self.weight_bounds(layer)
        if layer.weights.size and (layer.weights.min() < lo or layer.weights.max() > hi):
            bad = layer.weights[(layer.weights < lo) | (layer.weights > hi)][0]
            raise ValueError(f"weights contain {bad}, outside the learning bounds; valid: {where}.w_min = {lo} "
                             f"<= weight <= {where}.w_max = {hi}")
        if self.wta > layer.n:
            raise ValueError(f"{where}.wta = {self.wta} is more than the layer's {layer.n} neurons; "
                             f"valid: 0 (off) to {layer.n}")
        if layer.readout and (self.wta or self.theta_inc or self.offsets is not None):
            raise ValueError(f"{where}: a readout layer never fires, so it takes no winner-take-all, "
                             "theta_inc or offsets; valid: wta = 0, theta_inc = 0, offsets = None")
        if self.inhibition == "reduce" and self.inhibit > layer.v_max:
            raise ValueError(f"{where}.inhibit = {self.inhibit} exceeds the membrane range; "
                             f"valid: 0 <= inhibit <= {layer.v_max}")
        if self.offsets is not None:
            hi = self.offset_max(layer)
            if self.offsets.shape != (layer.n,):
                raise ValueError(f"{where}.offsets must have shape ({layer.n},), got {self.offsets.shape}")
            if self.offsets.size and (self.offsets.min() < 0 or self.offsets.max() > hi):
                bad = self.offsets[(self.offsets < 0) | (self.offsets > hi)][0]
                raise ValueError(f"{where}.offsets contains {bad}; valid: 0 <= offset <= {hi} "
                                 f"(threshold {layer.threshold} + offset <= {threshold_range(layer.membrane_bits)[1]})")

    def replace(self, **changes) -> "Plasticity":
        return dataclasses.replace(self, **changes)

    # --- equality and the file format ----------------------------------------------------

    def _scalars(self) -> dict:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "offsets"}

    def __eq__(self, other):
        if not isinstance(other, Plasticity):
            return NotImplemented
        mine, theirs = self.offsets, other.offsets
        same = (mine is None and theirs is None) or (
            mine is not None and theirs is not None and np.array_equal(mine, theirs))
        return same and self._scalars() == other._scalars()

    __hash__ = None

    def to_dict(self) -> dict:
        d = self._scalars()
        d["offsets"] = None if self.offsets is None else [int(o) for o in self.offsets]
        return d

    @classmethod
    def from_dict(cls, d: Any) -> "Plasticity":
        if not isinstance(d, dict):
            raise ValueError(f"plasticity = {d!r} is not valid; valid: an object such as "
                             '{"rule": "stdp", "trace_bits": 8}')
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"plasticity has unknown field(s) {sorted(unknown)}; valid: {', '.join(sorted(known))}")
        d = dict(d)
        if d.get("offsets") is not None:
            offsets = np.array(d["offsets"])
            if offsets.size and offsets.dtype.kind not in "iu":
                raise ValueError(f"plasticity.offsets must be an integer array, got values of type {offsets.dtype}")
            d["offsets"] = offsets.astype(np.int64)
        return cls(**d)
