"""``spikegate learn``: learn a data set in the model with STDP (or reward-modulated STDP), winner-take-all
and adaptive thresholds, label the neurons, report the test accuracy and save the network."""
from __future__ import annotations

from pathlib import Path

from .. import datasets
from ..checks import check_input_dir
from ..errors import UserError
from ..checks import check_float, check_int
from ..learn_run import RULES, EpochReport, LearnConfig, LearnReport, learn_to_file, save_initial
from ..progress import format_seconds, note, progress
from ._common import add_json_argument, emit
from .run import MAX_BAUD, MAX_TIMEOUT, MIN_BAUD


def format_learn(r: LearnReport) -> str:
    lines = [
        f"learned        {r.data} by {r.rule}, {r.neurons} neurons (winner-take-all, adaptive thresholds), "
        f"{r.epochs} epoch(s) over {r.train_samples} training samples, seed {r.seed}, T={r.timesteps}"
        + (f", on the board {r.board} ({r.board_cycles:.0f} cycles per training sample)" if r.board else ""),
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


def _board_link(args):
    """The --board/--port/--baud/--timeout options as a BoardLink (None without --board), checked."""
    from ..board_run import check_board_name
    from ..learn_board import BoardLink
    if args.sim:
        if args.board is not None or args.port is not None:
            raise UserError("--sim starts its own simulated board; valid: --sim, or --board NAME --port PORT")
        args.board = "sim"  # then checked as --board sim, without a port
    name = None if args.board is None else check_board_name(args.board)
    if not args.sim and (args.board is None) != (args.port is None):
        given, missing = ("--board", "--port") if args.port is None else ("--port", "--board")
        raise UserError(f"{given} needs {missing}; valid: --board NAME --port PORT together (train on the board), "
                        "or neither (train in the model)")
    if args.board is None:
        for option, value in (("--baud", args.baud), ("--timeout", args.timeout)):
            if value is not None:
                raise UserError(f"{option} = {value!r} is only used with --board; valid: leave it out, or add "
                                "--board NAME --port PORT")
        return None
    check_int("--baud", args.baud, MIN_BAUD, MAX_BAUD)
    check_float("--timeout", 2.0 if args.timeout is None else args.timeout, 0, MAX_TIMEOUT, lo_open=True)
    if args.sim:
        for option, value in (("--baud", args.baud), ("--timeout", args.timeout)):
            if value is not None:
                raise UserError(f"{option} = {value!r} is not used with --sim (the simulated board sets its own); "
                                "valid: leave it out")
        return "sim"
    return BoardLink(name, args.port, args.baud, 2.0 if args.timeout is None else args.timeout)


def run(args) -> int:
    config = LearnConfig(data=args.data, rule=args.rule, neurons=args.neurons, epochs=args.epochs,
                         seed=args.seed, samples=args.samples).check()
    check_input_dir("--data-dir", args.data_dir)
    if args.init_out is not None:
        if (args.board is not None or args.port is not None or args.sim or args.plot is not None
                or args.out is not None):
            raise UserError("--init-out saves the untrained network and learns nothing; valid: without --out, "
                            "--plot, --sim, --board and --port")
        emit(args, {"initial": str(save_initial(config, args.init_out, args.data_dir))},
             lambda r: f"saved          {r['initial']} (untrained; spikegate build it for learn --board)")
        return 0
    if args.out is None:
        raise UserError("--out is required: the file to save the learned network to; valid: --out FILE "
                        "(or --init-out FILE alone to save the untrained network)")
    if args.plot is not None and Path(args.plot).resolve() == Path(args.out).resolve():
        raise UserError(f"--plot = {args.plot!r} is the same file as --out; valid: another path for the picture")
    board = _board_link(args)
    if board is not None:
        from ..learn_board import BoardLink, check_board_config
        check_board_config(config, BoardLink("sim", "socket://") if board == "sim" else board)
    emit(args, learn_to_file(config, args.out, data_dir=args.data_dir, plot=args.plot, on_epoch=_epoch_line,
                             progress=progress, board=board), format_learn)
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
    p.add_argument("--samples", metavar="N", type=int, default=None,
                   help="learn from the first N samples of the training split only (default: all)")
    p.add_argument("--board", metavar="NAME", default=None,
                   help="learn on this board (or 'sim', the simulated board) over its UART link instead of in the "
                        "model; it must hold the untrained network (--init-out); stdp or rstdp, one epoch")
    p.add_argument("--sim", action="store_true",
                   help="learn on a simulated board started for the untrained network (the whole board in "
                        "Verilator behind a socket; needs Verilator); stdp or rstdp, one epoch")
    p.add_argument("--port", default=None, help="with --board: serial port or pyserial URL (socket://127.0.0.1:PORT)")
    p.add_argument("--baud", type=int, default=None,
                   help="with --board: the bitstream's baud rate (default: the board's)")
    p.add_argument("--timeout", type=float, default=None,
                   help="with --board: seconds of silence before a request is given up (default: 2)")
    p.add_argument("--init-out", metavar="FILE", default=None,
                   help="only save the untrained network these options start from (what a board for --board is "
                        "built from) and stop")
    p.add_argument("--out", metavar="FILE", default=None, help="output network file (required unless --init-out)")
    p.add_argument("--plot", metavar="FILE", default=None,
                   help="save the learned receptive fields as an image grid (.png or .svg; needs the plot extra)")
    add_json_argument(p)
    p.set_defaults(func=run)
