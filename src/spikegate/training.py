"""The ``spikegate train`` pipeline: train a ReLU MLP, convert it to an integer SNN, evaluate it.

``build`` trains the float ANN (:mod:`spikegate.ann`), converts it with data-based normalisation
on the training split (:mod:`spikegate.convert`) and evaluates the integer network on the test split
(:mod:`spikegate.evaluation`). The network's ``meta`` records provenance (data set, split, seed,
hyper-parameters, accuracies) and the float32 ANN itself under ``meta["ann"]``, so the float
accuracy can be recomputed from the file rather than quoted.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import datasets
from .ann import train_ann
from .convert import convert
from .evaluation import evaluate
from .model.network import MAX_MEMBRANE_BITS, MAX_TIMESTEPS, MAX_WEIGHT_BITS, Network

__all__ = ["TrainConfig", "DEFAULT_CONFIG", "DEFAULT_SNN_NAME", "build"]

DEFAULT_SNN_NAME = "digits"


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a trained and converted network (with the data set)."""
    data: str = "digits"
    hidden: tuple[int, ...] = (64,)
    timesteps: int = 8
    weight_bits: int = 8
    membrane_bits: int | None = None
    percentile: float = 99.9
    seed: int = 0
    epochs: int = 60
    batch_size: int = 32
    learning_rate: float = 1e-3
    l2: float = 1e-4
    encoding: str = "rate"

    def check(self) -> "TrainConfig":
        def pos_int(name, v, lo=1, hi=None):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo or (hi is not None and v > hi):
                rng = f"{lo} <= {name}" + (f" <= {hi}" if hi is not None else "")
                raise ValueError(f"{name} = {v!r} is not valid; valid: an integer with {rng}")
        if self.data not in datasets.DATASETS:
            raise ValueError(f"data = {self.data!r} is not valid; valid: {', '.join(datasets.DATASETS)}")
        if not self.hidden:
            raise ValueError("hidden = () is not valid; valid: one or more hidden layer sizes, e.g. 64 or 128,64")
        if any(isinstance(h, bool) or not isinstance(h, (int, np.integer)) or not 1 <= h <= 4096
               for h in self.hidden):
            raise ValueError(f"hidden = {self.hidden!r} is not valid; valid: hidden layer sizes from 1 to 4096")
        pos_int("timesteps", self.timesteps, 1, MAX_TIMESTEPS)
        pos_int("weight_bits", self.weight_bits, 2, MAX_WEIGHT_BITS)
        if self.membrane_bits is not None:
            pos_int("membrane_bits", self.membrane_bits, 2, MAX_MEMBRANE_BITS)
        if not (isinstance(self.percentile, (int, float)) and 50.0 <= self.percentile <= 100.0):
            raise ValueError(f"percentile = {self.percentile!r} is not valid; valid: a number in [50, 100]")
        pos_int("seed", self.seed, 0, 2**63 - 1)
        pos_int("epochs", self.epochs, 1, 100000)
        pos_int("batch_size", self.batch_size, 1, 1 << 20)
        if not (isinstance(self.learning_rate, (int, float)) and 0 < self.learning_rate < 1):
            raise ValueError(f"learning_rate = {self.learning_rate!r} is not valid; valid: 0 < learning_rate < 1")
        if not (isinstance(self.l2, (int, float)) and 0 <= self.l2 < 1):
            raise ValueError(f"l2 = {self.l2!r} is not valid; valid: 0 <= l2 < 1")
        if self.encoding not in ("rate", "poisson"):
            raise ValueError(f"encoding = {self.encoding!r} is not valid for rate conversion; valid: rate, poisson")
        return self


DEFAULT_CONFIG = TrainConfig()


def build(config: TrainConfig = DEFAULT_CONFIG, data_dir=None, progress=None) -> tuple[Network, dict]:
    """Train, convert and evaluate; returns the network (with provenance in meta) and a report.

    ``progress`` is a :mod:`spikegate.progress` factory (``progress(total, desc)``) or None.
    """
    config.check()
    x_tr, y_tr = datasets.load(config.data, "train", data_dir)
    x_te, y_te = datasets.load(config.data, "test", data_dir)
    n_classes = 10
    if progress is not None:
        with progress(config.epochs, f"training ANN on {config.data} ({len(y_tr)} samples)", unit="epochs") as p:
            ann = _train(config, x_tr, y_tr, n_classes, p)
    else:
        ann = _train(config, x_tr, y_tr, n_classes, None)
    ann_acc = ann.accuracy(x_te, y_te)
    name = DEFAULT_SNN_NAME if config.data == "digits" else f"{config.data}-snn"
    net = convert(ann, x_tr, timesteps=config.timesteps, weight_bits=config.weight_bits,
                  membrane_bits=config.membrane_bits, percentile=config.percentile, encoding=config.encoding,
                  name=name, seed=config.seed)
    if progress is not None:
        with progress(len(y_te), "evaluating the integer SNN on the test split", unit="samples") as p:
            stats = evaluate(net, x_te, y_te, seed=config.seed, progress=p)
    else:
        stats = evaluate(net, x_te, y_te, seed=config.seed)
    hidden = ",".join(str(h) for h in config.hidden)
    command = (f"spikegate train --data {config.data} --hidden {hidden} --timesteps {config.timesteps} "
               f"--weight-bits {config.weight_bits} --seed {config.seed} --percentile {config.percentile} "
               f"--epochs {config.epochs}")
    if config.membrane_bits is not None:
        command += f" --membrane-bits {config.membrane_bits}"
    if config.data == "mnist":
        command += " --data-dir DIR"
    net.meta = {
        "generated_by": command,
        "dataset": config.data,
        "split": datasets.describe(config.data),
        "train_samples": int(len(y_tr)),
        "test_samples": int(len(y_te)),
        "seed": config.seed,
        "training": {"optimiser": "adam", "epochs": config.epochs, "batch_size": config.batch_size,
                     "learning_rate": config.learning_rate, "l2": config.l2, "hidden": list(config.hidden)},
        "conversion": {"normalisation": f"layer-wise, {config.percentile} percentile of training-set activations",
                       "weight_bits": config.weight_bits, "reset": "subtract", "readout": "final membrane argmax",
                       "timesteps": config.timesteps, "encoding": config.encoding},
        "ann_test_accuracy": ann_acc,
        "snn_test_accuracy": stats["accuracy"],
        "ann": ann.to_meta(),
    }
    report = {"ann_accuracy": ann_acc, "snn": stats, "shape": list(net.shape), "digest": net.digest()}
    return net, report


def _train(config, x, y, n_classes, p):
    return train_ann(x, y, config.hidden, seed=config.seed, epochs=config.epochs, batch_size=config.batch_size,
                     learning_rate=config.learning_rate, l2=config.l2, n_classes=n_classes, progress=p)
