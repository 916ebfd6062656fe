"""Input encoders: intensities in [0, 1] -> spike trains [batch, T, n_in] of bool.

Every encoder first quantises intensities to 8-bit levels q = round(255 * x) so that the same
data set gives the same spikes on every platform and in every language.

- ``rate`` (deterministic): input i spikes at step t when floor((t+1) q / 255) > floor(t q / 255).
  Over T steps it fires floor(T q / 255) times, evenly spread; q = 255 fires every step.
- ``poisson`` (seeded Bernoulli): input i spikes at step t with probability q / 255, drawn from
  numpy's PCG64 generator seeded with ``seed``; the same seed gives the same spikes.
- ``latency`` (time to first spike): one spike per input at step round((255 - q) (T - 1) / 255)
  (integer, half rounds up), none when q = 0: brighter inputs fire earlier.
- ``bernoulli`` (seeded Bernoulli the gateware makes too): one xorshift32 draw per input and step,
  step-major, from a per-sample state; the contract is in README "Input encoders".

:class:`InputEncoder` is the cycle-exact twin of :class:`spikegate.hdl.encode.InputEncoder`, which
turns a sample's levels into the core's ``load`` words on the chip (``rate``, ``latency``,
``bernoulli``).
"""
from __future__ import annotations

import numpy as np

from .protocol import Encoding

__all__ = ["quantise", "rate", "poisson", "latency", "bernoulli", "encode", "from_levels", "ENCODERS", "SEEDED",
           "ON_CHIP", "xorshift32", "bernoulli_state", "bernoulli_fires", "latency_step", "InputEncoder",
           "MASK32", "STATE_OFFSET"]

LEVELS = 255
MASK32 = 0xFFFFFFFF
# Sample b's generator starts from fmix32(seed + (b + 1) * STATE_OFFSET); the golden-ratio constant
# spreads consecutive samples over the whole state space, and it replaces a state that would be 0.
STATE_OFFSET = 0x9E3779B9


def quantise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.size and (not np.isfinite(x).all() or x.min() < 0.0 or x.max() > 1.0):
        raise ValueError("intensities must be finite and within [0, 1]")
    return np.rint(x * 255.0).astype(np.int64)


def _check_T(T: int) -> int:
    if isinstance(T, bool) or not isinstance(T, (int, np.integer)) or T < 1:
        raise ValueError(f"timesteps = {T!r} is not valid; valid: an integer >= 1")
    return int(T)


def _check_levels(q) -> np.ndarray:
    q = np.asarray(q)
    if q.ndim != 2 or not np.issubdtype(q.dtype, np.integer) or (q.size and (q.min() < 0 or q.max() > LEVELS)):
        raise ValueError(f"levels must be integers 0..{LEVELS} of shape [batch, n_in], got {q.dtype} {q.shape}")
    return q.astype(np.int64)


def rate(x: np.ndarray, T: int) -> np.ndarray:
    return from_levels(quantise(x), "rate", T)


def poisson(x: np.ndarray, T: int, seed: int = 0) -> np.ndarray:
    T = _check_T(T)
    q = quantise(x)
    rng = np.random.Generator(np.random.PCG64(seed))
    draws = rng.integers(0, 255, size=(q.shape[0], T, q.shape[1]), dtype=np.int64)
    return draws < q[:, None, :]


def latency_step(q, T: int):
    """The step at which level ``q`` fires under ``latency``: round((255 - q)(T - 1) / 255), half up."""
    return ((LEVELS - q) * (T - 1) * 2 + LEVELS) // (2 * LEVELS)


def latency(x: np.ndarray, T: int) -> np.ndarray:
    return from_levels(quantise(x), "latency", T)


# --- the hardware Bernoulli encoder --------------------------------------------------------------

def xorshift32(s):
    """One step of Marsaglia's xorshift32 (shifts 13, 17, 5) on a state (int or uint64 array)."""
    s = s ^ ((s << 13) & MASK32)
    s = s ^ (s >> 17)
    return s ^ ((s << 5) & MASK32)


def _fmix32(h: int) -> int:
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & MASK32
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & MASK32
    return h ^ (h >> 16)


def _check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed <= MASK32:
        raise ValueError(f"seed = {seed!r} is not valid; valid: an integer from 0 to {MASK32}")
    return int(seed)


def bernoulli_state(seed: int, b: int) -> int:
    """The generator's initial state for sample ``b`` of a batch encoded with ``seed`` (never 0)."""
    h = _fmix32((_check_seed(seed) + (int(b) + 1) * STATE_OFFSET) & MASK32)
    return h or STATE_OFFSET


