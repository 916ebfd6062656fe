"""A small snnTorch network trained on digits, exported with snnTorch's own NIR exporter, imports
into an integer network that classifies like snnTorch does.

Needs torch (CPU) and snntorch, which spikegate itself does not depend on: without them the test is
skipped, unless SPIKEGATE_REQUIRE_SNNTORCH=1 (set it where they are installed, e.g. in CI), which
turns their absence into a failure.
"""

import nir
import numpy as np
import pytest

from spikegate import datasets
from spikegate.errors import UserError
from spikegate.model import Leak
from spikegate.model.encode import encode
from spikegate.model.simulate import classify, simulate
from spikegate.nir import import_nir

from conftest import require_snntorch

snntorch, torch, export_to_nir = require_snntorch()

from test_nir_digits import simulate_nir  # noqa: E402  (the tests' own float NIR simulation)

T = 16
DT = 1e-4  # snnTorch's exporter writes tau = dt / (1 - beta) and r = tau / dt with this dt


def leaky(n):
    # Per-neuron beta/threshold tensors: snnTorch exports scalar ones with a shape NIR's type check
    # rejects. Zero reset without delay is NIR's "v > v_threshold, then v = v_reset = 0" in the same step.
    return snntorch.Leaky(beta=torch.full((n,), 0.9), threshold=torch.ones(n), learn_beta=False,
                          reset_mechanism="zero", reset_delay=False, init_hidden=True)


def run(net, x):
    from snntorch import utils
    utils.reset(net)
    counts = 0
    for t in range(x.shape[1]):
        spk = net(x[:, t, :])
        spk = spk[0] if isinstance(spk, tuple) else spk
        counts = counts + spk
    return counts


@pytest.fixture(scope="module")
def trained():
    # One thread: the suite runs a test per core, and beside another busy process torch's two
    # spinning threads took 40 s for this 2 s training.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _train()
    finally:
        torch.set_num_threads(threads)


def _train():
    torch.manual_seed(0)
    xtr, ytr = datasets.load("digits", "train")
    s_tr = torch.tensor(encode(xtr, "rate", T), dtype=torch.float32)
    y = torch.tensor(ytr)
    out = leaky(10)
    out.output = True
    net = torch.nn.Sequential(torch.nn.Linear(64, 32), leaky(32), torch.nn.Linear(32, 10), out)
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


def test_snntorch_export_imports_and_classifies_alike(tmp_path, trained):
    xte, yte = datasets.load("digits", "test")
    spikes = encode(xte, "rate", T)
    with torch.no_grad():
        torch_pred = run(trained, torch.tensor(spikes, dtype=torch.float32)).numpy().argmax(axis=1)
        graph = export_to_nir(trained, torch.zeros(64))
    path = tmp_path / "snntorch.nir"
    nir.write(str(path), graph)

    with pytest.raises(UserError, match=r"--dt is required .* suggests --dt 0.0001"):
        import_nir(path)
    res = import_nir(path, dt=DT, timesteps=T)
    net = res.network
    assert net.shape == (64, 32, 10) and not net.readout
    assert [layer.leak for layer in net.layers] == [Leak.multiply(230, 8)] * 2  # beta 0.9 -> 230/256
    int_pred = classify(net, simulate(net, spikes))
    float_pred = simulate_nir(nir.read(str(path)), DT, spikes)
    print(f"snnTorch {np.mean(torch_pred == yte):.3f}, float NIR {np.mean(float_pred == yte):.3f}, "
          f"integer {np.mean(int_pred == yte):.3f}; integer agrees with snnTorch on "
          f"{np.mean(int_pred == torch_pred):.4f}, with float NIR on {np.mean(int_pred == float_pred):.4f}")
    assert np.mean(torch_pred == yte) > 0.9
    assert np.mean(int_pred == torch_pred) >= 0.98
    assert np.mean(int_pred == float_pred) >= 0.98
