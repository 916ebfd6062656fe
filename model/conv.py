"""Convolutional layer kinds: the frozen :class:`ConvSpec` a :class:`~spikegate.model.network.Layer`
holds when it is a ``conv2d``, ``sumpool2d`` or ``avgpool2d`` layer, its validation and its file
fields. The contract is README, "Convolutional layers"; the vectorised synaptic sums are in
:mod:`spikegate.model.conv_eval`.

Spikes between layers are always flat vectors in (channel, row, column) order, so ``flatten`` is
not a layer: a dense layer after a conv or pooling layer reads its C·H·W outputs as its inputs.

A conv layer keeps its kernel as the 2-D matrix ``weights[(c·k_h + dy)·k_w + dx, o]`` (kernel
memory rows of C_out words, one per input channel and kernel offset) and one bias per output
channel. A pooling layer has fixed unit weights (the matrix of ones [k_h·k_w, C]) and no bias.

Imports only :mod:`spikegate.model.params` (network.py imports this module).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .params import NetworkFormatError, check_int

__all__ = ["ConvSpec", "CONV_KINDS", "POOL_KINDS", "LAYER_KINDS", "MAX_CONV_SIZE", "MAX_KERNEL", "MAX_STRIDE",
           "check_conv_layer", "check_chain", "neuron_bias", "fan_out", "conv_layer_dict", "conv_layer_from_dict",
           "pool_weights", "kernel_matrix", "kernel_4d", "refuse_conv"]

POOL_KINDS = ("sumpool2d", "avgpool2d")
CONV_KINDS = ("conv2d",) + POOL_KINDS
LAYER_KINDS = ("dense",) + CONV_KINDS
MAX_CONV_SIZE = 4096   # channels, rows, columns of one feature map
MAX_KERNEL = 64
MAX_STRIDE = 64


def _pair(name: str, value, lo: int, hi: int) -> tuple[int, int]:
    """An (int, int) from an int or a 2-sequence, each in [lo, hi]."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        value = (value, value)
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ValueError(f"{name} = {value!r} is not valid; valid: an integer or two integers [rows, columns]")
    return tuple(check_int(f"{name}[{i}]", v, lo, hi) for i, v in enumerate(value))


