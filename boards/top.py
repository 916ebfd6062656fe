"""Board tops: PLL clock and reset, the network (through the host link when present), status LEDs.

Every board top has the same structure:

- the board oscillator feeds the family's PLL (SB_PLL40_PAD, EHXPLLL, rPLL) set to the build's
  clock (the board's documented default unless ``--clock`` says otherwise); the ``sync`` domain
  is held in reset until the PLL locks and while the board's reset button is pressed;
- the network: :class:`spikegate.hdl.link.HostLink` (UART on the board's USB serial port, frame
  decoder, command engine) around :class:`spikegate.hdl.core.NetworkCore`;
- LEDs (see each board's ``led_roles``): a ~1 Hz heartbeat (the clock runs and reset is over),
  busy, and the class of the last result the host read (spike-count argmax, or final-membrane
  argmax for a readout network, ties to the lowest index as in :func:`spikegate.model.classify`),
  found by :class:`ResultSnoop` watching the core's read-out port. A network with more outputs
  than the LEDs can name (:data:`MAX_SHOWN_CLASSES`, e.g. the unlabelled winner-take-all layer a
  board learns in) has no class LEDs: its snoop would cost about 400 iCE40 logic cells.
"""
from __future__ import annotations


from amaranth import ClockDomain, Const, Elaboratable, Module, Mux, Signal
from amaranth.lib import io, wiring
from amaranth.lib.cdc import ResetSynchronizer
from amaranth.lib.wiring import In, Out

from ..hdl.read_reg import late
from ..model.core import as_powered_up
from ..model.hardware import HardwareConfig
from ..model.layer import ceil_log2
from ..model.protocol import DEFAULT_MAX_PAYLOAD
from .pll import ECP5PLL, GowinPLL, ICE40PLL, PLLParams

__all__ = ["ResultSnoop", "BlinkCode", "BoardTop", "pll_for", "link_baud", "MAX_SHOWN_CLASSES"]

# The class LEDs show 4 bits (LED2-LED5 or the break-off PMOD LED1-LED4); the OrangeCrab's blink
# code is kept as short. A last layer with more outputs gets no ResultSnoop.
MAX_SHOWN_CLASSES = 16


def _input(m, platform, name, number=0):
    """The input signal of a one-pin resource, through an I/O buffer (Amaranth 0.5 style)."""
    buf = io.Buffer("i", platform.request(name, number, dir="-"))
    m.submodules[f"{name}_{number}"] = buf
    return buf.i


def _output(m, platform, name, number=0):
    buf = io.Buffer("o", platform.request(name, number, dir="-"))
    m.submodules[f"{name}_{number}"] = buf
    return buf.o


def pll_for(board, clock_mhz: float | None = None) -> PLLParams:
    from .pll import ecp5_pll_params, gowin_pll_params, ice40_pll_params
    f = board.clock_mhz if clock_mhz is None else clock_mhz
    if isinstance(f, bool) or not isinstance(f, (int, float)) or not f > 0:
        raise ValueError(f"clock = {f!r} is not valid; valid: a frequency in MHz > 0")
    search = {"ice40": ice40_pll_params, "ecp5": ecp5_pll_params, "gowin": gowin_pll_params}
    return search[board.family](board.osc_mhz, float(f))


def link_baud(board, baud, clk_hz: float) -> int:
    """The host link's baud rate for ``board`` at the clock ``clk_hz`` (``baud`` None: the board's
    default); ValueError naming the rate, the clock and what is valid when the board's bridge or
    the UART (:func:`spikegate.model.uart.check_baud`) cannot run it."""
    from ..model.uart import bit_period
    b = board.baud if baud is None else baud
    if isinstance(b, bool) or not isinstance(b, int) or b <= 0:
        raise ValueError(f"baud = {b!r} is not valid; valid: a positive integer in bit/s")
    if board.max_baud is not None and b > board.max_baud:
        raise ValueError(f"baud = {b} is not valid for the {board.title}: its USB-serial bridge ({board.uart}) "
                         f"runs at most {board.max_baud}; valid: baud <= {board.max_baud} (default {board.baud})")
    clk = int(round(clk_hz))
    try:
        bit_period(clk, b)
    except ValueError as e:
        raise ValueError(f"{e}; the {board.title}'s clock is {clk / 1e6:g} MHz: lower --baud or raise --clock") from None
    return b


