"""Import: a NIR graph as a spikegate network, exactly (spikegate exports) or by quantisation."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import UserError
from ..model.network import (ENCODINGS, MAX_FRAC_BITS, MAX_MEMBRANE_BITS, MAX_TIMESTEPS, MAX_WEIGHT_BITS,
                             Network)
from .calibrate import calibrate_scales
from .chain import RawLayer, raw_layers
from .conv import has_conv, import_conv_graph
from .exact import exact_import
from .floatsim import check_dt, discretise
from .quantise import quantise_layer, scale_limits
from .read import check_v_reset, meta_json, read_graph

__all__ = ["ImportResult", "network_from_graph", "import_nir"]


@dataclass
class ImportResult:
    network: Network
    exact: bool                       # rebuilt bit for bit from spikegate metadata
    dt: float
    layers: list[dict]                # per-layer quantisation report
    version: str | None = None        # NIR version the file was written with
    calibration: dict | None = None   # samples, float/int agreement when calibrated
    v_reset: dict | None = None       # the reset assumed for old nodes without v_reset (read.check_v_reset)

    def to_json(self) -> dict:
        return {"exact": self.exact, "dt": self.dt, "nir_version": self.version, "layers": self.layers,
                "calibration": self.calibration, "v_reset_assumption": self.v_reset, "shape": list(self.network.shape),
                "readout": self.network.readout, "timesteps": self.network.timesteps,
                "encoding": self.network.encoding, "digest": self.network.digest()}


def network_from_graph(graph, *, dt: float | None = None, weight_bits: int = 8, membrane_bits: int = 16,
                       leak_frac_bits: int = 8, timesteps: int = 32, encoding: str = "rate",
                       calibrate: np.ndarray | None = None, ignore_metadata: bool = False,
                       version: str | None = None, missing_v_reset: list[str] | tuple = (),
                       v_reset: str = "zero", name: str = "", progress: Callable[[str], None] | None = None) -> ImportResult:
    """Convert an in-memory NIR graph into a spikegate network (see the :mod:`spikegate.nir` docstring).

    ``calibrate``: input spikes bool [N, T, n_in]; each layer's scale is then chosen on them (see
    :func:`calibrate_scales`) and the float/integer classification agreement on them is reported.
    ``v_reset``: what a spike does in nodes of pre-1.0.6 files stored without v_reset ("zero", NIR's
    own reader's choice, or "subtract"); the assumption is reported in the result.
    """
    assumption = check_v_reset(version, missing_v_reset, v_reset)
    if has_conv(graph):
        return _conv_import(graph, dt, weight_bits, membrane_bits, leak_frac_bits, timesteps, encoding, calibrate,
                            name, version, assumption)
    n_inputs, raws = raw_layers(graph)
    gmeta = None if ignore_metadata else meta_json("the NIR graph", getattr(graph, "metadata", {}) or {})
    if gmeta is not None:
        net, reports = exact_import(graph, gmeta, n_inputs, raws)
        return ImportResult(network=net, exact=True, dt=float(gmeta.get("dt", 1.0)), layers=reports,
                            version=version)
    if dt is None:
        hint = _dt_hint(raws)
        raise UserError("--dt is required for this graph: NIR is continuous-time and does not record the "
                        "step a model was trained with" + (f" (its LIF nodes have r / tau = 1 / {hint:g}, "
                                                           f"which suggests --dt {hint:g})" if hint else ""))
    dt = check_dt(dt)
    check_float_options(weight_bits, membrane_bits, leak_frac_bits, timesteps, encoding)
    assumed = set(assumption["nodes"]) if assumption else set()
    floats = [discretise(r, dt, reset=v_reset if r.neuron in assumed else "zero") for r in raws]
    layers, reports = [], []
    for i, L in enumerate(floats):
        limits = scale_limits(L, weight_bits, membrane_bits)
        by = min(limits, key=limits.get)
        layer, rep = quantise_layer(L, i, weight_bits, membrane_bits, leak_frac_bits, limits[by], by)
        layers.append(layer)
        reports.append(rep)
    cal = None
    if calibrate is not None:
        spikes = np.asarray(calibrate)
        if spikes.ndim != 3 or spikes.shape[2] != n_inputs:
            raise ValueError(f"calibration spikes must have shape [N, T, {n_inputs}], got {spikes.shape}")
        cal = calibrate_scales(floats, layers, reports, spikes.astype(bool), weight_bits, membrane_bits,
                               leak_frac_bits, progress)
    net = Network(layers=layers, timesteps=timesteps, encoding=encoding, name=name,
                  meta={"source": "nir", "dt": dt, "nir_version": version,
                        "calibrated": calibrate is not None, **({"v_reset_assumption": assumption} if assumption else {})})
    if calibrate is not None:
        from ..model.simulate import classify, simulate
        if progress:
            progress("comparing float and integer classifications on the calibration data")
        ipred = classify(net, simulate(net, spikes))
        cal["agreement"] = float(np.mean(ipred == cal.pop("float_pred")))
    return ImportResult(network=net, exact=False, dt=dt, layers=reports, version=version, calibration=cal,
                        v_reset=assumption)


def _conv_import(graph, dt, weight_bits, membrane_bits, leak_frac_bits, timesteps, encoding, calibrate, name,
                 version, assumption) -> ImportResult:
    """Graphs with Conv2d / pooling nodes: :mod:`spikegate.nir.conv`."""
    check_float_options(weight_bits, membrane_bits, leak_frac_bits, timesteps, encoding)
    if calibrate is not None:
        raise UserError("--calibrate is not supported for graphs with convolutions yet; import without it")
    net, reports = import_conv_graph(graph, dt=dt, weight_bits=weight_bits, membrane_bits=membrane_bits,
                                     leak_frac_bits=leak_frac_bits, timesteps=timesteps, encoding=encoding,
                                     name=name, version=version)
    return ImportResult(network=net, exact=False, dt=net.meta["dt"], layers=reports, version=version,
                        v_reset=assumption)


def check_float_options(weight_bits: int = 8, membrane_bits: int = 16, leak_frac_bits: int = 8,
                        timesteps: int = 32, encoding: str = "rate") -> None:
    """The quantisation options of a float-graph import (callers check them before reading data)."""
    for nm, val, lo, hi in (("weight_bits", weight_bits, 2, MAX_WEIGHT_BITS),
                            ("membrane_bits", membrane_bits, 2, MAX_MEMBRANE_BITS),
                            ("leak_frac_bits", leak_frac_bits, 1, MAX_FRAC_BITS),
                            ("timesteps", timesteps, 1, MAX_TIMESTEPS)):
        if isinstance(val, bool) or not isinstance(val, (int, np.integer)) or not lo <= val <= hi:
            raise ValueError(f"{nm} = {val!r} is not valid; valid: an integer {lo}..{hi} "
                             f"(option --{nm.replace('_', '-')})")
    if encoding not in ENCODINGS:
        raise ValueError(f"encoding = {encoding!r} is not valid; valid: {', '.join(ENCODINGS)}")


def _dt_hint(raws: list[RawLayer]) -> float | None:
    """snnTorch-style exports set r = tau / dt so that the input gain is 1; recover that dt."""
    vals = []
    for raw in raws:
        if raw.kind in ("LIF", "LI", "CubaLIF", "CubaLI"):
            r = np.asarray(raw.node.r, dtype=np.float64).reshape(-1)
            tau = np.asarray(raw.node.tau_mem if raw.kind.startswith("Cuba") else raw.node.tau,
                             dtype=np.float64).reshape(-1)
            if r.size and np.all(r > 0) and np.all(tau > 0):
                vals.extend((tau / r).tolist())
    if not vals:
        return None
    vals = np.asarray(vals)
    if np.ptp(vals) > 1e-6 * abs(vals.mean()):
        return None
    return float(vals.mean())


def import_nir(path: str | os.PathLike, **kwargs) -> ImportResult:
    """Read a NIR file and convert it (keyword arguments as :func:`network_from_graph`)."""
    graph, version, missing = read_graph(path)
    kwargs.setdefault("name", Path(path).stem)
    return network_from_graph(graph, version=version, missing_v_reset=missing, **kwargs)
