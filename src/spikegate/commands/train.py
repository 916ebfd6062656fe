"""``spikegate train``: train a ReLU MLP, convert it to an integer SNN and save it.

With the defaults it reproduces the built-in digits network bit for bit (training is seeded and
deterministic); the result says whether it did.
"""
from __future__ import annotations

from .. import datasets
from ..checks import check_input_dir, check_output_file
from ..conv_train import DEFAULT_CONV_CONFIG, ConvTrainConfig
from ..training import DEFAULT_CONFIG, TrainConfig
from ..progress import progress
from ..train_run import TrainResult, train_to_file
from ._common import add_json_argument, emit


def _hidden(text: str, option: str = "--hidden", what: str = "layer sizes", example: str = "64 or 128,64"
            ) -> tuple[int, ...]:
    try:
        sizes = tuple(int(t) for t in text.split(","))
    except ValueError:
        raise ValueError(f"{option} = {text!r} is not valid; valid: {what} separated by commas, "
                         f"e.g. {example}") from None
    if not sizes or any(s < 1 for s in sizes):
        raise ValueError(f"{option} = {text!r} is not valid; valid: positive {what}, e.g. {example}")
    return sizes


def _convs(text: str) -> tuple[tuple[int, ...], ...]:
    try:
        layers = tuple(tuple(int(v) for v in t.split(":")) for t in text.split(","))
    except ValueError:
        raise ValueError(f"--convs = {text!r} is not valid; valid: conv layers channels:kernel:stride:padding "
                         "separated by commas, e.g. 8:5:3:1,16:3:2:0") from None
    return layers


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
    if r.arch == "conv":
        z = r.sizes
        lines[-1] = (f"training       {r.train_seconds:.0f} s; on chip: {z['total_weight_words']} weight words "
                     f"({z['total_weight_bits']} bits), {z['total_membranes']} membranes ({z['total_membrane_bits']} bits)")
        lines += [f"  {l['name']:<12} {l['kind']:<9} {l['weight_words']:>6} weight words  {l['membranes']:>6} membranes"
                  for l in z["layers"]]
    lines += [f"note           {n}" for n in r.notes]
    return "\n".join(lines)


def run(args) -> int:
    conv = args.arch == "conv"
    d = DEFAULT_CONV_CONFIG if conv else DEFAULT_CONFIG
    given = lambda value, default: default if value is None else value  # noqa: E731
    common = dict(data=given(args.data, d.data), timesteps=given(args.timesteps, d.timesteps),
                  weight_bits=args.weight_bits, membrane_bits=args.membrane_bits, percentile=args.percentile,
                  seed=args.seed, epochs=given(args.epochs, d.epochs), encoding=args.encoding)
    if conv:
        config = ConvTrainConfig(channels=_hidden(args.channels, "--channels", "channel counts", "16,32"),
                                 layers=None if args.convs is None else _convs(args.convs), **common)
    else:
        config = TrainConfig(hidden=_hidden(args.hidden), **common)
    args.data = config.data
    out = args.out if args.out is not None else f"{args.data}{'-conv' if conv else ''}.json"
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
    p.add_argument("--arch", choices=("mlp", "conv"), default="mlp",
                   help="mlp: a ReLU MLP (--hidden); conv: a ReLU CNN of strided 5x5 convolutions (--channels) "
                        "and a dense readout, converted to conv2d layers (default: mlp)")
    p.add_argument("--data", choices=datasets.DATASETS, default=None,
                   help="data set (default: digits; mnist with --arch conv)")
    p.add_argument("--channels", default=",".join(map(str, DEFAULT_CONV_CONFIG.channels)),
                   help=f"--arch conv: channels of each conv layer (default: "
                        f"{','.join(map(str, DEFAULT_CONV_CONFIG.channels))})")
    p.add_argument("--convs", default=None, metavar="C:K:S:P,...",
                   help="--arch conv: each conv layer's channels, kernel, stride and padding instead of "
                        "--channels with 5x5 stride-2 kernels (e.g. 8:5:3:1,16:3:2:0)")
    p.add_argument("--data-dir", metavar="DIR", default=None, help="directory with the MNIST IDX files")
    p.add_argument("--out", metavar="FILE", default=None, help="output network file (default: <data>.json)")
    p.add_argument("--hidden", default=",".join(str(h) for h in d.hidden),
                   help=f"hidden layer sizes, comma-separated (default: {','.join(str(h) for h in d.hidden)})")
    p.add_argument("--timesteps", type=int, default=None,
                   help=f"time steps T (default: {d.timesteps}; {DEFAULT_CONV_CONFIG.timesteps} with --arch conv)")
    p.add_argument("--weight-bits", type=int, default=d.weight_bits,
                   help=f"signed weight width (default: {d.weight_bits})")
    p.add_argument("--membrane-bits", type=int, default=None,
                   help="membrane width for every layer (default: per layer, from the training set's range)")
    p.add_argument("--percentile", type=float, default=d.percentile,
                   help=f"activation percentile used for normalisation (default: {d.percentile})")
    p.add_argument("--epochs", type=int, default=None,
                   help=f"training epochs (default: {d.epochs}; {DEFAULT_CONV_CONFIG.epochs} with --arch conv)")
    p.add_argument("--encoding", choices=("rate", "poisson"), default=d.encoding,
                   help=f"input encoding (default: {d.encoding})")
    p.add_argument("--seed", type=int, default=d.seed, help=f"random seed (default: {d.seed})")
    add_json_argument(p)
    p.set_defaults(func=run)
