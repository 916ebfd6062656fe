"""``spikegate model``: run the bit-exact integer model on a data set and report accuracy and
activity (spikes, synaptic operations, sparsity). The helpers here are shared with ``demo``."""
from __future__ import annotations

import argparse
import json

from .. import datasets
from ..ann import ann_from_network
from ..evaluation import evaluate
from ..progress import progress

MNIST_NOTE = ("MNIST subset: trained on fewer than the official 60,000 training images, so this "
              "accuracy is not comparable with published full-MNIST results")


def add_net_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--net", metavar="FILE", default=None,
                   help="network file (default: the built-in digits network)")


def add_data_arguments(p: argparse.ArgumentParser, data_default=None) -> None:
    p.add_argument("--data", choices=datasets.DATASETS, default=data_default,
                   help="data set (default: the one the network was trained on, else digits)")
    p.add_argument("--data-dir", metavar="DIR", default=None,
                   help="directory with the MNIST IDX files (train-images-idx3-ubyte[.gz], ...)")
    p.add_argument("--split", choices=datasets.SPLITS, default="test", help="data split (default: test)")
    p.add_argument("--samples", metavar="N", type=int, default=None,
                   help="use only the first N samples of the split (default: all)")
    p.add_argument("--seed", type=int, default=0, help="seed of the poisson encoder (default: 0)")


def network_summary(net, path) -> dict:
    return {"file": "built-in" if path is None else str(path), "name": net.name, "shape": list(net.shape),
            "timesteps": net.timesteps, "encoding": net.encoding, "readout": net.readout,
            "digest": net.digest()}


def load_data(net, data, split="test", data_dir=None, samples=None):
    """The data set a command runs ``net`` on: ``(name, x, y)``. ``data`` None means the one the
    network was trained on (digits when unknown); ``samples`` keeps only the first N."""
    if data is None:
        data = net.meta.get("dataset", "digits") if isinstance(net.meta, dict) else "digits"
        if data not in datasets.DATASETS:
            data = "digits"
    if samples is not None and (isinstance(samples, bool) or samples < 1):
        raise ValueError(f"--samples = {samples} is not valid; valid: an integer >= 1")
    if data == "mnist" and data_dir is None:
        raise ValueError("--data-dir is required for the mnist data set: give the directory holding the IDX "
                         "files (train-images-idx3-ubyte[.gz], t10k-images-idx3-ubyte[.gz], ...)")
    x, y = datasets.load(data, split, data_dir)
    if x.shape[1] != net.n_inputs:
        raise ValueError(f"the network has {net.n_inputs} inputs but data set {data!r} has {x.shape[1]} "
                         f"features per sample: pick the data set the network was made for")
    if samples is not None:
        x, y = x[:samples], y[:samples]
    return data, x, y


def evaluate_on_data(net, net_path, data, split="test", data_dir=None, samples=None, seed=0,
                     lanes=()) -> dict:
    """Everything ``model`` and ``demo`` report, as one JSON-able dict."""
    data, x, y = load_data(net, data, split, data_dir, samples)
    ann = ann_from_network(net)
    ann_acc = ann.accuracy(x, y) if ann is not None else None
    with progress(len(y), f"integer model on {data} {split}", unit="samples") as p:
        stats = evaluate(net, x, y, seed=seed, progress=p, lanes=lanes)
    notes = []
    if data == "mnist":
        train_n = net.meta.get("train_samples") if isinstance(net.meta, dict) else None
        if not isinstance(train_n, int) or train_n < 60000:
            notes.append(MNIST_NOTE)
    if ann is None:
        notes.append("the network file carries no float ANN (meta.ann), so there is no ANN accuracy to compare")
    return {"network": network_summary(net, net_path), "data": data, "split": split,
            "ann_accuracy": ann_acc, "snn": stats, "notes": notes}


def format_report(r: dict) -> str:
    n, s = r["network"], r["snn"]
    shape = "-".join(str(k) for k in n["shape"])
    lines = [
        f"network        {n['name'] or '(unnamed)'} [{n['file']}]  {shape}  T={n['timesteps']}  "
        f"{n['encoding']} encoding  digest {n['digest'][:16]}",
        f"data           {r['data']} {r['split']} split, {s['samples']} samples",
    ]
    if r["ann_accuracy"] is not None:
        lines.append(f"float ANN      accuracy {100 * r['ann_accuracy']:6.2f} %")
    lines.append(f"integer SNN    accuracy {100 * s['accuracy']:6.2f} %  ({s['correct']}/{s['samples']}, "
                 f"{s['timesteps']} time steps)")
    lines.append(f"spikes/sample  {s['spikes_per_sample']:.1f} in the network, "
                 f"{s['input_spikes_per_sample']:.1f} input spikes")
    for i, layer in enumerate(s["layers"]):
        what = "inputs " if i == 0 else "neurons"
        if layer["readout"]:
            lines.append(f"  {layer['name']:<12} {layer['neurons']:5d} {what}  readout (membrane, no spikes)")
        else:
            lines.append(f"  {layer['name']:<12} {layer['neurons']:5d} {what}  {layer['spikes_per_sample']:8.1f} "
                         f"spikes/sample  rate {layer['spike_rate']:.3f}/step  sparsity {layer['sparsity']:.3f}")
    dense = s["dense_synaptic_ops_per_sample"]
    lines.append(f"synaptic ops   {s['synaptic_ops_per_sample']:.0f} per sample (a dense, frame-based pass would "
                 f"do {dense}: {100 * s['synaptic_ops_per_sample'] / dense:.1f} %)")
    for note in r["notes"]:
        lines.append(f"note           {note}")
    return "\n".join(lines)


def run(args) -> int:
    net = datasets.load_network(args.net)
    r = evaluate_on_data(net, args.net, args.data, args.split, args.data_dir, args.samples, args.seed)
    print(json.dumps(r, indent=1) if args.json else format_report(r))
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "model", help="accuracy and activity of the integer model on a data set",
        description="Run the bit-exact integer model of a network on a data set split and report its "
                    "accuracy, the float ANN's accuracy (when the file carries it), spikes per sample per "
                    "layer, synaptic operations per sample and sparsity.")
    add_net_argument(p)
    add_data_arguments(p)
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    p.set_defaults(func=run)