class ResultSnoop(wiring.Component):
    """Keeps the argmax of the outputs the host reads, without driving any port of the core.

    The host link owns the core's ``out_addr``; this block only watches it. Each cycle in which
    the core holds a finished result (``done`` now and a cycle ago), the value on ``value``
    belongs to the address seen a cycle earlier. That value is registered before it is compared
    (timing: the core's read-out comes straight from a layer's membrane or count memory), so the
    comparison runs a cycle later. The best value wins, ties to the lower index (as
    ``np.argmax``), whatever order the host reads in. Two cycles after the last output of a run
    is read, ``cls`` shows that run's class, ``valid`` goes high and ``new`` pulses for a cycle;
    ``cls`` then holds until the next run's outputs have all been read, so the LEDs show the last
    complete result while the host streams samples.

    ``latency``: cycles from an address to its value (``Core.read_latency``: 2 with
    registered reads); the address waits that long before it meets the value, and ``done`` must
    have held since the address.
    """

    def __init__(self, n_out: int, value_shape, latency: int = 1):
        self.n_out, self.latency = n_out, int(latency)
        self.addr_bits = max(1, ceil_log2(n_out))
        super().__init__({
            "done": In(1),
            "out_addr": In(self.addr_bits),
            "value": In(value_shape),
            "cls": Out(self.addr_bits),
            "valid": Out(1),
            "new": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        done_q = Signal()
        addr_q = Signal(self.addr_bits)
        # the comparison's inputs, a cycle on: a read seen (its address and value), and done
        take, live = Signal(), Signal()
        addr_r = Signal(self.addr_bits)
        value_r = Signal.like(self.value)
        all_seen = (1 << self.n_out) - 1
        seen = Signal(self.n_out)
        have_best = Signal()
        best = Signal.like(self.value)
        best_idx = Signal(self.addr_bits)
        addr_in, done_in = self.out_addr, self.done
        for k in range(self.latency - 1):
            # a slower peek: the older address, and done held since it (done_q below: throughout)
            addr_in = late(m, addr_in, 1, f"snoop_addr_{k}")
            done_in = late(m, done_in, 1, f"snoop_done_{k}") & self.done
        m.d.sync += [done_q.eq(done_in), addr_q.eq(addr_in), self.new.eq(0),
                     take.eq(self.done & done_q & (addr_q < self.n_out)), live.eq(self.done),
                     addr_r.eq(addr_q), value_r.eq(self.value)]
        with m.If(~live):
            m.d.sync += [seen.eq(0), have_best.eq(0)]
        with m.Elif(take):
            better = ~have_best | (value_r > best) | ((value_r == best) & (addr_r < best_idx))
            with m.If(better):
                m.d.sync += [best.eq(value_r), best_idx.eq(addr_r), have_best.eq(1)]
            new_seen = seen | (Const(1, self.n_out) << addr_r)[:self.n_out]
            m.d.sync += seen.eq(new_seen)
            with m.If((new_seen == all_seen) & (seen != all_seen)):
                m.d.sync += [self.cls.eq(Mux(better, addr_r, best_idx)), self.valid.eq(1),
                             self.new.eq(1)]
        return m


class BlinkCode(wiring.Component):
    """Shows a small number on one LED: after each ``trigger`` pulse, ``code + 1`` blinks."""

    def __init__(self, bits: int, clk_hz: float):
        self.half = max(1, int(clk_hz * 0.2))  # 200 ms on, 200 ms off
        super().__init__({"code": In(bits), "trigger": In(1), "led": Out(1)})

    def elaborate(self, platform):
        m = Module()
        timer = Signal(range(self.half + 1))
        phases = Signal(len(self.code) + 2)  # remaining half-periods
        m.d.comb += self.led.eq(phases[0])
        with m.If(self.trigger):
            m.d.sync += [phases.eq((self.code + 1) * 2), timer.eq(0)]
        with m.Elif(phases != 0):
            with m.If(timer == self.half - 1):
                m.d.sync += [timer.eq(0), phases.eq(phases - 1)]
            with m.Else():
                m.d.sync += timer.eq(timer + 1)
        return m


class BoardTop(Elaboratable):
    """The whole design for one board: clocking, reset, network, host link, LEDs."""

    def __init__(self, board, net, hw: HardwareConfig, *, pll: PLLParams, baud: int | None = None,
                 encoder: bool = True, stream: bool = True, max_payload: int = DEFAULT_MAX_PAYLOAD):
        """``encoder`` False leaves the on-chip input encoder (ENCODE, BATCH) out of the host link;
        ``stream`` False makes it take one request at a time (docs/protocol.md, "Streaming");
        ``max_payload`` is the link's request payload buffer in bytes (per bank when streaming)."""
        self.board = board
        self.net = net
        self.hw = hw
        self.pll = pll
        self.clk_hz = pll.f_out_mhz * 1e6
        self.baud = baud = link_baud(board, baud, self.clk_hz)
        # Build link and core now so that an impossible configuration fails before any tool runs.
        from ..hdl.core import NetworkCore
        from ..hdl.link import HostLink
        # SPRAM weights are zero after configuration. The link identifies the network it was
        # built for by a digest of its contents, so it is built for the network as the board
        # really holds it (those weights zero): the host sees the difference and loads the
        # weights over the link.
        net = as_powered_up(net, hw)
        core = NetworkCore(net, hw, spram_primitive=True)
        from .fit import choose_ident_block, choose_small_bit
        self.link = HostLink(net, lanes=hw.lanes, clk_freq=int(round(self.clk_hz)), baud=baud,
                             max_payload=max_payload, max_events=hw.max_events, core=core, encoder=encoder,
                             stream=stream, ident_block=choose_ident_block(board, net, hw, stream, max_payload),
                             small_bit=choose_small_bit(board, stream, max_payload))

    # --- clocking -------------------------------------------------------------------------------

    def _clocking(self, m, platform):
        b = self.board
        if b.family == "ice40":
            pll = ICE40PLL(platform.request("clk12", 0, dir="-"), self.pll)
        elif b.family == "ecp5":
            pll = ECP5PLL(_input(m, platform, platform.default_clk), self.pll)
        else:
            pll = GowinPLL(_input(m, platform, platform.default_clk), self.pll, "GW1NR-9C")
        m.submodules.pll = pll
        m.domains.sync = cd_sync = ClockDomain("sync")
        m.d.comb += cd_sync.clk.eq(pll.clk)
        platform.add_clock_constraint(cd_sync.clk, self.clk_hz)
        button = {"icebreaker": "button", "ulx3s-85f": "button_fire", "orangecrab-25f": "button",
                  "tangnano9k": "button"}[b.name]
        btn = _input(m, platform, button)
        m.submodules.reset_sync = ResetSynchronizer(~pll.locked | btn, domain="sync")

    # --- LEDs ------------------------------------------------------------------------------------

    def _leds(self, m, platform, heartbeat, busy, cls, valid, new):
        b = self.board
        if b.name == "orangecrab-25f":
            rgb = platform.request("rgb_led", 0, dir="-")
            m.submodules.blink = blink = BlinkCode(len(cls), self.clk_hz)
            m.d.comb += [blink.code.eq(cls), blink.trigger.eq(new)]
            for port, value in ((rgb.g, heartbeat), (rgb.r, busy), (rgb.b, blink.led)):
                buf = io.Buffer("o", port)
                m.submodules += buf
                m.d.comb += buf.o.eq(value)
            return
        if b.name == "icebreaker":
            hb, bz = _output(m, platform, "led_g"), _output(m, platform, "led_r")
            cls_leds = [_output(m, platform, "led", i) for i in (2, 3, 4, 5)]
            valid_led = _output(m, platform, "led", 6)
        elif b.name == "ulx3s-85f":
            hb, bz = _output(m, platform, "led", 0), _output(m, platform, "led", 1)
            cls_leds = [_output(m, platform, "led", i) for i in (2, 3, 4, 5)]
            valid_led = _output(m, platform, "led", 7)
        else:  # tangnano9k: 6 LEDs
            hb, bz = _output(m, platform, "led", 0), _output(m, platform, "led", 1)
            cls_leds = [_output(m, platform, "led", i) for i in (2, 3, 4, 5)]
            valid_led = None
        m.d.comb += [hb.eq(heartbeat), bz.eq(busy)]
        for i, led in enumerate(cls_leds):
            if i < len(cls):
                m.d.comb += led.eq(valid & cls[i])
        if valid_led is not None:
            m.d.comb += valid_led.eq(valid)

    def elaborate(self, platform):
        m = Module()
        self._clocking(m, platform)

        # Heartbeat: the counter bit whose period is closest to one second.
        hb_bit = max(1, round(self.clk_hz).bit_length() - 1)
        hb_ctr = Signal(hb_bit + 1)
        m.d.sync += hb_ctr.eq(hb_ctr + 1)

        link = self.link
        m.submodules.link = link
        uart = platform.request("uart", 0, dir="-")
        m.submodules.uart_rx = rx_buf = io.Buffer("i", uart.rx)
        m.submodules.uart_tx = tx_buf = io.Buffer("o", uart.tx)
        m.d.comb += [link.rx.eq(rx_buf.i), tx_buf.o.eq(link.tx)]

        core = link.core
        last = self.net.layers[-1]
        if last.n > MAX_SHOWN_CLASSES:
            self._leds(m, platform, hb_ctr[hb_bit], link.busy, Const(0, 4), Const(0, 1), Const(0, 1))
            return m
        value = core.out_membrane if last.readout else core.out_count
        m.submodules.snoop = snoop = ResultSnoop(last.n, value.shape(), latency=core.read_latency)
        m.d.comb += [snoop.done.eq(core.done), snoop.out_addr.eq(core.out_addr),
                     snoop.value.eq(value)]
        self._leds(m, platform, hb_ctr[hb_bit], link.busy, snoop.cls, snoop.valid, snoop.new)
        return m
