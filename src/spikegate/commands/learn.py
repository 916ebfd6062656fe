"""``spikegate learn``: learn a data set in the model with STDP (or reward-modulated STDP), winner-take-all
and adaptive thresholds, label the neurons, report the test accuracy and save the network."""
from __future__ import annotations

from pathlib import Path

from .. import datasets
from ..checks import check_input_dir
from ..errors import UserError
from ..learn_run import RULES, EpochReport, LearnConfig, LearnReport, learn_to_file
from ..progress import format_seconds, note, progress
from ._common import add_json_argument, emit


def format_learn(r: LearnReport) -> str:
    lines = [
        f"learned        {r.data} by {r.rule}, {r.neurons} neurons (winner-take-all, adaptive thresholds), "
        f"{r.epochs} epoch(s) over {r.train_samples} training samples, seed {r.seed}, T={r.timesteps}",
        f"test accuracy  {100 * r.accuracy:6.2f} %  ({r.test_samples} test samples; {r.labelled_neurons} neurons "
        "labelled on the training split)",
        f"time           learning {format_seconds(r.train_seconds)}, labelling and test {format_seconds(r.eval_seconds)}",
        f"saved          {r.out}  digest {r.digest[:16]}",
    ]
    if r.plot:
        lines.append(f"fields         {r.plot}")
    lines += [f"note           {n}" for n in r.notes]
    return "\n".join(lines)


def _epoch_line(e: EpochReport) -> None:
    extra = "" if e.rewarded is None else f", rewarded {100 * e.rewarded:.1f} % of samples"
    note(f"epoch {e.epoch}/{e.epochs} done in {format_seconds(e.seconds)}{extra}")


def run(args) -> int:
    config = LearnConfig(data=args.data, rule=args.rule, neurons=args.neurons, epochs=args.epochs,
                         seed=args.seed).check()
    check_input_dir("--data-dir", args.data_dir)
    if args.plot is not None and Path(args.plot).resolve() == Path(args.out).resolve():
        raise UserError(f"--plot = {args.plot!r} is the same file as --out; valid: another path for the picture")
    emit(args, learn_to_file(config, args.out, data_dir=args.data_dir, plot=args.plot, on_epoch=_epoch_line,
                             progress=progress), format_learn)
    return 0


def register(subparsers) -> None:
    d = LearnConfig()
    p = subparsers.add_parser(
        "learn", help="learn a data set with STDP, winner-take-all and adaptive thresholds (model)",
        description="Train a plastic winner-take-all layer with adaptive thresholds by the learning contract, "
                    "one sample at a time: unsupervised STDP (labels only name the neurons afterwards, on the "
                    "training split) or reward-modulated STDP with the reward computed from the labels. "
                    "Reports the test accuracy and saves the network (plastic layer + class readout), which "
                    "spikegate model --net FILE runs.")
    p.add_argument("--data", choices=datasets.DATASETS, default=d.data, help="data set (default: digits)")
    p.add_argument("--data-dir", metavar="DIR", default=None, help="directory with the MNIST IDX files")
    p.add_argument("--rule", choices=RULES, default=d.rule, help="learning rule (default: stdp)")
    p.add_argument("--neurons", metavar="N", type=int, default=d.neurons,
                   help=f"learning neurons (default: {d.neurons})")
    p.add_argument("--epochs", metavar="E", type=int, default=d.epochs,
                   help=f"passes over the training split; from the second on at half the learning rate "
                        f"(default: {d.epochs})")
    p.add_argument("--seed", type=int, default=d.seed, help=f"seed of the initial weights and sample order "
                                                            f"(default: {d.seed})")
    p.add_argument("--out", metavar="FILE", required=True, help="output network file")
    p.add_argument("--plot", metavar="FILE", default=None,
                   help="save the learned receptive fields as an image grid (.png or .svg; needs the plot extra)")
    add_json_argument(p)
    p.set_defaults(func=run)
