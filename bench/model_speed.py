"""Throughput of the bit-exact integer model (spikegate.model.simulate) on real data, against a
plain per-time-step Python loop over the same network, measured side by side in one run.

    python bench/model_speed.py [--baseline-samples N] [--repeat R] [--json]

Data: the digits test split with the built-in network, and the shared MNIST subset
(../shared/datasets/mnist-subset next to the checkout) with a 784-64-10 network trained here on
the subset's 6,000 training images. MNIST accuracies from the subset are not comparable with
published full-MNIST (60,000 training images) results.

Figures per data set:
- model: ``simulate`` over the whole split in batches (input encoding excluded), best of R runs;
- loop: a straightforward Python implementation of the same contract, one sample and one time
  step at a time, integer lists, event-driven over input spikes; run on the first N samples. Its
  outputs are checked against the model's (membranes, counts, spikes), so both compute the same
  thing;
- throughput in samples x steps per second and synaptic events per second (every spike into a
  layer touches each of its neurons once), and the model/loop ratio.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from spikegate import datasets
from spikegate.training import TrainConfig, build
from spikegate.model import classify, simulate

MNIST_SUBSET = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "mnist-subset"


def python_loop(net, spikes: np.ndarray):
    """The contract in plain Python: per sample, per step, per layer; returns final membranes and
    the per-layer spike trains, for checking against the model."""
    layers = []
    for layer in net.layers:
        layers.append(dict(
            w=layer.weights.tolist(), b=layer.bias.tolist(), n=layer.n, theta=layer.threshold,
            lo=-(1 << (layer.membrane_bits - 1)), hi=(1 << (layer.membrane_bits - 1)) - 1,
            leak=layer.leak.kind, k=layer.leak.k, m=layer.leak.m, f=layer.leak.frac_bits,
            sub=layer.reset == "subtract", R=layer.refractory, readout=layer.readout))
    batch, T, _ = spikes.shape
    finals, trains = [], []
    for s in range(batch):
        v = [[0] * L["n"] for L in layers]
        r = [[0] * L["n"] for L in layers]
        train = [[] for _ in layers]
        for t in range(T):
            events = np.flatnonzero(spikes[s, t]).tolist()
            for l, L in enumerate(layers):
                acc = list(L["b"])
                w = L["w"]
                for i in events:
                    row = w[i]
                    for j in range(L["n"]):
                        acc[j] += row[j]
                vl, rl, out = v[l], r[l], []
                for j in range(L["n"]):
                    if rl[j] > 0:
                        rl[j] -= 1
                        continue
                    x = vl[j]
                    if L["leak"] == "shift":
                        x -= x >> L["k"]
                    elif L["leak"] == "multiply":
                        x = (x * L["m"]) >> L["f"]
                    x = min(max(x + acc[j], L["lo"]), L["hi"])
                    if not L["readout"] and x > L["theta"]:
                        out.append(j)
                        x = x - L["theta"] if L["sub"] else 0
                        rl[j] = L["R"]
                    vl[j] = x
                train[l].append(out)
                events = out
        finals.append(v)
        trains.append(train)
    return finals, trains


def _check_same(net, spikes, finals, trains):
    res = simulate(net, spikes)
    for s in range(spikes.shape[0]):
        for l in range(len(net.layers)):
            if list(res.membranes[l][s]) != finals[s][l]:
                raise AssertionError(f"python loop and model disagree: sample {s}, layer {l} membranes")
            for t in range(spikes.shape[1]):
                if np.flatnonzero(res.spikes[l][s, t]).tolist() != trains[s][l][t]:
                    raise AssertionError(f"python loop and model disagree: sample {s}, layer {l}, step {t}")


def bench_one(label, net, x, y, repeat, baseline_samples, batch_size=500):
    spikes = datasets.encode_for(net, x)
    N, T = spikes.shape[:2]
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        results = [simulate(net, spikes[i:i + batch_size]) for i in range(0, N, batch_size)]
        best = min(best, time.perf_counter() - t0)
    pred = np.concatenate([classify(net, r) for r in results])
    events = int(sum(r.synaptic_events(spikes[i * batch_size:(i + 1) * batch_size], net).sum()
                     for i, r in enumerate(results)))
    nb = min(baseline_samples, N)
    sb = spikes[:nb]
    t0 = time.perf_counter()
    finals, trains = python_loop(net, sb)
    loop_s = time.perf_counter() - t0
    _check_same(net, sb, finals, trains)
    events_b = int(simulate(net, sb).synaptic_events(sb, net).sum())
    model = {"seconds": best, "samples": N, "sample_steps_per_s": N * T / best, "synaptic_events_per_s": events / best}
    loop = {"seconds": loop_s, "samples": nb, "sample_steps_per_s": nb * T / loop_s,
            "synaptic_events_per_s": events_b / loop_s}
    return {"data": label, "shape": list(net.shape), "timesteps": T, "accuracy": float(np.mean(pred == y)),
            "synaptic_events_per_sample": events / N, "model": model, "python_loop": loop,
            "speedup_sample_steps": model["sample_steps_per_s"] / loop["sample_steps_per_s"]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--baseline-samples", type=int, default=100, help="samples for the Python loop (default 100)")
    ap.add_argument("--repeat", type=int, default=3, help="model runs per data set, best kept (default 3)")
    ap.add_argument("--mnist-epochs", type=int, default=5, help="training epochs of the MNIST network (default 5)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    for name in ("baseline_samples", "repeat", "mnist_epochs"):
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')} = {getattr(args, name)} is not valid; valid: an integer >= 1")

    rows = []
    net = datasets.load_network()
    x, y = datasets.load("digits", "test")
    print("digits: built-in network, test split ...", file=sys.stderr)
    rows.append(bench_one("digits test (built-in network)", net, x, y, args.repeat, args.baseline_samples))

    print(f"mnist subset: training a 784-64-10 network ({args.mnist_epochs} epochs) ...", file=sys.stderr)
    mnet, _ = build(TrainConfig(data="mnist", hidden=(64,), epochs=args.mnist_epochs, timesteps=8),
                    data_dir=MNIST_SUBSET)
    x, y = datasets.load("mnist", "test", MNIST_SUBSET)
    rows.append(bench_one("mnist-subset test (trained on the 6,000-image subset)", mnet, x, y, args.repeat,
                          args.baseline_samples))

    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    for r in rows:
        m, b = r["model"], r["python_loop"]
        print(f"{r['data']}: shape {'-'.join(map(str, r['shape']))}, T={r['timesteps']}, "
              f"accuracy {100 * r['accuracy']:.2f} %, {r['synaptic_events_per_sample']:.0f} synaptic events/sample")
        print(f"  model (numpy, batched)  {m['samples']:5d} samples in {m['seconds']:8.3f} s: "
              f"{m['sample_steps_per_s']:12,.0f} sample-steps/s  {m['synaptic_events_per_s']:14,.0f} syn-events/s")
        print(f"  plain Python loop       {b['samples']:5d} samples in {b['seconds']:8.3f} s: "
              f"{b['sample_steps_per_s']:12,.0f} sample-steps/s  {b['synaptic_events_per_s']:14,.0f} syn-events/s")
        print(f"  model / loop: {r['speedup_sample_steps']:.1f}x (outputs checked identical on the loop's samples)")
    print("note: MNIST figures use the 6,000/2,000-image subset; its accuracy is not comparable with "
          "full-MNIST results.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
