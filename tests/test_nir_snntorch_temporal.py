"""snnTorch's recurrent (RLeaky) and current-based (Synaptic, RSynaptic) layers, and delays, via NIR.

The networks are the temporal demos' (bench/temporal_digits.py, bench/delayed_digits.py: digits
read one row at a time), trained briefly here; the slow tests train the demos themselves and hold
them to the issue's 2 points.
Needs torch and snntorch (skipped without them unless SPIKEGATE_REQUIRE_SNNTORCH=1).
"""
import sys
from pathlib import Path

import nir
import numpy as np
import pytest

from spikegate.model import Leak
from spikegate.nir import import_nir

from conftest import require_snntorch

snntorch, torch, export_to_nir = require_snntorch()

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import delayed_digits  # noqa: E402
import temporal_digits as demo  # noqa: E402


def _report(r):
    print(f"T = {r['timesteps']}, {r['shape']}: snnTorch {100 * r['float_accuracy']:.1f} %, integer "
          f"{100 * r['integer_accuracy']:.1f} %, agreement {100 * r['agreement']:.1f} % "
          f"(with the importer's float run on the training split: {100 * r['calibration_agreement']:.1f} %)")


DATA = Path(__file__).parent / "data"


# The two tests below hold fixed trained networks (checked-in parameters) to their bars, not fresh
# training runs: torch's training trajectory depends on the CPU's vector kernels (this RLeaky run gives
# 96.0 % agreement on the machine the bar was set on, 93.7 % with AVX2 kernels and 95.3 % with the scalar
# ones on the 2026-12-01 machine), so a test that trains measures the CPU as much as the importer. The
# parameters were trained with ATen's scalar kernels (its vector code off; BLAS still chooses its own):
#   ATEN_CPU_CAPABILITY=default python bench/temporal_digits.py --hidden 64 --epochs 10 --seed 1 --out D
#   ATEN_CPU_CAPABILITY=default python bench/delayed_digits.py --hidden 48 --max-delay 3 --epochs 6 --seed 2 --out D
# The slow tests further down still train the demos end to end.
def test_rleaky_synaptic_network_imports_and_agrees(tmp_path):
    torch.set_num_threads(1)
    net = demo.build(64)
    demo.load_state([net], DATA / "temporal-digits-h64-state.npz")
    r = demo.evaluate(net, 2, tmp_path / "rs.nir", weight_bits=10)
    _report(r)
    hidden, out = r["network"].layers
    assert hidden.temporal.features() == ["recurrence"] and hidden.leak == Leak.multiply(3686, 12)
    assert out.temporal.features() == ["synaptic current"] and out.temporal.current == Leak.multiply(3277, 12)
    assert r["float_accuracy"] > 0.7
    assert r["agreement"] >= 0.94  # measured 95.3 %
    assert abs(r["integer_accuracy"] - r["float_accuracy"]) <= 0.03


def test_rsynaptic_imports_as_a_recurrent_cuba_layer(tmp_path):
    n = 5
    rsyn = snntorch.RSynaptic(alpha=torch.full((n,), 0.5), beta=torch.full((n,), 0.75), threshold=torch.ones(n),
                              linear_features=n, reset_mechanism="zero", init_hidden=True)
    net = torch.nn.Sequential(torch.nn.Linear(3, n), rsyn)
    path = tmp_path / "r.nir"
    nir.write(str(path), export_to_nir(net, torch.zeros(3)))
    layer = import_nir(path, dt=demo.DT).network.layers[0]
    assert layer.temporal.current == Leak.shift(1) and layer.leak == Leak.shift(2)
    assert layer.temporal.recurrent.shape == (n, n)
    assert layer.name == "1.lif"


def test_delayed_network_imports_with_its_delays_and_agrees(tmp_path):
    torch.set_num_threads(1)
    model = delayed_digits.build(48, 3, seed=2)
    demo.load_state(model, DATA / "delayed-digits-h48-state.npz")
    r = delayed_digits.evaluate(model, 2, tmp_path / "d.nir", weight_bits=10)
    _report(r)
    layer = r["network"].layers[0]
    assert np.array_equal(layer.temporal.delays, model[0].delays.numpy().T)   # exact, per synapse
    assert r["float_accuracy"] > 0.6
    assert r["agreement"] >= 0.93  # measured 97.8 %
    assert abs(r["integer_accuracy"] - r["float_accuracy"]) <= 0.03


@pytest.mark.slow
def test_delayed_demo_keeps_accuracy_within_two_points(tmp_path):
    torch.set_num_threads(1)
    model = delayed_digits.train()
    for bits in (8, 10):
        r = delayed_digits.evaluate(model, 2, tmp_path / "demo.nir", weight_bits=bits)
        _report(r)
        assert r["float_accuracy"] > 0.8
        assert abs(r["integer_accuracy"] - r["float_accuracy"]) <= 0.02


@pytest.mark.slow
def test_temporal_demo_keeps_accuracy_within_two_points(tmp_path):
    torch.set_num_threads(1)
    net = demo.train()
    r = demo.evaluate(net, 2, tmp_path / "demo.nir")
    _report(r)
    assert r["float_accuracy"] > 0.85
    assert abs(r["integer_accuracy"] - r["float_accuracy"]) <= 0.02
