"""PLL parameter search and PLL primitives for the supported FPGA families.

Each ``*_pll_params`` function picks divider settings that bring the board oscillator as close as
possible to the requested frequency within the datasheet limits, and reports the frequency the
PLL really produces: the build report and the timing constraint use that achieved value, never
the requested one, so a 31 MHz request that the dividers can only reach as 31.5 MHz is constrained
and reported as 31.5 MHz.
"""
from __future__ import annotations

from dataclasses import dataclass

from amaranth import Const, Elaboratable, Instance, Module, Signal

__all__ = ["PLLParams", "ice40_pll_params", "ecp5_pll_params", "gowin_pll_params",
           "ICE40PLL", "ECP5PLL", "GowinPLL"]


@dataclass(frozen=True)
class PLLParams:
    family: str
    f_in_mhz: float
    f_req_mhz: float
    f_out_mhz: float
    f_vco_mhz: float
    f_pfd_mhz: float
    params: dict

    @property
    def error_mhz(self) -> float:
        return abs(self.f_out_mhz - self.f_req_mhz)


def _no_setting(family: str, f_in: float, f_req: float, lo: float, hi: float) -> ValueError:
    return ValueError(f"clock = {f_req:g} MHz cannot be produced by the {family} PLL from the "
                      f"{f_in:g} MHz board oscillator; valid: {lo:g} to {hi:g} MHz")


# iCE40 sysCLOCK PLL (iCE40 sysCLOCK PLL design guide, TN1251): simple feedback path.
ICE40_PFD = (10.0, 133.0)
ICE40_VCO = (533.0, 1066.0)
ICE40_OUT = (16.0, 275.0)


def _ice40_filter_range(f_pfd: float) -> int:
    # Loop-filter setting by PFD frequency band, per the design guide's table.
    for limit, value in ((17.0, 1), (26.0, 2), (44.0, 3), (66.0, 4), (101.0, 5)):
        if f_pfd < limit:
            return value
    return 6


def ice40_pll_params(f_in_mhz: float, f_out_mhz: float) -> PLLParams:
    if not ICE40_OUT[0] <= f_out_mhz <= ICE40_OUT[1]:
        raise _no_setting("iCE40", f_in_mhz, f_out_mhz, *ICE40_OUT)
    best = None
    for divr in range(16):
        f_pfd = f_in_mhz / (divr + 1)
        if not ICE40_PFD[0] <= f_pfd <= ICE40_PFD[1]:
            continue
        for divf in range(128):
            f_vco = f_pfd * (divf + 1)
            if not ICE40_VCO[0] <= f_vco <= ICE40_VCO[1]:
                continue
            for divq in range(1, 7):
                f_out = f_vco / (1 << divq)
                if not ICE40_OUT[0] <= f_out <= ICE40_OUT[1]:
                    continue
                err = abs(f_out - f_out_mhz)
                # Prefer the smallest error, then the highest PFD (less jitter).
                key = (round(err, 9), -f_pfd)
                if best is None or key < best[0]:
                    best = (key, divr, divf, divq, f_pfd, f_vco, f_out)
    if best is None:
        raise _no_setting("iCE40", f_in_mhz, f_out_mhz, *ICE40_OUT)
    _, divr, divf, divq, f_pfd, f_vco, f_out = best
    return PLLParams("ice40", f_in_mhz, f_out_mhz, f_out, f_vco, f_pfd,
                     {"DIVR": divr, "DIVF": divf, "DIVQ": divq, "FILTER_RANGE": _ice40_filter_range(f_pfd)})


# ECP5 EHXPLLL (TN1263): CLKOP feeds back, so f_out = f_in * CLKFB_DIV / CLKI_DIV.
ECP5_PFD = (3.125, 400.0)
ECP5_VCO = (400.0, 800.0)
ECP5_OUT = (3.125, 400.0)


