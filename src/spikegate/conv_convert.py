"""CNN-to-SNN conversion: a trained ReLU CNN (:class:`spikegate.cnn.CNN`) into an integer network
of ``conv2d`` layers and a dense readout.

The rules are the MLP's (:mod:`spikegate.convert`), per layer: lambda_l is the ``percentile``-th
percentile of layer l's ReLU activations over every position and channel of the calibration set;
kernels and biases are rate-normalised (W·lambda_(l-1)/lambda_l, b/lambda_l), scaled so the
largest kernel magnitude is 2^(weight_bits-1) - 1, the threshold is that scale and reset is by
subtraction; one bias per output channel, added every step. The readout is a non-spiking dense
layer on the flattened last feature map. Membrane widths come from the largest membrane seen on
(a slice of) the calibration set.
"""
from __future__ import annotations

import numpy as np

from . import datasets
from .cnn import CNN
from .convert import _membrane_bits_for, normalise
from .model.conv import ConvSpec
from .model.network import MAX_MEMBRANE_BITS, Layer, Network, signed_range
from .model.protocol import threshold_range
from .model.simulate import simulate

__all__ = ["convert_cnn", "MEMBRANE_CALIBRATION_SAMPLES"]

# Samples simulated to size the membranes: the conv model costs about a millisecond per sample.
MEMBRANE_CALIBRATION_SAMPLES = 500


def convert_cnn(cnn: CNN, x_calib: np.ndarray, *, timesteps: int = 32, weight_bits: int = 8,
                membrane_bits: int | None = None, percentile: float = 99.9, encoding: str = "rate",
                name: str = "", seed: int = 0) -> Network:
    """Convert ``cnn`` into an integer SNN, normalising with its activations on ``x_calib``."""
    specs = normalise(cnn.weights, cnn.biases, cnn.activations(x_calib), percentile, weight_bits)
    n_layers = len(specs)
    shapes = [ConvSpec("conv2d", c.in_shape, c.out_channels, c.kernel, c.stride, c.padding) for c in cnn.convs]

    def make(bits):
        layers = []
        for l, (wq, bq, theta, last) in enumerate(specs):
            lo, hi = signed_range(bits[l])
            common = dict(weights=wq, bias=np.clip(bq, lo, hi), weight_bits=weight_bits, membrane_bits=bits[l])
            if last:
                layers.append(Layer(**common, readout=True, name="readout"))
            else:
                layers.append(Layer(**common, threshold=min(theta, threshold_range(bits[l])[1]), reset="subtract",
                                    name=f"conv{l}", conv=shapes[l]))
        return Network(layers=layers, timesteps=timesteps, encoding=encoding, name=name)

    if membrane_bits is not None:
        return make([membrane_bits] * n_layers)
    wide = make([MAX_MEMBRANE_BITS] * n_layers)
    x = x_calib[:MEMBRANE_CALIBRATION_SAMPLES]
    res = simulate(wide, datasets.encode_for(wide, x, seed), traces=True)
    bits = []
    for l in range(n_layers):
        peak = max(int(np.abs(res.traces[l]).max()), specs[l][2] + 1)
        bits.append(min(_membrane_bits_for(peak), MAX_MEMBRANE_BITS))
    return make(bits)
