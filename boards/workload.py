"""Cycles per sample of a built design: a workload of input spikes and the core's exact twin."""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..model.hardware import HardwareConfig
from ..model.network import Network

__all__ = ["workload", "performance"]


def workload(net: Network, samples: int | None = None, data_dir=None) -> tuple[np.ndarray, str]:
    """Input spikes to measure cycles per sample on, and a description of them.

    A 64-input network gets the digits test split (the data it was made for); a 784-input one
    the MNIST test split when its IDX files are in ``data_dir``; any other network (or MNIST
    without files) random spikes at a stated rate, labelled as such in the report.
    """
    from .. import datasets
    if net.n_inputs == 64:
        x, _ = datasets.load("digits", "test")
        what = "digits test split"
    elif net.n_inputs == 784 and data_dir is not None:
        x, _ = datasets.load("mnist", "test", data_dir=data_dir)
        what = "MNIST test split"
    else:
        from ..model.random import random_spikes
        n = 100 if samples is None else samples
        p = 0.13  # the mean MNIST pixel intensity: the spike rate of rate-coded MNIST
        s = random_spikes(0, n, net.timesteps, net.n_inputs, p=p)
        return s, f"{n} samples of random input spikes (p = {p} per input per step, seed 0)"
    if samples is not None:
        x = x[:samples]
    s = datasets.encode_for(net, x, seed=0)
    return s, f"{len(x)} samples of the {what}, {net.encoding} encoding, T = {net.timesteps}"


def performance(net: Network, hw: HardwareConfig, clock_mhz: float, fmax_mhz: float | None,
                samples: int | None = None, data_dir=None) -> dict:
    """Cycles per sample from the core's twin (exact), and what they mean at a clock."""
    from ..model.core import NetworkCore as CoreTwin
    spikes, what = workload(net, samples, data_dir)
    # SPRAM weights start at zero, but the host loads them before running samples: the cycles
    # are those of the network with its weights in place.
    twin = CoreTwin(net, replace(hw, weight_ram="block"))
    cyc = np.array([twin.cycles(s) for s in spikes], dtype=np.int64)
    mean = float(cyc.mean())

    def at(f_mhz):
        return {"mhz": round(f_mhz, 3), "latency_us": round(mean / f_mhz, 3),
                "worst_latency_us": round(int(cyc.max()) / f_mhz, 3),
                "samples_per_s": round(f_mhz * 1e6 / mean, 1)}

    out = {"workload": what, "samples": int(len(cyc)),
           "cycles_per_sample": {"mean": round(mean, 1), "min": int(cyc.min()), "max": int(cyc.max())},
           "at_clock": at(clock_mhz),
           "note": "core compute only (from start to done); host-link transfer time not included"}
    if fmax_mhz:
        out["at_fmax"] = at(fmax_mhz)
    return out
