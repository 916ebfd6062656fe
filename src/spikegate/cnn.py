"""The float network conv SNNs come from: a small ReLU CNN (conv layers, then a linear readout on
the flattened last feature map) and its deterministic numpy trainer.

numpy rather than torch (available through the ``snntorch`` extra): the CNN is small enough that
im2col products train it on the 6,000-image MNIST subset in minutes on one core, the core install
can then train it, and the result depends only on the seed and numpy's arithmetic, as for the
MLP (:mod:`spikegate.ann`). Softmax cross-entropy, Adam, mini-batches, L2, every random draw from
one seeded PCG64 generator; parameters rounded to float32 at the end.

Kernels are kept as matrices [C_in·k·k, C_out] with rows in (channel, dy, dx) order, the layout of
a conv layer's kernel in the integer model (:mod:`spikegate.model.conv`).
"""
from __future__ import annotations

import base64
from dataclasses import dataclass

import numpy as np

from .ann import Adam

__all__ = ["ConvShape", "CNN", "train_cnn", "im2col"]


@dataclass(frozen=True)
class ConvShape:
    """One conv layer: ``in_shape`` (C, H, W), ``out_channels``, square ``kernel``, ``stride``, ``padding``."""
    in_shape: tuple[int, int, int]
    out_channels: int
    kernel: int
    stride: int
    padding: int

    @property
    def out_shape(self) -> tuple[int, int, int]:
        _, h, w = self.in_shape
        f = lambda s: (s + 2 * self.padding - self.kernel) // self.stride + 1  # noqa: E731
        return (self.out_channels, f(h), f(w))


def im2col(x: np.ndarray, cs: ConvShape) -> np.ndarray:
    """Patches [N·H_out·W_out, C·k·k] of inputs x [N, C, H, W] (rows: sample, out row, out column)."""
    n, c, h, w = x.shape
    k, s, p = cs.kernel, cs.stride, cs.padding
    _, ho, wo = cs.out_shape
    xp = np.zeros((n, c, h + 2 * p, w + 2 * p), x.dtype)
    xp[:, :, p:p + h, p:p + w] = x
    win = np.lib.stride_tricks.sliding_window_view(xp, (k, k), axis=(2, 3))[:, :, ::s, ::s][:, :, :ho, :wo]
    return win.transpose(0, 2, 3, 1, 4, 5).reshape(n * ho * wo, c * k * k)


def _col2im(cols: np.ndarray, cs: ConvShape, n: int) -> np.ndarray:
    """The adjoint of :func:`im2col`: patch gradients summed back onto the input [N, C, H, W]."""
    c, h, w = cs.in_shape
    k, s, p = cs.kernel, cs.stride, cs.padding
    _, ho, wo = cs.out_shape
    g = cols.reshape(n, ho, wo, c, k, k)
    xp = np.zeros((n, c, h + 2 * p, w + 2 * p), cols.dtype)
    for dy in range(k):
        for dx in range(k):
            xp[:, :, dy:dy + s * (ho - 1) + 1:s, dx:dx + s * (wo - 1) + 1:s] += g[:, :, :, :, dy, dx].transpose(0, 3, 1, 2)
    return xp[:, :, p:p + h, p:p + w]


@dataclass(eq=False)
class CNN:
    """ReLU conv layers, then a linear readout of the flattened (C, H, W) last feature map."""
    convs: list[ConvShape]
    weights: list[np.ndarray]   # conv kernel matrices [C·k·k, C_out], then the readout [n_in, classes]
    biases: list[np.ndarray]

    def activations(self, x: np.ndarray, batch: int = 500) -> list[np.ndarray]:
        """Every layer's output for flat inputs [N, C·H·W]: conv ReLU maps flattened in (C, H, W)
        order, then the logits."""
        outs = [[] for _ in self.weights]
        for i in range(0, len(x), batch):
            for l, a in enumerate(self._forward(np.asarray(x[i:i + batch], np.float64))[1:]):
                outs[l].append(a.reshape(len(a), -1))
        return [np.concatenate(o) for o in outs]

    def _forward(self, x: np.ndarray) -> list[np.ndarray]:
        a = x.reshape(len(x), *self.convs[0].in_shape)
        acts = [a]
        for cs, w, b in zip(self.convs, self.weights, self.biases):
            _, ho, wo = cs.out_shape
            z = im2col(a, cs) @ w + b
            a = np.maximum(z, 0.0).reshape(len(x), ho, wo, -1).transpose(0, 3, 1, 2)
            acts.append(a)
        acts.append(a.reshape(len(x), -1) @ self.weights[-1] + self.biases[-1])
        return acts

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.argmax(self.activations(x)[-1], axis=1)

    def accuracy(self, x: np.ndarray, y: np.ndarray) -> float:
        return float(np.mean(self.predict(x) == y))

    def to_meta(self) -> dict:
        def enc(a):
            return base64.b64encode(np.ascontiguousarray(a, dtype="<f4").tobytes()).decode("ascii")
        return {
            "activation": "relu (conv layers), linear logits (readout)",
            "encoding": "float32 little-endian, row-major, base64; conv kernels [C_in*k*k, C_out]",
            "convs": [{"in_shape": list(c.in_shape), "out_channels": c.out_channels, "kernel": c.kernel,
                       "stride": c.stride, "padding": c.padding} for c in self.convs],
            "weights": [enc(w) for w in self.weights],
            "biases": [enc(b) for b in self.biases],
        }


