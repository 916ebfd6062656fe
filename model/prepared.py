"""What the fast path (:mod:`spikegate.model.fastsim`) derives from a layer's parameters alone,
kept for as long as the layer exists: the neuron state type, the exact types of its synaptic
products, the weights converted to them, the drive's bounds and the drive routing."""
from __future__ import annotations

import weakref

import numpy as np

from .compiled import accumulator_dtype
from .conv import neuron_bias
from .fastsyn import column_bound, exact_float_dtype, float_for
from .network import MAX_REFRACTORY, Layer
from .patterns import INT16_BOUND, Router

__all__ = ["prepared", "state_dtype", "rails_can_act", "membrane_extent", "holds_the_run"]


_STATE_TYPES = ((np.int16, (1 << 15) - 1), (np.int32, (1 << 31) - 1))


def state_dtype(layer: Layer):
    """The narrowest of int16 / int32 / int64 that holds every intermediate value of the
    neuron update (narrower means more lanes per SIMD operation).

    The membrane stays inside [v_min, v_max] between steps; within a step the largest values
    are the leaked membrane plus bias plus synaptic sum (each bounded), the difference of two
    membranes (< 2 * 2^(V-1)) and, for the multiply leak, v * m before its shift. The free bounds
    (bias within the membrane range, every weight at full scale) are tried before the layer's
    own values, which cost a pass over the weights."""
    half = 1 << (layer.membrane_bits - 1)
    floor = max(2 * half, half * layer.leak.m if layer.leak.kind == "multiply" else 0, MAX_REFRACTORY)
    free = max(floor, 2 * half + (layer.n_in << (layer.weight_bits - 1)))
    for dtype, limit in _STATE_TYPES:
        if free < limit:
            return dtype
        if floor < limit:
            own = half + int(np.abs(layer.bias).max(initial=0)) + column_bound(layer.weights)
            if own < limit:
                return dtype
    return np.int64


def membrane_extent(layer: Layer, T: int, low: int, high: int, cap: int | None = None) -> tuple[int, int]:
    """(lowest, highest) bounding every value a layer's membrane takes in T steps, before and
    after its saturation, when every drive value (bias plus synaptic sum) lies in [low, high].

    A leak moves a membrane towards 0 without crossing it (0 <= m <= 2^F, and an arithmetic
    shift rounds towards -inf), a spike resets to 0 or takes theta off a value above theta, and
    a refractory neuron keeps its membrane. So below: after step t every membrane is at least
    (t + 1) * min(low, 0). Above: a membrane before its step's reset is at most
    max(previous, 0) + high, and after it at most theta (no spike), that minus theta (a
    subtracted spike), 0 (a zeroed one) or the previous bound (refractory); a saturation only
    lowers it. Following the bound stops once it passes ``cap``: any larger answer is as good."""
    theta, subtract, keeps = layer.threshold, layer.reset == "subtract", layer.refractory > 0
    bound = highest = 0
    for _ in range(T):
        peak = max(bound, 0) + high
        highest = max(highest, peak)
        if cap is not None and highest > cap:
            break
        if layer.readout:
            bound = peak
        else:
            after = peak - theta if subtract else 0
            bound = max(theta, after, bound if keeps else after)
    return T * min(low, 0), highest


def rails_can_act(layer: Layer, T: int, low, high) -> tuple[bool, bool]:
    """Whether the lower / upper membrane rail can act in T steps when every drive value (bias
    plus synaptic sum) lies in [low, high] (None: unknown, the rail may act):
    :func:`membrane_extent` against [v_min, v_max]."""
    v_min, v_max = layer.v_min, layer.v_max
    lowest, highest = membrane_extent(layer, T, 0 if low is None else low, 0 if high is None else high, v_max)
    return low is None or lowest < v_min, high is None or highest > v_max


def holds_the_run(layer: Layer, T: int, low: int, high: int, dtype) -> bool:
    """Whether the integer type ``dtype`` holds every value of the neuron update
    (:func:`spikegate.model.fastsim.run_drive`) when every drive value lies in [low, high]: every
    membrane (:func:`membrane_extent`), theta, and for the multiply leak v * m before its shift.
    Differences of membranes may wrap: they are only added back, and wrapping arithmetic undoes
    itself exactly."""
    info = np.iinfo(dtype)
    lowest, highest = membrane_extent(layer, T, low, high, int(info.max))
    if lowest < info.min or highest > info.max or layer.threshold > info.max:
        return False
    leak = layer.leak
    return leak.kind != "multiply" or max(-lowest, highest, 1) * leak.m <= info.max


