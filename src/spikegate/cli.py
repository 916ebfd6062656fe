"""The ``spikegate`` command line.

Each sub-command lives in its own module in :mod:`spikegate.commands` and defines
``register(subparsers)``, which adds its parser and sets ``func`` to a callable taking the parsed
arguments and returning an exit status. Commands are discovered, so adding one touches no other
file.
"""
from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import sys

from . import __version__, commands
from .errors import UserError
from .extras import missing_extra_error
from .model.network import NetworkFormatError
from .model.procgroup import end_groups_on_sigterm
from .progress import log_to_stderr
from .commands._common import drop_stdout, flush_stdout


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="spikegate",
        description="Generate, simulate and build spiking-neural-network accelerators.")
    parser.add_argument("--version", action="version", version=f"spikegate {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        if hasattr(module, "register"):
            module.register(sub)
    return parser


def _error(args, e: Exception) -> int:
    """One line on stderr (and the error as JSON with --json), exit status 2."""
    if getattr(args, "json", False) and sys.stdout is not None:
        try:
            print(json.dumps({"error": str(e)}), flush=True)
        except OSError:
            drop_stdout()
    print(f"spikegate {args.command}: error: {e}", file=sys.stderr)
    return 2


def _run(args) -> int:
    try:
        status = args.func(args)
        flush_stdout()  # a write error surfaces here, not at exit
    except ModuleNotFoundError as e:
        # A command that checks its extra (extras.require_extra) never gets here; this names the
        # extra for any other path into an optional package instead of showing a traceback.
        err = missing_extra_error(e)
        if err is e:
            raise
        return _error(args, err)
    except BrokenPipeError:
        # The reader went away (`spikegate info --json | head`): nothing more to say to it.
        drop_stdout()
        return 1
    except (UserError, NetworkFormatError, ValueError, TypeError, OSError) as e:
        return _error(args, e)
    except RecursionError:
        return _error(args, UserError("the input is nested too deeply to read"))
    except MemoryError:
        return _error(args, UserError("out of memory: use a smaller input (e.g. fewer --samples)"))
    except KeyboardInterrupt:
        print(f"spikegate {args.command}: interrupted", file=sys.stderr)
        return 130
    return int(status or 0)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    log_to_stderr()
    end_groups_on_sigterm()
    return _run(args)


if __name__ == "__main__":
    sys.exit(main())
