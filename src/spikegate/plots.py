"""Figures of a network's activity and weights: spike rasters, membrane traces, confusion
matrices and receptive fields (hardware figures are in :mod:`spikegate.plots_hw`).

Every function returns a :class:`matplotlib.figure.Figure` drawn on the Agg canvas (no GUI, no
pyplot state shared between calls); :func:`save` writes it as PNG, or SVG when the file name ends
in ``.svg``. matplotlib comes with the ``plot`` extra.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from .errors import UserError
from .model.conv import refuse_conv
from .model.fileio import atomic_path
from .model.network import Network
from .model.simulate import simulate

__all__ = ["PLOT_EXTRA", "FORMATS", "new_figure", "require_matplotlib", "output_format", "check_plot_file", "save",
           "raster", "trace", "confusion", "confusion_matrix", "class_count", "save_confusion", "fields", "image_shape", "active_neurons"]

PLOT_EXTRA = 'needs the \'plot\' extra: pip install "spikegate[plot]"'
FORMATS = {".png": "png", ".svg": "svg"}
DPI = 100


def require_matplotlib():
    """(FigureCanvasAgg, Figure); :class:`UserError` naming the extra without matplotlib."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise UserError(PLOT_EXTRA) from None
    return FigureCanvasAgg, Figure


def new_figure(figsize=(8.0, 5.0), dpi: int = DPI):
    """An empty Figure on the Agg canvas; :class:`UserError` naming the extra without matplotlib."""
    FigureCanvasAgg, Figure = require_matplotlib()
    if isinstance(dpi, bool) or not isinstance(dpi, int) or not 20 <= dpi <= 600:
        raise ValueError(f"dpi = {dpi!r} is not valid; valid: an integer from 20 to 600")
    fig = Figure(figsize=figsize, dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def output_format(path, option: str = "output file") -> str:
    """``"png"`` or ``"svg"`` from the file name; ``ValueError`` naming ``option`` otherwise."""
    fmt = FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise ValueError(f"{option} = {str(path)!r} is not valid; valid: a name ending in {' or '.join(FORMATS)}")
    return fmt


def check_plot_file(path, option: str = "--plot") -> str:
    """Before any work: ``path`` names a .png or .svg file that can be written, and matplotlib is
    installed. Returns the format."""
    from .checks import check_output_file
    fmt = output_format(path, option)
    check_output_file(option, path)
    require_matplotlib()
    return fmt


def save(fig, path: str | os.PathLike) -> Path:
    """Write ``fig`` atomically: SVG for ``*.svg``, PNG for ``*.png``. Returns the path."""
    path = Path(path)
    fmt = output_format(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        # The pixel size is figsize x dpi exactly: no tight bounding box.
        fig.savefig(tmp, format=fmt, dpi=fig.dpi)
    return path


def _sample(spikes: np.ndarray) -> np.ndarray:
    spikes = np.asarray(spikes, dtype=bool)
    if spikes.ndim == 3:
        if spikes.shape[0] != 1:
            raise ValueError(f"one sample is plotted; got a batch of {spikes.shape[0]}")
        spikes = spikes[0]
    return spikes


def _check_layer(net: Network, layer: int) -> int:
    L = len(net.layers)
    if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)) or not -L <= layer < L:
        raise ValueError(f"--layer = {layer!r} is not valid; valid: 0 to {L - 1} (the network has {L} layers)")
    return int(layer) % L


def _events(ax, s: np.ndarray, color: str) -> None:
    t, i = np.nonzero(s)
    ax.scatter(t, i, s=6, marker="|", color=color, linewidths=1.2)
    ax.set_xlim(-0.5, s.shape[0] - 0.5)
    ax.set_ylim(-0.5, s.shape[1] - 0.5)


