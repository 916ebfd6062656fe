"""A small snnTorch conv network trained on digits, exported with snnTorch's own NIR exporter
(Conv2d, LIF, Flatten, Affine; and with an AvgPool2d), imports into an integer conv network that
classifies like snnTorch does.

Needs torch (CPU) and snntorch, like test_nir_snntorch.py; SPIKEGATE_REQUIRE_SNNTORCH=1 turns their
absence into a failure. Slow: training takes minutes on a shared 2-core machine.
"""
import functools

import nir
import numpy as np
import pytest

from spikegate import datasets
from spikegate.model.encode import encode
from spikegate.model.simulate import classify, simulate
from spikegate.nir import import_nir

from conftest import require_snntorch

snntorch, torch, export_to_nir = require_snntorch()
from snntorch import utils  # noqa: E402

pytestmark = pytest.mark.slow

T = 16
DT = 1e-4  # snnTorch's exporter writes tau = dt / (1 - beta) and r = tau / dt with this dt


def leaky(shape, output=False):
    # Tensors of the layer's shape: NIR's type check rejects the scalar ones snnTorch would export.
    # Zero reset without delay is NIR's "v > v_threshold, then v = v_reset = 0" in the same step.
    return snntorch.Leaky(beta=torch.full(shape, 0.9), threshold=torch.ones(shape), learn_beta=False,
                          reset_mechanism="zero", reset_delay=False, init_hidden=True, output=output)


def run(net, x):
    utils.reset(net)
    counts = 0
    for t in range(x.shape[1]):
        spk = net(x[:, t].reshape(-1, 1, 8, 8))
        counts = counts + (spk[0] if isinstance(spk, tuple) else spk)
    return counts


@functools.lru_cache(maxsize=None)
def trained(pool: bool):
    torch.manual_seed(0)
    xtr, ytr = datasets.load("digits", "train")
    s_tr = torch.tensor(encode(xtr, "rate", T), dtype=torch.float32)
    y = torch.tensor(ytr)
    if pool:
        mods = [torch.nn.Conv2d(1, 8, 3, stride=1, padding=1), leaky((8, 8, 8)), torch.nn.AvgPool2d(2)]
    else:
        mods = [torch.nn.Conv2d(1, 8, 3, stride=2, padding=1), leaky((8, 4, 4))]
    net = torch.nn.Sequential(*mods, torch.nn.Flatten(), torch.nn.Linear(128, 10), leaky((10,), True))
    opt = torch.optim.Adam(net.parameters(), lr=5e-3)
    gen = torch.Generator().manual_seed(0)
    for _ in range(5):
        perm = torch.randperm(len(y), generator=gen)
        for i in range(0, len(y), 64):
            idx = perm[i:i + 64]
            loss = torch.nn.functional.cross_entropy(run(net, s_tr[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return net


# Strided conv: 98.65 % alike with the default 8-bit import (ties in the output spike counts flip on
# rounding), 100 % with 12-bit weights and leak; both are required. AvgPool2d: the integer pool passes
# the window's spike rate through an integrate-and-fire neuron (README), snnTorch passes count / 4 at
# every step, so they agree less (94.2 % measured).
WIDE = dict(weight_bits=12, membrane_bits=24, leak_frac_bits=12)


@pytest.mark.parametrize("pool, options, agreement", [(False, WIDE, 0.99), (False, {}, 0.98), (True, {}, 0.93)])
def test_snntorch_conv_export_imports_and_classifies_alike(tmp_path, pool, options, agreement):
    net_t = trained(pool)
    xte, yte = datasets.load("digits", "test")
    spikes = encode(xte, "rate", T)
    with torch.no_grad():
        torch_pred = run(net_t, torch.tensor(spikes, dtype=torch.float32)).numpy().argmax(axis=1)
        # ignore_dims drops the batch dimension, without which NIR's shape inference fails on Conv2d.
        graph = export_to_nir(net_t, torch.zeros(1, 1, 8, 8), ignore_dims=[0])
    path = tmp_path / "conv.nir"
    nir.write(str(path), graph)
    net = import_nir(path, dt=DT, timesteps=T, **options).network
    kinds = [layer.conv.kind if layer.conv else "dense" for layer in net.layers]
    assert kinds == (["conv2d", "avgpool2d", "dense"] if pool else ["conv2d", "dense"])
    int_pred = classify(net, simulate(net, spikes))
    print(f"snnTorch {np.mean(torch_pred == yte):.4f}, integer {np.mean(int_pred == yte):.4f}, "
          f"alike {np.mean(int_pred == torch_pred):.4f}")
    assert np.mean(torch_pred == yte) > 0.9
    assert np.mean(int_pred == torch_pred) >= agreement
