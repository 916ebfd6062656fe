"""Random networks and spike trains for tests, benchmarks and regression runs."""
from __future__ import annotations

import numpy as np

from .network import Layer, Leak, Network, signed_range
from .protocol import threshold_range

__all__ = ["random_layer", "random_network", "random_spikes"]


def _pick(rng: np.random.Generator, value, choices):
    return choices[rng.integers(len(choices))] if value is None else value


def random_layer(rng: np.random.Generator, n_in: int, n: int, *, weight_bits: int | None = None,
                 membrane_bits: int | None = None, leak: str | None = None, reset: str | None = None,
                 refractory: int | None = None, readout: bool = False, density: float | None = None) -> Layer:
    """A layer with every parameter drawn from its valid range unless given.

    Thresholds are drawn on a log scale across the whole membrane range, so small and rail-adjacent
    thresholds both occur; weights are full-range, so saturation is common at narrow widths.
    """
    wb = int(_pick(rng, weight_bits, [2, 3, 4, 5, 6, 8, 8, 8, 12, 16]))
    vb = int(_pick(rng, membrane_bits, [max(wb, 4), wb + 2, wb + 4, 16, 16, 24, 32]))
    vb = max(vb, 3)
    wlo, whi = signed_range(wb)
    vlo, vhi = signed_range(vb)
    w = rng.integers(wlo, whi + 1, size=(n_in, n), dtype=np.int64)
    dens = rng.uniform(0.2, 1.0) if density is None else density
    w[rng.random((n_in, n)) > dens] = 0
    bias_mag = min(vhi, whi)
    bias = rng.integers(-bias_mag, bias_mag + 1, size=n, dtype=np.int64) // rng.integers(1, 8)
    kind = _pick(rng, leak, ["none", "shift", "multiply"])
    if kind == "shift":
        lk = Leak.shift(int(rng.integers(1, vb + 1)))
    elif kind == "multiply":
        f = int(rng.integers(1, 17))
        lk = Leak.multiply(int(rng.integers(0, (1 << f) + 1)), f)
    else:
        lk = Leak.none()
    if readout:
        return Layer(weights=w, bias=bias, weight_bits=wb, membrane_bits=vb, leak=lk, readout=True)
    theta_max = threshold_range(vb)[1]
    theta = int(min(theta_max, np.floor(2.0 ** rng.uniform(0, vb - 1)) - 1))
    if rng.random() < 0.1:
        theta = theta_max  # right next to the rail: only a saturated membrane fires
    return Layer(weights=w, bias=bias, threshold=max(theta, 0), weight_bits=wb, membrane_bits=vb, leak=lk,
                 reset=_pick(rng, reset, ["zero", "subtract"]),
                 refractory=int(_pick(rng, refractory, [0, 0, 1, 2, 3, 7])))


def random_network(seed: int, sizes: tuple[int, ...] | None = None, *, readout: bool | None = None,
                   timesteps: int | None = None, **layer_kw) -> Network:
    """A random feed-forward network; ``sizes`` = (n_in, n_1, ..., n_L). Same seed, same network."""
    rng = np.random.Generator(np.random.PCG64(seed))
    if sizes is None:
        n_layers = int(rng.integers(1, 4))
        sizes = tuple(int(x) for x in rng.integers(1, 24, size=n_layers + 1))
    if readout is None:
        readout = bool(rng.random() < 0.3)
    layers = []
    for i in range(len(sizes) - 1):
        last = i == len(sizes) - 2
        layers.append(random_layer(rng, sizes[i], sizes[i + 1], readout=readout and last, **layer_kw))
    T = int(rng.integers(1, 20)) if timesteps is None else timesteps
    return Network(layers=layers, timesteps=T, name=f"random-{seed}")


def random_spikes(seed: int, batch: int, T: int, n_in: int, p: float | None = None) -> np.ndarray:
    """Bernoulli input spikes [batch, T, n_in]; ``p`` defaults to a random firing probability."""
    rng = np.random.Generator(np.random.PCG64(seed))
    prob = rng.uniform(0.0, 0.8) if p is None else p
    return rng.random((batch, T, n_in)) < prob
