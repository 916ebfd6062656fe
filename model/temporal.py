"""Temporal layers: per-synapse delays, a synaptic current (CUBA) and recurrence.

The contract is README's "Temporal layers" subsection; per step and neuron j, in order:

1. events in: the feed-forward spikes x(t);
2. ``syn_j(t) = sum_i W[i, j] x_i(t - D[i, j]) + sum_k Wr[k, j] s_k(t - 1)``, exact (x before step 0
   and s(-1) are 0; a delayed spike landing at step >= T is never seen);
3. with a current: ``c_j <- sat_V(leak_C(c_j) + b_j + syn_j)`` and the drive is ``c_j``; otherwise
   the drive is ``b_j + syn_j``. The current evolves also while the neuron is refractory;
4. the one neuron arithmetic, :func:`spikegate.model.lif.neuron_update`, with that drive.

:class:`Temporal` is the frozen, validated description a :class:`~spikegate.model.network.Layer`
holds; :func:`run_temporal_layer` is its vectorised runner, called from
:func:`spikegate.model.fastsim.run_network`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .params import Leak, frozen_array, int_array

__all__ = ["MAX_DELAY", "Temporal", "run_temporal_layer", "feedforward_sums", "random_temporal"]

# Delays are steps. 255 matches the refractory counter's width; the gateware's cost grows with a
# layer's own largest delay (one accumulator slot per delay step), not with this bound.
MAX_DELAY = 255


@dataclass(frozen=True, eq=False)
class Temporal:
    """The temporal parts of one layer, each optional (at least one set).

    - ``delays``: int [n_in, n], 0..MAX_DELAY; input i's spike at step t reaches neuron j at
      t + delays[i, j].
    - ``current``: a :class:`Leak` for the synaptic current (CUBA); the current is as wide as the
      membrane, saturates like it, and takes the bias (see the module docstring).
    - ``recurrent``: int [n, n] in the layer's weight range; ``recurrent[k, j]`` carries neuron k's
      spike of step t-1 to neuron j.

    Shapes and ranges that depend on the layer are checked by :meth:`check` when the layer is made.
    """
    delays: np.ndarray | None = None
    current: Leak | None = None
    recurrent: np.ndarray | None = None

    def __post_init__(self):
        put = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731
        if self.delays is None and self.current is None and self.recurrent is None:
            raise ValueError("Temporal needs at least one of delays, current, recurrent; a layer without "
                             "them takes temporal = None")
        if self.delays is not None:
            d = int_array("temporal.delays", self.delays, 2)
            if d.size and (d.min() < 0 or d.max() > MAX_DELAY):
                bad = d[(d < 0) | (d > MAX_DELAY)][0]
                raise ValueError(f"temporal.delays contains {bad}; valid: 0 <= delay <= {MAX_DELAY} steps")
            put("delays", frozen_array(d))
        if self.current is not None and not isinstance(self.current, Leak):
            raise TypeError(f"temporal.current must be a Leak (the current's decay) or None, got {self.current!r}")
        if self.recurrent is not None:
            put("recurrent", frozen_array(int_array("temporal.recurrent", self.recurrent, 2)))

    @property
    def max_delay(self) -> int:
        return int(self.delays.max(initial=0)) if self.delays is not None else 0

    def features(self) -> list[str]:
        """The parts that are set, by name (for messages)."""
        return [name for name, part in (("synaptic delays", self.delays), ("synaptic current", self.current),
                                         ("recurrence", self.recurrent)) if part is not None]

    def check(self, layer) -> None:
        """Check the parts against their layer (shapes, the recurrent weights' range, readout)."""
        n_in, n = layer.weights.shape
        if self.delays is not None and self.delays.shape != (n_in, n):
            raise ValueError(f"temporal.delays must have the weights' shape ({n_in}, {n}), got {self.delays.shape}")
        if self.recurrent is not None:
            if self.recurrent.shape != (n, n):
                raise ValueError(f"temporal.recurrent must have shape ({n}, {n}) (neuron k to neuron j), got "
                                 f"{self.recurrent.shape}")
            if layer.readout:
                raise ValueError("a readout layer never spikes, so it cannot have temporal.recurrent")
            lo, hi = -(1 << (layer.weight_bits - 1)), (1 << (layer.weight_bits - 1)) - 1
            bad = self.recurrent[(self.recurrent < lo) | (self.recurrent > hi)]
            if bad.size:
                raise ValueError(f"temporal.recurrent contains {bad[0]}, outside the {layer.weight_bits}-bit "
                                 f"signed range [{lo}, {hi}] (weight_bits = {layer.weight_bits})")

    def __eq__(self, other):
        if not isinstance(other, Temporal):
            return NotImplemented
        same = lambda a, b: (a is None and b is None) or (a is not None and b is not None  # noqa: E731
                                                          and np.array_equal(a, b))
        return (same(self.delays, other.delays) and self.current == other.current
                and same(self.recurrent, other.recurrent))

    __hash__ = None

    def to_dict(self) -> dict:
        """The file form: only the parts that are set."""
        d = {}
        if self.delays is not None:
            d["delays"] = [[int(x) for x in row] for row in self.delays]
        if self.current is not None:
            d["current"] = self.current.to_dict()
        if self.recurrent is not None:
            d["recurrent"] = [[int(x) for x in row] for row in self.recurrent]
        return d

    @classmethod
    def from_dict(cls, d) -> "Temporal":
        """From the file form; raises ValueError/TypeError naming the field."""
        if not isinstance(d, dict):
            raise ValueError(f"temporal = {d!r} is not valid; valid: an object with delays, current and/or "
                             "recurrent")
        unknown = set(d) - {"delays", "current", "recurrent"}
        if unknown:
            raise ValueError(f"temporal has unknown field(s) {sorted(unknown)}; valid: delays, current, recurrent")
        arrays = {}
        for key in ("delays", "recurrent"):
            if key in d:
                try:
                    # No dtype: a float or a huge integer in the file must be an error, not be truncated.
                    a = np.array(d[key])
                except (ValueError, TypeError) as e:
                    raise ValueError(f"temporal.{key} is not an integer array ({e})") from None
                if a.ndim != 2 or (a.size and a.dtype.kind not in "iu"):
                    raise ValueError(f"temporal.{key} must be a list of equal-length integer rows, got "
                                     f"shape {a.shape}, values of type {a.dtype}")
                arrays[key] = a
        current = Leak.from_dict(d["current"]) if "current" in d else None
        return cls(delays=arrays.get("delays"), current=current, recurrent=arrays.get("recurrent"))


def feedforward_sums(layer, x: np.ndarray) -> np.ndarray:
    """``sum_i W[i, j] x_i(t - D[i, j])`` int64 [T, batch, n] for input spikes ``x`` bool
    [T, batch, n_in] (step-major): one exact product per distinct delay, shifted in time."""
    from .fastsim import exact_float_dtype, synaptic_input
    T, batch, n_in = x.shape
    W = layer.weights
    delays = layer.temporal.delays if layer.temporal is not None else None
    groups = [(0, W)] if delays is None else [(int(d), np.where(delays == d, W, 0)) for d in np.unique(delays)]
    syn = np.zeros((T, batch, layer.n), np.int64)
    flat = x.reshape(T * batch, n_in)
    for d, Wd in groups:
        if d >= T:
            continue  # lands after the last step
        part = synaptic_input(Wd, flat[:(T - d) * batch], exact_float_dtype(Wd, layer.weight_bits))
        syn[d:] += part.astype(np.int64).reshape(T - d, batch, layer.n)
    return syn


def run_temporal_layer(layer, x: np.ndarray, traces: bool = False):
    """All steps of a temporal layer for its input spikes ``x`` bool [T, batch, n_in] (step-major).

    Returns ``(spikes bool [T, batch, n], v int64 [batch, n], r int64 [batch, n], trace)`` like
    :func:`spikegate.model.fastsim.run_layer`; ``trace`` int64 [T, batch, n] or None."""
    from .fastsim import exact_float_dtype, synaptic_input
    from .lif import leak, neuron_update, saturate
    tp = layer.temporal
    T, batch, _ = x.shape
    n = layer.n
    syn = feedforward_sums(layer, x)
    rec = tp.recurrent
    rec_dtype = exact_float_dtype(rec, layer.weight_bits) if rec is not None else None
    v = np.zeros((batch, n), np.int64)
    r = np.zeros((batch, n), np.int64)
    c = np.zeros((batch, n), np.int64)
    s = np.zeros((batch, n), bool)
    spikes = np.zeros((T, batch, n), bool)
    trace = np.empty((T, batch, n), np.int64) if traces else None
    for t in range(T):
        drive = syn[t]
        if rec is not None and s.any():
            drive = drive + synaptic_input(rec, s, rec_dtype).astype(np.int64)  # s is s(t - 1)
        if tp.current is not None:
            c = saturate(leak(c, tp.current) + layer.bias + drive, layer.membrane_bits)
            drive = c
        else:
            drive = layer.bias + drive
        v, r, s = neuron_update(v, r, drive, layer.threshold, layer)
        spikes[t] = s
        if traces:
            trace[t] = v
    return spikes, v, r, trace


def random_temporal(rng: np.random.Generator, layer, *, parts: tuple[str, ...] | None = None,
                    max_delay: int = 6):
    """``layer`` with random temporal parts (for tests and regressions): ``parts`` out of "delays",
    "current", "recurrent" (default: a random non-empty choice; recurrence never on a readout)."""
    choices = ["delays", "current"] + ([] if layer.readout else ["recurrent"])
    if parts is None:
        parts = tuple(p for p in choices if rng.random() < 0.6) or (choices[int(rng.integers(len(choices)))],)
    parts = tuple(p for p in parts if p in choices) or ("current",)
    n_in, n = layer.weights.shape
    wlo, whi = -(1 << (layer.weight_bits - 1)), (1 << (layer.weight_bits - 1)) - 1
    delays = rng.integers(0, max_delay + 1, size=(n_in, n)) if "delays" in parts else None
    current = None
    if "current" in parts:
        kind = ["none", "shift", "multiply"][int(rng.integers(3))]
        if kind == "shift":
            current = Leak.shift(int(rng.integers(1, layer.membrane_bits + 1)))
        elif kind == "multiply":
            f = int(rng.integers(1, 17))
            current = Leak.multiply(int(rng.integers(0, (1 << f) + 1)), f)
        else:
            current = Leak.none()
    recurrent = None
    if "recurrent" in parts:
        recurrent = rng.integers(wlo, whi + 1, size=(n, n))
        recurrent[rng.random((n, n)) > rng.uniform(0.2, 1.0)] = 0
    return layer.replace(temporal=Temporal(delays=delays, current=current, recurrent=recurrent))