def ecp5_pll_params(f_in_mhz: float, f_out_mhz: float) -> PLLParams:
    if not ECP5_OUT[0] <= f_out_mhz <= ECP5_OUT[1]:
        raise _no_setting("ECP5", f_in_mhz, f_out_mhz, *ECP5_OUT)
    best = None
    for clki in range(1, 129):
        f_pfd = f_in_mhz / clki
        if not ECP5_PFD[0] <= f_pfd <= ECP5_PFD[1]:
            continue
        for clkfb in range(1, 129):
            f_out = f_pfd * clkfb
            if not ECP5_OUT[0] <= f_out <= ECP5_OUT[1]:
                continue
            for clkop in range(1, 129):
                f_vco = f_out * clkop
                if not ECP5_VCO[0] <= f_vco <= ECP5_VCO[1]:
                    continue
                # Prefer the smallest error, then a VCO near the middle of its range.
                key = (round(abs(f_out - f_out_mhz), 9), abs(f_vco - 600.0))
                if best is None or key < best[0]:
                    best = (key, clki, clkfb, clkop, f_pfd, f_vco, f_out)
    if best is None:
        raise _no_setting("ECP5", f_in_mhz, f_out_mhz, *ECP5_OUT)
    _, clki, clkfb, clkop, f_pfd, f_vco, f_out = best
    return PLLParams("ecp5", f_in_mhz, f_out_mhz, f_out, f_vco, f_pfd,
                     {"CLKI_DIV": clki, "CLKFB_DIV": clkfb, "CLKOP_DIV": clkop})


# Gowin GW1N(R)-9 rPLL (UG286): f_out = f_in * (FBDIV+1) / (IDIV+1), f_vco = f_out * ODIV.
GOWIN_PFD = (3.0, 400.0)
GOWIN_VCO = (400.0, 1200.0)
GOWIN_OUT = (3.125, 600.0)
GOWIN_ODIV = (2, 4, 8, 16, 32, 48, 64, 80, 96, 112, 128)


def gowin_pll_params(f_in_mhz: float, f_out_mhz: float) -> PLLParams:
    if not GOWIN_OUT[0] <= f_out_mhz <= GOWIN_OUT[1]:
        raise _no_setting("Gowin", f_in_mhz, f_out_mhz, *GOWIN_OUT)
    best = None
    for idiv in range(64):
        f_pfd = f_in_mhz / (idiv + 1)
        if not GOWIN_PFD[0] <= f_pfd <= GOWIN_PFD[1]:
            continue
        for fbdiv in range(64):
            f_out = f_pfd * (fbdiv + 1)
            if not GOWIN_OUT[0] <= f_out <= GOWIN_OUT[1]:
                continue
            for odiv in GOWIN_ODIV:
                f_vco = f_out * odiv
                if not GOWIN_VCO[0] <= f_vco <= GOWIN_VCO[1]:
                    continue
                key = (round(abs(f_out - f_out_mhz), 9), abs(f_vco - 800.0))
                if best is None or key < best[0]:
                    best = (key, idiv, fbdiv, odiv, f_pfd, f_vco, f_out)
    if best is None:
        raise _no_setting("Gowin", f_in_mhz, f_out_mhz, *GOWIN_OUT)
    _, idiv, fbdiv, odiv, f_pfd, f_vco, f_out = best
    return PLLParams("gowin", f_in_mhz, f_out_mhz, f_out, f_vco, f_pfd,
                     {"IDIV_SEL": idiv, "FBDIV_SEL": fbdiv, "ODIV_SEL": odiv})


class ICE40PLL(Elaboratable):
    """SB_PLL40_PAD driving the ``sync`` clock; ``locked`` follows the PLL's LOCK output.

    The PAD variant is required because the iCE40's PLL input is hard-wired to one package pin
    (the iCEBreaker's 12 MHz oscillator is on it); ``pin`` is the raw port from
    ``platform.request(..., dir="-")``.
    """

    def __init__(self, pin, p: PLLParams):
        self.pin = pin
        self.p = p
        self.clk = Signal()
        self.locked = Signal()

    def elaborate(self, platform):
        m = Module()
        pr = self.p.params
        m.submodules.pll = Instance(
            "SB_PLL40_PAD",
            p_FEEDBACK_PATH="SIMPLE",
            p_DIVR=Const(pr["DIVR"], 4), p_DIVF=Const(pr["DIVF"], 7), p_DIVQ=Const(pr["DIVQ"], 3),
            p_FILTER_RANGE=Const(pr["FILTER_RANGE"], 3),
            i_PACKAGEPIN=self.pin.io,
            i_RESETB=Const(1), i_BYPASS=Const(0),
            o_PLLOUTGLOBAL=self.clk, o_LOCK=self.locked)
        return m


