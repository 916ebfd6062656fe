"""Data sets for training and evaluating networks: intensities in [0, 1] plus integer labels.

``load(name, split, data_dir=None) -> (x, y)`` with ``x`` float64 [N, n_in] in [0, 1] and ``y``
int64 [N].

- ``digits``: scikit-learn's bundled 8x8 handwritten digits (1,797 images, no download), pixel / 16.
  The split is fixed and involves no random numbers, so it is the same on every platform and every
  library version: within each class, in the order ``sklearn.datasets.load_digits`` returns the
  images, every fourth image (0-based positions 3, 7, 11, ... within that class) is a test image and the rest
  are training images. That holds out 445 of 1,797 images (24.8 %), stratified by class.
- ``mnist``: the standard IDX files in ``data_dir`` (``train-images-idx3-ubyte``,
  ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each raw or
  with ``.gz``), pixel / 255. Files are parsed and validated here (magic number, dimensions,
  length, label range), and any problem is reported naming the file.

``select(net, data, split, data_dir, samples) -> (name, x, y)`` picks, checks and slices the data
set a network runs on (for ``spikegate model``, ``sim``, ``run``, ...).

``encode_for(net, x, seed=0)`` turns intensities into the input spike trains a network expects,
using the network's own encoding and number of time steps.
"""
from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

from .model.encode import encode

__all__ = ["DATASETS", "SPLITS", "DIGITS_TEST_EVERY", "load", "load_digits", "load_mnist", "read_idx",
           "encode_for", "describe", "load_network", "select"]

DATASETS = ("digits", "mnist")
SPLITS = ("train", "test")
DIGITS_TEST_EVERY = 4
N_CLASSES = 10

# IDX magic: two zero bytes, the element type (0x08 = unsigned byte), the number of dimensions.
_IDX_UBYTE = 0x08
_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _check_split(split) -> str:
    if split not in SPLITS:
        raise ValueError(f"split = {split!r} is not valid; valid: {', '.join(SPLITS)}")
    return split


