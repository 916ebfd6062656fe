"""Temporal demo with synaptic delays: digits read row by row through delayed synapses.

The task and encoding are bench/temporal_digits.py's. The hidden layer's input synapses have fixed
random delays of 0..``max_delay`` steps (one per synapse), so each hidden neuron sees several rows
at once; only the weights are trained (snnTorch ``Leaky`` and ``Synaptic`` neurons, BPTT):

    Linear(8, H) with delays D[j, i] -> Leaky(H) -> Linear(H, 10) -> Synaptic(10)

snnTorch's NIR exporter has no delays, so the graph is written with the ``nir`` API the way NIR
expresses per-synapse delays: one ``Delay -> Linear`` path per delay value into the LIF node (the
neuron parameters as snnTorch's exporter writes them, dt = 1e-4). It is imported with spikegate's
rules and run in the bit-exact model; float and integer accuracy are printed side by side.
The default run (seed 0, 8 bits) is checked in as tests/data/delayed-digits-w8.json;
``python bench/temporal_hw.py NET.json`` gives its cycles per sample and memories on the
accelerator (per-delay accumulator slots, README "Temporal layers").

    python bench/delayed_digits.py [--hidden 128] [--max-delay 4] [--epochs 30] [--out DIR]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from temporal_digits import DT, compare, counts, fit, report, save_state


def build(hidden: int, max_delay: int, seed: int):
    import snntorch as snn
    import torch

    class DelayedLinear(torch.nn.Module):
        """``y[:, t, j] = b_j + sum_i W[j, i] x[:, t - D[j, i], i]`` over a whole sequence."""

        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(8, hidden)
            gen = torch.Generator().manual_seed(seed)
            self.register_buffer("delays", torch.randint(0, max_delay + 1, (hidden, 8), generator=gen))

        def forward(self, x):
            T = x.shape[1]
            y = self.fc.bias.expand(x.shape[0], T, hidden).clone()
            for d in self.delays.unique().tolist():
                if d < T:
                    w = self.fc.weight * (self.delays == d)
                    y[:, d:] = y[:, d:] + x[:, :T - d] @ w.T
            return y

    lif = snn.Leaky(beta=torch.full((hidden,), 0.9), threshold=torch.ones(hidden), learn_beta=False,
                    reset_mechanism="zero", reset_delay=False, init_hidden=True)
    out = snn.Synaptic(alpha=torch.full((10,), 0.8), beta=torch.full((10,), 0.9), threshold=torch.ones(10),
                       learn_alpha=False, learn_beta=False, reset_mechanism="zero", reset_delay=False,
                       init_hidden=True, output=True)
    return DelayedLinear(), torch.nn.Sequential(lif, torch.nn.Linear(hidden, 10), out)


def run(model, spikes):
    """Output spike counts [N, 10] for spikes [N, T, 8] (a float tensor)."""
    delayed, rest = model
    return counts(rest, delayed(spikes))


def train(hidden=128, steps_per_row=2, max_delay=4, epochs=30, seed=0, lr=5e-3, progress=None):
    import torch
    torch.manual_seed(seed)
    model = build(hidden, max_delay, seed)
    fit(list(model[0].parameters()) + list(model[1].parameters()), lambda x: run(model, x), steps_per_row,
        epochs, seed, lr, progress)
    return model


def to_nir(model):
    """The trained model as a NIR graph: one Delay -> Linear path per delay value into the LIF."""
    import nir
    delayed, rest = model
    W = delayed.fc.weight.detach().numpy().astype(np.float64)
    b = delayed.fc.bias.detach().numpy().astype(np.float64)
    D = delayed.delays.numpy()
    hidden = W.shape[0]
    lif, fc2, syn = rest[0], rest[1], rest[2]
    beta = lif.beta.detach().numpy().astype(np.float64)
    tau = DT / (1 - beta)
    nodes = {"input": nir.Input(input_type={"input": np.array([8])}),
             "lif": nir.LIF(tau=tau, r=tau / DT, v_leak=np.zeros(hidden), v_threshold=np.ones(hidden),
                            v_reset=np.zeros(hidden)),
             "fc2": nir.Affine(weight=fc2.weight.detach().numpy().astype(np.float64),
                               bias=fc2.bias.detach().numpy().astype(np.float64))}
    alpha, beta2 = syn.alpha.detach().numpy().astype(np.float64), syn.beta.detach().numpy().astype(np.float64)
    tau_syn, tau_mem = DT / (1 - alpha), DT / (1 - beta2)
    nodes["out_syn"] = nir.CubaLIF(tau_syn=tau_syn, tau_mem=tau_mem, r=tau_mem / DT, v_leak=np.zeros(10),
                                   v_threshold=np.ones(10), v_reset=np.zeros(10), w_in=tau_syn / DT)
    nodes["output"] = nir.Output(output_type={"output": np.array([10])})
    edges = [("lif", "fc2"), ("fc2", "out_syn"), ("out_syn", "output")]
    for k, d in enumerate(np.unique(D)):
        w = np.where(D == d, W, 0.0)
        nodes[f"fc_d{d}"] = nir.Affine(weight=w, bias=b) if k == 0 else nir.Linear(weight=w)
        if d:
            nodes[f"delay{d}"] = nir.Delay(delay=np.full(8, d * DT))
            edges += [("input", f"delay{d}"), (f"delay{d}", f"fc_d{d}")]
        else:
            edges.append(("input", f"fc_d{d}"))
        edges.append((f"fc_d{d}", "lif"))
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


def evaluate(model, steps_per_row: int, path, **import_options) -> dict:
    """Write the model as NIR (:func:`to_nir`) to ``path``, import it and compare (see
    :func:`temporal_digits.compare`)."""
    import torch
    with torch.no_grad():
        graph = to_nir(model)
    r = compare(lambda x: run(model, x), graph, steps_per_row, path, **import_options)
    r["max_delay"] = r["network"].layers[0].temporal.max_delay
    return r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--steps-per-row", type=int, default=2)
    ap.add_argument("--max-delay", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--weight-bits", type=lambda v: [int(b) for b in v.split(",")], default=[8, 10])
    ap.add_argument("--out", default="delayed-digits")
    args = ap.parse_args()
    import torch
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    model = train(args.hidden, args.steps_per_row, args.max_delay, args.epochs, args.seed,
                  progress=lambda m: print(f"  {m} ({time.time() - t0:.0f} s)", flush=True))
    save_state(model, out / "delayed-digits-state.npz")
    for bits in args.weight_bits:
        r = evaluate(model, args.steps_per_row, out / "delayed-digits.nir", weight_bits=bits)
        r.pop("network").save(out / f"delayed-digits-w{bits}.json")
        print(json.dumps(r))
        print(report(r, f"delayed digits (delays 0..{r['max_delay']})", bits), flush=True)

if __name__ == "__main__":
    main()