class _Prepared:
    """What the fast path derives from a layer's parameters alone: the neuron state type, the
    exact float type of its synaptic products, the bias in the state type, and the weights
    converted to float types as calls ask for them."""

    def __init__(self, layer: Layer):
        self.layer = weakref.ref(layer)
        self.state = state_dtype(layer)
        self.float = exact_float_dtype(layer.weights, layer.weight_bits)
        self.bias = neuron_bias(layer).astype(self.state)
        self._converted = {}
        self.router = Router()
        self._bounds = None
        self._rails = {}

    def rails(self, T: int) -> tuple[bool, bool]:
        """Whether the lower / upper membrane rail of a dense layer can act in T steps for any
        input (:func:`rails_can_act` on :meth:`drive_bounds`)."""
        if T not in self._rails:
            self._rails[T] = rails_can_act(self.layer(), T, *self.drive_bounds())
        return self._rails[T]

    def drive_bounds(self):
        """(low, high) bounding every drive value of a dense layer: the bias plus a column's
        negative terms, and the bias plus its positive ones."""
        if self._bounds is None:
            w = self.layer().weights
            self._bounds = (int((self.bias + np.minimum(w, 0).sum(axis=0)).min(initial=0)),
                            int((self.bias + np.maximum(w, 0).sum(axis=0)).max(initial=0)))
        return self._bounds

    def int16(self):
        """The weights in int16 when every subset sum of a column is exact in it (the pattern
        path's arithmetic, :mod:`spikegate.model.patterns`), else None."""
        if "int16" not in self._converted:
            w = self.layer().weights
            self._converted["int16"] = w.astype(np.int16) if column_bound(w) < INT16_BOUND else None
        return self._converted["int16"]

    def summed(self):
        """(weights, bias, drive type) for the compiled kernel: the weights and bias in its
        accumulator type (:func:`spikegate.model.compiled.accumulator_dtype`), and the drive in
        that type when it is narrower than the state's (the neuron loop keeps it if the data
        allow: :func:`spikegate.model.fastsim.run_drive`), else in the state type; None when no
        accumulator type is exact."""
        if "summed" not in self._converted:
            w = self.layer().weights
            dtype = accumulator_dtype(w, self.bias)
            if dtype is None:
                self._converted["summed"] = None
            else:
                drive = dtype if np.dtype(dtype).itemsize < np.dtype(self.state).itemsize else self.state
                self._converted["summed"] = (w.astype(dtype), self.bias.astype(dtype), drive)
        return self._converted["summed"]

    def biased(self):
        """The weights with the bias as a last row [n_in + 1, n] in the layer's product type, when
        every partial sum of a column with its bias is exact there (the product then adds the
        bias, :func:`spikegate.model.fastsyn.product_blocks`' ``ones``), else None."""
        if "biased" not in self._converted:
            layer, top = self.layer(), int(np.abs(self.bias).max(initial=0))
            stacked = np.vstack([layer.weights, self.bias[None, :]])
            fits = self.float is not None and (
                float_for((layer.n_in << (layer.weight_bits - 1)) + top) is self.float
                or float_for(column_bound(stacked)) is self.float)
            self._converted["biased"] = stacked.astype(self.float) if fits else None
        return self._converted["biased"]

    def weights(self, dtype):
        """The weights in ``dtype`` (None: no conversion is wanted; returns None)."""
        if dtype is None:
            return None
        if dtype not in self._converted:
            self._converted[dtype] = self.layer().weights.astype(dtype)
        return self._converted[dtype]

    def split(self, dtype):
        """[max(W, 0) | min(W, 0)] in ``dtype``: a readout's positive and negative terms."""
        key = ("split", dtype)
        if key not in self._converted:
            w = self.layer().weights
            self._converted[key] = np.concatenate([np.maximum(w, 0), np.minimum(w, 0)], axis=1).astype(dtype)
        return self._converted[key]


# A Layer is immutable, so what it derives stays valid for as long as it exists (small batches
# would otherwise convert the weights again on every call). Keyed by identity: layers compare
# by value; an entry goes when its layer does.
_PREPARED: dict[int, _Prepared] = {}


def prepared(layer: Layer) -> _Prepared:
    """The layer's :class:`_Prepared` values, derived on the first call."""
    p = _PREPARED.get(id(layer))
    if p is None or p.layer() is not layer:
        p = _PREPARED[id(layer)] = _Prepared(layer)
        weakref.finalize(layer, _PREPARED.pop, id(layer), None)
    return p
