"""``spikegate train``: train a ReLU MLP, convert it to an integer SNN and save it.

With the defaults it reproduces the built-in digits network bit for bit (training is seeded and
deterministic); the result says whether it did.
"""
from __future__ import annotations

from .. import datasets
from ..checks import check_input_dir, check_output_file
from ..training import DEFAULT_CONFIG, TrainConfig
from ..progress import progress
from ..train_run import TrainResult, train_to_file
from ._common import add_json_argument, emit


def _hidden(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(t) for t in text.split(","))
    except ValueError:
        raise ValueError(f"--hidden = {text!r} is not valid; valid: layer sizes separated by commas, "
                         "e.g. 64 or 128,64") from None
    if not sizes or any(s < 1 for s in sizes):
        raise ValueError(f"--hidden = {text!r} is not valid; valid: positive layer sizes, e.g. 64 or 128,64")
    return sizes


def format_train(r: TrainResult) -> str:
    s = r.snn
    lines = [
        f"trained        {r.data}, {r.train_samples} training samples, shape "
        f"{'-'.join(str(k) for k in r.shape)}, seed {r.seed}",
        f"float ANN      test accuracy {100 * r.ann_accuracy:6.2f} %",
        f"integer SNN    test accuracy {100 * s['accuracy']:6.2f} %  (T={r.timesteps}, "
        f"{r.weight_bits}-bit weights, membranes {r.membrane_bits} bits)",
        f"activity       {s['spikes_per_sample']:.1f} spikes, {s['synaptic_ops_per_sample']:.0f} synaptic ops "
        "per sample",
        f"saved          {r.out}  digest {r.digest[:16]}",
        f"built-in       {'identical to' if r.identical_to_builtin else 'differs from'} the built-in digits network",
    ]
    lines += [f"note           {n}" for n in r.notes]
    return "\n".join(lines)


def run(args) -> int:
    config = TrainConfig(
        data=args.data, hidden=_hidden(args.hidden), timesteps=args.timesteps, weight_bits=args.weight_bits,
        membrane_bits=args.membrane_bits, percentile=args.percentile, seed=args.seed, epochs=args.epochs,
        encoding=args.encoding)
    out = args.out if args.out is not None else f"{args.data}.json"
    check_output_file("--out", out)
    check_input_dir("--data-dir", args.data_dir)
    emit(args, train_to_file(config, out, data_dir=args.data_dir, progress=progress), format_train)
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
    add_json_argument(p)
    p.set_defaults(func=run)
