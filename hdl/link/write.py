"""WriteRules: the header, the values and the checks of a WRITE frame, for the command engine.

The ranges are :func:`spikegate.model.protocol.value_range` of each layer and target, baked in as
constants when the gateware is elaborated.
"""
from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ...model.link import LinkGeometry
from ...model.protocol import WRITE_HEADER, WRITE_ROW_MAJOR, CfgTarget, value_range
from ..synapse import times

__all__ = ["WriteRules"]


class WriteRules(wiring.Component):
    """Collects a WRITE header and its values byte by byte and judges them.

    Ports (``value_byte`` is the payload byte the engine reads now; the others are strobes and
    results):

    - ``header_en``, ``header_idx``: store ``value_byte`` as header byte ``header_idx``; ``header``
      (out): the header bytes, byte 0 in bits 0..7. The learning commands keep their fixed-size
      request payloads (READ_STATE's header, REWARD's) here too (:class:`~.learn_cmds.LearnCommands`):
      a second 8-byte register would cost the UP5K 64 logic cells, its flip-flops fed by flip-flops.
    - ``layer``, ``target`` (without the ``WRITE_ROW_MAJOR`` flag), ``row_now``, ``col_now`` (the
      address of the current value: ``col`` plus the values done, or with the flag the row-major
      position that far from (``row``, ``col``)), ``value``: the cfg word for the current value.
    - ``header_ok``: layer and target exist (the flag only with weights). ``length_ok``:
      ``count > 0`` and the payload holds exactly ``count`` values. ``address_ok``: the first
      address exists for the target and, without the flag, the last one too (a threshold only for
      a layer that fires). The three are registered: they judge the header of the cycle before.
    - ``restart``: back to the first value. ``value_start``, ``value_get``: begin a value, add
      ``value_byte`` to it; ``value_last``: this byte completes it. ``in_range``: the value fits
      ``value_range`` of the layer and target, and a row-major value's row exists: registered,
      it judges the value raw held in the cycle before (read in the cycle after ``value_next``).
      ``value_next``: the value is done; ``all_done``: all ``count`` values are (registered, from
      the cycle after ``restart`` on).
    """

    def __init__(self, net, geo: LinkGeometry):
        self.net, self.geo = net, geo
        self.max_value_bytes = max(geo.write_value_bytes(l, t) for l in range(geo.n_layers) for t in CfgTarget)
        vw = 8 * self.max_value_bytes
        super().__init__({
            "length": In(16), "value_byte": In(8),
            "header_en": In(1), "header_idx": In(3), "header": Out(8 * WRITE_HEADER),
            "layer": Out(8), "target": Out(8), "row_now": Out(17), "col_now": Out(17), "value": Out(signed(vw)),
            "header_ok": Out(1), "length_ok": Out(1), "address_ok": Out(1),
            "restart": In(1), "value_start": In(1), "value_get": In(1), "value_last": Out(1), "in_range": Out(1),
            "value_next": In(1), "all_done": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        geo, maxvb = self.geo, self.max_value_bytes
        hdr = self.header
        row, col, count = hdr[16:32], hdr[32:48], hdr[48:64]
        flag_bit = WRITE_ROW_MAJOR.bit_length() - 1
        bulk = hdr[8 + flag_bit]
        m.d.comb += [self.layer.eq(hdr[0:8]), self.target.eq(hdr[8:8 + flag_bit])]
        with m.If(self.header_en):
            m.d.sync += hdr.word_select(self.header_idx, 8).eq(self.value_byte)

        vb = Signal(range(maxvb + 1))
        n_in_l, n_l = Signal(16), Signal(16)
        lo, hi = Signal(signed(8 * maxvb)), Signal(signed(8 * maxvb))
        is_readout, fixed = Signal(), Signal()
        # Registered decode (timing): the header is complete one cycle before the first check
        # that reads these (W_CHECK2), so they never lag a use.
        m.d.sync += [vb.eq(0), n_in_l.eq(0), n_l.eq(0), is_readout.eq(0), fixed.eq(0), lo.eq(0), hi.eq(0)]
        for l, lyr in enumerate(self.net.layers):
            with m.If(self.layer == l):
                # geo.rows: the packed rows after a conv layer, none for a conv layer (fixed kernels)
                m.d.sync += [n_in_l.eq(geo.rows[l]), n_l.eq(lyr.n), is_readout.eq(lyr.readout),
                             fixed.eq(geo.conv[l])]
                with m.Switch(self.target):
                    for t in CfgTarget:
                        t_lo, t_hi = value_range(lyr, t)
                        with m.Case(t):
                            m.d.sync += [vb.eq(geo.write_value_bytes(l, t)), lo.eq(t_lo), hi.eq(t_hi)]
        # Registered (timing): layer and target are the header's first bytes, so header_ok judges
        # them well before W_CHECK1 reads it; the header is complete in W_CHECK1, so length_ok and
        # address_ok judge it in W_CHECK2, the only state that reads them, and the
        # multiply-compare and the adder-compares end in flip-flops.
        m.d.sync += self.header_ok.eq((self.layer < geo.n_layers) & (self.target <= max(CfgTarget))
                                      & (~bulk | (self.target == CfgTarget.WEIGHT)))
        # count * vb as one constant product per value width (times): Yosys put the 16 x 2-bit
        # product in a MULT18X18D, on the OrangeCrab's critical path.
        payload = Signal(len(count) + len(vb))
        with m.Switch(vb):
            for n in range(1, maxvb + 1):
                with m.Case(n):
                    m.d.comb += payload.eq(times(count, n))
        # The frame's length is fixed from the command's start, and col arrives two header bytes
        # before count: the values' room (length - WRITE_HEADER, n_l - col) is taken ahead into
        # flip-flops, so the checks end in one compare each (timing: col + count <= n_l, an adder
        # into a compare, was the digits iCEBreaker build's critical path at the default seed).
        # Both are signed: a negative room fits no value.
        body = Signal(signed(len(self.length) + 1))
        room = Signal(signed(len(col) + 1))
        m.d.sync += [body.eq(self.length - WRITE_HEADER), room.eq(n_l - col)]
        m.d.sync += self.length_ok.eq((count != 0) & (payload == body))
        fits = Signal()
        m.d.comb += fits.eq(count <= room)
        with m.Switch(self.target):
            with m.Case(CfgTarget.WEIGHT):
                # Row-major: the rows the values reach are checked value by value (in_range).
                m.d.sync += self.address_ok.eq((row < n_in_l) & Mux(bulk, col < n_l, fits))
            with m.Case(CfgTarget.BIAS):
                m.d.sync += self.address_ok.eq((row == 0) & fits & ~fixed)
            with m.Default():
                m.d.sync += self.address_ok.eq((row == 0) & (col == 0) & (count == 1) & ~is_readout)

        left = Signal(16)  # values still to come
        vbyte = Signal(range(maxvb + 1))
        raw = Signal(8 * maxvb)
        m.d.comb += self.value_last.eq(vbyte == vb - 1)

        def as_value(word):
            v = Signal(signed(8 * maxvb))
            with m.Switch(vb):
                for n in range(1, maxvb + 1):
                    with m.Case(n):
                        m.d.comb += v.eq(word[:8 * n].as_signed())
            return v

        m.d.comb += self.value.eq(as_value(raw))
        # all_done (no value left) registered, from the count ``left`` moves to (timing: the 16-bit
        # compare ran on into the engine's next-state logic and its answer registers). ``left``
        # counts down, so that compare starts from a flip-flop, not from an adder (vcount + 1 ==
        # count was the iCEBreaker 784-128-10 build's critical path once the command tests were
        # registered).
        with m.If(self.restart):
            m.d.sync += [left.eq(count), self.row_now.eq(row), self.col_now.eq(col), self.all_done.eq(count == 0)]
        with m.If(self.value_next):
            m.d.sync += [left.eq(left - 1), self.all_done.eq(left == 1)]
            with m.If(bulk & (self.col_now == n_l - 1)):
                m.d.sync += [self.row_now.eq(self.row_now + 1), self.col_now.eq(0)]
            with m.Else():
                m.d.sync += self.col_now.eq(self.col_now + 1)
        raw_next = Signal.like(raw)
        m.d.comb += raw_next.eq(raw)
        with m.If(self.value_start):
            m.d.comb += raw_next.eq(0)
            m.d.sync += vbyte.eq(0)
        with m.If(self.value_get):
            m.d.comb += raw_next.word_select(vbyte, 8).eq(self.value_byte)
            m.d.sync += vbyte.eq(vbyte + 1)
        m.d.sync += raw.eq(raw_next)
        # Registered (timing): the value is judged the cycle after raw holds it whole (W_VAL_DONE),
        # so the block RAM's output only reaches raw; the engine reads the verdict in W_NEXT. The
        # row a row-major value lands in moves with value_next, so it is judged in that same cycle.
        cur = as_value(raw)
        m.d.sync += self.in_range.eq((cur >= lo) & (cur <= hi) & (~bulk | (self.row_now < n_in_l)))
        return m
