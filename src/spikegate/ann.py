"""The float network the built-in SNNs come from: a small ReLU MLP and its trainer.

``train_ann``: softmax cross-entropy, Adam, mini-batches, L2, a fixed number of epochs, every random
draw from one seeded PCG64 generator. It is written in plain numpy rather than with scikit-learn's
MLPClassifier so that the result depends only on the seed and numpy's arithmetic, not on a library
version's training loop. The trained parameters are rounded to float32: that float32 network is
what ships (in the network file's ``meta["ann"]``) and what gets converted (:mod:`spikegate.convert`).
"""
from __future__ import annotations

import base64
from dataclasses import dataclass

import numpy as np

from .model.network import Network

__all__ = ["ANN", "ann_from_network", "train_ann", "Adam"]


class Adam:
    """Adam (b1 0.9, b2 0.999, eps 1e-8) updating ``params`` (float64 arrays) in place."""

    def __init__(self, params: list[np.ndarray]):
        self.params = params
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]
        self.step_count = 0

    def step(self, grads: list[np.ndarray], learning_rate: float) -> None:
        b1, b2, eps = 0.9, 0.999, 1e-8
        self.step_count += 1
        lr_t = learning_rate * np.sqrt(1 - b2 ** self.step_count) / (1 - b1 ** self.step_count)
        for i, g in enumerate(grads):
            self.m[i] = b1 * self.m[i] + (1 - b1) * g
            self.v[i] = b2 * self.v[i] + (1 - b2) * g * g
            self.params[i] -= lr_t * self.m[i] / (np.sqrt(self.v[i]) + eps)


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
    adam = Adam(params)
    onehot = np.eye(n_classes)[y]
    n = len(y)
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
            adam.step(grads, learning_rate)
        if progress is not None:
            progress.update(1)
    f32 = [p.astype(np.float32).astype(np.float64) for p in params]
    return ANN(f32[0::2], f32[1::2])
