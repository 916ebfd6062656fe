"""On-chip learning in the model: a winner-take-all layer with adaptive thresholds learns a data set
by STDP (unsupervised) or reward-modulated STDP (reward from the labels), one sample at a time,
exactly as the learning contract says (README, "The learning contract").

:func:`learn` trains and evaluates; :func:`learn_to_file` also saves the learned network (the
plastic layer plus a class readout, :mod:`spikegate.learn_eval`) and the receptive-field image.
Everything is seeded: the same :class:`LearnConfig` gives the same network on every platform.
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from . import datasets
from .checks import check_output_file
from .learn_eval import label_neurons, with_readout
from .model.encode import encode
from .model.learning import Learner
from .model.network import Layer, Network
from .model.plasticity import Plasticity
from .progress import silent

__all__ = ["RULES", "LearnConfig", "EpochReport", "LearnReport", "initial_network", "training_spikes", "learn", "learn_to_file"]

log = logging.getLogger(__name__)

RULES = ("stdp", "rstdp")
MAX_NEURONS = 4096
MAX_EPOCHS = 100
TIMESTEPS = 16
WEIGHT_BITS = 8
# Initial weights: uniform in [64, 128), above where a learned field settles, so that every neuron
# wins now and then at first instead of a few neurons taking every sample.
INIT_WEIGHTS = (64, 128)
# The threshold per unit of mean input intensity sum (1951 for the digits' 19.5); a spike raises its
# neuron's threshold offset by a tenth of the threshold (homeostasis in proportion to the drive).
THRESHOLD_PER_INTENSITY = 100
THETA_INC_DIVISOR = 10
# rstdp: the reward, at every step of the learning pass, for a sample whose winner's class is its
# label, and for any other sample with a winner.
REWARD_RIGHT, REWARD_WRONG = 8, -1


# From the second epoch on, the same field target ((P >>> 5) - 3) * 16 = ((P >>> 4) - 6) * 8 (up to
# rounding) at half the learning rate: fields settle instead of following the latest samples.
ANNEALED = dict(rate_shift=5, weight_decay=4, ltp_offset=3)


def plasticity_for(rule: str, theta_inc: int) -> Plasticity:
    """The learning rule the command trains with: winner-take-all (k = 1, the others reset), traces
    that follow the input rate, fields that move towards ((P >>> 4) - 6) * 8 on a win, and
    thresholds that grow by ``theta_inc`` per spike and lose 1/128 once per 16-step sample. :data:`ANNEALED`
    replaces the rate fields after the first epoch."""
    common = dict(pre_inc=64, pre_decay=2, a_plus=1, a_minus=0, rate_shift=4, weight_decay=3, ltp_offset=6,
                  w_min=-128, w_max=127, wta=1, inhibition="reset", theta_inc=theta_inc, theta_decay=7,
                  theta_every=TIMESTEPS)
    if rule == "rstdp":
        # Eligibility halves every step and the reward comes every step: (8 * E) >>> 4 is about the
        # STDP change of the last two steps, so a rewarded sample learns as fast as under stdp.
        return Plasticity(rule="rstdp", elig_decay=1, reward_shift=4, **common)
    return Plasticity(**common)


@dataclass(frozen=True)
class LearnConfig:
    data: str = "digits"
    rule: str = "stdp"
    neurons: int = 100
    epochs: int = 3
    seed: int = 0
    samples: int | None = None  # train on the first N samples of the training split (None: all)

    def check(self) -> "LearnConfig":
        if self.data not in datasets.DATASETS:
            raise ValueError(f"--data = {self.data!r} is not valid; valid: {', '.join(datasets.DATASETS)}")
        if self.rule not in RULES:
            raise ValueError(f"--rule = {self.rule!r} is not valid; valid: {', '.join(RULES)}")
        for name, value, lo, hi in (("--neurons", self.neurons, 1, MAX_NEURONS),
                                    ("--epochs", self.epochs, 1, MAX_EPOCHS), ("--seed", self.seed, 0, 2**32 - 1)):
            if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
                raise ValueError(f"{name} = {value!r} is not valid; valid: an integer from {lo} to {hi}")
        if self.samples is not None and (isinstance(self.samples, bool) or not isinstance(self.samples, int)
                                         or self.samples < 1):
            raise ValueError(f"--samples = {self.samples!r} is not valid; valid: a positive integer (at most the "
                             "training split's size)")
        return self


@dataclass
class EpochReport:
    epoch: int          # 1-based
    epochs: int
    seconds: float
    rewarded: float | None  # rstdp: fraction of samples with a positive reward


@dataclass
class LearnReport:
    data: str
    rule: str
    neurons: int
    epochs: int
    seed: int
    timesteps: int
    train_samples: int
    test_samples: int
    accuracy: float             # the saved network on the test split (spikegate model reproduces it)
    labelled_neurons: int       # neurons that fired on the training split
    train_seconds: float
    eval_seconds: float
    epoch_reports: list = field(default_factory=list)
    board: str | None = None           # trained on this board (learn_board), else in the model
    board_cycles: float | None = None  # mean cycles of a training sample's run on the board
    out: str | None = None
    digest: str | None = None
    plot: str | None = None
    notes: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def initial_network(config: LearnConfig, x_train: np.ndarray) -> Network:
    """The untrained plastic layer for ``config`` on training intensities ``x_train`` [N, n_in]."""
    n_in = x_train.shape[1]
    rng = np.random.default_rng(config.seed)
    weights = rng.integers(*INIT_WEIGHTS, size=(n_in, config.neurons))
    threshold = int(round(THRESHOLD_PER_INTENSITY * float(x_train.sum(axis=1).mean())))
    top = (1 << (WEIGHT_BITS - 1)) - 1
    # Room for the membrane at threshold plus a step with every input at the largest weight.
    membrane_bits = max(16, (2 * threshold + n_in * top).bit_length() + 1)
    layer = Layer(weights=weights, threshold=threshold, weight_bits=WEIGHT_BITS, membrane_bits=membrane_bits,
                  reset="zero", plasticity=plasticity_for(config.rule, max(1, round(threshold / THETA_INC_DIVISOR))),
                  name="learned")
    return Network([layer], timesteps=TIMESTEPS, encoding="rate", name=f"learn-{config.data}-{config.rule}",
                   meta={"dataset": config.data})


def _train(net: Network, config: LearnConfig, spikes: np.ndarray, y: np.ndarray, on_epoch, progress,
           reports: list) -> Network:
    learner = Learner(net)
    orders = sample_order(config, len(y))
    wins = np.zeros((config.neurons, datasets.N_CLASSES), np.int64)  # rstdp: what each neuron won so far
    for epoch in range(config.epochs):
        if epoch == 1:
            learned = learner.network()
            layer = learned.layers[0]
            learner = Learner(learned.replace(layers=[layer.replace(plasticity=layer.plasticity.replace(**ANNEALED))]))
        start, rewarded = time.perf_counter(), 0
        with progress(len(y), f"learning epoch {epoch + 1}/{config.epochs}", unit="samples") as p:
            for i in orders[epoch]:
                if config.rule == "rstdp":
                    # Two passes, as a host would run them: the answer with learning off decides the
                    # reward, then the sample is learned with that reward at every step.
                    counts = learner.run(spikes[i], learn=False)[0].sum(axis=0)
                    reward = sample_reward(counts, int(y[i]), wins)
                    rewarded += reward > 0
                    learner.run(spikes[i], learn=True, rewards=np.full(len(spikes[i]), reward))
                else:
                    learner.run(spikes[i], learn=True)
                p.update()
        reports.append(EpochReport(epoch + 1, config.epochs, time.perf_counter() - start,
                                   rewarded / len(y) if config.rule == "rstdp" else None))
        if on_epoch is not None:
            on_epoch(reports[-1])
    return learner.network()


def sample_reward(counts: np.ndarray, label: int, wins: np.ndarray) -> int:
    """rstdp: the reward of one sample from its label and its spike ``counts`` [n] with learning off
    (``wins`` [n, classes] is updated): the most active neuron is right when the class it has won
    most often so far is the label (or it has not won yet); 0 when no neuron fired."""
    if not counts.any():
        return 0
    j = int(np.argmax(counts))
    right = not wins[j].any() or int(np.argmax(wins[j])) == label
    wins[j, label] += 1
    return REWARD_RIGHT if right else REWARD_WRONG


_reward = sample_reward  # (the name tests/test_learning_sim.py imports)


def learn(config: LearnConfig, data_dir=None, on_epoch: Callable[[EpochReport], None] | None = None,
          progress=silent) -> tuple[Network, LearnReport]:
    """Train on the training split, label the neurons there, evaluate on the test split.

    Returns the learned network (plastic layer + class readout) and the report. ``on_epoch`` is
    called after every epoch; ``progress`` is a :func:`spikegate.progress.progress`-like factory."""
    config = config.check()
    data = load_data(config, data_dir)
    net = initial_network(config, data[0])
    train_spikes = training_spikes(net, data[0])
    start = time.perf_counter()
    epochs: list[EpochReport] = []
    learned = _train(net, config, train_spikes, data[1], on_epoch, progress, epochs)
    return finish(config, learned, data, epochs, time.perf_counter() - start)


def training_spikes(net: Network, x_train: np.ndarray) -> np.ndarray:
    """bool [N, T, n_in]: the spikes the network learns the training samples from, in the model
    and on a board alike (:mod:`spikegate.learn_board` sends these, so the two learn the same)."""
    return encode(x_train, net.encoding, net.timesteps)


def load_data(config: LearnConfig, data_dir=None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_test, y_test) of ``config``: the training split cut to ``samples``."""
    if config.data == "mnist" and data_dir is None:
        raise ValueError("--data-dir is required for --data mnist: give the directory holding the IDX files "
                         "(train-images-idx3-ubyte[.gz], t10k-images-idx3-ubyte[.gz], ...)")
    x_train, y_train = datasets.load(config.data, "train", data_dir)
    if config.samples is not None:
        if config.samples > len(y_train):
            raise ValueError(f"--samples = {config.samples} is not valid; valid: 1 to {len(y_train)} (the "
                             f"{config.data} training split)")
        x_train, y_train = x_train[:config.samples], y_train[:config.samples]
    return (x_train, y_train) + tuple(datasets.load(config.data, "test", data_dir))


