"""Throughput of the bit-exact integer model (spikegate.model.simulate) on real data, against
snnTorch and spikingjelly (when installed) running the same network on the same spikes, and a
plain per-time-step Python loop, all measured side by side in one run.

    python bench/model_speed.py [--repeat R] [--threads N] [--clock cpu] [--mnist-dir DIR] [--json]

Data: the digits test split with the built-in network, and the shared MNIST subset
(../shared/datasets/mnist-subset next to the checkout, or --mnist-dir) with a 784-128-10
network trained here on the subset's 6,000 training images. MNIST accuracies from the subset are
not comparable with published full-MNIST (60,000 training images) results.

Figures per data set:
- at batch sizes 1, 64 and the whole split, over the whole split, best of R runs, in sample-steps
  per second: the model (from its bool spikes [batch, T, n_in]; encoding excluded), snnTorch and
  spikingjelly (from float32 tensors [T, batch, n_in] prepared outside the timing), and the
  model's ratio to each. Every peer result is compared with the model's (spikes of every layer,
  readout membranes); a peer with any mismatching sample makes its comparison void, and the
  bench says so. See bench/peers.py for how each peer is set up;
- the model with its compiled drive (model/compiled.py, numba) switched off, which then runs its
  numpy paths: the kernel's gain, measured side by side (results checked identical);
- loop: a straightforward Python implementation of the same contract, one sample and one time
  step at a time, integer lists, event-driven over input spikes; run on the first N samples and
  checked against the model (membranes, counts, spikes);
- synaptic events per second (every spike into a layer touches each of its neurons once).
torch and numpy's BLAS both run with --threads threads (default 1).

Peers: snnTorch with CPU torch is the project's ``snntorch`` extra, spikingjelly 2.0 the
``spikingjelly`` extra (same torch pin; ``pip install --no-deps spikingjelly loguru`` next to an
installed torch is the light alternative). A missing peer is reported and left out.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from spikegate import datasets
from peers import PEERS, mismatches, runners
from spikegate.training import TrainConfig, build
from spikegate.model import classify, compiled, simulate

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


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def _best(repeat, fn, clock=time.perf_counter):
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = clock()
        out = fn()
        best = min(best, clock() - t0)
    return best, out


def compare_peers(net, spikes, repeat, batches, clock):
    """Per batch size: sample-steps/s of the model and each installed peer, ratios, mismatches.

    The contenders take turns within each repeat, so a load change on the machine hits them
    alike, in an order shuffled per repeat (seeded), so that none always runs in the caches the
    same other one left; each keeps its best time."""
    N, T = spikes.shape[:2]
    reference = simulate(net, spikes)
    kernel = compiled.ready()
    found, missing = runners(net)
    if found:
        import torch
        x = torch.from_numpy(spikes).float().transpose(0, 1).contiguous()
    rows = []
    for b in batches:
        starts = range(0, N, b)
        jobs = {"spikegate": lambda: _model(net, spikes, starts, b, kernel)}
        if kernel:
            jobs[NUMPY_PATHS] = lambda: _model(net, spikes, starts, b, False)
        for name, run in found.items():
            chunks = [x[:, i:i + b].contiguous() for i in starts]
            jobs[name] = lambda run=run, chunks=chunks: [run(c) for c in chunks]
        best, outs = dict.fromkeys(jobs, float("inf")), {}
        order = np.random.default_rng(b)
        for _ in range(repeat):
            for name in [list(jobs)[i] for i in order.permutation(len(jobs))]:
                sec, outs[name] = _best(1, jobs[name], clock)
                best[name] = min(best[name], sec)
        rate = {name: N * T / sec for name, sec in best.items()}
        row = {"batch": b, "model": rate["spikegate"], "peers": {}}
        if kernel:
            _check_same_results(net, reference, outs[NUMPY_PATHS])
            row["numpy_paths"] = {"sample_steps_per_s": rate[NUMPY_PATHS],
                                  "kernel_gain": rate["spikegate"] / rate[NUMPY_PATHS]}
        for name in found:
            trains = [torch.cat([o[0][l] for o in outs[name]], dim=1) for l in range(len(net.layers))]
            readout = torch.cat([o[1] for o in outs[name]]) if net.layers[-1].readout else None
            bad = mismatches(net, reference, trains, readout)
            row["peers"][name] = {"sample_steps_per_s": rate[name], "ratio": rate["spikegate"] / rate[name],
                                  "mismatches": bad, "void": bad > 0}
        rows.append(row)
    return {"batches": rows, "missing": missing, "kernel": kernel}


NUMPY_PATHS = "spikegate, numpy paths"


def _model(net, spikes, starts, b, kernel):
    """The model over the split in batches of b, with its compiled drive from the first call on
    (``kernel``; what its default mode settles on in a long run) or with its numpy paths alone."""
    with compiled.switched(kernel):
        return [simulate(net, spikes[i:i + b]) for i in starts]


def _check_same_results(net, reference, outs):
    for l in range(len(net.layers)):
        for name in ("spikes", "membranes"):
            got = np.concatenate([getattr(o, name)[l] for o in outs])
            if not np.array_equal(got, getattr(reference, name)[l]):
                raise AssertionError(f"the model's numpy paths and its compiled kernel disagree: layer {l} {name}")


def bench_one(label, net, x, y, repeat, baseline_samples, clock=time.perf_counter):
    spikes = datasets.encode_for(net, x)
    N, T = spikes.shape[:2]
    with compiled.switched(True):
        best, result = _best(repeat, lambda: simulate(net, spikes), clock)
    pred = classify(net, result)
    events = int(result.synaptic_events(spikes, net).sum())
    peers = compare_peers(net, spikes, repeat, sorted({1, 64, N}), clock)
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
            "speedup_sample_steps": model["sample_steps_per_s"] / loop["sample_steps_per_s"], "peers": peers}


def _print_peers(r):
    p = r["peers"]
    for name, why in p["missing"].items():
        print(f"  {name}: not compared: {why}")
    if p["kernel"]:
        print("  spikegate: the compiled drive (model/compiled.py); 'numpy paths': the same model with it "
              "switched off, in the same run")
    else:
        print("  spikegate: numpy paths only (numba is not installed or does not import)")
    names = [n for n in PEERS if n not in p["missing"]]
    head = "".join(f" | {n:>12} sample-steps/s  ratio  mismatches" for n in names)
    own = " | numpy paths sample-steps/s  kernel gain" if p["kernel"] else ""
    print(f"  {'batch':>5} | {'spikegate':>12} sample-steps/s{own}{head}")
    for row in p["batches"]:
        cells = ""
        if p["kernel"]:
            q = row["numpy_paths"]
            cells += f" | {q['sample_steps_per_s']:26,.0f} {q['kernel_gain']:11.1f}x"
        for n in names:
            q = row["peers"][n]
            ratio = "  void" if q["void"] else f"{q['ratio']:5.1f}x"
            cells += f" | {q['sample_steps_per_s']:27,.0f} {ratio} {q['mismatches']:11d}"
        print(f"  {row['batch']:5d} | {row['model']:27,.0f}{cells}")
    if any(q["void"] for row in p["batches"] for q in row["peers"].values()):
        print("  a peer's outputs differ from the model's: its ratio is void (not the same computation)")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--baseline-samples", type=int, default=100, help="samples for the Python loop (default 100)")
    ap.add_argument("--repeat", type=int, default=5, help="runs of each contender, best kept (default 5)")
    ap.add_argument("--mnist-epochs", type=int, default=5, help="training epochs of the MNIST network (default 5)")
    ap.add_argument("--threads", type=int, default=1, help="torch and BLAS threads, the same for all (default 1)")
    ap.add_argument("--clock", choices=sorted(CLOCKS), default="wall",
                    help="wall time, or this process's CPU time (steadier on a loaded machine; all "
                         "contenders run single-threaded with --threads 1)")
    ap.add_argument("--mnist-dir", type=Path, default=MNIST_SUBSET,
                    help=f"the MNIST subset's folder (default {MNIST_SUBSET})")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    for name in ("baseline_samples", "repeat", "mnist_epochs", "threads"):
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')} = {getattr(args, name)} is not valid; valid: an integer >= 1")

    from threadpoolctl import threadpool_limits
    try:
        import torch
        torch.set_num_threads(args.threads)
    except ImportError:
        pass
    with threadpool_limits(args.threads):
        rows = _run(args)
    if args.json:
        print(json.dumps({"threads": args.threads, "clock": args.clock, "rows": rows}, indent=1))
        return 0
    print(f"threads: torch.set_num_threads({args.threads}), numpy BLAS limited to {args.threads}; "
          f"clock: {args.clock}")
    for r in rows:
        m, b = r["model"], r["python_loop"]
        print(f"{r['data']}: shape {'-'.join(map(str, r['shape']))}, T={r['timesteps']}, "
              f"accuracy {100 * r['accuracy']:.2f} %, {r['synaptic_events_per_sample']:.0f} synaptic events/sample")
        _print_peers(r)
        print(f"  model, whole split      {m['samples']:5d} samples in {m['seconds']:8.3f} s: "
              f"{m['sample_steps_per_s']:12,.0f} sample-steps/s  {m['synaptic_events_per_s']:14,.0f} syn-events/s")
        print(f"  plain Python loop       {b['samples']:5d} samples in {b['seconds']:8.3f} s: "
              f"{b['sample_steps_per_s']:12,.0f} sample-steps/s  {b['synaptic_events_per_s']:14,.0f} syn-events/s")
        print(f"  model / loop: {r['speedup_sample_steps']:.1f}x (outputs checked identical on the loop's samples)")
    print("note: MNIST figures use the 6,000/2,000-image subset; its accuracy is not comparable with "
          "full-MNIST results.")
    return 0


def _run(args):
    rows = []
    net = datasets.load_network()
    x, y = datasets.load("digits", "test")
    print("digits: built-in network, test split ...", file=sys.stderr)
    clock = CLOCKS[args.clock]
    rows.append(bench_one("digits test (built-in network)", net, x, y, args.repeat, args.baseline_samples, clock))

    print(f"mnist subset: training a 784-128-10 network ({args.mnist_epochs} epochs) ...", file=sys.stderr)
    mnet, _ = build(TrainConfig(data="mnist", hidden=(128,), epochs=args.mnist_epochs, timesteps=8),
                    data_dir=args.mnist_dir)
    x, y = datasets.load("mnist", "test", args.mnist_dir)
    rows.append(bench_one("mnist-subset test (trained on the 6,000-image subset)", mnet, x, y, args.repeat,
                          args.baseline_samples, clock))
    return rows


if __name__ == "__main__":
    sys.exit(main())
