"""Train a small ReLU MLP and convert it into an integer spiking network.

Pipeline (``build``):

1. **Train** a float ReLU MLP (``train_ann``): softmax cross-entropy, Adam, mini-batches, L2,
   a fixed number of epochs, every random draw from one seeded PCG64 generator. It is written in
   plain numpy rather than with scikit-learn's MLPClassifier so that the result depends only on the
   seed and numpy's arithmetic, not on a library version's training loop. The trained parameters
   are rounded to float32: that float32 network is what ships and what gets converted.
2. **Normalise** with data (``convert``): for every hidden layer l, lambda_l is the ``percentile``-th
   percentile of its ReLU activations over the training set (lambda_0 = 1 for inputs in [0, 1]).
   The rate-normalised weights W_l * lambda_(l-1) / lambda_l and biases b_l / lambda_l make a
   spike rate of 1 per step stand for activation lambda_l (Rueckauer et al. 2017, "layer-wise").
3. **Quantise**: each layer is scaled so that its largest normalised weight magnitude maps to
   2^(weight_bits-1) - 1. A hidden layer's threshold is that scale (the integer value of rate 1)
   and it resets by subtraction, which keeps the residue and so converts rates with no systematic
   loss. Biases use the same scale and are added every step.
4. **Read out** through a non-spiking last layer: its final membrane after T steps is T times the
   scaled ANN logits, up to rate quantisation, and the class is its argmax.
5. **Membrane width**: unless given, each layer gets the bits that hold the largest membrane
   magnitude seen on the training set (simulated with wide membranes) plus a bit of headroom.

The network's ``meta`` records provenance (data set, split, seed, hyper-parameters, accuracies)
and the float32 ANN itself under ``meta["ann"]``, so the float accuracy can be recomputed from the
file rather than quoted.
"""
from __future__ import annotations

import base64
from dataclasses import dataclass, field

import numpy as np

from . import datasets
from .model.core import batch_cycles
from .model.network import Layer, Network
from .model.simulate import classify, simulate

__all__ = ["ANN", "TrainConfig", "DEFAULT_CONFIG", "train_ann", "convert", "evaluate", "build",
           "ann_from_network", "DEFAULT_SNN_NAME"]

DEFAULT_SNN_NAME = "digits"


# --------------------------------------------------------------------------------------------
# The float network


@dataclass(eq=False)
class ANN:
    """A ReLU MLP: ReLU on every layer but the last, which gives the logits."""
    weights: list[np.ndarray]  # float64 [n_in, n_out] per layer
    biases: list[np.ndarray]

    def activations(self, x: np.ndarray) -> list[np.ndarray]:
        """Every layer's output for inputs [N, n_in]: hidden ReLU activations, then the logits."""
        out = []
        a = np.asarray(x, dtype=np.float64)
        for l, (w, b) in enumerate(zip(self.weights, self.biases)):
            a = a @ w + b
            if l < len(self.weights) - 1:
                a = np.maximum(a, 0.0)
            out.append(a)
        return out

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.argmax(self.activations(x)[-1], axis=1)

    def accuracy(self, x: np.ndarray, y: np.ndarray) -> float:
        return float(np.mean(self.predict(x) == y))

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.weights[0].shape[0],) + tuple(w.shape[1] for w in self.weights)

    def to_meta(self) -> dict:
        # float32 little-endian in base64: exact, compact, and one line per array in the file.
        def enc(a):
            return base64.b64encode(np.ascontiguousarray(a, dtype="<f4").tobytes()).decode("ascii")
        return {
            "activation": "relu (hidden), linear logits (last)",
            "encoding": "float32 little-endian, row-major [n_in, n_out], base64",
            "shape": list(self.shape),
            "weights": [enc(w) for w in self.weights],
            "biases": [enc(b) for b in self.biases],
        }

    @classmethod
    def from_meta(cls, d: dict, where: str = "meta.ann") -> "ANN":
        try:
            shape = [int(s) for s in d["shape"]]
            ws, bs = [], []
            for l in range(len(shape) - 1):
                w = np.frombuffer(base64.b64decode(d["weights"][l], validate=True), dtype="<f4")
                b = np.frombuffer(base64.b64decode(d["biases"][l], validate=True), dtype="<f4")
                if w.size != shape[l] * shape[l + 1] or b.size != shape[l + 1]:
                    raise ValueError(f"layer {l}: array sizes do not match shape {shape}")
                ws.append(w.reshape(shape[l], shape[l + 1]).astype(np.float64))
                bs.append(b.astype(np.float64))
        except (KeyError, IndexError, TypeError, ValueError) as e:
            raise ValueError(f"{where} does not hold a valid float ANN ({e})") from None
        return cls(ws, bs)