def bernoulli_fires(s, q):
    """Whether a state ``s`` (just stepped) fires an input of level ``q``: 255 d < 2^16 q with
    d = s >> 16, i.e. floor(255 d / 2^16), a draw in 0..254, is below q."""
    return LEVELS * (s >> 16) < (q << 16)


def bernoulli(x: np.ndarray, T: int, seed: int = 0) -> np.ndarray:
    x = np.asarray(x)
    states = [bernoulli_state(seed, b) for b in range(x.shape[0])] if x.ndim == 2 else None
    return from_levels(quantise(x), "bernoulli", T, states)


def from_levels(q, encoding: str, T: int, states=None) -> np.ndarray:
    """Spikes [batch, T, n_in] of levels ``q`` [batch, n_in] (0..255) under an encoding that needs
    no generator of numpy's (``rate``, ``latency``, ``bernoulli``; ``states``: one initial
    xorshift32 state per sample for ``bernoulli``, non-zero)."""
    T = _check_T(T)
    q = _check_levels(q)
    t = np.arange(T, dtype=np.int64)[None, :, None]
    if encoding == "rate":
        return ((t + 1) * q[:, None, :]) // LEVELS > (t * q[:, None, :]) // LEVELS
    if encoding == "latency":
        return (t == latency_step(q, T)[:, None, :]) & (q[:, None, :] > 0)
    if encoding != "bernoulli":
        raise ValueError(f"encoding = {encoding!r} is not valid here; valid: {', '.join(ON_CHIP)}")
    s = np.asarray(states if states is not None else [], dtype=np.uint64).reshape(-1)
    if s.shape != (q.shape[0],) or (s.size and (s.min() == 0 or s.max() > MASK32)):
        raise ValueError(f"states must be one non-zero 32-bit state per sample ({q.shape[0]}), got {s.tolist()[:4]}")
    out = np.zeros((q.shape[0], T, q.shape[1]), dtype=bool)
    qu = q.astype(np.uint64)
    for k in range(T):
        for i in range(q.shape[1]):
            s = xorshift32(s)
            out[:, k, i] = bernoulli_fires(s, qu[:, i])
    return out


ENCODERS = {"rate": rate, "poisson": poisson, "latency": latency, "bernoulli": bernoulli}
# Encoders whose spikes depend on a seed and on each sample's place in the batch.
SEEDED = ("poisson", "bernoulli")
# Encoders the gateware runs itself from levels (hdl.encode.InputEncoder), in protocol code order.
ON_CHIP = tuple(e.name.lower() for e in Encoding)


def encode(x: np.ndarray, encoding: str, T: int, seed: int = 0) -> np.ndarray:
    """Encode a batch of intensities [batch, n_in] with the named encoder."""
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"intensities must have shape [batch, n_in], got {x.shape}")
    if encoding not in ENCODERS:
        raise ValueError(f"encoding = {encoding!r} is not valid; valid: {', '.join(ENCODERS)}")
    if encoding in SEEDED:
        return ENCODERS[encoding](x, T, seed)
    return ENCODERS[encoding](x, T)


class InputEncoder:
    """Cycle-exact twin of :class:`spikegate.hdl.encode.InputEncoder` for ``n_in`` inputs and
    ``timesteps`` steps: one sample's levels in, the core's ``load`` words out.

    The gateware visits every (step, input) pair in order, step-major, one per cycle, plus one
    cycle per step for its end-of-step word; it emits a word for each pair that fires. The xorshift
    state steps once per pair (``bernoulli``), whether or not it fires.
    """

    def __init__(self, n_in: int, timesteps: int):
        if isinstance(n_in, bool) or not isinstance(n_in, (int, np.integer)) or n_in < 1:
            raise ValueError(f"n_in = {n_in!r} is not valid; valid: an integer >= 1")
        self.n_in, self.timesteps = int(n_in), _check_T(timesteps)

    @property
    def cycles(self) -> int:
        """Cycles ``busy`` is high after ``start`` when the core takes a word every cycle (it does
        while it is idle): one per (step, input) pair, one per end-of-step word, one to drain."""
        return self.timesteps * (self.n_in + 1) + 1

    def spikes(self, q, encoding: str, state: int = 0) -> np.ndarray:
        """bool [T, n_in] of one sample's levels ``q`` [n_in]."""
        q = np.asarray(q)
        if q.shape != (self.n_in,):
            raise ValueError(f"levels must have shape [{self.n_in}], got {q.shape}")
        states = [state] if encoding == "bernoulli" else None
        return from_levels(q[None, :], encoding, self.timesteps, states)[0]

    def words(self, q, encoding: str, state: int = 0) -> list[tuple[int, int]]:
        """The ``load`` words (addr, end_of_step) in the order the gateware emits them."""
        from .core import input_words
        return input_words(self.spikes(q, encoding, state))
