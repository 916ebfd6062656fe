"""A data set on a flashed (or simulated) board over its UART host link, checked against the model.

The board's identity is checked first; when it holds another network of the same structure its
weights are loaded over the link (unless forbidden). Every sample's spike counts and final
membranes must equal the bit-exact model's, and its cycle count the cycle formula's at the lanes
the board reports. Core install only: the host driver needs pyserial, nothing else.
"""
from __future__ import annotations

import logging
import statistics
import time
from dataclasses import asdict, dataclass

import numpy as np

from . import datasets
from .host import Board
from .model import classify, simulate
from .model.core import NetworkCore
from .model.encode import ON_CHIP, InputEncoder, bernoulli_state, quantise
from .model.hardware import core_read_stages
from .model.network import Network
from .progress import silent

__all__ = ["BoardRun", "check_board_name", "run_on_board"]

log = logging.getLogger(__name__)

SIMULATED = "sim"  # --board sim: a simulated board (sim.link_bridge) behind a pyserial URL


@dataclass
class BoardRun:
    board: str
    port: str
    network: str
    data: str
    split: str
    samples: int
    weights_loaded: bool
    accuracy: float
    model_accuracy: float
    bit_exact: int                # samples whose counts and final membranes equal the model's
    predictions_agree: int
    cycles_match: int             # samples whose cycle count equals the cycle formula's
    cycles_per_sample: float
    latency_ms_mean: float
    latency_ms_median: float
    samples_per_s: float
    wall_seconds: float
    bytes_sent: int
    bytes_received: int
    on_chip: bool = False         # levels sent, spikes made by the board's encoder (ENCODE)
    batch: int = 1                # samples per frame (BATCH when > 1)
    stream: bool = False          # a streaming board: requests pipelined, the line full duplex
    registered_reads: bool = False  # its block RAM reads registered (identify): read_stages cycles more per layer step
    read_stages: int = 0          # (model.hardware.read_stages_for: 1, or 2 with a weight memory deeper than a block)
    link_bound_per_s: float = 0.0  # samples/s if the line carried these bytes without a pause
    core_bound_per_s: float = 0.0  # samples/s if the board ran these samples back to back
    first_mismatch: dict | None = None

    @property
    def ok(self) -> bool:
        return self.bit_exact == self.samples and self.cycles_match == self.samples

    def to_dict(self) -> dict:
        return asdict(self)


def check_board_name(name: str) -> str:
    """The canonical board name (aliases resolved), or ``"sim"``; a clear error for others."""
    if name == SIMULATED:
        return name
    from .boards.targets import get_board
    return get_board(name).name


