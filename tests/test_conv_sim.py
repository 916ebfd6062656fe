"""Conv networks' generated Verilog in Verilator against the model (spikes of every layer at every
step, the output layer's membranes and counts) and the twin's exact cycle count."""
from pathlib import Path

import numpy as np
import pytest

from spikegate import datasets
from spikegate.model.conv_eval import conv2d_layer
from spikegate.model.core import NetworkCore as CoreTwin, batch_cycles
from spikegate.model.hardware import HardwareConfig
from spikegate.model.network import Layer, Network
from spikegate.model.simulate import classify, simulate
from spikegate.sim.core import CoreSim, Expected
from test_conv_twin import _random_pool


def random_conv_network(seed: int, pool: bool = False) -> Network:
    """conv -> conv -> dense on a small random map: borders, strides, padding, ragged channel groups;
    with ``pool`` a sumpool2d/avgpool2d layer after each conv layer."""
    rng = np.random.default_rng(seed)
    shape, layers = (int(rng.integers(1, 3)), int(rng.integers(5, 9)), int(rng.integers(5, 9))), []
    for i in range(2):
        if pool and i:
            layers.append(_random_pool(rng, shape))
            shape = layers[-1].conv.out_shape
        k = [int(rng.integers(2, 4)) for _ in range(2)]
        p = [int(rng.integers(0, kk)) for kk in k]
        s = [int(rng.integers(1, 3)) for _ in range(2)]
        co, wb = int(rng.integers(2, 7)), int(rng.integers(3, 7))
        hi = 1 << (wb - 1)
        layer = conv2d_layer(rng.integers(-hi, hi, (co, shape[0], *k)), shape, stride=s, padding=p,
                             bias=rng.integers(-2, 3, co), threshold=int(rng.integers(hi // 2, 2 * hi)),
                             weight_bits=wb, membrane_bits=wb + 5, reset=str(rng.choice(["zero", "subtract"])),
                             refractory=int(rng.integers(0, 3)))
        layers.append(layer)
        shape = layer.conv.out_shape
    layers.append(Layer(weights=rng.integers(-8, 8, (layers[-1].n, 5)), weight_bits=4, membrane_bits=14,
                        readout=bool(seed % 2), threshold=0 if seed % 2 else 6))
    return Network(layers, timesteps=int(rng.integers(2, 6)))


@pytest.mark.parametrize("seed,lanes,pool", [(1, 1, False), (2, 2, False), (5, 2, True),
                                             pytest.param(3, 4, False, marks=pytest.mark.slow),
                                             pytest.param(4, 8, False, marks=pytest.mark.slow),
                                             pytest.param(6, 4, True, marks=pytest.mark.slow)])
def test_random_conv_network_verilator(seed, lanes, pool):
    net = random_conv_network(seed, pool)
    rng = np.random.default_rng(seed + 100)
    spikes = rng.random((5, net.timesteps, net.n_inputs)) < rng.uniform(0.1, 0.6, (5, 1, 1))
    spikes = np.concatenate([spikes, np.zeros_like(spikes[:1]), np.ones_like(spikes[:1])])
    sim = CoreSim(net, lanes=lanes, simulator="verilator")
    hw, exp, mismatches = sim.check(spikes)
    assert not mismatches, "\n".join(str(m) for m in mismatches[:10])
    assert hw.samples_done == len(spikes)
    np.testing.assert_array_equal(hw.cycles, exp.cycles)
    assert any(s.any() for s in exp.spikes[:2]) and exp.cycles.min() > 0


MNIST_SUBSET = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "mnist-subset"
MNIST_CONV = Path(__file__).parent / "data" / "mnist-conv-8-16.json"
# The one built for the iCEBreaker (README "A conv network on the iCEBreaker": --convs 16:7:3:0)
MNIST_CONV_ICEBREAKER = Path(__file__).parent / "data" / "mnist-conv-16k7s3.json"


@pytest.mark.slow
@pytest.mark.parametrize("path,lanes", [(MNIST_CONV, 4), (MNIST_CONV_ICEBREAKER, 1)], ids=["8-16", "16k7s3"])
def test_mnist_conv_network_whole_test_split_verilator(path, lanes):
    # The checked-in MNIST conv SNNs (README "Convolutional layers": spikegate train --arch conv --channels
    # 8,16, and --convs 16:7:3:0 at the lanes of its iCEBreaker build) on all 2,000 test images: every layer's spikes at every step, the readout's
    # membranes and counts against the vectorised model, the core's cycle counter against the documented
    # formula (batch_cycles, vectorised; the twin, ~4 s a sample, is held to it on the first samples).
    net = Network.load(path)
    x, y = datasets.load("mnist", "test", MNIST_SUBSET)
    spikes = datasets.encode_for(net, x)
    res = simulate(net, spikes)
    assert len(y) == 2000 and (classify(net, res) == y).mean() >= 0.98
    cycles = batch_cycles(net, lanes, spikes, res)
    twin = CoreTwin(net, HardwareConfig(lanes=lanes))
    assert [twin.run(s).cycles for s in spikes[:2]] == cycles[:2].tolist()
    exp = Expected(spikes=res.spikes, membranes=res.membranes[-1].copy(), counts=res.counts, cycles=cycles)
    hw, exp, mismatches = CoreSim(net, lanes=lanes).check(spikes, expected=exp)
    assert not mismatches, "\n".join(str(m) for m in mismatches[:10])
    assert hw.samples_done == len(spikes)
    np.testing.assert_array_equal(hw.cycles, cycles)
    np.testing.assert_array_equal(np.argmax(hw.membranes, axis=1), classify(net, res))
