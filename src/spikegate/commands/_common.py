"""Options and output shared by the commands: written once here, so every command spells
``--net``, ``--board``, ``--lanes``, the data options and ``--json`` the same way.

Not a command (it has no ``register``); the leading underscore keeps it out of the command list.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Callable

from .. import datasets
from ..checks import check_input_dir, check_int
from ..errors import UserError
from ..boards.lanes import AUTO
from ..model.hardware import SCHEDULES

BUILTIN_NET = "the built-in digits network"


def add_net_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--net", metavar="FILE", default=None,
                   help="network file (default: the built-in digits network)")


def add_data_arguments(p: argparse.ArgumentParser, splits: bool = True) -> None:
    """--data, --data-dir, --split (unless ``splits`` is False: the test split), --samples, --seed."""
    p.add_argument("--data", choices=datasets.DATASETS, default=None,
                   help="data set (default: the one the network was trained on, else digits)")
    p.add_argument("--data-dir", metavar="DIR", default=None,
                   help="directory with the MNIST IDX files (train-images-idx3-ubyte[.gz], ...)")
    if splits:
        p.add_argument("--split", choices=datasets.SPLITS, default="test", help="data split (default: test)")
    p.add_argument("--samples", metavar="N", type=int, default=None,
                   help="use only the first N samples of the split (default: all)")
    p.add_argument("--seed", type=int, default=0, help="seed of the seeded encoders, poisson and bernoulli (default: 0)")


# Seeds of the poisson encoder: numpy takes any non-negative integer; 32 bits are plenty.
MAX_SEED = 2**32 - 1


def check_data_arguments(args) -> None:
    """The values of :func:`add_data_arguments`' options, before any data is read."""
    check_int("--samples", getattr(args, "samples", None), 1)
    check_int("--seed", getattr(args, "seed", None), 0, MAX_SEED)
    if getattr(args, "data_dir", None) is not None:
        check_input_dir("--data-dir", args.data_dir)


def add_board_argument(p: argparse.ArgumentParser, also: str = "") -> None:
    """--board NAME, required. The name is checked by the command (``get_board``), so a wrong one
    is a one-line error, in the ``--json`` output too."""
    from ..boards.targets import board_names
    p.add_argument("--board", required=True, metavar="NAME",
                   help=f"target board: {', '.join(board_names())}{also}")


def add_lanes_argument(p: argparse.ArgumentParser, default: str | None = "4", default_text: str = "4") -> None:
    """--lanes P or P0,P1,...; :func:`parse_lanes` turns it into the library's value."""
    p.add_argument("--lanes", metavar="P", default=default,
                   help="neurons updated in parallel: a power of two 1..64, or one per layer as P0,P1,... "
                        f"(default: {default_text})")


def parse_lanes(text: str | None, auto: bool = False):
    """``4`` -> 4; ``4,2`` -> [4, 2] (one per layer); None stays None; ``auto`` stays ``"auto"`` where
    the command takes it (``auto``). The values themselves are checked by the generator
    (:meth:`spikegate.model.hardware.HardwareConfig.geometry`)."""
    if text is None:
        return None
    if auto and str(text).strip() == AUTO:
        return AUTO
    parts = [p.strip() for p in str(text).split(",")]
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise ValueError(f"--lanes = {text!r} is not valid; valid: {AUTO + ', ' if auto else ''}a power of two "
                         "from 1 to 64, or a comma-separated list of them, one per layer (e.g. 8,2)") from None
    return values[0] if len(values) == 1 else values


def add_schedule_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--schedule", default=SCHEDULES[0], choices=SCHEDULES,
                   help="inflight: layer l works on step t while layer l+1 works on step t-1 (waves); "
                        f"sequential: each step's layers one after the other (default: {SCHEDULES[0]})")


def add_registered_reads_argument(p: argparse.ArgumentParser, *, board_default: bool = False) -> None:
    """``--registered-reads``; with ``board_default``, also ``--no-registered-reads`` and None (the
    board's choice, boards.fit.choose_registered_reads) when neither is given."""
    what = ("a flip-flop behind every block RAM read (for the ECP5): one cycle more per layer step; dense "
            "layers without temporal features or plasticity only")
    if board_default:
        p.add_argument("--registered-reads", action=argparse.BooleanOptionalAction, default=None,
                       help=what + " (default: on for an ECP5 board where the network allows it)")
    else:
        p.add_argument("--registered-reads", action="store_true", help=what)


def add_json_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")


def emit(args, result: Any, text: Callable[[Any], str], *, compact: bool = False) -> None:
    """Print a library result: as JSON (``result.to_dict()`` or a dict) with ``--json``, else
    ``text(result)``. ``compact`` JSON is one line (for readers that take the last line)."""
    if getattr(args, "json", False):
        d = result.to_dict() if hasattr(result, "to_dict") else result
        out = json.dumps(d) if compact else json.dumps(d, indent=1)
    else:
        out = text(result)
    try:
        print(out)
    except BrokenPipeError:
        raise
    except OSError as e:
        drop_stdout()
        raise UserError(f"cannot write the result to stdout: {e.strerror or e}") from None
    flush_stdout()


def flush_stdout() -> None:
    """Write what stdout holds now, so that a full disk is a clear error, not a message at exit."""
    if sys.stdout is None:
        return
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        raise
    except OSError as e:
        drop_stdout()
        raise UserError(f"cannot write the result to stdout: {e.strerror or e}") from None


def drop_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's final flush of text that could not be
    written (a full disk, a closed pipe) prints no second error."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, AttributeError, ValueError):
        pass
    sys.stdout = None