def load(name: str, split: str, data_dir: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Load a data set split as ``(x float64 [N, n_in] in [0, 1], y int64 [N])``."""
    if name == "digits":
        return load_digits(split)
    if name == "mnist":
        return load_mnist(split, data_dir)
    raise ValueError(f"data set = {name!r} is not valid; valid: {', '.join(DATASETS)}")


def describe(name: str) -> str:
    """One line on where a data set's split comes from, for provenance and printed reports."""
    if name == "digits":
        return (f"scikit-learn 8x8 digits; test = every {DIGITS_TEST_EVERY}th image of each class "
                "(445 of 1797), train = the rest")
    if name == "mnist":
        return "MNIST IDX files (train-* for train, t10k-* for test)"
    raise ValueError(f"data set = {name!r} is not valid; valid: {', '.join(DATASETS)}")


def load_digits(split: str) -> tuple[np.ndarray, np.ndarray]:
    _check_split(split)
    from sklearn.datasets import load_digits as _sk_load_digits
    d = _sk_load_digits()
    x = np.asarray(d.data, dtype=np.float64) / 16.0
    y = np.asarray(d.target, dtype=np.int64)
    test = np.zeros(len(y), dtype=bool)
    for c in range(N_CLASSES):
        idx = np.flatnonzero(y == c)
        test[idx[DIGITS_TEST_EVERY - 1::DIGITS_TEST_EVERY]] = True
    mask = test if split == "test" else ~test
    return x[mask], y[mask]


def _find(data_dir: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        p = data_dir / name
        if p.is_file():
            return p
    raise FileNotFoundError(f"MNIST file {stem!r} (or {stem}.gz) not found in data directory "
                            f"{str(data_dir)!r}")


def _read_bytes(path: Path) -> bytes:
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise ValueError(f"{path}: corrupt or truncated gzip data ({e})") from None
    if path.suffix == ".gz":
        raise ValueError(f"{path}: named .gz but is not gzip-compressed")
    return raw


def read_idx(path: str | os.PathLike, ndim: int) -> np.ndarray:
    """Read an unsigned-byte IDX file with ``ndim`` dimensions (raw or gzip) into a uint8 array."""
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise ValueError(f"{path}: too short to be an IDX file ({len(data)} bytes)")
    if data[0] != 0 or data[1] != 0 or data[2] != _IDX_UBYTE or data[3] != ndim:
        raise ValueError(f"{path}: bad IDX magic number 0x{data[:4].hex()}; expected "
                         f"0x0000{_IDX_UBYTE:02x}{ndim:02x} (unsigned bytes, {ndim} dimension(s))")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{path}: truncated IDX header ({len(data)} bytes, need {header})")
    dims = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(dims, dtype=np.int64))
    if len(data) != expected:
        kind = "truncated" if len(data) < expected else "has trailing data"
        raise ValueError(f"{path}: {kind}: dimensions {dims} need {expected} bytes, file has {len(data)}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def load_mnist(split: str, data_dir: str | os.PathLike | None) -> tuple[np.ndarray, np.ndarray]:
    _check_split(split)
    if data_dir is None:
        raise ValueError("data_dir is required for the mnist data set: give the directory holding the "
                         "IDX files (train-images-idx3-ubyte[.gz], t10k-images-idx3-ubyte[.gz], ...)")
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise FileNotFoundError(f"data directory {str(data_dir)!r} does not exist or is not a directory")
    img_stem, lbl_stem = _MNIST_FILES[split]
    img_path, lbl_path = _find(data_dir, img_stem), _find(data_dir, lbl_stem)
    images = read_idx(img_path, 3)
    labels = read_idx(lbl_path, 1)
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"{img_path} holds {images.shape[0]} images but {lbl_path} holds "
                         f"{labels.shape[0]} labels")
    if images.shape[0] == 0:
        raise ValueError(f"{img_path}: holds no images")
    if labels.size and labels.max() >= N_CLASSES:
        raise ValueError(f"{lbl_path}: label {int(labels.max())} is out of range; valid: 0..{N_CLASSES - 1}")
    x = images.reshape(images.shape[0], -1).astype(np.float64) / 255.0
    return x, labels.astype(np.int64)


def select(net, data: str | None = None, split: str = "test", data_dir=None, samples: int | None = None,
           ) -> tuple[str, np.ndarray, np.ndarray]:
    """The data set ``net`` runs on: ``(name, x, y)``. ``data`` None means the one the network was
    trained on (digits when unknown); ``samples`` keeps only the first N of the split. Errors name
    the command-line option a user gives the value with."""
    if data is None:
        data = net.meta.get("dataset", "digits") if isinstance(net.meta, dict) else "digits"
        if data not in DATASETS:
            data = "digits"
    if samples is not None and (isinstance(samples, bool) or not isinstance(samples, int) or samples < 1):
        raise ValueError(f"--samples = {samples} is not valid; valid: an integer >= 1")
    if data == "mnist" and data_dir is None:
        raise ValueError("--data-dir is required for the mnist data set: give the directory holding the IDX "
                         "files (train-images-idx3-ubyte[.gz], t10k-images-idx3-ubyte[.gz], ...)")
    x, y = load(data, split, data_dir)
    if x.shape[1] != net.n_inputs:
        raise ValueError(f"--data {data} has {x.shape[1]} inputs per sample ({x.shape[1]} features) but the "
                         f"network has {net.n_inputs} inputs; pick the data set the network was made for")
    if samples is not None:
        if samples > len(y):
            raise ValueError(f"--samples = {samples} is not valid; valid: 1 to {len(y)} (the {data} {split} split)")
        x, y = x[:samples], y[:samples]
    return data, x, y


def encode_for(net, x: np.ndarray, seed: int = 0) -> np.ndarray:
    """Input spike trains bool [N, T, n_in] for ``net`` (its encoding and time steps) from ``x``."""
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[1] != net.n_inputs:
        raise ValueError(f"x must have shape [N, {net.n_inputs}] for this network "
                         f"({net.n_inputs} inputs), got {x.shape}")
    return encode(x, net.encoding, net.timesteps, seed)


def load_network(path: str | os.PathLike | None = None):
    """The network in ``path``, or the built-in default digits network when ``path`` is None."""
    from importlib import resources
    from . import default_network_path
    from .model.network import Network
    if path is None:
        with resources.as_file(default_network_path()) as p:
            return Network.load(p)
    return Network.load(path)