def sample_order(config: LearnConfig, n: int) -> list[np.ndarray]:
    """The order the samples are learned in, one permutation per epoch (seeded)."""
    rng = np.random.default_rng(config.seed)
    return [rng.permutation(n) for _ in range(config.epochs)]


def finish(config: LearnConfig, learned: Network, data, epochs: list, train_seconds: float
           ) -> tuple[Network, LearnReport]:
    """Label the learned layer's neurons on the training split, add the class readout, evaluate."""
    x_train, y_train, x_test, y_test = data
    train_spikes = training_spikes(learned, x_train)
    start = time.perf_counter()
    labels = label_neurons(learned, train_spikes, y_train)
    final, accuracy = with_readout(learned, labels, x_test, y_test)
    final.meta.update(dataset=config.data, rule=config.rule, epochs=config.epochs, seed=config.seed,
                      train_samples=int(len(y_train)), test_accuracy=accuracy, neuron_labels=labels.tolist())
    report = LearnReport(
        data=config.data, rule=config.rule, neurons=config.neurons, epochs=config.epochs, seed=config.seed,
        timesteps=learned.timesteps, train_samples=int(len(y_train)), test_samples=int(len(y_test)), accuracy=accuracy,
        labelled_neurons=int((labels >= 0).sum()), train_seconds=train_seconds,
        eval_seconds=time.perf_counter() - start, epoch_reports=epochs)
    if config.data == "mnist" and len(y_train) < 60000:
        from .model_eval import MNIST_NOTE
        report.notes.append(MNIST_NOTE)
    return final, report


