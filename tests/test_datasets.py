"""Data sets: the fixed digits split, MNIST IDX parsing (the shared subset), corrupt files."""
import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from spikegate import datasets, default_network_path
from spikegate.model import Network, classify, simulate
from spikegate.model.encode import encode

MNIST_SUBSET = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "mnist-subset"


# --- digits ---------------------------------------------------------------------------------

def test_digits_split_sizes_and_ranges():
    x_tr, y_tr = datasets.load("digits", "train")
    x_te, y_te = datasets.load("digits", "test")
    assert x_tr.shape == (1352, 64) and x_te.shape == (445, 64)
    assert x_tr.dtype == np.float64 and y_tr.dtype == np.int64
    assert len(y_te) / (len(y_te) + len(y_tr)) >= 0.2
    for x in (x_tr, x_te):
        assert x.min() == 0.0 and x.max() == 1.0
    # Pixels are 0..16 in the source, so every intensity is a multiple of 1/16.
    assert np.all((x_tr * 16) == np.round(x_tr * 16))


def test_digits_split_is_the_documented_rule():
    from sklearn.datasets import load_digits
    d = load_digits()
    _, y_te = datasets.load("digits", "test")
    x_te, _ = datasets.load("digits", "test")
    expected = []
    for i, c in enumerate(d.target):
        if (np.sum(d.target[:i] == c) % 4) == 3:
            expected.append(i)
    expected = np.array(expected)
    np.testing.assert_array_equal(x_te, d.data[np.sort(expected)] / 16.0)
    np.testing.assert_array_equal(y_te, d.target[np.sort(expected)])
    # stratified: every class holds out a quarter (rounded down) of its images
    for c in range(10):
        assert np.sum(y_te == c) == np.sum(d.target == c) // 4


def test_digits_train_and_test_partition_the_data():
    from sklearn.datasets import load_digits
    d = load_digits()
    x_tr, _ = datasets.load("digits", "train")
    x_te, _ = datasets.load("digits", "test")
    all_rows = np.concatenate([x_tr, x_te]) * 16
    assert len(all_rows) == len(d.data)
    key = lambda a: sorted(map(bytes, a.astype(np.uint8)))
    assert key(all_rows) == key(d.data)


@pytest.mark.parametrize("name, split, word", [("cifar", "test", "data set"), ("digits", "valid", "split"),
                                               ("mnist", "dev", "split")])
def test_bad_name_or_split(name, split, word):
    with pytest.raises(ValueError, match=word) as e:
        datasets.load(name, split, MNIST_SUBSET)
    assert repr(split if word == "split" else name) in str(e.value)


# --- MNIST ----------------------------------------------------------------------------------

def test_mnist_subset():
    x_tr, y_tr = datasets.load("mnist", "train", MNIST_SUBSET)
    x_te, y_te = datasets.load("mnist", "test", MNIST_SUBSET)
    assert x_tr.shape == (6000, 784) and y_tr.shape == (6000,)
    assert x_te.shape == (2000, 784) and y_te.shape == (2000,)
    assert x_tr.dtype == np.float64 and y_te.dtype == np.int64
    assert x_tr.min() == 0.0 and x_tr.max() == 1.0
    assert set(np.unique(y_tr)) == set(range(10)) and set(np.unique(y_te)) == set(range(10))
    # MNIST centres every digit's centre of mass in the 28x28 field to within a pixel; a header
    # parsed with the wrong length or a wrong row width would move (or smear) the centroids.
    for x in (x_tr, x_te):
        im = x.reshape(-1, 28, 28)
        mass = im.sum(axis=(1, 2))
        rows = (im.sum(axis=2) * np.arange(28)).sum(axis=1) / mass
        cols = (im.sum(axis=1) * np.arange(28)).sum(axis=1) / mass
        assert np.abs(rows - 14).max() < 1.5 and np.abs(cols - 14).max() < 1.5
    # Every MNIST digit has an empty 28x28 border corner.
    assert x_te.reshape(-1, 28, 28)[:, 0, 0].max() == 0.0


def _copy_subset(tmp_path, decompress=False):
    for f in MNIST_SUBSET.glob("*.gz"):
        if decompress:
            (tmp_path / f.name[:-3]).write_bytes(gzip.decompress(f.read_bytes()))
        else:
            shutil.copy(f, tmp_path / f.name)
    return tmp_path


def test_mnist_raw_files_equal_gz(tmp_path):
    raw = _copy_subset(tmp_path, decompress=True)
    xr, yr = datasets.load("mnist", "test", raw)
    xg, yg = datasets.load("mnist", "test", MNIST_SUBSET)
    np.testing.assert_array_equal(xr, xg)
    np.testing.assert_array_equal(yr, yg)


def _write_idx(path: Path, body: bytes, gz: bool):
    path.write_bytes(gzip.compress(body) if gz else body)


def _labels_path(tmp_path, gz):
    return tmp_path / ("t10k-labels-idx1-ubyte" + (".gz" if gz else ""))


def _images_path(tmp_path, gz):
    return tmp_path / ("t10k-images-idx3-ubyte" + (".gz" if gz else ""))


