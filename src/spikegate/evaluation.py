"""Evaluation of an integer network on a data set: accuracy, activity and accelerator cycles."""
from __future__ import annotations

import numpy as np

from . import datasets
from .model.conv import fan_out
from .model.core import batch_cycles
from .model.encode import SEEDED
from .model.network import Network
from .model.simulate import classify, simulate

__all__ = ["evaluate", "sample_bytes", "batch_size_for", "MEMORY_BUDGET", "MAX_BATCH"]

# Bytes the model may hold for one batch; batches are sized so that they fit (``batch_size_for``).
MEMORY_BUDGET = 256 << 20
# More samples per batch gain nothing measurable: numpy's per-call overhead is already amortised.
MAX_BATCH = 500
# int64 words per neuron a batch sample holds in simulate(): membrane and refractory state plus
# the step's temporaries (integration sum, leak, comparison, reset). Measured with tracemalloc:
# 16-64-100000-10 at T = 32 peaks at 11.4 MB per sample, below this estimate's 12.8 MB.
WORDS_PER_NEURON = 12


def sample_bytes(net: Network) -> int:
    """Estimated peak memory of one sample in a simulate() batch: the input spikes and every
    layer's recorded spikes (one byte per neuron and step) and the per-neuron int64 state and
    temporaries (``WORDS_PER_NEURON``). A 10^6-neuron layer at T = 32 is about 128 MB."""
    neurons = sum(layer.n for layer in net.layers)
    return net.timesteps * (net.n_inputs + neurons) + 8 * WORDS_PER_NEURON * neurons


def batch_size_for(net: Network, budget: int = MEMORY_BUDGET) -> int:
    """Samples per batch so that a batch's estimated memory (:func:`sample_bytes`) stays within
    ``budget`` bytes: at least 1, at most ``MAX_BATCH``."""
    return max(1, min(MAX_BATCH, budget // sample_bytes(net)))


def evaluate(net: Network, x: np.ndarray, y: np.ndarray, *, seed: int = 0, batch_size: int | None = None,
             memory_budget: int = MEMORY_BUDGET, progress=None, lanes: tuple[int, ...] = (),
             predictions: bool = False) -> dict:
    """Run the integer model on a data set: accuracy and activity statistics per sample.

    The input spikes are ``datasets.encode_for(net, x, seed)``. For each lane count in ``lanes``,
    the result also has the accelerator's exact mean cycles per sample (``cycles_per_sample``).
    Samples run in batches of ``batch_size`` (default: :func:`batch_size_for` ``memory_budget``
    bytes); the result does not depend on the batch size. With ``predictions`` the result also
    lists every sample's class (``predictions``) and true label (``labels``).
    """
    x = np.asarray(x)
    n = len(y)
    if batch_size is None:
        batch_size = batch_size_for(net, memory_budget)
    # A seeded encoder's draws depend on the array shape, so encode the whole set at once: the
    # spikes are then exactly datasets.encode_for(net, x, seed), whatever the batch size.
    whole = datasets.encode_for(net, x, seed) if net.encoding in SEEDED else None
    correct = 0
    in_spikes = 0
    layer_spikes = np.zeros(len(net.layers), dtype=np.int64)
    syn_ops = 0
    cycles = {P: 0 for P in lanes}
    classes = []
    for start in range(0, n, batch_size):
        xb, yb = x[start:start + batch_size], y[start:start + batch_size]
        s = whole[start:start + batch_size] if whole is not None else datasets.encode_for(net, xb, seed)
        res = simulate(net, s)
        pred = classify(net, res)
        correct += int(np.sum(pred == yb))
        classes.extend(int(c) for c in pred)
        in_spikes += int(s.sum())
        layer_spikes += np.array([int(sp.sum()) for sp in res.spikes], dtype=np.int64)
        syn_ops += int(res.synaptic_events(s, net).sum())
        for P in lanes:
            cycles[P] += int(batch_cycles(net, P, s, res).sum())
        if progress is not None:
            progress.update(len(yb))
    T = net.timesteps
    sizes = [net.n_inputs] + [layer.n for layer in net.layers]
    spikes = [in_spikes] + [int(c) for c in layer_spikes]
    layers = []
    for i, (name, size, count) in enumerate(zip(["input"] + [layer.name or f"layer{l}" for l, layer in
                                                             enumerate(net.layers)], sizes, spikes)):
        readout = i > 0 and net.layers[i - 1].readout
        layers.append({
            "name": name, "neurons": size,
            "spikes_per_sample": count / n,
            "spike_rate": count / (n * T * size),
            "sparsity": None if readout else 1.0 - count / (n * T * size),
            "readout": readout,
        })
    extra = {"predictions": classes, "labels": [int(c) for c in y]} if predictions else {}
    return {
        "samples": n,
        "timesteps": T,
        "accuracy": correct / n,
        "correct": correct,
        "spikes_per_sample": sum(spikes[1:]) / n,
        "input_spikes_per_sample": in_spikes / n,
        "synaptic_ops_per_sample": syn_ops / n,
        # every synapse once per step: n_in * n for a dense layer, the windows' synapses for conv
        "dense_synaptic_ops_per_sample": T * sum(int(fan_out(layer).sum()) for layer in net.layers),
        "layers": layers,
        "cycles_per_sample": {str(P): c / n for P, c in cycles.items()},
        **extra,
    }
