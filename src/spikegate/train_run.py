"""Train a ReLU MLP, convert it to an integer SNN and save it as a network file.

With the default :class:`~spikegate.convert.TrainConfig` this reproduces the built-in digits
network bit for bit (training is seeded and deterministic); the result says whether it did.
"""
from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from . import datasets
from .conv_train import ConvTrainConfig, build_conv
from .training import TrainConfig, build
from .model_eval import MNIST_NOTE
from .progress import silent

__all__ = ["TrainResult", "train_to_file"]

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    out: str
    data: str
    shape: list
    timesteps: int
    ann_accuracy: float
    snn_accuracy: float
    snn: dict                   # convert.evaluate on the test split
    digest: str
    membrane_bits: list
    identical_to_builtin: bool
    notes: list
    train_samples: int
    seed: int
    weight_bits: int
    arch: str = "mlp"
    train_seconds: float | None = None   # conv only
    sizes: dict | None = None            # conv only: kernel words and membranes

    def to_dict(self) -> dict:
        return asdict(self)


def train_to_file(config: TrainConfig, out: str | os.PathLike, data_dir=None, progress=silent) -> TrainResult:
    """Train and convert with ``config`` (checked first), save the network to ``out``."""
    config = config.check()
    if config.data == "mnist" and data_dir is None:
        raise ValueError("--data-dir is required for --data mnist: give the directory holding the IDX files "
                         "(train-images-idx3-ubyte[.gz], t10k-images-idx3-ubyte[.gz], ...)")
    out = Path(out)
    if out.is_dir():
        raise ValueError(f"--out = {str(out)!r} is a directory; valid: a file path")
    if not out.parent.exists():
        raise FileNotFoundError(f"--out = {str(out)!r}: directory {str(out.parent)!r} does not exist")
    conv = isinstance(config, ConvTrainConfig)
    net, report = (build_conv if conv else build)(config, data_dir=data_dir, progress=progress)
    net.save(out)
    # Network.save writes through a private temporary file (mode 0600); give the result the usual
    # permissions of a new file.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(out, 0o666 & ~umask)
    log.info("wrote %s", out)
    train_n = net.meta["train_samples"]
    return TrainResult(
        out=str(out), data=config.data, shape=report["shape"], timesteps=config.timesteps,
        ann_accuracy=report["ann_accuracy"], snn_accuracy=report["snn"]["accuracy"], snn=report["snn"],
        digest=report["digest"], membrane_bits=[layer.membrane_bits for layer in net.layers],
        identical_to_builtin=datasets.load_network(None) == net,
        notes=[MNIST_NOTE] if config.data == "mnist" and train_n < 60000 else [],
        train_samples=train_n, seed=config.seed, weight_bits=config.weight_bits, arch="conv" if conv else "mlp",
        train_seconds=report.get("train_seconds"), sizes=report.get("sizes"))
