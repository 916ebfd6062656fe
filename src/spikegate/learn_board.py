"""``spikegate learn --board NAME --port PORT``: the training of :mod:`spikegate.learn_run` on a
board through the host link (docs/protocol.md, "Learning on the board").

The board must hold the untrained network :func:`spikegate.learn_run.initial_network` makes for the
same options (``spikegate build`` of the network ``learn --init-out`` would save; the simulated
board of :mod:`spikegate.sim.link_bridge` for tests). The host loads its initial weights if the
board holds others, switches learning on, sends the training samples in the order the model learns
them as spikes in LOAD frames (:func:`spikegate.learn_run.training_spikes`: the very spikes the
model learns from, so the board needs no on-chip encoder and boards.fit.choose_encoder leaves it
out of a plastic network's build; rstdp: per sample a run with learning off whose spike counts
decide the reward, REWARD STEP, then the learning run), switches learning off, reads the learned
weights and threshold offsets back (READ_STATE) and then labels, evaluates and saves exactly as
the model path does: the same options give the same network file, bit for bit
(tests/test_learn_board.py).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .errors import UserError
from . import datasets
from .learn_run import (EpochReport, LearnConfig, finish, initial_network, load_data, sample_order, sample_reward,
                        training_spikes)
from .model.hardware import HardwareConfig
from .model.protocol import StateKind
from .progress import silent

__all__ = ["BoardLink", "SIM_LANES", "check_board_config", "learn_on_board", "learn_on_sim"]

# The simulated board's lanes (``learn --sim``); a real board's come from its identify block.
SIM_LANES = 4


@dataclass(frozen=True)
class BoardLink:
    """Where the board is: its ``name`` (``spikegate boards``, or ``sim`` for the simulated board),
    the serial ``port`` (or pyserial URL), ``baud`` (None: the board's default) and the driver's
    silence ``timeout`` in seconds."""
    name: str
    port: str
    baud: int | None = None
    timeout: float = 2.0


def check_board_config(config: LearnConfig, link: BoardLink) -> None:
    """Refuse what the board cannot train, before anything is loaded or sent."""
    from .host import default_baud
    if not isinstance(link.port, str) or not link.port:
        raise ValueError(f"--port = {link.port!r} is not valid; valid: a serial port or pyserial URL "
                         "(/dev/ttyUSB1, COM3, socket://127.0.0.1:PORT)")
    default_baud(link.name)  # an unknown board name is refused with the valid ones
    if config.epochs != 1:
        raise ValueError(f"--epochs = {config.epochs} is not valid on a board (--board or --sim): from the "
                         "second epoch on the rule anneals (half the learning rate), and a bitstream fixes its "
                         "rule when it is built; valid: 1")


def learn_on_board(config: LearnConfig, link: BoardLink, data_dir=None, on_epoch=None,
                   progress=silent) -> tuple:
    """Train on the board; returns (network, report) like :func:`spikegate.learn_run.learn`."""
    from .host import Board, default_baud
    config = config.check()
    check_board_config(config, link)
    data = load_data(config, data_dir)
    x_train = data[0]
    net = initial_network(config, x_train)
    HardwareConfig().geometry(net)  # the network's features have gateware (refused with the reason otherwise)
    spikes = training_spikes(net, x_train)
    baud = link.baud if link.baud is not None else default_baud(link.name)
    epochs: list[EpochReport] = []
    start = time.perf_counter()
    with Board(link.port, baud=baud, timeout=link.timeout) as b:
        b.ensure_network(net, name="the untrained network")
        layer = net.layers[0]
        initial = layer.plasticity.offsets_for(layer)
        if b.state_layout(net, 0, StateKind.OFFSETS) is not None and not np.array_equal(
                b.read_state(net, 0, StateKind.OFFSETS), initial):
            raise UserError(f"the board on {link.port} holds threshold offsets learned before, which the link "
                            "cannot write: reset the board (power it off and on, or flash it again) to start "
                            "from the untrained network")
        order = sample_order(config, len(x_train))[0]
        with progress(len(order), f"learning epoch 1/1 on {link.name}", unit="samples") as p:
            if config.rule == "rstdp":
                cycles, rewarded = _learn_rstdp(b, net, spikes[order], data[1][order], p.update)
            else:
                cycles, rewarded = _learn_stdp(b, spikes[order], p.update), None
        learned = b.learned_network(net)
    epochs.append(EpochReport(1, 1, time.perf_counter() - start, rewarded))
    if on_epoch is not None:
        on_epoch(epochs[-1])
    final, report = finish(config, learned, data, epochs, time.perf_counter() - start)
    report.board, report.board_cycles = link.name, float(np.mean(cycles))
    return final, report


def _learn_stdp(b, spikes, update) -> list[int]:
    """Learn the samples' ``spikes`` [N, T, n_in] in order; their cycles."""
    b.set_learning(True)
    cycles = []
    for sample in spikes:
        cycles.append(b.learn_sample(sample)[2])
        update(1)
    b.set_learning(False)
    return cycles


def _learn_rstdp(b, net, spikes, labels, update) -> tuple[list[int], float]:
    """learn_run's two passes a sample: a run with learning off, whose spike counts decide the reward
    (:func:`~spikegate.learn_run.sample_reward`), held by REWARD STEP for the run that learns the
    sample. The learning runs' cycles and the fraction of samples rewarded."""
    wins = np.zeros((net.layers[0].n, datasets.N_CLASSES), np.int64)
    cycles, rewarded, held = [], 0, None
    b.set_learning(False)
    for k in range(len(spikes)):
        counts = b.run_sample(spikes[k])[0]  # learning off: safe to resend
        reward = sample_reward(counts, int(labels[k]), wins)
        rewarded += reward > 0
        if reward != held:
            b.reward(reward, per_step=True)
            held = reward
        b.set_learning(True)
        cycles.append(b.learn_sample(spikes[k])[2])
        b.set_learning(False)
        update(1)
    return cycles, rewarded / len(spikes)


def learn_on_sim(config: LearnConfig, data_dir=None, on_epoch=None, progress=silent) -> tuple:
    """:func:`learn_on_board` on a simulated board started here for the untrained network (the whole
    HostLink top in Verilator behind a socket, :class:`spikegate.sim.link_bridge.SimulatedBoard`;
    needs Verilator), stopped afterwards."""
    import tempfile
    from pathlib import Path

    from .sim.link_bridge import SimulatedBoard
    config = config.check()
    check_board_config(config, BoardLink("sim", "socket://"))
    with tempfile.TemporaryDirectory(prefix="spikegate-learn-sim-") as d:
        path = Path(d) / "initial.json"
        initial_network(config, load_data(config, data_dir)[0]).save(path)
        with SimulatedBoard(path, lanes=SIM_LANES) as sb:
            # the simulated UART is slow: allow much more silence than on hardware
            return learn_on_board(config, BoardLink("sim", sb.url, timeout=60.0), data_dir, on_epoch, progress)

