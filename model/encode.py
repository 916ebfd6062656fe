"""Input encoders: intensities in [0, 1] -> spike trains [batch, T, n_in] of bool.

Every encoder first quantises intensities to 8-bit levels q = round(255 * x) so that the same
data set gives the same spikes on every platform and in every language.

- ``rate`` (deterministic): input i spikes at step t when floor((t+1) q / 255) > floor(t q / 255).
  Over T steps it fires floor(T q / 255) times, evenly spread; q = 255 fires every step.
- ``poisson`` (seeded Bernoulli): input i spikes at step t with probability q / 255, drawn from
  numpy's PCG64 generator seeded with ``seed``; the same seed gives the same spikes.
- ``latency`` (time to first spike): one spike per input at step round((255 - q) (T - 1) / 255)
  (integer, half rounds up), none when q = 0: brighter inputs fire earlier.
"""
from __future__ import annotations

import numpy as np

__all__ = ["quantise", "rate", "poisson", "latency", "encode", "ENCODERS"]


def quantise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.size and (not np.isfinite(x).all() or x.min() < 0.0 or x.max() > 1.0):
        raise ValueError("intensities must be finite and within [0, 1]")
    return np.rint(x * 255.0).astype(np.int64)


def _check_T(T: int) -> int:
    if isinstance(T, bool) or not isinstance(T, (int, np.integer)) or T < 1:
        raise ValueError(f"timesteps = {T!r} is not valid; valid: an integer >= 1")
    return int(T)


def rate(x: np.ndarray, T: int) -> np.ndarray:
    T = _check_T(T)
    q = quantise(x)[:, None, :]
    t = np.arange(T, dtype=np.int64)[None, :, None]
    return ((t + 1) * q) // 255 > (t * q) // 255


def poisson(x: np.ndarray, T: int, seed: int = 0) -> np.ndarray:
    T = _check_T(T)
    q = quantise(x)
    rng = np.random.Generator(np.random.PCG64(seed))
    draws = rng.integers(0, 255, size=(q.shape[0], T, q.shape[1]), dtype=np.int64)
    return draws < q[:, None, :]


def latency(x: np.ndarray, T: int) -> np.ndarray:
    T = _check_T(T)
    q = quantise(x)
    first = ((255 - q) * (T - 1) * 2 + 255) // 510
    t = np.arange(T, dtype=np.int64)[None, :, None]
    return (t == first[:, None, :]) & (q[:, None, :] > 0)


ENCODERS = {"rate": rate, "poisson": poisson, "latency": latency}


def encode(x: np.ndarray, encoding: str, T: int, seed: int = 0) -> np.ndarray:
    """Encode a batch of intensities [batch, n_in] with the named encoder."""
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"intensities must have shape [batch, n_in], got {x.shape}")
    if encoding not in ENCODERS:
        raise ValueError(f"encoding = {encoding!r} is not valid; valid: {', '.join(ENCODERS)}")
    if encoding == "poisson":
        return poisson(x, T, seed)
    return ENCODERS[encoding](x, T)