def _valid_images(n=3, r=4, c=4):
    return bytes([0, 0, 8, 3]) + n.to_bytes(4, "big") + r.to_bytes(4, "big") + c.to_bytes(4, "big") + bytes(n * r * c)


def _valid_labels(n=3):
    return bytes([0, 0, 8, 1]) + n.to_bytes(4, "big") + bytes(range(n))


@pytest.mark.parametrize("gz", [False, True])
def test_small_valid_idx(tmp_path, gz):
    _write_idx(_images_path(tmp_path, gz), _valid_images(), gz)
    _write_idx(_labels_path(tmp_path, gz), _valid_labels(), gz)
    x, y = datasets.load("mnist", "test", tmp_path)
    assert x.shape == (3, 16) and list(y) == [0, 1, 2]


CORRUPT_IMAGES = {
    "magic": (bytes([0, 0, 8, 1]) + _valid_images()[4:], "magic"),
    "type": (bytes([0, 0, 9, 3]) + _valid_images()[4:], "magic"),
    "truncated": (_valid_images()[:-5], "truncated"),
    "header": (_valid_images()[:10], "truncated IDX header"),
    "trailing": (_valid_images() + b"\0", "trailing"),
    "empty": (b"", "too short"),
}


@pytest.mark.parametrize("case", sorted(CORRUPT_IMAGES))
@pytest.mark.parametrize("gz", [False, True])
def test_corrupt_images_name_the_file(tmp_path, case, gz):
    body, msg = CORRUPT_IMAGES[case]
    _write_idx(_images_path(tmp_path, gz), body, gz)
    _write_idx(_labels_path(tmp_path, gz), _valid_labels(), gz)
    with pytest.raises(ValueError, match=msg) as e:
        datasets.load("mnist", "test", tmp_path)
    assert _images_path(tmp_path, gz).name in str(e.value)


def test_truncated_gzip_names_the_file(tmp_path):
    good = gzip.compress(_valid_images())
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(good[:len(good) // 2])
    _write_idx(_labels_path(tmp_path, False), _valid_labels(), False)
    with pytest.raises(ValueError, match="gzip") as e:
        datasets.load("mnist", "test", tmp_path)
    assert "t10k-images-idx3-ubyte.gz" in str(e.value)


def test_gz_name_without_gzip_content(tmp_path):
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(_valid_images())
    _write_idx(_labels_path(tmp_path, False), _valid_labels(), False)
    with pytest.raises(ValueError, match="not gzip"):
        datasets.load("mnist", "test", tmp_path)


def test_count_mismatch_and_bad_labels(tmp_path):
    _write_idx(_images_path(tmp_path, False), _valid_images(n=3), False)
    _write_idx(_labels_path(tmp_path, False), _valid_labels(n=2), False)
    with pytest.raises(ValueError, match="3 images but .* 2 labels"):
        datasets.load("mnist", "test", tmp_path)
    _write_idx(_labels_path(tmp_path, False), bytes([0, 0, 8, 1]) + (3).to_bytes(4, "big") + bytes([0, 10, 1]), False)
    with pytest.raises(ValueError, match="label 10 is out of range") as e:
        datasets.load("mnist", "test", tmp_path)
    assert "t10k-labels-idx1-ubyte" in str(e.value)


def test_missing_files_and_dirs(tmp_path):
    with pytest.raises(ValueError, match="data_dir is required"):
        datasets.load("mnist", "train")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        datasets.load("mnist", "train", tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        datasets.load("mnist", "train", tmp_path)


# --- encoding and the default network -------------------------------------------------------

def test_encode_for_uses_the_networks_encoding_and_T():
    net = datasets.load_network()
    x, _ = datasets.load("digits", "test")
    s = datasets.encode_for(net, x[:20])
    assert s.shape == (20, net.timesteps, 64) and s.dtype == bool
    np.testing.assert_array_equal(s, encode(x[:20], net.encoding, net.timesteps))
    with pytest.raises(ValueError, match=r"shape \[N, 64\]"):
        datasets.encode_for(net, np.zeros((2, 784)))


def test_default_network_is_the_packaged_file():
    net = datasets.load_network()
    # Independently of load_network and default_network_path: the file in the source tree,
    # parsed as plain JSON, and the packaged resource are that same network.
    source = Path(__file__).resolve().parents[1] / "src" / "spikegate" / "data" / "digits.json"
    assert net == Network.from_dict(json.loads(source.read_text()))
    assert default_network_path().read_bytes() == source.read_bytes()
    assert net.name == "digits"
    # ... and it is the trained classifier it says it is: its recorded test accuracy, reproduced.
    x, y = datasets.load("digits", "test")
    accuracy = float(np.mean(classify(net, simulate(net, datasets.encode_for(net, x))) == y))
    assert accuracy == net.meta["snn_test_accuracy"] > 0.95
    assert net.n_inputs == 64 and net.n_outputs == 10
    assert all(layer.n <= 64 for layer in net.layers[:-1]) and net.timesteps <= 32
