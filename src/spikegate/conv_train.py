"""``spikegate train --arch conv``: train a small ReLU CNN, convert it to an integer conv SNN,
evaluate it.

The network is ``len(channels)`` conv layers (square ``kernel``, ``stride``, padding kernel // 2),
or the conv layers ``layers`` lists one by one (channels, kernel, stride, padding: e.g. the
iCEBreaker network, README "A conv network on the iCEBreaker"), and a dense non-spiking readout of
the flattened last feature map; strided convolutions shrink
the maps instead of pooling layers, which the rate conversion would only approximate (README,
"Convolutional layers"). Training is :func:`spikegate.cnn.train_cnn` (numpy, deterministic for a
seed), conversion :func:`spikegate.conv_convert.convert_cnn`. ``meta["cnn"]`` keeps the float32 CNN.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from . import datasets
from .cnn import train_cnn
from .conv_convert import convert_cnn
from .evaluation import evaluate
from .model.conv import MAX_CONV_SIZE, MAX_KERNEL, MAX_STRIDE, ConvSpec
from .model.network import Network
from .training import TrainConfig

__all__ = ["ConvTrainConfig", "DEFAULT_CONV_CONFIG", "build_conv", "conv_sizes"]


@dataclass(frozen=True)
class ConvTrainConfig(TrainConfig):
    """A :class:`TrainConfig` for a CNN (``hidden`` is unused): conv ``channels``, ``kernel``,
    ``stride`` (padding kernel // 2), or per conv layer ``layers`` = ((channels, kernel, stride,
    padding), ...) instead of those three; random training shifts of up to ``shift`` pixels."""
    data: str = "mnist"
    channels: tuple[int, ...] = (16, 32)
    kernel: int = 5
    stride: int = 2
    shift: int = 1
    timesteps: int = 32
    epochs: int = 20
    batch_size: int = 64
    learning_rate: float = 2e-3
    layers: tuple[tuple[int, int, int, int], ...] | None = None

    @property
    def convs(self) -> list[tuple[int, int, int, int]]:
        """(out_channels, kernel, stride, padding) of each conv layer."""
        if self.layers is not None:
            return [tuple(int(v) for v in c) for c in self.layers]
        return [(c, self.kernel, self.stride, self.kernel // 2) for c in self.channels]

    def check(self) -> "ConvTrainConfig":
        super().check()
        if not self.channels or any(isinstance(c, bool) or not isinstance(c, (int, np.integer))
                                    or not 1 <= c <= MAX_CONV_SIZE for c in self.channels):
            raise ValueError(f"channels = {self.channels!r} is not valid; valid: one or more channel counts "
                             f"from 1 to {MAX_CONV_SIZE}, e.g. 16,32")
        for name, v, hi in (("kernel", self.kernel, MAX_KERNEL), ("stride", self.stride, MAX_STRIDE),
                            ("shift", self.shift, 8)):
            lo = 0 if name == "shift" else 1
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not lo <= v <= hi:
                raise ValueError(f"{name} = {v!r} is not valid; valid: an integer {lo}..{hi}")
        if self.layers is not None:
            self._check_layers()
        return self

    def _check_layers(self) -> None:
        valid = ("one or more conv layers channels:kernel:stride:padding with channels 1.."
                 f"{MAX_CONV_SIZE}, kernel 1..{MAX_KERNEL}, stride 1..{MAX_STRIDE}, padding 0..kernel-1, "
                 "e.g. 8:5:3:1,16:3:2:0")
        ok = lambda v, lo, hi: not isinstance(v, bool) and isinstance(v, (int, np.integer)) and lo <= v <= hi  # noqa: E731
        if not isinstance(self.layers, (tuple, list)) or not self.layers:
            raise ValueError(f"layers = {self.layers!r} is not valid; valid: {valid}")
        for i, layer in enumerate(self.layers):
            if not (isinstance(layer, (tuple, list)) and len(layer) == 4 and ok(layer[0], 1, MAX_CONV_SIZE)
                    and ok(layer[1], 1, MAX_KERNEL) and ok(layer[2], 1, MAX_STRIDE) and ok(layer[3], 0, layer[1] - 1)):
                raise ValueError(f"layers[{i}] = {layer!r} is not valid; valid: {valid}")


DEFAULT_CONV_CONFIG = ConvTrainConfig()


def conv_sizes(net: Network) -> dict:
    """What a conv network would hold on chip: kernel words (C_in·k_h·k_w·C_out per conv layer,
    n_in·n for dense) and membranes (C_out·H_out·W_out per layer), with their bits."""
    layers = []
    for layer in net.layers:
        words, kind = int(layer.weights.size), "dense" if layer.conv is None else layer.conv.kind
        layers.append({"name": layer.name, "kind": kind, "weight_words": 0 if kind in ("sumpool2d", "avgpool2d")
                       else words, "membranes": layer.n,
                       "weight_bits": 0 if kind in ("sumpool2d", "avgpool2d") else words * layer.weight_bits,
                       "membrane_bits": layer.n * layer.membrane_bits})
    return {"layers": layers, **{f"total_{k}": sum(l[k] for l in layers)
                                 for k in ("weight_words", "membranes", "weight_bits", "membrane_bits")}}


def build_conv(config: ConvTrainConfig = DEFAULT_CONV_CONFIG, data_dir=None, progress=None) -> tuple[Network, dict]:
    """Train, convert and evaluate a conv SNN; returns the network (provenance in meta) and a report."""
    config.check()
    x_tr, y_tr = datasets.load(config.data, "train", data_dir)
    x_te, y_te = datasets.load(config.data, "test", data_dir)
    side = math.isqrt(x_tr.shape[1])
    convs = config.convs
    shape = (1, side, side)
    for i, (c, k, s, p) in enumerate(convs):  # shapes that do not chain fail here, not after training
        try:
            shape = ConvSpec("conv2d", shape, c, k, s, p).out_shape
        except ValueError as e:
            raise ValueError(f"conv layer {i} ({c}:{k}:{s}:{p}): {e}") from None
    kw = dict(seed=config.seed, epochs=config.epochs, batch_size=config.batch_size,
              learning_rate=config.learning_rate, l2=config.l2, shift=config.shift)
    t0 = time.perf_counter()
    if progress is not None:
        with progress(config.epochs, f"training CNN on {config.data} ({len(y_tr)} samples)", unit="epochs") as p:
            cnn = train_cnn(x_tr, y_tr, (1, side, side), convs, progress=p, **kw)
    else:
        cnn = train_cnn(x_tr, y_tr, (1, side, side), convs, **kw)
    train_seconds = time.perf_counter() - t0
    ann_acc = cnn.accuracy(x_te, y_te)
    net = convert_cnn(cnn, x_tr, timesteps=config.timesteps, weight_bits=config.weight_bits,
                      membrane_bits=config.membrane_bits, percentile=config.percentile, encoding=config.encoding,
                      name=f"{config.data}-conv-snn", seed=config.seed)
    if progress is not None:
        with progress(len(y_te), "evaluating the integer conv SNN on the test split", unit="samples") as p:
            stats = evaluate(net, x_te, y_te, seed=config.seed, progress=p)
    else:
        stats = evaluate(net, x_te, y_te, seed=config.seed)
    arch = (f"--convs {','.join(':'.join(map(str, c)) for c in convs)}" if config.layers is not None
            else f"--channels {','.join(map(str, config.channels))}")
    command = (f"spikegate train --arch conv --data {config.data} {arch} "
               f"--timesteps {config.timesteps} --weight-bits {config.weight_bits} --seed {config.seed} "
               f"--percentile {config.percentile} --epochs {config.epochs}"
               + (f" --membrane-bits {config.membrane_bits}" if config.membrane_bits is not None else "")
               + (" --data-dir DIR" if config.data == "mnist" else ""))
    net.meta = {
        "generated_by": command, "dataset": config.data, "split": datasets.describe(config.data),
        "train_samples": int(len(y_tr)), "test_samples": int(len(y_te)), "seed": config.seed,
        "training": {"optimiser": "adam, cosine learning rate", "epochs": config.epochs,
                     "batch_size": config.batch_size, "learning_rate": config.learning_rate, "l2": config.l2,
                     "shift": config.shift, "convs": [list(c) for c in convs],
                     "seconds": round(train_seconds, 1)},
        "conversion": {"normalisation": f"layer-wise, {config.percentile} percentile of training-set activations",
                       "weight_bits": config.weight_bits, "reset": "subtract", "readout": "final membrane argmax",
                       "timesteps": config.timesteps, "encoding": config.encoding},
        "ann_test_accuracy": ann_acc, "snn_test_accuracy": stats["accuracy"],
        "cnn": cnn.to_meta(),
    }
    report = {"ann_accuracy": ann_acc, "snn": stats, "shape": list(net.shape), "digest": net.digest(),
              "train_seconds": train_seconds, "sizes": conv_sizes(net)}
    return net, report
