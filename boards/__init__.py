"""spikegate.boards: board tops, bitstream builds with reports, flashing.

Supported boards (``spikegate boards`` prints this with resources):

| board | device | clock (PLL) | default lanes | host-link UART | programmer |
|---|---|---|---|---|---|
| ``icebreaker`` | iCE40UP5K | 12 -> 16.125 MHz (SB_PLL40_PAD) | 2 | FTDI channel B | iceprog |
| ``ulx3s-85f`` | LFE5U-85F | 25 -> 35 MHz (EHXPLLL) | 4 | FT231X (US1) | openFPGALoader |
| ``orangecrab-25f`` | LFE5U-25F | 48 -> 40 MHz (EHXPLLL) | 4 | Feather pins 0/1 | dfu-util |
| ``tangnano9k`` | GW1NR-9C | 27 -> 27 MHz (rPLL) | 4 | BL702 USB-serial | openFPGALoader |

The documented clocks are what the default digits network with the default lanes meets with
margin on each device (nextpnr's achieved fmax is in every build report); ``--clock`` picks
another, and a build that misses it fails; ``--clock max`` searches for the fastest clock the
design meets (:mod:`.fastest`). The iCE40 PLL cannot go below 16 MHz, and the
UP5K's 16-bit-wide EBRs make every lane cost block RAM, hence 2 lanes there. The host link runs
8N1 at each board's fastest reliable rate (``Board.baud``: 3 Mbaud on the iCEBreaker, ULX3S and
Tang Nano 9K, 921600 on the OrangeCrab's external adapter; ``--baud`` picks another, checked
against the bridge and the clock; docs/protocol.md, "Baud rates").

Modules: :mod:`.targets` (boards), :mod:`.pll`, :mod:`.top` (board top), :mod:`.fit`
(resource checks), :mod:`.toolchain`, :mod:`.build` (``build()``: one bitstream and its report)
with its parts :mod:`.flow` (the tools), :mod:`.cache`, :mod:`.logs` (what the tools reported),
:mod:`.workload` (cycles per sample), :mod:`.lanes` (``--lanes auto``), :mod:`.report`,
:mod:`.fastest` (the clock search), :mod:`.dfu`, :mod:`.errors`;
:mod:`.flash`, :mod:`.gowin` (Tang Nano 9K on nextpnr-himbaechel).
"""
