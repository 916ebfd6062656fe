"""Conv and pooling layers: building them, and their exact synaptic sums for many rows at once.

:func:`conv_sums` is the conv layer's stage 2 (README, "Convolutional layers") for every (step,
sample) row of a layer-major run; :func:`spikegate.model.fastsim.run_network` passes the result to
the same neuron loop as a dense layer's. The products are done in float32 or float64 only when
every partial sum is provably an exactly representable integer (at most C_in·k_h·k_w terms of
magnitude <= 2^(weight_bits-1)), else in int64.
"""
from __future__ import annotations

import numpy as np

from .conv import ConvSpec, kernel_matrix, pool_weights
from .network import Layer, Leak

__all__ = ["conv_sums", "conv2d_layer", "pool_layer"]

# Elements of the unfolded (im2col) input per chunk of rows: ~32 MiB of float32.
_CHUNK_ELEMENTS = 8 << 20


def _sum_dtype(layer: Layer):
    bound = layer.conv.kernel_rows << (layer.weight_bits - 1)
    if bound <= 1 << 24:
        return np.float32
    if bound <= 1 << 53:
        return np.float64
    return np.int64


def conv_sums(layer: Layer, spikes: np.ndarray) -> np.ndarray:
    """The exact synaptic sums [rows, n] of a conv/pool ``layer`` for 0/1 ``spikes`` [rows, n_in]
    (flat, in (channel, row, column) order), as integer values in a float or int64 type."""
    spec = layer.conv
    rows = spikes.shape[0]
    c, h, w = spec.in_shape
    (kh, kw), (sh, sw), (ph, pw) = spec.kernel, spec.stride, spec.padding
    co, ho, wo = spec.out_shape
    dtype = _sum_dtype(layer)
    out = np.empty((rows, spec.n), dtype)
    kmat = None if spec.pool else layer.weights.astype(dtype)
    chunk = max(1, _CHUNK_ELEMENTS // (ho * wo * spec.kernel_rows * (1 if not spec.pool else c)))
    for i in range(0, rows, chunk):
        part = spikes[i:i + chunk]
        r = len(part)
        x = np.zeros((r, c, h + 2 * ph, w + 2 * pw), dtype)
        x[:, :, ph:ph + h, pw:pw + w] = part.reshape(r, c, h, w)
        if spec.pool:
            acc = np.zeros((r, c, ho, wo), dtype)
            for dy in range(kh):
                for dx in range(kw):
                    acc += x[:, :, dy:dy + sh * (ho - 1) + 1:sh, dx:dx + sw * (wo - 1) + 1:sw]
            out[i:i + r] = acc.reshape(r, -1)
            continue
        win = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw][:, :, :ho, :wo]
        cols = win.transpose(0, 2, 3, 1, 4, 5).reshape(r * ho * wo, c * kh * kw)
        acc = (cols @ kmat).reshape(r, ho, wo, co)
        out[i:i + r] = acc.transpose(0, 3, 1, 2).reshape(r, -1)
    return out


def conv2d_layer(kernel, in_shape, *, stride=1, padding=0, bias=None, **neuron) -> Layer:
    """A ``conv2d`` Layer from an integer kernel [C_out, C_in, k_h, k_w] and the input's
    (C_in, H, W); ``bias`` one per output channel; ``neuron``: the Layer's neuron fields
    (threshold, weight_bits, membrane_bits, leak, reset, refractory, name)."""
    kernel = np.asarray(kernel)
    if kernel.ndim != 4:
        raise ValueError(f"kernel must have shape [C_out, C_in, k_h, k_w], got shape {kernel.shape}")
    if len(in_shape) != 3 or kernel.shape[1] != in_shape[0]:
        raise ValueError(f"kernel has {kernel.shape[1]} input channels but in_shape = {list(in_shape)}")
    spec = ConvSpec("conv2d", tuple(in_shape), kernel.shape[0], kernel.shape[2:], stride, padding)
    return Layer(weights=kernel_matrix(kernel), bias=bias, conv=spec, **neuron)


def pool_layer(kind: str, in_shape, kernel, *, stride=None, padding=0, threshold=0, membrane_bits=8,
               leak=None, reset="zero", refractory=0, name="") -> Layer:
    """A ``sumpool2d``/``avgpool2d`` Layer; ``stride`` defaults to the kernel (as in torch). The
    defaults make the OR rule: a spike where any input of the window spiked this step."""
    spec = ConvSpec(kind, tuple(in_shape), in_shape[0], kernel, kernel if stride is None else stride, padding)
    return Layer(weights=pool_weights(spec), weight_bits=2, membrane_bits=membrane_bits, threshold=threshold,
                 leak=Leak.none() if leak is None else leak, reset=reset, refractory=refractory, name=name,
                 conv=spec)
