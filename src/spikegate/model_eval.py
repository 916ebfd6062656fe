"""A network on a data set in the bit-exact integer model: accuracy beside the float ANN's,
activity (spikes, synaptic operations, sparsity) and, for the demo, what the accelerator takes on
each supported board (exact cycles per sample at the board's default lanes and clock).
"""
from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass

from . import datasets
from .boards.targets import BOARDS
from .ann import ann_from_network
from .evaluation import evaluate
from .model.network import Network
from .netinfo import network_summary
from .progress import silent

__all__ = ["MNIST_NOTE", "ModelEvaluation", "evaluate_on_data", "BoardPerformance", "DemoResult", "demo"]

log = logging.getLogger(__name__)

MNIST_NOTE = ("MNIST subset: trained on fewer than the official 60,000 training images, so this "
              "accuracy is not comparable with published full-MNIST results")


@dataclass
class ModelEvaluation:
    network: dict               # netinfo.network_summary
    data: str
    split: str
    ann_accuracy: float | None  # None: the file carries no float ANN
    snn: dict                   # convert.evaluate: accuracy, spikes per layer, synaptic ops, cycles
    notes: list

    def to_dict(self) -> dict:
        return asdict(self)


def evaluate_on_data(net: Network, net_path: str | os.PathLike | None = None, data: str | None = None,
                     split: str = "test", data_dir=None, samples: int | None = None, seed: int = 0,
                     lanes=(), progress=silent, predictions: bool = False) -> ModelEvaluation:
    """Run ``net`` on a data set split (:func:`spikegate.datasets.select`). For each lane count in
    ``lanes`` the result also has the accelerator's exact mean cycles per sample; with
    ``predictions``, every sample's class and label (``snn["predictions"]``, ``snn["labels"]``).
    ``progress`` is a :func:`spikegate.progress.progress`-like factory."""
    data, x, y = datasets.select(net, data, split, data_dir, samples)
    ann = ann_from_network(net)
    ann_acc = ann.accuracy(x, y) if ann is not None else None
    with progress(len(y), f"integer model on {data} {split}", unit="samples") as p:
        stats = evaluate(net, x, y, seed=seed, progress=p, lanes=lanes, predictions=predictions)
    notes = []
    if data == "mnist":
        train_n = net.meta.get("train_samples") if isinstance(net.meta, dict) else None
        if not isinstance(train_n, int) or train_n < 60000:
            notes.append(MNIST_NOTE)
    if ann is None:
        notes.append("the network file carries no float ANN (meta.ann), so there is no ANN accuracy to compare")
    return ModelEvaluation(network_summary(net, net_path), data, split, ann_acc, stats, notes)


@dataclass
class BoardPerformance:
    board: str
    device: str
    clock_mhz: float
    lanes: int
    cycles_per_sample: float
    us_per_sample: float
    samples_per_s: float


@dataclass
class DemoResult:
    evaluation: ModelEvaluation
    hardware: list              # BoardPerformance per supported board

    @property
    def conversion_gap(self) -> float | None:
        """Integer SNN minus float ANN accuracy, in percentage points (None without an ANN)."""
        e = self.evaluation
        return None if e.ann_accuracy is None else 100 * (e.snn["accuracy"] - e.ann_accuracy)

    def to_dict(self) -> dict:
        return {**self.evaluation.to_dict(), "hardware": [asdict(h) for h in self.hardware]}


def demo(net: Network, net_path: str | os.PathLike | None = None, data_dir=None, samples: int | None = None,
         progress=silent) -> DemoResult:
    """The test split in the integer model, and the accelerator's exact cycles per sample (the
    cycle formula, checked against the gateware by the tests) on every board at its default lanes
    and documented clock."""
    log.info("spikegate demo: %s", "built-in digits network" if net_path is None else net_path)
    lanes = sorted({b.default_lanes for b in BOARDS.values()})
    ev = evaluate_on_data(net, net_path, None, "test", data_dir, samples, 0, lanes=lanes, progress=progress)
    hardware = []
    for b in BOARDS.values():
        cycles = ev.snn["cycles_per_sample"][str(b.default_lanes)]
        hardware.append(BoardPerformance(b.name, b.device, b.clock_mhz, b.default_lanes, cycles,
                                         cycles / b.clock_mhz, b.clock_mhz * 1e6 / cycles))
    return DemoResult(ev, hardware)
