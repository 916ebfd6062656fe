"""Bad inputs are refused before any work, in one line naming the option, the value and what is
valid (issue 11, defects 4, 5 and 7)."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from spikegate import datasets
from spikegate.cli import main
from spikegate.evaluation import MAX_BATCH, batch_size_for, evaluate, sample_bytes
from spikegate.model import Network
from spikegate.model import network as network_module
from spikegate.model.network import Layer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from bad_input_catalogue import nir_graph  # noqa: E402


def error_of(capsys, *argv) -> str:
    assert main(list(argv)) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [l for l in err.splitlines() if ": error:" in l]
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize("argv, words", [
    (["model", "--samples", "-5"], ["--samples = -5", "integer >= 1"]),
    (["model", "--samples", "0"], ["--samples = 0", "integer >= 1"]),
    (["model", "--seed", "-1"], ["--seed = -1", "from 0 to"]),
    (["demo", "--samples", "0"], ["--samples = 0"]),
    (["build", "--board", "icebreaker", "--samples", "-5"], ["--samples = -5", "from 1 to 100000"]),
    (["build", "--board", "icebreaker", "--samples", str(10 ** 30)], ["--samples = 1000", "from 1 to 100000"]),
    (["build", "--board", "icebreaker", "--samples", "0"], ["--samples = 0"]),
    (["build", "--board", "icebreaker", "--seed", "-1"], ["--seed = -1"]),
    (["build", "--board", "icebreaker", "--clock", "nan"], ["--clock = nan", "finite"]),
    (["run", "--board", "sim", "--port", "loop://", "--timeout", "inf"], ["--timeout = inf"]),
    (["run", "--board", "sim", "--port", "loop://", "--baud", "0"], ["--baud = 0"]),
    (["info", "--max-events", "0"], ["--max-events = 0", "from 1 to"]),
    (["export", "-o", "x.v", "--name", "1bad"], ["--name = '1bad'", "Verilog identifier"]),
])
def test_bad_numbers_are_refused_before_any_work(capsys, argv, words):
    t0 = time.monotonic()
    line = error_of(capsys, *argv)
    for w in words:
        assert w in line, line
    assert time.monotonic() - t0 < 5  # no flow, no simulation, no data set run


def test_output_paths_are_checked_first_and_named(tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("x")
    cases = [
        (["build", "--board", "icebreaker", "--out", str(afile)], "--out = "),
        (["sim", "--waves", str(tmp_path / "no" / "w.vcd")], "--waves = "),
        (["sim", "--build-dir", str(afile / "sub")], "--build-dir = "),
        (["export", "-o", str(tmp_path)], "-o/--output = "),
        (["export-nir", "-o", str(afile / "m.nir")], "-o/--output = "),
        (["train", "--out", str(tmp_path / "no" / "n.json")], "--out = "),
    ]
    for argv, option in cases:
        line = error_of(capsys, *argv)
        assert option in line and ".tmp" not in line, line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


def test_build_library_checks_arguments_before_loading(tmp_path):
    from spikegate.boards.build import build
    with pytest.raises(ValueError, match="samples = -5 is not valid"):
        build("icebreaker", tmp_path / "missing.json", samples=-5)
    (tmp_path / "f").write_text("x")
    with pytest.raises(Exception, match="out_dir = .* is not a directory"):
        build("icebreaker", tmp_path / "missing.json", out_dir=tmp_path / "f")


def _net_with_layer(tmp_path, **change):
    d = json.loads(datasets.load_network(None).to_json())
    d["layers"][0].update(change)
    path = tmp_path / "net.json"
    path.write_text(json.dumps(d))
    return path


def test_leak_that_is_not_an_object_is_a_format_error(tmp_path, capsys):
    line = error_of(capsys, "info", "--net", str(_net_with_layer(tmp_path, leak="shift")))
    assert "leak = 'shift' is not valid" in line and "mapping" not in line
    line = error_of(capsys, "info", "--net", str(_net_with_layer(tmp_path, leak={"kind": "shift", "q": 1})))
    assert "unknown field(s) ['q']" in line


def test_deeply_nested_json_and_devices_and_huge_files(tmp_path, capsys, monkeypatch):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 200_000 + "]" * 200_000)
    assert "nested too deeply" in error_of(capsys, "info", "--net", str(deep))
    assert "not a regular file" in error_of(capsys, "info", "--net", "/dev/zero")
    big = tmp_path / "big.json"
    datasets.load_network(None).save(big)
    monkeypatch.setattr(network_module, "MAX_NETWORK_FILE_BYTES", 1000)
    assert "larger than" in error_of(capsys, "model", "--net", str(big))


def test_full_stdout_is_one_clean_line():
    for argv in (["info", "--json"], ["boards"], ["info", "--net", "/nonexistent", "--json"]):
        with open("/dev/full", "w") as full:
            r = subprocess.run([sys.executable, "-m", "spikegate", *argv], stdout=full, stderr=subprocess.PIPE,
                               text=True, timeout=60)
        assert r.returncode == 2 and "Traceback" not in r.stderr and "Exception ignored" not in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def _bitstream(tmp_path, name, data):
    p = tmp_path / name
    p.write_bytes(data)
    return str(p)


def test_flash_checks_size_and_preamble(tmp_path, capsys):
    empty = _bitstream(tmp_path, "e.bin", b"")
    assert "is 0 bytes" in error_of(capsys, "flash", "--board", "icebreaker", "--bitstream", empty, "--dry-run")
    rnd = _bitstream(tmp_path, "r.bin", bytes(range(256)) * 8)
    assert "iCE40 preamble" in error_of(capsys, "flash", "--board", "icebreaker", "--bitstream", rnd, "--dry-run")
    ice = _bitstream(tmp_path, "ice.bit", b"\xff\x00\x00\xff\x7e\xaa\x99\x7e" + bytes(100))
    assert "ECP5 preamble" in error_of(capsys, "flash", "--board", "ulx3s-85f", "--bitstream", ice, "--dry-run")
    fs = _bitstream(tmp_path, "x.fs", b"hello\n")
    assert ".fs format" in error_of(capsys, "flash", "--board", "tangnano9k", "--bitstream", fs, "--dry-run")


def _graph(path, w):
    pytest.importorskip("nir")
    return nir_graph(path, w)


def test_nir_degenerate_graphs_are_refused(tmp_path, capsys):
    w = np.random.default_rng(0).normal(size=(6, 4))
    ok = _graph(tmp_path / "ok.nir", w)
    out = str(tmp_path / "n.json")
    assert "--dt = 1e+308" in error_of(capsys, "import", ok, "-o", out, "--dt", "1e308")
    huge = w.copy()
    huge[0, 0] = 1e300
    line = error_of(capsys, "import", _graph(tmp_path / "huge.nir", huge), "-o", out, "--dt", "0.001")
    assert "degenerate" in line and "1e+300" in line
    line = error_of(capsys, "import", _graph(tmp_path / "zero.nir", np.zeros((0, 4))), "-o", out, "--dt", "0.001")
    assert "at least one input and one neuron" in line
    assert not (tmp_path / "n.json").exists()


def test_batches_are_sized_from_the_memory_budget():
    wide = Network(layers=[Layer(weights=np.ones((1, 10 ** 6), np.int64), threshold=1)], timesteps=32)
    per = sample_bytes(wide)
    assert 60e6 < per < 200e6  # ~70 MB measured per sample of a 10^6-neuron layer, plus temporaries
    assert batch_size_for(wide, 256 << 20) == (256 << 20) // per
    assert batch_size_for(wide, 1) == 1
    assert batch_size_for(datasets.load_network(None)) == MAX_BATCH


def test_evaluation_does_not_depend_on_the_budget():
    net = datasets.load_network(None)
    _, x, y = datasets.select(net, None, "test", None, 40)
    tight = evaluate(net, x, y, seed=2, memory_budget=sample_bytes(net) * 3)
    assert tight == evaluate(net, x, y, seed=2)