@dataclass(frozen=True)
class ConvSpec:
    """Shape of a convolution or spike-pooling layer.

    ``in_shape`` (C_in, H, W); ``out_channels`` C_out (a pooling layer keeps its channels:
    C_out = C_in); ``kernel`` (k_h, k_w), ``stride`` (s_h, s_w), ``padding`` (p_h, p_w) zeros on
    each side. Output H_out = (H + 2 p_h - k_h) // s_h + 1, likewise W_out. Raises ValueError /
    TypeError naming the field, the value and what is valid.
    """
    kind: str
    in_shape: tuple[int, int, int]
    out_channels: int
    kernel: tuple[int, int]
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)

    def __post_init__(self):
        put = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731 (frozen dataclass)
        if self.kind not in CONV_KINDS:
            raise ValueError(f"kind = {self.kind!r} is not valid for a ConvSpec; valid: {', '.join(CONV_KINDS)}")
        shape = self.in_shape
        if not isinstance(shape, (tuple, list)) or len(shape) != 3:
            raise ValueError(f"in_shape = {shape!r} is not valid; valid: [channels, rows, columns]")
        put("in_shape", tuple(check_int(f"in_shape[{i}]", v, 1, MAX_CONV_SIZE) for i, v in enumerate(shape)))
        put("out_channels", check_int("out_channels", self.out_channels, 1, MAX_CONV_SIZE))
        put("kernel", _pair("kernel", self.kernel, 1, MAX_KERNEL))
        put("stride", _pair("stride", self.stride, 1, MAX_STRIDE))
        put("padding", _pair("padding", self.padding, 0, MAX_KERNEL - 1))
        for axis, size, k, p in zip(("rows", "columns"), self.in_shape[1:], self.kernel, self.padding):
            if p >= k:
                raise ValueError(f"padding = {list(self.padding)} is not valid for kernel = {list(self.kernel)}: "
                                 f"valid: 0 <= padding < kernel on each axis (an output would see only padding)")
            if k > size + 2 * p:
                raise ValueError(f"kernel = {list(self.kernel)} is larger than the padded input along the {axis} "
                                 f"({size} + 2*{p} = {size + 2 * p}, in_shape = {list(self.in_shape)}); valid: "
                                 f"kernel <= input + 2*padding")
        if self.kind in POOL_KINDS and self.out_channels != self.in_shape[0]:
            raise ValueError(f"a {self.kind} layer keeps its channels: out_channels = {self.out_channels} must "
                             f"equal in_shape[0] = {self.in_shape[0]}")

    @property
    def pool(self) -> bool:
        return self.kind in POOL_KINDS

    @property
    def out_shape(self) -> tuple[int, int, int]:
        (_, h, w), (kh, kw), (sh, sw), (ph, pw) = self.in_shape, self.kernel, self.stride, self.padding
        return (self.out_channels, (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1)

    @property
    def n_in(self) -> int:
        c, h, w = self.in_shape
        return c * h * w

    @property
    def n(self) -> int:
        c, h, w = self.out_shape
        return c * h * w

    @property
    def kernel_rows(self) -> int:
        """Rows of the kernel matrix: C_in·k_h·k_w for conv2d, k_h·k_w for a (per-channel) pool."""
        kh, kw = self.kernel
        return kh * kw * (1 if self.pool else self.in_shape[0])

    def fields(self) -> dict:
        return {"kind": self.kind, "in_shape": list(self.in_shape), "out_channels": self.out_channels,
                "kernel": list(self.kernel), "stride": list(self.stride), "padding": list(self.padding)}


def pool_weights(spec: ConvSpec) -> np.ndarray:
    """The fixed unit weights of a pooling layer, as its kernel matrix [k_h·k_w, C]."""
    return np.ones((spec.kernel_rows, spec.out_channels), np.int64)


def kernel_matrix(kernel: np.ndarray) -> np.ndarray:
    """A kernel [C_out, C_in, k_h, k_w] (torch / NIR order) as the layer's weight matrix
    [C_in·k_h·k_w, C_out], rows in (c, dy, dx) order."""
    kernel = np.asarray(kernel)
    if kernel.ndim != 4:
        raise ValueError(f"kernel must have shape [C_out, C_in, k_h, k_w], got {kernel.shape}")
    return kernel.reshape(kernel.shape[0], -1).T.copy()


def kernel_4d(layer) -> np.ndarray:
    """The conv layer's kernel as [C_out, C_in, k_h, k_w] (the inverse of :func:`kernel_matrix`)."""
    spec = layer.conv
    c, kh, kw = spec.in_shape[0], *spec.kernel
    return layer.weights.T.reshape(spec.out_channels, c, kh, kw)


def refuse_conv(layers, what: str) -> None:
    """ValueError naming the first conv/pool layer, for the parts that handle dense layers only."""
    for l, layer in enumerate(layers):
        if layer.conv is not None:
            raise ValueError(f"layer {l} ({layer.name or 'unnamed'}) is a {layer.conv.kind} layer; {what} "
                             "supports dense layers only so far (conv networks run in the model: spikegate model)")


def check_conv_layer(layer) -> None:
    """The conv part of :class:`Layer` validation (the neuron fields are checked there)."""
    spec = layer.conv
    if not isinstance(spec, ConvSpec):
        raise TypeError(f"conv must be a ConvSpec or None, got {spec!r}")
    want = (spec.kernel_rows, spec.out_channels)
    if layer.weights.shape != want:
        raise ValueError(f"a {spec.kind} layer with in_shape {list(spec.in_shape)}, kernel {list(spec.kernel)} and "
                         f"{spec.out_channels} output channels has a kernel matrix of shape {want} "
                         f"(rows: input channel x kernel row x kernel column), got weights of shape "
                         f"{layer.weights.shape}")
    if spec.pool and (np.any(layer.weights != 1) or np.any(layer.bias != 0)):
        raise ValueError(f"a {spec.kind} layer has fixed unit weights and no bias (got weights other than 1 "
                         "or a non-zero bias); build it with spikegate.model.conv_eval.pool_layer")
    if layer.readout:
        raise ValueError(f"a {spec.kind} layer cannot be a readout; end the network with a dense readout layer")


def check_chain(prev, layer, i: int) -> None:
    """Between two conv/pool layers the feature-map shapes must agree, not only the counts."""
    if layer.conv is not None and prev.conv is not None and layer.conv.in_shape != prev.conv.out_shape:
        raise ValueError(f"layers[{i}] takes in_shape {list(layer.conv.in_shape)} but layers[{i - 1}] "
                         f"({prev.conv.kind}) outputs {list(prev.conv.out_shape)}: shapes do not chain")


def neuron_bias(layer) -> np.ndarray:
    """The bias of every neuron [n]: a conv layer's per-channel bias repeated over its positions."""
    if layer.conv is None:
        return layer.bias
    _, h, w = layer.conv.out_shape
    return np.repeat(layer.bias, h * w)


def fan_out(layer) -> np.ndarray:
    """Synapses each input drives, int64 [n_in]: n for a dense layer; for conv and pooling the
    outputs whose window holds the input (times C_out for conv2d), so border inputs reach fewer."""
    if layer.conv is None:
        return np.full(layer.n_in, layer.n, np.int64)
    spec = layer.conv
    c, h, w = spec.in_shape
    per_axis = []
    for size, out, k, s, p in zip((h, w), spec.out_shape[1:], spec.kernel, spec.stride, spec.padding):
        pos = np.arange(size)[:, None] + p          # padded coordinate of each input
        start = np.arange(out)[None, :] * s         # each output window's first padded coordinate
        per_axis.append(((pos >= start) & (pos < start + k)).sum(axis=1))
    per_map = per_axis[0][:, None] * per_axis[1][None, :]
    per_out = 1 if spec.pool else spec.out_channels
    return np.tile(per_map.reshape(-1) * per_out, c).astype(np.int64)


def conv_layer_dict(layer, d: dict) -> dict:
    """The file fields of a conv/pool layer from the dense layer's ``d``: the kind and shape first;
    a pooling layer writes no weights, bias or weight_bits (they are fixed)."""
    out = {"name": d["name"], **layer.conv.fields()}
    skip = {"name", "readout"} | ({"weights", "bias", "weight_bits"} if layer.conv.pool else set())
    out.update((k, v) for k, v in d.items() if k not in skip)
    return out


_SHAPE_FIELDS = ("kind", "in_shape", "out_channels", "kernel", "stride", "padding")


def conv_layer_from_dict(cls, d: dict, where: str):
    """A conv/pool layer from its file fields; ``cls`` is Layer (passed in: network.py imports us)."""
    kind = d.get("kind")
    if kind not in CONV_KINDS:
        raise NetworkFormatError(f"{where}: kind = {kind!r} is not valid; valid: {', '.join(LAYER_KINDS)}")
    missing = {"in_shape", "kernel"} - set(d) | ({"out_channels"} - set(d) if kind == "conv2d" else set())
    if missing:
        raise NetworkFormatError(f"{where}: a {kind} layer needs field(s) {sorted(missing)}")
    if kind in POOL_KINDS:
        fixed = {"weights", "bias", "weight_bits", "readout"} & set(d)
        if fixed:
            raise NetworkFormatError(f"{where}: a {kind} layer has fixed unit weights, no bias and is never a "
                                     f"readout; remove field(s) {sorted(fixed)}")
    elif "readout" in d:
        raise NetworkFormatError(f"{where}: a conv2d layer is never a readout; remove field 'readout'")
    try:
        in_shape = d["in_shape"]
        spec = ConvSpec(kind=kind, in_shape=in_shape,
                        out_channels=d.get("out_channels", in_shape[0] if isinstance(in_shape, list) and in_shape else 0),
                        kernel=d["kernel"], stride=d.get("stride", 1), padding=d.get("padding", 0))
    except (TypeError, ValueError) as e:
        raise NetworkFormatError(f"{where}: {e}") from None
    for key, actual in (("n_in", spec.n_in), ("n", spec.n)):
        if key in d and d[key] != actual:
            raise NetworkFormatError(f"{where}: {key} = {d[key]!r} does not match the {kind} shape "
                                     f"{list(spec.in_shape)} -> {list(spec.out_shape)} (valid: {actual})")
    dense = {k: v for k, v in d.items() if k not in _SHAPE_FIELDS + ("n_in", "n")}
    if spec.pool:
        dense.update(weights=pool_weights(spec).tolist(), weight_bits=2)
    dense_layer = cls.from_dict(dense, where)
    try:
        return dense_layer.replace(conv=spec)
    except (TypeError, ValueError) as e:
        raise NetworkFormatError(f"{where}: {e}") from None