def run_on_board(net: Network, port: str, *, board: str = SIMULATED, net_name: str = "the network",
                 data: str | None = None, split: str = "test", data_dir=None, samples: int | None = None,
                 seed: int = 0, baud: int = 115_200, timeout: float = 2.0, retries: int = 3,
                 load: bool = True, check: bool = False, on_chip: bool = False, batch: int = 1,
                 progress=silent) -> BoardRun:
    """Run the data set (:func:`spikegate.datasets.select`) on the board at ``port``; ``load``
    False refuses to write weights (:class:`spikegate.host.NetworkMismatch` if the board holds
    another network); ``check`` verifies the board's weights by CHECKSUM even when it claims to
    hold the network already; ``on_chip`` sends each sample's levels and lets the board make the
    network's encoding's spikes (sample i of a ``bernoulli`` network starts from
    ``bernoulli_state(seed, i)``, as in ``datasets.encode_for``); ``batch`` > 1 sends that many
    samples per BATCH frame (with ``on_chip``)."""
    board_name = check_board_name(board)
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1 or (batch > 1 and not on_chip):
        raise ValueError(f"--batch = {batch!r} is not valid; valid: 1, or with --on-chip an integer >= 1")
    if on_chip and net.encoding not in ON_CHIP:
        raise ValueError(f"--on-chip: the network's encoding = {net.encoding!r} has no on-chip encoder; valid: "
                         f"{', '.join(ON_CHIP)} (bernoulli is the seeded encoder the board makes)")
    data, x, y = datasets.select(net, data, split, data_dir, samples)
    n = len(y)
    spikes = datasets.encode_for(net, x, seed=seed)
    levels = quantise(x) if on_chip else None
    expected = simulate(net, spikes)
    model_pred = classify(net, expected)

    with Board(port, baud=baud, timeout=timeout, retries=retries) as link:
        ident = link.identify()
        log.info("board on %s: protocol %s, shape %s, lanes %s, %g MHz, %s baud", port, ident.version,
                 list(ident.shape), list(ident.lanes), ident.clk_freq / 1e6, ident.baud)
        loaded = False
        if not link.check_network(net, name=net_name):
            if not load:
                link.ensure_network(net, load=False, name=net_name)  # raises NetworkMismatch
            with progress(len(link.write_frames(net)), "loading weights", unit="frames") as pr:
                link.write_network(net, progress=pr.update, name=net_name)
            loaded = True
        elif check:
            link.verify_network(net, name=net_name)
        twin = NetworkCore(net, ident.hardware())  # the board's lanes, max_events and registered reads
        cycles_twin = [twin.run(s).cycles for s in spikes]

        counts = np.zeros((n, net.n_outputs), np.int64)
        membranes = np.zeros((n, net.n_outputs), np.int64)
        cycles = np.zeros(n, np.int64)
        latency = []
        sent0, recv0 = link.bytes_sent, link.bytes_received
        t_start = time.perf_counter()
        if batch > 1 and batch > link.batch_limit():
            raise ValueError(f"--batch = {batch} is not valid for the board on {port}; valid: 1 to "
                             f"{link.batch_limit()} (the samples one frame of {ident.max_payload} bytes holds)")
        states = [bernoulli_state(seed, i) if net.encoding == "bernoulli" else 0 for i in range(n)]
        with progress(n, "running samples", unit="samples") as pr:
            def heard(first, count, seconds):
                latency.extend([seconds / count] * count)  # a batch's samples share its exchange equally
                pr.update(count)
            # pipelined: on a streaming board the next frame goes out while this one runs
            if on_chip:
                got = link.run_levels_many(levels, net.encoding, states, batch=batch, on_answer=heard)
            else:
                got = link.run_samples(spikes, on_answer=lambda i, seconds: heard(i, 1, seconds))
            for i, (c, mem, cyc) in enumerate(got):
                counts[i], membranes[i], cycles[i] = c, mem, cyc
        wall = time.perf_counter() - t_start
        sent, recv = link.bytes_sent - sent0, link.bytes_received - recv0

    exact = (counts == expected.counts).all(axis=1) & (membranes == expected.membranes[-1]).all(axis=1)
    cycles_ok = cycles == np.array(cycles_twin)
    pred = np.argmax(membranes, axis=1) if net.readout else np.argmax(counts, axis=1)
    first = None
    bad = np.flatnonzero(~exact)
    if len(bad):
        i = int(bad[0])
        first = {"sample": i, "expected_counts": expected.counts[i].tolist(), "board_counts": counts[i].tolist(),
                 "expected_membranes": expected.membranes[-1][i].tolist(), "board_membranes": membranes[i].tolist()}
    return BoardRun(
        board=board_name, port=str(port), network=net_name, data=data, split=split, samples=n, weights_loaded=loaded,
        accuracy=float((pred == y).mean()), model_accuracy=float((model_pred == y).mean()),
        bit_exact=int(exact.sum()), predictions_agree=int((pred == model_pred).sum()),
        cycles_match=int(cycles_ok.sum()), cycles_per_sample=float(cycles.mean()),
        latency_ms_mean=1e3 * statistics.fmean(latency), latency_ms_median=1e3 * statistics.median(latency),
        samples_per_s=n / wall, wall_seconds=wall, bytes_sent=sent, bytes_received=recv, on_chip=on_chip, batch=batch,
        stream=bool(ident.stream), registered_reads=bool(ident.registered_reads),
        read_stages=core_read_stages(twin.geometry),
        link_bound_per_s=link_bound(ident.baud, sent, recv, n, ident.stream),
        core_bound_per_s=core_bound(ident.clk_freq, cycles, InputEncoder(net.n_inputs, net.timesteps).cycles
                                    if on_chip else 0), first_mismatch=first)


def link_bound(baud: int, sent: int, received: int, n: int, stream: bool = False) -> float:
    """Samples/s if the line carried these bytes without a pause: 10 bits a byte (8N1). A
    streaming board receives while it answers (the UART is full duplex), so the busier direction
    bounds it; otherwise each exchange waits for its answer and the directions add."""
    line_bytes = max(sent, received) if stream else sent + received
    return baud / 10 * n / line_bytes if line_bytes else float("inf")


def core_bound(clk_freq: int, cycles: np.ndarray, encode_cycles: int = 0) -> float:
    """Samples/s if the board ran the samples back to back: the runs' cycles plus the on-chip
    encoder's per sample, at the board's clock."""
    per = float(np.mean(cycles)) + encode_cycles if len(cycles) else 0.0
    return clk_freq / per if per else float("inf")