def save_initial(config: LearnConfig, out: str | os.PathLike, data_dir=None) -> str:
    """Save the untrained network ``config`` starts from (what a board for ``learn --board`` is built from)."""
    config = config.check()
    check_output_file("--init-out", out)
    initial_network(config, load_data(config, data_dir)[0]).save(out)
    return str(out)


def learn_to_file(config: LearnConfig, out: str | os.PathLike, data_dir=None, plot: str | os.PathLike | None = None,
                  on_epoch=None, progress=silent, board=None) -> LearnReport:
    """:func:`learn` (or, with ``board``, a :class:`spikegate.learn_board.BoardLink`:
    :func:`spikegate.learn_board.learn_on_board`; ``"sim"``: :func:`~spikegate.learn_board.learn_on_sim`),
    then save the network to ``out`` and, with ``plot``, the learned receptive fields as an image grid
    (one tile per neuron; needs the ``plot`` extra)."""
    check_output_file("--out", out)
    if plot is not None:
        check_output_file("--plot", plot)
        from .plots import output_format
        output_format(plot, "--plot")
    if board == "sim":
        from .learn_board import learn_on_sim
        net, report = learn_on_sim(config, data_dir, on_epoch, progress)
    elif board is not None:
        from .learn_board import learn_on_board
        net, report = learn_on_board(config, board, data_dir, on_epoch, progress)
    else:
        net, report = learn(config, data_dir, on_epoch, progress)
    net.save(out)
    log.info("wrote %s", out)
    report.out, report.digest = str(out), net.digest()
    if plot is not None:
        from .plots import fields, save
        fig = fields(net, 0, max_tiles=net.layers[0].n,
                     title=f"receptive fields learned by {config.rule} on {config.data} ({config.neurons} neurons)")
        report.plot = str(save(fig, Path(plot)))
    return report