def train_cnn(x: np.ndarray, y: np.ndarray, in_shape, convs, *, seed=0, epochs=10, batch_size=64,
              learning_rate=1e-3, l2=1e-4, shift=2, n_classes=10, progress=None) -> CNN:
    """Train a ReLU CNN deterministically. ``convs``: (out_channels, kernel, stride, padding) per
    conv layer; every training image is moved by a random whole-pixel ``shift`` in [-shift, shift]
    along each axis (zeros shifted in) each epoch; the learning rate follows a cosine from
    ``learning_rate`` down to 0 over the epochs. Returns its float32-rounded parameters."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    rng = np.random.Generator(np.random.PCG64(seed))
    shapes, shape = [], tuple(in_shape)
    for out, k, s, p in convs:
        shapes.append(ConvShape(shape, out, k, s, p))
        shape = shapes[-1].out_shape
    ws, bs = [], []
    for cs in shapes:  # He initialisation for the ReLU layers, Glorot for the linear logits
        fan = cs.in_shape[0] * cs.kernel ** 2
        ws.append(rng.standard_normal((fan, cs.out_channels)) * np.sqrt(2.0 / fan))
        bs.append(np.zeros(cs.out_channels))
    n_flat = int(np.prod(shape))
    ws.append(rng.standard_normal((n_flat, n_classes)) * np.sqrt(2.0 / (n_flat + n_classes)))
    bs.append(np.zeros(n_classes))
    net = CNN(shapes, ws, bs)
    adam = Adam([p for pair in zip(ws, bs) for p in pair])
    onehot = np.eye(n_classes)[y]
    for epoch in range(epochs):
        order = rng.permutation(len(y))
        moves = rng.integers(-shift, shift + 1, (len(y), 2))
        lr = learning_rate * 0.5 * (1 + np.cos(np.pi * epoch / epochs))
        for start in range(0, len(y), batch_size):
            idx = order[start:start + batch_size]
            xb = _shifted(x[idx], in_shape, moves[idx], shift) if shift else x[idx]
            adam.step(_gradients(net, xb, onehot[idx], l2), lr)
        if progress is not None:
            progress.update(1)
    f32 = [p.astype(np.float32).astype(np.float64) for p in adam.params]
    return CNN(shapes, f32[0::2], f32[1::2])


def _shifted(x: np.ndarray, in_shape, moves: np.ndarray, shift: int) -> np.ndarray:
    """Images [N, C·H·W] each moved by (dy, dx) in ``moves`` [N, 2], zeros shifted in."""
    c, h, w = in_shape
    pad = np.pad(x.reshape(len(x), c, h, w), ((0, 0), (0, 0), (shift, shift), (shift, shift)))
    out = np.empty((len(x), c, h, w))
    for i, (dy, dx) in enumerate(moves):
        out[i] = pad[i, :, shift - dy:shift - dy + h, shift - dx:shift - dx + w]
    return out.reshape(len(x), -1)


def _gradients(net: CNN, xb: np.ndarray, tb: np.ndarray, l2: float) -> list[np.ndarray]:
    """Gradients of the mean cross-entropy (+ L2 on the weights), ordered w0, b0, w1, b1, ..."""
    n = len(xb)
    acts = net._forward(xb)
    logits = acts[-1]
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    delta = (p - tb) / n
    L = len(net.convs)
    grads = [None] * (2 * L + 2)
    grads[2 * L] = acts[L].reshape(n, -1).T @ delta + l2 * net.weights[L]
    grads[2 * L + 1] = delta.sum(axis=0)
    d_map = (delta @ net.weights[L].T).reshape(acts[L].shape)
    for l in range(L - 1, -1, -1):
        cs = net.convs[l]
        d_z = (d_map * (acts[l + 1] > 0)).transpose(0, 2, 3, 1).reshape(-1, cs.out_channels)
        cols = im2col(acts[l], cs)
        grads[2 * l] = cols.T @ d_z + l2 * net.weights[l]
        grads[2 * l + 1] = d_z.sum(axis=0)
        if l > 0:
            d_map = _col2im(d_z @ net.weights[l].T, cs, n)
    return grads