def raster(net: Network, spikes: np.ndarray, *, title: str = "", dpi: int = DPI):
    """Spike raster of one sample: the input spikes and every layer's output spikes against the
    time step (a readout layer, which never fires, shows its membrane instead)."""
    s = _sample(spikes)
    res = simulate(net, s[None], traces=True)
    rows = [("input", s, None)] + [(lay.name or f"layer {l}", res.spikes[l][0], res.traces[l][0] if lay.readout else None)
                                    for l, lay in enumerate(net.layers)]
    heights = [max(1.0, math.log2(max(x.shape[1], 2))) for _, x, _ in rows]
    fig = new_figure((8.0, 1.2 + 0.45 * sum(heights)), dpi)
    axes = fig.subplots(len(rows), 1, sharex=True, gridspec_kw={"height_ratios": heights})
    colors = ["tab:gray", "tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple"]
    for k, (ax, (name, x, membrane)) in enumerate(zip(axes, rows)):
        if membrane is not None:
            ax.imshow(membrane.T, aspect="auto", origin="lower", cmap="viridis", interpolation="nearest")
            ax.set_ylabel(f"{name}\n(membrane)")
        else:
            _events(ax, x, colors[k % len(colors)])
            ax.set_ylabel(f"{name}\n{int(x.sum())} spikes")
        ax.set_yticks([0, x.shape[1] - 1])
    axes[-1].set_xlabel("time step")
    fig.suptitle(title or f"spike raster, {'-'.join(map(str, net.shape))}, T = {net.timesteps}")
    return fig


def active_neurons(net: Network, spikes: np.ndarray, layer: int, k: int = 4) -> list[int]:
    """The ``k`` neurons of ``layer`` that spike most on this sample (lowest index on ties)."""
    layer = _check_layer(net, layer)
    res = simulate(net, _sample(spikes)[None])
    counts = res.spikes[layer][0].sum(axis=0)
    if net.layers[layer].readout:
        counts = res.membranes[layer][0]
    order = np.argsort(-counts, kind="stable")
    return sorted(int(j) for j in order[:k])


def trace(net: Network, spikes: np.ndarray, layer: int, neurons, *, title: str = "", dpi: int = DPI):
    """Membrane of the chosen neurons of ``layer`` after every time step, with the threshold
    and the steps at which each one fired."""
    layer = _check_layer(net, layer)
    lay = net.layers[layer]
    neurons = [int(j) for j in neurons]
    bad = [j for j in neurons if not 0 <= j < lay.n]
    if not neurons or bad:
        raise ValueError(f"--neurons = {','.join(map(str, neurons)) or '(none)'} is not valid; valid: one or more "
                         f"indices from 0 to {lay.n - 1} (layer {layer} has {lay.n} neurons)")
    s = _sample(spikes)
    res = simulate(net, s[None], traces=True)
    v = res.traces[layer][0]
    fired = res.spikes[layer][0]
    fig = new_figure((8.0, 1.0 + 1.6 * len(neurons)), dpi)
    axes = np.atleast_1d(fig.subplots(len(neurons), 1, sharex=True, squeeze=False)[:, 0])
    steps = np.arange(v.shape[0])
    for ax, j in zip(axes, neurons):
        ax.step(steps, v[:, j], where="mid", color="tab:blue", label="membrane")
        if not lay.readout:
            ax.axhline(lay.threshold, color="tab:red", linestyle="--", linewidth=1, label="threshold")
            t = np.flatnonzero(fired[:, j])
            ax.plot(t, np.full(len(t), lay.threshold), "v", color="tab:red", markersize=5, label="spike")
        ax.set_ylabel(f"neuron {j}")
    axes[0].legend(loc="upper right", fontsize="small", ncols=3)
    axes[-1].set_xlabel("time step (membrane after the step)")
    fig.suptitle(title or f"membrane traces, layer {layer} ({lay.name or 'unnamed'})")
    return fig


def confusion_matrix(y_true, y_pred, n_classes: int | None = None) -> np.ndarray:
    """counts[true, predicted], int64."""
    y_true, y_pred = np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"labels and predictions differ in length ({len(y_true)} vs {len(y_pred)})")
    n = int(max(y_true.max(initial=0), y_pred.max(initial=0)) + 1) if n_classes is None else n_classes
    m = np.zeros((n, n), np.int64)
    np.add.at(m, (y_true, y_pred), 1)
    return m


def class_count(net: Network, y_true) -> int:
    """Classes a confusion matrix of ``net`` on labels ``y_true`` shows: every output, every label."""
    return max(net.n_outputs, int(np.max(y_true, initial=-1)) + 1)