def ann_from_network(net: Network) -> ANN | None:
    """The float ANN a network was converted from, if its file carries one."""
    d = net.meta.get("ann") if isinstance(net.meta, dict) else None
    if d is None:
        return None
    ann = ANN.from_meta(d)
    if ann.shape != net.shape:
        raise ValueError(f"meta.ann has shape {ann.shape} but the network has shape {net.shape}")
    return ann


# --------------------------------------------------------------------------------------------
# Training


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a trained and converted network (with the data set)."""
    data: str = "digits"
    hidden: tuple[int, ...] = (64,)
    timesteps: int = 8
    weight_bits: int = 8
    membrane_bits: int | None = None
    percentile: float = 99.9
    seed: int = 0
    epochs: int = 60
    batch_size: int = 32
    learning_rate: float = 1e-3
    l2: float = 1e-4
    encoding: str = "rate"

    def check(self) -> "TrainConfig":
        def pos_int(name, v, lo=1, hi=None):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo or (hi is not None and v > hi):
                rng = f"{lo} <= {name}" + (f" <= {hi}" if hi is not None else "")
                raise ValueError(f"{name} = {v!r} is not valid; valid: an integer with {rng}")
        if self.data not in datasets.DATASETS:
            raise ValueError(f"data = {self.data!r} is not valid; valid: {', '.join(datasets.DATASETS)}")
        if not self.hidden:
            raise ValueError("hidden = () is not valid; valid: one or more hidden layer sizes, e.g. 64 or 128,64")
        if any(isinstance(h, bool) or not isinstance(h, (int, np.integer)) or not 1 <= h <= 4096
               for h in self.hidden):
            raise ValueError(f"hidden = {self.hidden!r} is not valid; valid: hidden layer sizes from 1 to 4096")
        pos_int("timesteps", self.timesteps, 1, 4096)
        pos_int("weight_bits", self.weight_bits, 2, 16)
        if self.membrane_bits is not None:
            pos_int("membrane_bits", self.membrane_bits, 2, 32)
        if not (isinstance(self.percentile, (int, float)) and 50.0 <= self.percentile <= 100.0):
            raise ValueError(f"percentile = {self.percentile!r} is not valid; valid: a number in [50, 100]")
        pos_int("seed", self.seed, 0, 2**63 - 1)
        pos_int("epochs", self.epochs, 1, 100000)
        pos_int("batch_size", self.batch_size, 1, 1 << 20)
        if not (isinstance(self.learning_rate, (int, float)) and 0 < self.learning_rate < 1):
            raise ValueError(f"learning_rate = {self.learning_rate!r} is not valid; valid: 0 < learning_rate < 1")
        if not (isinstance(self.l2, (int, float)) and 0 <= self.l2 < 1):
            raise ValueError(f"l2 = {self.l2!r} is not valid; valid: 0 <= l2 < 1")
        if self.encoding not in ("rate", "poisson"):
            raise ValueError(f"encoding = {self.encoding!r} is not valid for rate conversion; valid: rate, poisson")
        return self


DEFAULT_CONFIG = TrainConfig()


def train_ann(x: np.ndarray, y: np.ndarray, hidden=(64,), *, seed=0, epochs=60, batch_size=32,
              learning_rate=1e-3, l2=1e-4, n_classes=10, progress=None) -> ANN:
    """Train a ReLU MLP deterministically; returns its float32-rounded parameters as an ANN."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    rng = np.random.Generator(np.random.PCG64(seed))
    sizes = [x.shape[1], *hidden, n_classes]
    ws, bs = [], []
    for l in range(len(sizes) - 1):
        # He initialisation for ReLU layers, Glorot for the linear logits.
        fan = sizes[l] if l < len(sizes) - 2 else (sizes[l] + sizes[l + 1]) / 2
        ws.append(rng.standard_normal((sizes[l], sizes[l + 1])) * np.sqrt(2.0 / fan if l < len(sizes) - 2 else 1.0 / fan))
        bs.append(np.zeros(sizes[l + 1]))
    params = [p for pair in zip(ws, bs) for p in pair]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    b1, b2, eps = 0.9, 0.999, 1e-8
    onehot = np.eye(n_classes)[y]
    n = len(y)
    step = 0
    for epoch in range(epochs):
        order = rng.permutation(n)
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            acts = [x[idx]]
            for l in range(len(ws)):
                z = acts[-1] @ ws[l] + bs[l]
                acts.append(np.maximum(z, 0.0) if l < len(ws) - 1 else z)
            logits = acts[-1]
            p = np.exp(logits - logits.max(axis=1, keepdims=True))
            p /= p.sum(axis=1, keepdims=True)
            delta = (p - onehot[idx]) / len(idx)
            grads = [None] * len(params)
            for l in range(len(ws) - 1, -1, -1):
                grads[2 * l] = acts[l].T @ delta + l2 * ws[l]
                grads[2 * l + 1] = delta.sum(axis=0)
                if l > 0:
                    delta = (delta @ ws[l].T) * (acts[l] > 0)
            step += 1
            lr_t = learning_rate * np.sqrt(1 - b2 ** step) / (1 - b1 ** step)
            for i, g in enumerate(grads):
                m[i] = b1 * m[i] + (1 - b1) * g
                v[i] = b2 * v[i] + (1 - b2) * g * g
                params[i] -= lr_t * m[i] / (np.sqrt(v[i]) + eps)
        if progress is not None:
            progress.update(1)
    f32 = [p.astype(np.float32).astype(np.float64) for p in params]
    return ANN(f32[0::2], f32[1::2])


