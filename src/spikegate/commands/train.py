"""``spikegate train``: train a ReLU MLP, convert it to an integer SNN and save it.

With the defaults it reproduces the built-in digits network bit for bit (training is seeded and
deterministic); the result says whether it did.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from .. import datasets
from ..training import DEFAULT_CONFIG, TrainConfig, build
from ..progress import note, progress
from .model import MNIST_NOTE


def _hidden(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(t) for t in text.split(","))
    except ValueError:
        raise ValueError(f"--hidden = {text!r} is not valid; valid: layer sizes separated by commas, "
                         "e.g. 64 or 128,64") from None
    if not sizes or any(s < 1 for s in sizes):
        raise ValueError(f"--hidden = {text!r} is not valid; valid: positive layer sizes, e.g. 64 or 128,64")
    return sizes


def run(args) -> int:
    config = TrainConfig(
        data=args.data, hidden=_hidden(args.hidden), timesteps=args.timesteps, weight_bits=args.weight_bits,
        membrane_bits=args.membrane_bits, percentile=args.percentile, seed=args.seed, epochs=args.epochs,
        encoding=args.encoding).check()
    if config.data == "mnist" and args.data_dir is None:
        raise ValueError("--data-dir is required for --data mnist: give the directory holding the IDX files "
                         "(train-images-idx3-ubyte[.gz], t10k-images-idx3-ubyte[.gz], ...)")
    out = Path(args.out if args.out is not None else f"{args.data}.json")
    if out.is_dir():
        raise ValueError(f"--out = {str(out)!r} is a directory; valid: a file path")
    if not out.parent.exists():
        raise FileNotFoundError(f"--out = {str(out)!r}: directory {str(out.parent)!r} does not exist")
    net, report = build(config, data_dir=args.data_dir, progress=progress)
    net.save(out)
    # Network.save writes through a private temporary file (mode 0600); give the result the usual
    # permissions of a new file.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(out, 0o666 & ~umask)
    note(f"wrote {out}")
    builtin = datasets.load_network(None)
    identical = builtin == net
    notes = [MNIST_NOTE] if config.data == "mnist" and net.meta["train_samples"] < 60000 else []
    result = {"out": str(out), "data": config.data, "shape": report["shape"], "timesteps": config.timesteps,
              "ann_accuracy": report["ann_accuracy"], "snn_accuracy": report["snn"]["accuracy"],
              "snn": report["snn"], "digest": report["digest"],
              "membrane_bits": [layer.membrane_bits for layer in net.layers],
              "identical_to_builtin": identical, "notes": notes}
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    s = report["snn"]
    print(f"trained        {config.data}, {net.meta['train_samples']} training samples, shape "
          f"{'-'.join(str(k) for k in report['shape'])}, seed {config.seed}")
    print(f"float ANN      test accuracy {100 * report['ann_accuracy']:6.2f} %")
    print(f"integer SNN    test accuracy {100 * s['accuracy']:6.2f} %  (T={config.timesteps}, "
          f"{config.weight_bits}-bit weights, membranes {result['membrane_bits']} bits)")
    print(f"activity       {s['spikes_per_sample']:.1f} spikes, {s['synaptic_ops_per_sample']:.0f} synaptic ops "
          "per sample")
    print(f"saved          {out}  digest {report['digest'][:16]}")
    print(f"built-in       {'identical to' if identical else 'differs from'} the built-in digits network")
    for n in notes:
        print(f"note           {n}")
    return 0


def register(subparsers) -> None:
    d = DEFAULT_CONFIG
    p = subparsers.add_parser(
        "train", help="train a ReLU MLP and convert it to an integer SNN",
        description="Train a ReLU MLP on a data set (deterministic for a seed), convert it to an integer SNN "
                    "with data-based (percentile) normalisation, quantise it and save it. The defaults "
                    "reproduce the built-in digits network exactly.")
    p.add_argument("--data", choices=datasets.DATASETS, default=d.data, help="data set (default: digits)")
    p.add_argument("--data-dir", metavar="DIR", default=None, help="directory with the MNIST IDX files")
    p.add_argument("--out", metavar="FILE", default=None, help="output network file (default: <data>.json)")
    p.add_argument("--hidden", default=",".join(str(h) for h in d.hidden),
                   help=f"hidden layer sizes, comma-separated (default: {','.join(str(h) for h in d.hidden)})")
    p.add_argument("--timesteps", type=int, default=d.timesteps, help=f"time steps T (default: {d.timesteps})")
    p.add_argument("--weight-bits", type=int, default=d.weight_bits,
                   help=f"signed weight width (default: {d.weight_bits})")
    p.add_argument("--membrane-bits", type=int, default=None,
                   help="membrane width for every layer (default: per layer, from the training set's range)")
    p.add_argument("--percentile", type=float, default=d.percentile,
                   help=f"activation percentile used for normalisation (default: {d.percentile})")
    p.add_argument("--epochs", type=int, default=d.epochs, help=f"training epochs (default: {d.epochs})")
    p.add_argument("--encoding", choices=("rate", "poisson"), default=d.encoding,
                   help=f"input encoding (default: {d.encoding})")
    p.add_argument("--seed", type=int, default=d.seed, help=f"random seed (default: {d.seed})")
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    p.set_defaults(func=run)