def confusion(y_true, y_pred, *, n_classes: int | None = None, title: str = "", dpi: int = DPI):
    """Confusion matrix (rows: true class, columns: predicted) with the count in every cell."""
    m = confusion_matrix(y_true, y_pred, n_classes)
    fig = new_figure((6.0, 5.4), dpi)
    ax = fig.subplots()
    im = ax.imshow(m, cmap="Blues")
    hi = m.max() if m.size else 0
    for (i, j), c in np.ndenumerate(m):
        if c:
            ax.text(j, i, str(c), ha="center", va="center", fontsize="small",
                    color="white" if c > hi / 2 else "black")
    ax.set_xticks(range(len(m)))
    ax.set_yticks(range(len(m)))
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    fig.colorbar(im, ax=ax, shrink=0.8)
    acc = np.trace(m) / m.sum() if m.sum() else 0.0
    ax.set_title(title or "confusion matrix", fontsize="medium")
    ax.set_xlabel(f"predicted class (accuracy {100 * acc:.2f} %, {m.sum()} samples)")
    return fig


def save_confusion(path, net: Network, y_true, y_pred, *, title: str = "", dpi: int = DPI) -> Path:
    """:func:`confusion` of ``net``'s classes (:func:`class_count`) written to ``path``: the
    ``--plot FILE`` of ``spikegate model`` and ``spikegate sim``."""
    return save(confusion(y_true, y_pred, n_classes=class_count(net, y_true), title=title, dpi=dpi), path)


def image_shape(n_in: int, shape=None) -> tuple[int, int]:
    """(height, width) the inputs of a layer are drawn as: ``shape`` if given, else the square
    8x8 (digits) or 28x28 (MNIST) image, else the nearest square, else one row."""
    if shape is not None:
        h, w = (int(x) for x in shape)
        if h < 1 or w < 1 or h * w != n_in:
            raise ValueError(f"--shape = {h}x{w} is not valid; valid: HxW with H*W = {n_in} (the layer's inputs)")
        return h, w
    r = math.isqrt(n_in)
    if r * r == n_in:
        return r, r
    for h in range(r, 0, -1):
        if n_in % h == 0 and n_in // h <= 4 * h:
            return h, n_in // h
    return 1, n_in


def fields(net: Network, layer: int = 0, *, shape=None, max_tiles: int = 64, title: str = "", dpi: int = DPI):
    """Weights of ``layer`` as one image per neuron (its receptive field over the layer's inputs),
    on a symmetric colour scale so positive and negative weights read alike."""
    layer = _check_layer(net, layer)
    lay = net.layers[layer]
    refuse_conv([lay], "plot fields")
    if isinstance(max_tiles, bool) or not isinstance(max_tiles, int) or max_tiles < 1:
        raise ValueError(f"--max-tiles = {max_tiles!r} is not valid; valid: an integer >= 1")
    h, w = image_shape(lay.n_in, shape)
    n = min(lay.n, max_tiles)
    cols = min(n, 8 if h > 1 else 1)
    rows = -(-n // cols)
    tile = 1.1 if h > 1 else 0.4
    fig = new_figure((max(4.0, cols * tile * max(1.0, w / h if h > 1 else 8)), 0.9 + rows * tile), dpi)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False).ravel())
    W = np.asarray(lay.weights)
    lim = max(1, int(np.abs(W).max()))
    im = None
    for j, ax in enumerate(axes):
        ax.set_xticks([])
        ax.set_yticks([])
        if j >= n:
            ax.set_axis_off()
            continue
        im = ax.imshow(W[:, j].reshape(h, w), cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest",
                       aspect="equal" if h > 1 else "auto")
        ax.set_title(str(j), fontsize="x-small", pad=1)
    fig.colorbar(im, ax=list(axes), shrink=0.6, label="weight")
    shown = f"{n} of {lay.n}" if n < lay.n else f"{lay.n}"
    fig.suptitle(title or f"layer {layer} ({lay.name or 'unnamed'}) weights: {shown} neurons, inputs as {h}x{w}")
    return fig