# --------------------------------------------------------------------------------------------
# Conversion


def _scale_layer(w: np.ndarray, b: np.ndarray, weight_bits: int):
    wmax = (1 << (weight_bits - 1)) - 1
    peak = float(np.max(np.abs(w)))
    scale = wmax / peak if peak > 0 else 1.0
    wq = np.clip(np.rint(w * scale), -wmax, wmax).astype(np.int64)
    bq = np.rint(b * scale).astype(np.int64)
    return wq, bq, scale


def _membrane_bits_for(peak: int) -> int:
    # sign bit + magnitude + one bit of headroom over the training set's largest membrane.
    return max(int(peak).bit_length() + 2, 4)


def convert(ann: ANN, x_calib: np.ndarray, *, timesteps: int = 8, weight_bits: int = 8,
            membrane_bits: int | None = None, percentile: float = 99.9, encoding: str = "rate",
            name: str = "", seed: int = 0) -> Network:
    """Convert ``ann`` into an integer SNN, normalising with the activations on ``x_calib``."""
    acts = ann.activations(x_calib)
    n_layers = len(ann.weights)
    lam_prev = 1.0
    specs = []
    for l in range(n_layers):
        last = l == n_layers - 1
        if last:
            w_n, b_n = ann.weights[l] * lam_prev, ann.biases[l]
        else:
            lam = float(np.percentile(acts[l], percentile))
            if lam <= 0:
                raise ValueError(f"hidden layer {l} is silent on the calibration data (all activations 0); "
                                 "cannot normalise it: train longer or with another seed")
            w_n, b_n = ann.weights[l] * lam_prev / lam, ann.biases[l] / lam
            lam_prev = lam
        wq, bq, scale = _scale_layer(w_n, b_n, weight_bits)
        specs.append((wq, bq, 0 if last else max(int(round(scale)), 1), last))

    def make(bits_per_layer):
        layers = []
        for l, (wq, bq, theta, last) in enumerate(specs):
            vb = bits_per_layer[l]
            lo, hi = -(1 << (vb - 1)), (1 << (vb - 1)) - 1
            layers.append(Layer(weights=wq, bias=np.clip(bq, lo, hi), threshold=0 if last else min(theta, hi - 1),
                                weight_bits=weight_bits, membrane_bits=vb, reset="zero" if last else "subtract",
                                readout=last, name=f"readout" if last else f"hidden{l}"))
        return Network(layers=layers, timesteps=timesteps, encoding=encoding, name=name)

    if membrane_bits is None:
        wide = make([32] * n_layers)
        spikes = datasets.encode_for(wide, x_calib, seed)
        bits = []
        res = simulate(wide, spikes, traces=True)
        for l in range(n_layers):
            peak = max(int(np.abs(res.traces[l]).max()), specs[l][2] + 1)
            bits.append(min(_membrane_bits_for(peak), 32))
        return make(bits)
    return make([membrane_bits] * n_layers)


