"""``spikegate flash``: program a board with the bitstream from ``spikegate build``."""
from __future__ import annotations

import json

from ..progress import note


def run(args) -> int:
    from ..boards.flash import flash
    from ..boards.targets import get_board
    board = get_board(args.board)
    if not args.dry_run:
        note(f"flash {board.name}: programming with {board.programmer} ...")
    r = flash(board, args.bitstream, dry_run=args.dry_run)
    if args.json:
        print(json.dumps(r, indent=1))
    elif args.dry_run:
        print(r["command_line"])
    else:
        print(f"programmed the {board.title} with {r['command_line']}")
    return 0


def register(subparsers) -> None:
    from ..boards.targets import board_names
    p = subparsers.add_parser(
        "flash", help="program a board with a built bitstream",
        description="Program the board with the programmer it uses (iceprog for the iCEBreaker, "
                    "openFPGALoader for the ULX3S and Tang Nano 9K, dfu-util for the OrangeCrab). "
                    "The programmer is taken from ICEPROG / OPENFPGALOADER / DFU_UTIL when set.")
    p.add_argument("--board", required=True, metavar="NAME",
                   help=f"target board: {', '.join(board_names())}")
    p.add_argument("--bitstream", metavar="FILE", default=None,
                   help="bitstream to program (default: build/BOARD/BOARD.bin|.bit|.fs)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the exact programmer command instead of running it")
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    p.set_defaults(func=run)
