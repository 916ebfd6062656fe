"""ANN-to-SNN conversion: a trained ReLU MLP (:class:`spikegate.ann.ANN`) into an integer network.

1. **Normalise** with data: for every hidden layer l, lambda_l is the ``percentile``-th
   percentile of its ReLU activations over the calibration set (lambda_0 = 1 for inputs in [0, 1]).
   The rate-normalised weights W_l * lambda_(l-1) / lambda_l and biases b_l / lambda_l make a
   spike rate of 1 per step stand for activation lambda_l (Rueckauer et al. 2017, "layer-wise").
2. **Quantise**: each layer is scaled so that its largest normalised weight magnitude maps to
   2^(weight_bits-1) - 1. A hidden layer's threshold is that scale (the integer value of rate 1)
   and it resets by subtraction, which keeps the residue and so converts rates with no systematic
   loss. Biases use the same scale and are added every step.
3. **Read out** through a non-spiking last layer: its final membrane after T steps is T times the
   scaled ANN logits, up to rate quantisation, and the class is its argmax.
4. **Membrane width**: unless given, each layer gets the bits that hold the largest membrane
   magnitude seen on the calibration set (simulated with wide membranes) plus a bit of headroom.
"""
from __future__ import annotations

import numpy as np

from . import datasets
from .ann import ANN
from .model.network import MAX_MEMBRANE_BITS, Layer, Network, signed_range
from .model.protocol import threshold_range
from .model.simulate import simulate

__all__ = ["convert", "normalise"]


def _scale_layer(w: np.ndarray, b: np.ndarray, weight_bits: int):
    wmax = signed_range(weight_bits)[1]
    peak = float(np.max(np.abs(w)))
    scale = wmax / peak if peak > 0 else 1.0
    wq = np.clip(np.rint(w * scale), -wmax, wmax).astype(np.int64)
    bq = np.rint(b * scale).astype(np.int64)
    return wq, bq, scale


def _membrane_bits_for(peak: int) -> int:
    # sign bit + magnitude + one bit of headroom over the training set's largest membrane.
    return max(int(peak).bit_length() + 2, 4)


def normalise(weights, biases, acts, percentile: float, weight_bits: int) -> list[tuple]:
    """Steps 1-2 for float layers (weights, biases, each layer's activations on the calibration
    set; the last layer is the readout): per layer ``(W_int, b_int, threshold, last)``."""
    lam_prev = 1.0
    specs = []
    for l in range(len(weights)):
        last = l == len(weights) - 1
        if last:
            w_n, b_n = weights[l] * lam_prev, biases[l]
        else:
            lam = float(np.percentile(acts[l], percentile))
            if lam <= 0:
                raise ValueError(f"hidden layer {l} is silent on the calibration data (all activations 0); "
                                 "cannot normalise it: train longer or with another seed")
            w_n, b_n = weights[l] * lam_prev / lam, biases[l] / lam
            lam_prev = lam
        wq, bq, scale = _scale_layer(w_n, b_n, weight_bits)
        specs.append((wq, bq, 0 if last else max(int(round(scale)), 1), last))
    return specs


def convert(ann: ANN, x_calib: np.ndarray, *, timesteps: int = 8, weight_bits: int = 8,
            membrane_bits: int | None = None, percentile: float = 99.9, encoding: str = "rate",
            name: str = "", seed: int = 0) -> Network:
    """Convert ``ann`` into an integer SNN, normalising with the activations on ``x_calib``."""
    specs = normalise(ann.weights, ann.biases, ann.activations(x_calib), percentile, weight_bits)
    n_layers = len(specs)

    def make(bits_per_layer):
        layers = []
        for l, (wq, bq, theta, last) in enumerate(specs):
            vb = bits_per_layer[l]
            lo, hi = signed_range(vb)
            layers.append(Layer(weights=wq, bias=np.clip(bq, lo, hi), threshold=0 if last else min(theta, threshold_range(vb)[1]),
                                weight_bits=weight_bits, membrane_bits=vb, reset="zero" if last else "subtract",
                                readout=last, name="readout" if last else f"hidden{l}"))
        return Network(layers=layers, timesteps=timesteps, encoding=encoding, name=name)

    if membrane_bits is None:
        wide = make([MAX_MEMBRANE_BITS] * n_layers)
        spikes = datasets.encode_for(wide, x_calib, seed)
        bits = []
        res = simulate(wide, spikes, traces=True)
        for l in range(n_layers):
            peak = max(int(np.abs(res.traces[l]).max()), specs[l][2] + 1)
            bits.append(min(_membrane_bits_for(peak), MAX_MEMBRANE_BITS))
        return make(bits)
    return make([membrane_bits] * n_layers)
