"""Network description: layers, networks, their validation and the network file format.

The value rules (bounds, encodings, the leak) are in :mod:`spikegate.model.params` and are
re-exported here.

Everything here is plain integers. The arithmetic these numbers drive is defined once, in
:mod:`spikegate.model.lif` (and in README, "The arithmetic contract"); the hardware generator
and every test must match it bit for bit.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from .conv import ConvSpec, check_chain, check_conv_layer, conv_layer_dict, conv_layer_from_dict
from .fileio import write_atomic
from .plasticity import Plasticity
from .params import (ENCODINGS, FORMAT_NAME, FORMAT_VERSION, READABLE_VERSIONS, LEAK_KINDS, MAX_FRAC_BITS, MAX_MEMBRANE_BITS,
                     MAX_NETWORK_FILE_BYTES, MAX_REFRACTORY, MAX_TIMESTEPS, MAX_WEIGHT_BITS, RESET_MODES, Leak,
                     NetworkFormatError, check_int as _check_int, frozen_array as _frozen_array,
                     int_array as _int_array)
from .protocol import CfgTarget, signed_range, value_range
from .temporal import Temporal

__all__ = [
    "Leak", "Layer", "Network", "NetworkFormatError", "signed_range",
    "FORMAT_NAME", "FORMAT_VERSION", "ENCODINGS",
    "MAX_WEIGHT_BITS", "MAX_MEMBRANE_BITS", "MAX_NETWORK_FILE_BYTES", "MAX_REFRACTORY", "MAX_FRAC_BITS",
    "MAX_TIMESTEPS", "RESET_MODES", "LEAK_KINDS",
]


@dataclass(frozen=True, eq=False)
class Layer:
    """One layer of LIF neurons: fully connected, or with ``conv`` set a conv2d / pooling layer
    (:mod:`spikegate.model.conv`: ``weights`` is then its kernel matrix, ``bias`` per channel).

    ``weights[i, j]`` connects input ``i`` to neuron ``j``. ``bias[j]`` is added every
    non-refractory step. A ``readout`` layer never fires: it only integrates, and the network
    is read out from its final membranes. Its ``threshold``, ``reset`` and ``refractory`` are
    unused and must stay at their defaults.

    A Layer is immutable (its arrays are read-only), so it is valid for as long as it exists;
    :meth:`replace` makes a changed, re-validated copy.
    """
    weights: np.ndarray
    bias: np.ndarray | None = None
    threshold: int = 0
    weight_bits: int = 8
    membrane_bits: int = 16
    leak: Leak = field(default_factory=Leak.none)
    reset: str = "zero"
    refractory: int = 0
    readout: bool = False
    name: str = ""
    temporal: Temporal | None = None  # delays, synaptic current, recurrence (model/temporal.py)
    conv: ConvSpec | None = None  # conv2d / sumpool2d / avgpool2d (model/conv.py); None: dense
    plasticity: Plasticity | None = None  # learning (README, "The learning contract")

    def __post_init__(self):
        def put(name, value):
            object.__setattr__(self, name, value)
        put("weight_bits", _check_int("weight_bits", self.weight_bits, 2, MAX_WEIGHT_BITS))
        put("membrane_bits", _check_int("membrane_bits", self.membrane_bits, 2, MAX_MEMBRANE_BITS))
        put("weights", _frozen_array(_int_array("weights", self.weights, 2)))
        n_in, n = self.weights.shape
        if n_in < 1 or n < 1:
            raise ValueError(f"weights must have at least one input and one neuron, got shape {self.weights.shape}")
        wlo, whi = value_range(self, CfgTarget.WEIGHT)
        if self.weights.min() < wlo or self.weights.max() > whi:
            bad = self.weights[(self.weights < wlo) | (self.weights > whi)][0]
            raise ValueError(f"weights contain {bad}, outside the {self.weight_bits}-bit signed range "
                             f"[{wlo}, {whi}] (weight_bits = {self.weight_bits})")
        bias = np.zeros(n, dtype=np.int64) if self.bias is None else self.bias
        put("bias", _frozen_array(_int_array("bias", bias, 1)))
        if self.bias.shape != (n,):
            raise ValueError(f"bias must have shape ({n},) to match weights {self.weights.shape}, got {self.bias.shape}")
        vlo, vhi = value_range(self, CfgTarget.BIAS)
        if self.bias.size and (self.bias.min() < vlo or self.bias.max() > vhi):
            bad = self.bias[(self.bias < vlo) | (self.bias > vhi)][0]
            raise ValueError(f"bias contains {bad}, outside the {self.membrane_bits}-bit membrane range "
                             f"[{vlo}, {vhi}] (membrane_bits = {self.membrane_bits})")
        if not isinstance(self.leak, Leak):
            raise TypeError(f"leak must be a Leak, got {self.leak!r}")
        if not isinstance(self.readout, (bool, np.bool_)):
            raise TypeError(f"readout must be True or False, got {self.readout!r}")
        put("readout", bool(self.readout))
        if self.reset not in RESET_MODES:
            raise ValueError(f"reset = {self.reset!r} is not valid; valid: {', '.join(RESET_MODES)}")
        put("threshold", _check_int("threshold", self.threshold, *value_range(self, CfgTarget.THRESHOLD)))
        put("refractory", _check_int("refractory", self.refractory, 0, MAX_REFRACTORY))
        if self.readout and (self.threshold != 0 or self.reset != "zero" or self.refractory != 0):
            raise ValueError("a readout layer never fires: leave threshold = 0, reset = 'zero' and "
                             f"refractory = 0 (got threshold = {self.threshold}, reset = {self.reset!r}, "
                             f"refractory = {self.refractory})")
        if not isinstance(self.name, str):
            raise TypeError(f"name must be a string, got {self.name!r}")
        families = [f for f, v in (("temporal", self.temporal), ("conv", self.conv),
                                   ("plasticity", self.plasticity)) if v is not None]
        if len(families) > 1:
            raise ValueError(f"a layer uses the features of one family in this version; this one sets "
                             f"{' and '.join(families)}")
        if self.temporal is not None:
            if not isinstance(self.temporal, Temporal):
                raise TypeError(f"temporal must be a Temporal or None, got {self.temporal!r}")
            self.temporal.check(self)
        if self.conv is not None:
            check_conv_layer(self)
        if self.plasticity is not None:
            if not isinstance(self.plasticity, Plasticity):
                raise TypeError(f"plasticity must be a Plasticity or None, got {self.plasticity!r}")
            self.plasticity.check_layer(self)

    def replace(self, **changes) -> "Layer":
        """A copy with ``changes`` (field name -> new value) applied, validated like a new Layer."""
        return dataclasses.replace(self, **changes)

    @property
    def format_version(self) -> int:
        """The oldest network file version that can hold this layer: 1 unless it uses a wave-2
        feature (each feature raises it to 2 when set)."""
        return 1 if self.temporal is None and self.conv is None and self.plasticity is None else 2

    @property
    def n_in(self) -> int:
        return self.weights.shape[0] if self.conv is None else self.conv.n_in

    @property
    def n(self) -> int:
        return self.weights.shape[1] if self.conv is None else self.conv.n

    # Kept once asked (a Layer never changes): the fast path asks several times a call, and at
    # batch 1 the enum lookups of value_range were a measurable part of a call.
    @cached_property
    def v_min(self) -> int:
        return value_range(self, CfgTarget.BIAS)[0]

    @cached_property
    def v_max(self) -> int:
        return value_range(self, CfgTarget.BIAS)[1]

    def __eq__(self, other):
        if not isinstance(other, Layer):
            return NotImplemented
        return (np.array_equal(self.weights, other.weights) and np.array_equal(self.bias, other.bias)
                and self.threshold == other.threshold and self.weight_bits == other.weight_bits
                and self.membrane_bits == other.membrane_bits and self.leak == other.leak
                and self.reset == other.reset and self.refractory == other.refractory
                and self.readout == other.readout and self.name == other.name
                and self.temporal == other.temporal and self.conv == other.conv
                and self.plasticity == other.plasticity)

    def to_dict(self) -> dict:
        d = {
            "name": self.name,
            "n_in": self.n_in,
            "n": self.n,
            "weight_bits": self.weight_bits,
            "membrane_bits": self.membrane_bits,
            "threshold": self.threshold,
            "leak": self.leak.to_dict(),
            "reset": self.reset,
            "refractory": self.refractory,
            "readout": self.readout,
            "bias": [int(b) for b in self.bias],
            "weights": [[int(w) for w in row] for row in self.weights],
        }
        if self.temporal is not None:
            d["temporal"] = self.temporal.to_dict()
        if self.plasticity is not None:
            d["plasticity"] = self.plasticity.to_dict()
        return d if self.conv is None else conv_layer_dict(self, d)

    @classmethod
    def from_dict(cls, d: dict, where: str = "layer") -> "Layer":
        if d.get("kind", "dense") != "dense":
            return conv_layer_from_dict(cls, d, where)
        d = {k: v for k, v in d.items() if k != "kind"}
        known = {"name", "n_in", "n", "weight_bits", "membrane_bits", "threshold", "leak", "reset",
                 "refractory", "readout", "bias", "weights", "temporal", "plasticity"}
        unknown = set(d) - known
        if unknown:
            raise NetworkFormatError(f"{where}: unknown field(s) {sorted(unknown)}")
        missing = {"weights", "threshold", "weight_bits", "membrane_bits"} - set(d)
        if missing:
            raise NetworkFormatError(f"{where}: missing field(s) {sorted(missing)}")
        try:
            # No dtype here: a float or a huge integer in the file must be an error, not be truncated.
            weights = np.array(d["weights"])
            bias = np.array(d["bias"]) if "bias" in d else None
        except (ValueError, TypeError) as e:
            raise NetworkFormatError(f"{where}: weights/bias are not integer arrays ({e})") from None
        for key, arr in (("weights", weights), ("bias", bias)):
            if arr is not None and arr.size and arr.dtype.kind not in "iu":
                raise NetworkFormatError(f"{where}: {key} must be an integer array, got values of type {arr.dtype}")
        if weights.ndim != 2:
            raise NetworkFormatError(f"{where}: weights must be a list of equal-length rows, got shape {weights.shape}")
        for key, actual in (("n_in", weights.shape[0]), ("n", weights.shape[1])):
            if key in d and d[key] != actual:
                raise NetworkFormatError(f"{where}: {key} = {d[key]} does not match the weights' shape {weights.shape}")
        try:
            leak = Leak.from_dict(d.get("leak", {"kind": "none"}))
            temporal = Temporal.from_dict(d["temporal"]) if "temporal" in d else None
            plasticity = Plasticity.from_dict(d["plasticity"]) if "plasticity" in d else None
            return cls(weights=weights, bias=bias, threshold=d["threshold"], weight_bits=d["weight_bits"],
                       membrane_bits=d["membrane_bits"], leak=leak, reset=d.get("reset", "zero"),
                       refractory=d.get("refractory", 0), readout=d.get("readout", False),
                       name=d.get("name", ""), temporal=temporal, plasticity=plasticity)
        except (TypeError, ValueError) as e:
            raise NetworkFormatError(f"{where}: {e}") from None


@dataclass(eq=False)
class Network:
    """A feed-forward chain of layers plus how inputs are encoded into spikes.

    ``timesteps`` (T) and ``encoding`` are the network's defaults for running a data set;
    ``meta`` is free-form provenance (training data, accuracies) saved with the file.
    """
    layers: list[Layer]
    timesteps: int = 32
    encoding: str = "rate"
    name: str = ""
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        if not isinstance(self.layers, (list, tuple)) or not self.layers:
            raise ValueError("layers must be a non-empty list of Layer")
        self.layers = list(self.layers)
        for i, layer in enumerate(self.layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"layers[{i}] must be a Layer, got {type(layer).__name__}")
            if i > 0 and layer.n_in != self.layers[i - 1].n:
                raise ValueError(f"layers[{i}] has n_in = {layer.n_in} inputs but layers[{i - 1}] has "
                                 f"n = {self.layers[i - 1].n} neurons: shapes do not chain")
            if i > 0:
                check_chain(self.layers[i - 1], layer, i)
            if layer.readout and i != len(self.layers) - 1:
                raise ValueError(f"layers[{i}] is a readout layer but is not the last layer; "
                                 "only the last layer may be a readout")
        self.timesteps = _check_int("timesteps", self.timesteps, 1, MAX_TIMESTEPS)
        if self.encoding not in ENCODINGS:
            raise ValueError(f"encoding = {self.encoding!r} is not valid; valid: {', '.join(ENCODINGS)}")
        if not isinstance(self.meta, dict):
            raise TypeError(f"meta must be a dict, got {type(self.meta).__name__}")

    @property
    def n_inputs(self) -> int:
        return self.layers[0].n_in

    @property
    def n_outputs(self) -> int:
        return self.layers[-1].n

    @property
    def readout(self) -> bool:
        """True when the last layer is a non-spiking readout (classify by final membrane)."""
        return self.layers[-1].readout

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.n_inputs,) + tuple(layer.n for layer in self.layers)

    def replace(self, **changes) -> "Network":
        """A copy with ``changes`` (field name -> new value) applied, validated like a new Network."""
        return dataclasses.replace(self, **changes)

    def __eq__(self, other):
        if not isinstance(other, Network):
            return NotImplemented
        return (self.layers == other.layers and self.timesteps == other.timesteps
                and self.encoding == other.encoding and self.name == other.name and self.meta == other.meta)

    # --- file format -----------------------------------------------------------------------

    def to_dict(self) -> dict:
        return {
            "format": FORMAT_NAME,
            "version": max(layer.format_version for layer in self.layers),
            "name": self.name,
            "timesteps": self.timesteps,
            "encoding": self.encoding,
            "meta": self.meta,
            "layers": [layer.to_dict() for layer in self.layers],
        }

    def to_json(self) -> str:
        # One weight row per line keeps files diff-able without bloating them.
        d = self.to_dict()
        rows = []
        for i, layer in enumerate(d["layers"]):
            rows.append(layer.get("weights", []))  # pooling layers have fixed weights, not written
            if "weights" in layer:
                layer["weights"] = f"@@weights{i}@@"
        text = json.dumps(d, indent=1)
        for i, r in enumerate(rows):
            body = "[\n" + ",\n".join("    " + json.dumps(row, separators=(",", ":")) for row in r) + "\n   ]"
            text = text.replace(f'"@@weights{i}@@"', body)
        return text + "\n"

    def digest(self) -> str:
        """SHA-256 of everything that determines the computation (not ``name``/``meta``)."""
        d = self.to_dict()
        d.pop("meta"); d.pop("name")
        for layer in d["layers"]:
            layer.pop("name")
        return hashlib.sha256(json.dumps(d, sort_keys=True, separators=(",", ":")).encode()).hexdigest()

    def save(self, path: str | os.PathLike) -> Path:
        """Write the network atomically: a crash never leaves a half-written file behind."""
        return write_atomic(path, self.to_json())

    @classmethod
    def from_dict(cls, d: Any, where: str = "network") -> "Network":
        if not isinstance(d, dict) or d.get("format") != FORMAT_NAME:
            raise NetworkFormatError(f"{where} is not a spikegate network file (expected \"format\": "
                                     f"\"{FORMAT_NAME}\")")
        version = d.get("version")
        if version not in READABLE_VERSIONS:
            raise NetworkFormatError(f"{where} has format version {version!r}; this spikegate reads versions "
                                     f"{', '.join(map(str, READABLE_VERSIONS))}")
        known = {"format", "version", "name", "timesteps", "encoding", "meta", "layers"}
        unknown = set(d) - known
        if unknown:
            raise NetworkFormatError(f"{where}: unknown field(s) {sorted(unknown)}")
        layers_d = d.get("layers")
        if not isinstance(layers_d, list) or not layers_d:
            raise NetworkFormatError(f"{where}: \"layers\" must be a non-empty list")
        layers = []
        for i, ld in enumerate(layers_d):
            if not isinstance(ld, dict):
                raise NetworkFormatError(f"{where}: layers[{i}] must be an object")
            layers.append(Layer.from_dict(ld, where=f"{where}: layers[{i}]"))
        try:
            return cls(layers=layers, timesteps=d.get("timesteps", 32), encoding=d.get("encoding", "rate"),
                       name=d.get("name", ""), meta=d.get("meta", {}))
        except (TypeError, ValueError) as e:
            raise NetworkFormatError(f"{where}: {e}") from None

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Network":
        path = Path(path)
        # Checked before opening: opening a pipe would wait for a writer.
        if path.exists() and not path.is_file() and not path.is_dir():
            raise NetworkFormatError(f"network file {str(path)!r} is not a regular file (a device or a pipe); "
                                     "valid: a JSON file")
        if path.is_file() and path.stat().st_size > MAX_NETWORK_FILE_BYTES:
            raise NetworkFormatError(f"network file {str(path)!r} is {path.stat().st_size} bytes, larger than "
                                     f"{MAX_NETWORK_FILE_BYTES} bytes, the largest network file spikegate reads")
        try:
            with open(path, "rb") as f:
                raw = f.read(MAX_NETWORK_FILE_BYTES + 1)
        except FileNotFoundError:
            raise FileNotFoundError(f"network file {str(path)!r} does not exist") from None
        except IsADirectoryError:
            raise NetworkFormatError(f"network file {str(path)!r} is a directory") from None
        if len(raw) > MAX_NETWORK_FILE_BYTES:  # checked on what was read: a file may grow
            raise NetworkFormatError(f"network file {str(path)!r} is larger than {MAX_NETWORK_FILE_BYTES} bytes, "
                                     "the largest network file spikegate reads")
        try:
            d = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise NetworkFormatError(f"{path} is not a spikegate network file: not valid JSON ({e})") from None
        except RecursionError:
            raise NetworkFormatError(f"{path} is not a spikegate network file: its JSON is nested too deeply "
                                     "(a network file nests 4 levels)") from None
        return cls.from_dict(d, where=str(path))