class ECP5PLL(Elaboratable):
    """EHXPLLL with CLKOP feedback driving ``clk`` from the oscillator signal ``clk_in``."""

    def __init__(self, clk_in, p: PLLParams):
        self.clk_in = clk_in
        self.p = p
        self.clk = Signal()
        self.locked = Signal()

    def elaborate(self, platform):
        m = Module()
        pr = self.p.params
        m.submodules.pll = Instance(
            "EHXPLLL",
            # The FREQUENCY_PIN_* attributes let nextpnr derive the output clock constraint.
            a_FREQUENCY_PIN_CLKI=f"{self.p.f_in_mhz:.6f}",
            a_FREQUENCY_PIN_CLKOP=f"{self.p.f_out_mhz:.6f}",
            a_ICP_CURRENT="12", a_LPF_RESISTOR="8",
            a_MFG_ENABLE_FILTEROPAMP="1", a_MFG_GMCREF_SEL="2",
            p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
            p_DPHASE_SOURCE="DISABLED", p_OUTDIVIDER_MUXA="DIVA",
            p_CLKOP_ENABLE="ENABLED", p_CLKOP_DIV=pr["CLKOP_DIV"],
            # Zero phase shift: the coarse phase equals the output divider minus one.
            p_CLKOP_CPHASE=pr["CLKOP_DIV"] - 1, p_CLKOP_FPHASE=0,
            p_FEEDBK_PATH="CLKOP", p_CLKI_DIV=pr["CLKI_DIV"], p_CLKFB_DIV=pr["CLKFB_DIV"],
            i_RST=Const(0), i_STDBY=Const(0), i_CLKI=self.clk_in, i_CLKFB=self.clk,
            i_PHASESEL0=Const(0), i_PHASESEL1=Const(0), i_PHASEDIR=Const(1),
            i_PHASESTEP=Const(1), i_PHASELOADREG=Const(1), i_PLLWAKESYNC=Const(0),
            i_ENCLKOP=Const(0),
            o_CLKOP=self.clk, o_LOCK=self.locked)
        return m


class GowinPLL(Elaboratable):
    """rPLL driving ``clk`` from the oscillator signal ``clk_in``."""

    def __init__(self, clk_in, p: PLLParams, device: str):
        self.clk_in = clk_in
        self.p = p
        self.device = device
        self.clk = Signal()
        self.locked = Signal()

    def elaborate(self, platform):
        m = Module()
        pr = self.p.params
        m.submodules.pll = Instance(
            "rPLL",
            p_FCLKIN=f"{self.p.f_in_mhz:g}", p_DEVICE=self.device,
            p_IDIV_SEL=pr["IDIV_SEL"], p_FBDIV_SEL=pr["FBDIV_SEL"], p_ODIV_SEL=pr["ODIV_SEL"],
            p_DYN_IDIV_SEL="false", p_DYN_FBDIV_SEL="false", p_DYN_ODIV_SEL="false",
            p_DYN_SDIV_SEL=2, p_PSDA_SEL="0000", p_DUTYDA_SEL="1000",
            p_CLKFB_SEL="internal", p_CLKOUT_BYPASS="false", p_CLKOUTP_BYPASS="false",
            p_CLKOUTD_BYPASS="false", p_CLKOUTD_SRC="CLKOUT", p_CLKOUTD3_SRC="CLKOUT",
            i_CLKIN=self.clk_in, i_CLKFB=Const(0), i_RESET=Const(0), i_RESET_P=Const(0),
            i_FBDSEL=Const(0, 6), i_IDSEL=Const(0, 6), i_ODSEL=Const(0, 6),
            i_PSDA=Const(0, 4), i_DUTYDA=Const(0, 4), i_FDLY=Const(0, 4),
            o_CLKOUT=self.clk, o_LOCK=self.locked)
        return m