# --------------------------------------------------------------------------------------------
# Evaluation


def evaluate(net: Network, x: np.ndarray, y: np.ndarray, *, seed: int = 0, batch_size: int = 500,
             progress=None, lanes: tuple[int, ...] = ()) -> dict:
    """Run the integer model on a data set: accuracy and activity statistics per sample.

    The input spikes are ``datasets.encode_for(net, x, seed)``. For each lane count in ``lanes``,
    the result also has the accelerator's exact mean cycles per sample (``cycles_per_sample``).
    """
    x = np.asarray(x)
    n = len(y)
    # A seeded encoder's draws depend on the array shape, so encode the whole set at once: the
    # spikes are then exactly datasets.encode_for(net, x, seed), whatever the batch size.
    whole = datasets.encode_for(net, x, seed) if net.encoding == "poisson" else None
    correct = 0
    in_spikes = 0
    layer_spikes = np.zeros(len(net.layers), dtype=np.int64)
    syn_ops = 0
    cycles = {P: 0 for P in lanes}
    for start in range(0, n, batch_size):
        xb, yb = x[start:start + batch_size], y[start:start + batch_size]
        s = whole[start:start + batch_size] if whole is not None else datasets.encode_for(net, xb, seed)
        res = simulate(net, s)
        correct += int(np.sum(classify(net, res) == yb))
        in_spikes += int(s.sum())
        layer_spikes += np.array([int(sp.sum()) for sp in res.spikes], dtype=np.int64)
        syn_ops += int(res.synaptic_events(s, net).sum())
        for P in lanes:
            cycles[P] += int(batch_cycles(net, P, s, res).sum())
        if progress is not None:
            progress.update(len(yb))
    T = net.timesteps
    sizes = [net.n_inputs] + [layer.n for layer in net.layers]
    spikes = [in_spikes] + [int(c) for c in layer_spikes]
    layers = []
    for i, (name, size, count) in enumerate(zip(["input"] + [layer.name or f"layer{l}" for l, layer in
                                                             enumerate(net.layers)], sizes, spikes)):
        readout = i > 0 and net.layers[i - 1].readout
        layers.append({
            "name": name, "neurons": size,
            "spikes_per_sample": count / n,
            "spike_rate": count / (n * T * size),
            "sparsity": None if readout else 1.0 - count / (n * T * size),
            "readout": readout,
        })
    return {
        "samples": n,
        "timesteps": T,
        "accuracy": correct / n,
        "correct": correct,
        "spikes_per_sample": sum(spikes[1:]) / n,
        "input_spikes_per_sample": in_spikes / n,
        "synaptic_ops_per_sample": syn_ops / n,
        "dense_synaptic_ops_per_sample": T * sum(layer.n_in * layer.n for layer in net.layers),
        "layers": layers,
        "cycles_per_sample": {str(P): c / n for P, c in cycles.items()},
    }


