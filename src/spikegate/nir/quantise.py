"""Quantisation of one float layer into an integer spikegate layer.

One scale ``S`` per layer: ``W_int = rint(S W)``, ``b_int = rint(S b)``, ``theta_int = floor(S theta)``
(on integer membranes that reproduces the strict ``v > theta`` exactly). The leak's decay becomes
the nearest shift or multiply.
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import UserError
from ..model.network import Layer, Leak, signed_range
from ..model.protocol import threshold_range
from ..model.temporal import Temporal
from .floatsim import FloatLayer

__all__ = ["choose_leak", "scale_limits", "quantise_layer", "MAX_ZEROED_FRACTION"]

# A layer whose scale turns more than this share of its nonzero float weights into 0 has lost
# its computation (typically one huge parameter, e.g. a 1e300 weight, set the scale). Importing
# it would write a network that runs and classifies nonsense with exit status 0, so the import is
# refused and the message names the parameter that set the scale.
MAX_ZEROED_FRACTION = 0.9


def choose_leak(beta: float, frac_bits: int, membrane_bits: int) -> Leak:
    """The integer leak nearest to decay ``beta`` per step: a shift or a multiply by m / 2^F.

    ``beta == 1`` is no leak. On a tie the shift wins (it needs no multiplier).
    """
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"beta = {beta} is out of range; valid: 0 <= beta <= 1")
    if beta == 1.0:
        return Leak.none()
    m = int(round(beta * (1 << frac_bits)))
    mult = Leak.none() if m == (1 << frac_bits) else Leak.multiply(m, frac_bits)
    k = int(round(-math.log2(1.0 - beta)))
    k = min(max(k, 1), membrane_bits)
    shift = Leak.shift(k)
    if abs(shift.factor - beta) <= abs(mult.factor - beta):
        return shift
    return mult


def _err_stats(true: np.ndarray, approx: np.ndarray) -> dict:
    true = np.asarray(true, dtype=np.float64).reshape(-1)
    err = np.abs(np.asarray(approx, dtype=np.float64).reshape(-1) - true)
    ref = float(np.abs(true).max(initial=0.0))
    mx = float(err.max(initial=0.0))
    return {"max_abs": mx, "rms": float(np.sqrt(np.mean(err ** 2))) if err.size else 0.0,
            "max_rel": (mx / ref) if ref > 0 else 0.0}


def scale_limits(L: FloatLayer, weight_bits: int, membrane_bits: int) -> dict:
    """The largest scale each integer range allows."""
    wmax = signed_range(weight_bits)[1]
    vmax = signed_range(membrane_bits)[1]
    limits = {}
    w_abs = float(np.abs(L.weights).max(initial=0.0))
    if L.recurrent is not None:
        w_abs = max(w_abs, float(np.abs(L.recurrent).max(initial=0.0)))
    b_abs = float(np.abs(L.bias).max(initial=0.0))
    if w_abs > 0:
        limits["weights"] = wmax / w_abs
    if b_abs > 0:
        limits["bias"] = vmax / b_abs
    if L.threshold is not None and L.threshold > 0:
        # floor(S theta) within the threshold range keeps "v > theta" reachable by a saturated membrane.
        limits["threshold"] = threshold_range(membrane_bits)[1] / L.threshold
    if not limits:
        raise UserError(f"NIR node {L.synapse!r}: weights, bias and threshold are all zero; the layer "
                        "cannot do anything")
    return limits


def _check_not_degenerate(L: FloatLayer, W: np.ndarray, S: float, limited_by: str, weight_bits: int) -> None:
    nonzero = L.weights != 0
    lost = int(np.count_nonzero(nonzero & (W == 0)))
    total = int(np.count_nonzero(nonzero))
    if total > 1 and lost > MAX_ZEROED_FRACTION * total:
        largest = {"weights": np.abs(L.weights).max(), "bias": np.abs(L.bias).max(),
                   "threshold": L.threshold}.get(limited_by)
        raise UserError(f"NIR node {L.synapse!r}: the {limited_by} (largest magnitude {largest:.3g}) set the scale "
                        f"{S:.3g}, which rounds {lost} of its {total} nonzero weights to 0 at --weight-bits "
                        f"{weight_bits}: the imported network would be degenerate. Check the graph's {limited_by} "
                        f"(the median nonzero weight magnitude is {np.median(np.abs(L.weights[nonzero])):.3g})")


def quantise_layer(L: FloatLayer, index: int, weight_bits: int, membrane_bits: int, frac_bits: int,
                    S: float, limited_by: str) -> tuple[Layer, dict]:
    wmax = signed_range(weight_bits)[1]
    vmax = signed_range(membrane_bits)[1]
    W = np.clip(np.rint(L.weights * S), -wmax - 1, wmax).astype(np.int64)
    b = np.clip(np.rint(L.bias * S), -vmax - 1, vmax).astype(np.int64)
    _check_not_degenerate(L, W, S, limited_by, weight_bits)
    leak = choose_leak(L.beta, frac_bits, membrane_bits)
    if L.readout:
        theta_i = 0
    else:
        x = L.threshold * S
        # S often comes from this very threshold; don't let one ulp of rounding cost a whole step.
        if abs(x - round(x)) <= 1e-9 * max(1.0, abs(x)):
            x = float(round(x))
        theta_i = int(min(math.floor(x), vmax - 1))
    R = None if L.recurrent is None else np.clip(np.rint(L.recurrent * S), -wmax - 1, wmax).astype(np.int64)
    current = None if L.alpha is None else choose_leak(L.alpha, frac_bits, membrane_bits)
    temporal = None
    if L.delays is not None or current is not None or R is not None:
        temporal = Temporal(delays=L.delays, current=current, recurrent=R)
    layer = Layer(weights=W, bias=b, threshold=theta_i, weight_bits=weight_bits, membrane_bits=membrane_bits,
                  leak=leak, reset=L.reset, refractory=0, readout=L.readout, name=L.neuron, temporal=temporal)
    params = {
        "weights": _err_stats(L.weights, W / S),
        "bias": _err_stats(L.bias, b / S),
        "leak_beta": {"float": L.beta, "int": leak.factor, "max_abs": abs(leak.factor - L.beta),
                      "leak": leak.to_dict()},
    }
    if R is not None:
        params["recurrent"] = _err_stats(L.recurrent, R / S)
    if current is not None:
        params["current_alpha"] = {"float": L.alpha, "int": current.factor, "max_abs": abs(current.factor - L.alpha),
                                   "leak": current.to_dict()}
    if L.delays is not None:
        params["delays"] = {"max": int(L.delays.max(initial=0)), "distinct": int(np.unique(L.delays).size)}
    if not L.readout:
        params["threshold"] = {"float": L.threshold, "int": theta_i, "represented": theta_i / S,
                               "max_abs": abs(L.threshold - theta_i / S)}
    report = {"layer": index, "synapse": L.synapse, "neuron": L.neuron, "kind": L.kind, "scale": S,
              "scale_limited_by": limited_by, "params": params, "notes": list(L.notes)}
    return layer, report
