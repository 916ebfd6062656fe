"""Calibration: choosing each layer's scale on data, and loading that data.

The range-limited scale keeps every parameter representable but can leave membranes saturating
on real inputs; a smaller scale coarsens the weights instead. Which costs less depends on the
data, so it is measured: each candidate integer layer is compared with its float layer.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..model.network import Layer, Network, signed_range
from .floatsim import FloatLayer, simulate_float, spikes_of
from .quantise import quantise_layer

__all__ = ["CALIBRATION_MAX_CANDIDATES", "calibrate_scales", "load_calibration"]

# Calibration tries the range-limited scale and smaller ones in quarter octaves, down to the scale
# at which the layer's largest float membrane on the data fits (below that, nothing more fits).
CALIBRATION_MAX_CANDIDATES = 64


def _layer_mismatch(layer: Layer, L: FloatLayer, x: np.ndarray, want: np.ndarray) -> float:
    """How badly the integer layer reproduces the float layer on its float-network inputs ``x``:
    the fraction of differing spikes, or for a readout of differing final-membrane argmaxes."""
    from ..model.simulate import simulate
    res = simulate(Network(layers=[layer], timesteps=x.shape[1]), x)
    if L.readout:
        return float(np.mean(np.argmax(res.membranes[0], axis=1) != want))
    return float(np.mean(res.spikes[0] != want))


def calibrate_scales(floats, layers, reports, spikes, weight_bits, membrane_bits, frac_bits, progress) -> dict:
    """Pick each layer's scale on data: the candidate whose integer layer best matches the float layer.

    A smaller scale coarsens weights but keeps membranes off the rails; which costs less depends on
    the data, so it is measured rather than guessed. Every layer is judged on the spikes the float
    network feeds it, so the layers are calibrated independently; ties keep the larger scale.
    """
    N, T, _ = spikes.shape
    vmax = signed_range(membrane_bits)[1]
    if progress:
        progress(f"calibrating on {N} samples x {T} steps: float simulation")
    fscores, inputs, peaks = simulate_float(floats, spikes, record=True)
    for i, L in enumerate(floats):
        x = inputs[i]
        if L.readout:
            want = np.argmax(simulate_float([L], x)[0], axis=1)
        else:
            want = inputs[i + 1] if i + 1 < len(floats) else spikes_of(L, x)
        S0, by0 = reports[i]["scale"], reports[i]["scale_limited_by"]
        S_fit = vmax / peaks[i] if peaks[i] > 0 else S0
        n_cand = 1
        while n_cand < CALIBRATION_MAX_CANDIDATES and S0 * 2.0 ** (-(n_cand - 1) / 4) > S_fit:
            n_cand += 1
        if progress:
            progress(f"calibrating layer {i} ({L.neuron}): {n_cand} candidate scale(s)")
        best = err0 = None
        for j in range(n_cand):
            S = max(S0 * 2.0 ** (-j / 4), S_fit) if j else S0
            layer, rep = quantise_layer(L, i, weight_bits, membrane_bits, frac_bits, S,
                                         by0 if j == 0 else "calibration")
            err = _layer_mismatch(layer, L, x, want)
            if j == 0:
                err0 = err
            if best is None or err < best[0]:
                best = (err, layer, rep)
        err, layers[i], reports[i] = best
        reports[i]["calibration"] = {"mismatch": err, "mismatch_uncalibrated": err0, "candidates": n_cand,
                                     "peak": float(peaks[i]),
                                     "measure": "argmax" if L.readout else "spikes"}
    return {"samples": int(N), "timesteps": int(T), "float_pred": np.argmax(fscores, axis=1)}


def load_calibration(spec: str, *, n_inputs: int, timesteps: int, encoding: str,
                     data_dir: str | os.PathLike | None = None, limit: int | None = 2000,
                     seed: int = 0) -> tuple[np.ndarray, str]:
    """Calibration spikes bool [N, T, n_inputs] from a data set name or a ``.npy`` file.

    ``spec`` is ``digits`` / ``mnist`` (the training split, encoded with ``encoding`` and
    ``timesteps``), or a ``.npy`` file holding intensities float [N, n_inputs] in [0, 1] (encoded
    likewise) or spikes bool/0-1 integer [N, T, n_inputs] (used as they are). At most ``limit``
    samples are used (the first ones). Returns the spikes and a one-line description.
    """
    from ..model.encode import encode
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 1):
        raise ValueError(f"calibration sample limit = {limit!r} is not valid; valid: an integer >= 1")
    path = Path(spec)
    if path.suffix == ".npy" or path.exists():
        if not path.is_file():
            raise FileNotFoundError(f"calibration file {spec!r} does not exist")
        try:
            arr = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as e:
            raise UserError(f"calibration file {spec!r} is not a .npy array ({e})") from None
        arr = arr[:limit] if limit else arr
        if arr.ndim == 3:
            if arr.shape[2] != n_inputs:
                raise ValueError(f"calibration spikes in {spec!r} have shape {arr.shape}; expected "
                                 f"[N, T, {n_inputs}]")
            if arr.dtype != bool:
                if not np.issubdtype(arr.dtype, np.integer) or (arr.size and (arr.min() < 0 or arr.max() > 1)):
                    raise ValueError(f"calibration spikes in {spec!r} must be bool or 0/1 integers, got "
                                     f"dtype {arr.dtype}")
                arr = arr.astype(bool)
            return arr, f"{spec}: {arr.shape[0]} spike trains of {arr.shape[1]} steps"
        if arr.ndim == 2:
            if arr.shape[1] != n_inputs:
                raise ValueError(f"calibration intensities in {spec!r} have shape {arr.shape}; expected "
                                 f"[N, {n_inputs}]")
            try:
                spikes = encode(arr, encoding, timesteps, seed)
            except ValueError as e:
                raise ValueError(f"calibration intensities in {spec!r}: {e}") from None
            return spikes, f"{spec}: {arr.shape[0]} samples, {encoding} encoded over {timesteps} steps"
        raise ValueError(f"calibration array in {spec!r} has shape {arr.shape}; expected intensities [N, "
                         f"{n_inputs}] or spikes [N, T, {n_inputs}]")
    from .. import datasets
    if spec not in datasets.DATASETS:
        raise ValueError(f"--calibrate {spec!r} is neither a data set ({', '.join(datasets.DATASETS)}) nor an "
                         "existing .npy file")
    x, _ = datasets.load(spec, "train", data_dir)
    x = x[:limit] if limit else x
    if x.shape[1] != n_inputs:
        raise ValueError(f"data set {spec!r} has {x.shape[1]} inputs but the NIR graph expects {n_inputs}")
    return encode(x, encoding, timesteps, seed), (f"{spec} train split, first {x.shape[0]} samples, "
                                                  f"{encoding} encoded over {timesteps} steps")