# --------------------------------------------------------------------------------------------
# The whole pipeline


def build(config: TrainConfig = DEFAULT_CONFIG, data_dir=None, progress=None) -> tuple[Network, dict]:
    """Train, convert and evaluate; returns the network (with provenance in meta) and a report.

    ``progress`` is a :mod:`spikegate.progress` factory (``progress(total, desc)``) or None.
    """
    config.check()
    x_tr, y_tr = datasets.load(config.data, "train", data_dir)
    x_te, y_te = datasets.load(config.data, "test", data_dir)
    n_classes = 10
    if progress is not None:
        with progress(config.epochs, f"training ANN on {config.data} ({len(y_tr)} samples)", unit="epochs") as p:
            ann = _train(config, x_tr, y_tr, n_classes, p)
    else:
        ann = _train(config, x_tr, y_tr, n_classes, None)
    ann_acc = ann.accuracy(x_te, y_te)
    name = DEFAULT_SNN_NAME if config.data == "digits" else f"{config.data}-snn"
    net = convert(ann, x_tr, timesteps=config.timesteps, weight_bits=config.weight_bits,
                  membrane_bits=config.membrane_bits, percentile=config.percentile, encoding=config.encoding,
                  name=name, seed=config.seed)
    if progress is not None:
        with progress(len(y_te), "evaluating the integer SNN on the test split", unit="samples") as p:
            stats = evaluate(net, x_te, y_te, seed=config.seed, progress=p)
    else:
        stats = evaluate(net, x_te, y_te, seed=config.seed)
    hidden = ",".join(str(h) for h in config.hidden)
    command = (f"spikegate train --data {config.data} --hidden {hidden} --timesteps {config.timesteps} "
               f"--weight-bits {config.weight_bits} --seed {config.seed} --percentile {config.percentile} "
               f"--epochs {config.epochs}")
    if config.membrane_bits is not None:
        command += f" --membrane-bits {config.membrane_bits}"
    if config.data == "mnist":
        command += " --data-dir DIR"
    net.meta = {
        "generated_by": command,
        "dataset": config.data,
        "split": datasets.describe(config.data),
        "train_samples": int(len(y_tr)),
        "test_samples": int(len(y_te)),
        "seed": config.seed,
        "training": {"optimiser": "adam", "epochs": config.epochs, "batch_size": config.batch_size,
                     "learning_rate": config.learning_rate, "l2": config.l2, "hidden": list(config.hidden)},
        "conversion": {"normalisation": f"layer-wise, {config.percentile} percentile of training-set activations",
                       "weight_bits": config.weight_bits, "reset": "subtract", "readout": "final membrane argmax",
                       "timesteps": config.timesteps, "encoding": config.encoding},
        "ann_test_accuracy": ann_acc,
        "snn_test_accuracy": stats["accuracy"],
        "ann": ann.to_meta(),
    }
    report = {"ann_accuracy": ann_acc, "snn": stats, "shape": list(net.shape), "digest": net.digest()}
    return net, report


def _train(config, x, y, n_classes, p):
    return train_ann(x, y, config.hidden, seed=config.seed, epochs=config.epochs, batch_size=config.batch_size,
                     learning_rate=config.learning_rate, l2=config.l2, n_classes=n_classes, progress=p)
