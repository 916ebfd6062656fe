"""`spikegate import` and `spikegate export-nir` on the command line."""
import json
import re
import subprocess
import sys

import nir
import numpy as np
import pytest

from spikegate import datasets
from spikegate.cli import main
from spikegate.model import Network
from spikegate.model.random import random_network


def float_graph(path, n_in=4):
    rng = np.random.default_rng(0)
    g = nir.NIRGraph.from_list(
        nir.Affine(rng.normal(size=(6, n_in)), rng.normal(size=6) * 0.1),
        nir.LIF(tau=np.full(6, 0.02), r=np.full(6, 20.0), v_leak=np.zeros(6), v_threshold=np.full(6, 0.8),
                v_reset=np.zeros(6)),
        nir.Linear(rng.normal(size=(3, 6))), nir.LI(tau=np.full(3, 0.05), r=np.full(3, 50.0), v_leak=np.zeros(3)))
    nir.write(str(path), g)
    return path


def test_export_then_import_is_identical(tmp_path, capsys):
    net = random_network(21, leak="multiply", reset="subtract", refractory=3)
    net.save(tmp_path / "net.json")
    assert main(["export-nir", "--net", str(tmp_path / "net.json"), "-o", str(tmp_path / "m.nir"), "--json"]) == 0
    out, err = capsys.readouterr()
    d = json.loads(out)
    assert d["path"] == str(tmp_path / "m.nir") and d["nodes"][0] == "input" and d["nodes"][-1] == "output"
    assert any("refractory = 3 has no NIR equivalent" in w for w in d["warnings"])
    assert "warning: layers[0]" in err
    assert main(["import", str(tmp_path / "m.nir"), "-o", str(tmp_path / "back.json"), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["exact"] is True and d["digest"] == net.digest()
    assert Network.load(tmp_path / "back.json") == net


def test_export_default_network(tmp_path, capsys):
    assert main(["export-nir", "-o", str(tmp_path / "d.nir")]) == 0
    assert "built-in digits network" in capsys.readouterr().out
    assert main(["import", str(tmp_path / "d.nir"), "-o", str(tmp_path / "d.json")]) == 0
    assert Network.load(tmp_path / "d.json") == datasets.load_network(None)


def test_import_float_graph_reports_every_parameter(tmp_path, capsys):
    src = float_graph(tmp_path / "f.nir")
    assert main(["import", str(src), "-o", str(tmp_path / "n.json"), "--dt", "0.001", "--weight-bits", "6",
                 "--membrane-bits", "14", "--timesteps", "20", "--encoding", "poisson"]) == 0
    text = capsys.readouterr().out
    for word in ("forward Euler with dt = 0.001", "layer 0: affine -> lif (LIF)", "layer 1: linear -> li (LI)",
                 "weights ", "bias ", "leak ", "threshold ", "max abs err"):
        assert word in text, word
    net = Network.load(tmp_path / "n.json")
    assert net.shape == (4, 6, 3) and net.readout and net.timesteps == 20 and net.encoding == "poisson"
    assert net.layers[0].weight_bits == 6 and net.layers[0].membrane_bits == 14
    assert np.abs(net.layers[0].weights).max() == 31  # the weight-limited scale uses the full 6-bit range


def test_import_json_and_npy_calibration(tmp_path, capsys):
    src = float_graph(tmp_path / "f.nir")
    np.save(tmp_path / "cal.npy", np.random.default_rng(1).random((30, 4)))
    assert main(["import", str(src), "-o", str(tmp_path / "n.json"), "--dt", "1e-3", "--calibrate",
                 str(tmp_path / "cal.npy"), "--json"]) == 0
    out, err = capsys.readouterr()
    d = json.loads(out)
    assert d["exact"] is False and d["calibration"]["samples"] == 30
    assert 0.0 <= d["calibration"]["agreement"] <= 1.0
    assert set(d["layers"][0]["params"]) == {"weights", "bias", "leak_beta", "threshold"}
    assert set(d["layers"][1]["params"]) == {"weights", "bias", "leak_beta"}
    assert "calibration" in d["layers"][0]
    assert "calibrating" in err


@pytest.mark.parametrize("args, pattern", [
    (["--dt", "1e-3", "--calibrate", "nowhere.npy"], "calibration file 'nowhere.npy' does not exist"),
    (["--dt", "1e-3", "--calibrate", "digits"], "data set 'digits' has 64 inputs but the NIR graph expects 4"),
    ([], "--dt is required for this graph"),
    (["--dt", "-1"], r"dt = -1.0 is not valid"),
    (["--dt", "1e-3", "--weight-bits", "20"], "weight_bits = 20 is not valid"),
])
def test_import_errors_are_one_line_and_write_nothing(tmp_path, capsys, args, pattern):
    src = float_graph(tmp_path / "f.nir")
    assert main(["import", str(src), "-o", str(tmp_path / "n.json"), *args]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert re.search(pattern, err), err
    assert not (tmp_path / "n.json").exists()


def test_import_refuses_float_options_for_exact_graphs(tmp_path, capsys):
    random_network(2).save(tmp_path / "net.json")
    assert main(["export-nir", "--net", str(tmp_path / "net.json"), "-o", str(tmp_path / "m.nir")]) == 0
    capsys.readouterr()
    assert main(["import", str(tmp_path / "m.nir"), "-o", str(tmp_path / "n.json"), "--dt", "1",
                 "--weight-bits", "8"]) == 2
    err = capsys.readouterr().err
    assert "imports bit for bit; --dt, --weight-bits would be ignored" in err
    assert not (tmp_path / "n.json").exists()
    assert main(["import", str(tmp_path / "m.nir"), "-o", str(tmp_path / "n.json"), "--dt", "1",
                 "--ignore-metadata"]) == 0


def test_export_errors(tmp_path, capsys):
    assert main(["export-nir", "--net", str(tmp_path / "none.json"), "-o", str(tmp_path / "m.nir")]) == 2
    assert "does not exist" in capsys.readouterr().err
    random_network(2).save(tmp_path / "net.json")
    assert main(["export-nir", "--net", str(tmp_path / "net.json"), "-o", str(tmp_path / "no" / "m.nir"),
                 "--json"]) == 2
    out, err = capsys.readouterr()
    assert "output directory" in json.loads(out)["error"] and "Traceback" not in err
    assert not (tmp_path / "m.nir").exists()


def test_import_non_nir_file(tmp_path, capsys):
    (tmp_path / "x.nir").write_bytes(b"\x00not hdf5")
    assert main(["import", str(tmp_path / "x.nir"), "-o", str(tmp_path / "n.json"), "--dt", "1"]) == 2
    assert "is not a NIR file" in capsys.readouterr().err


def test_entry_point_runs(tmp_path):
    """The installed command (not just cli.main) reaches the NIR commands."""
    src = float_graph(tmp_path / "f.nir")
    r = subprocess.run([sys.executable, "-m", "spikegate.cli", "import", str(src), "-o", str(tmp_path / "n.json"),
                        "--dt", "0.001", "--json"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["shape"] == [4, 6, 3]
