"""ChecksumWalker: the CHECKSUM command's CRC-32 over every weight, bias and threshold of the core.

Byte-level twin: :func:`spikegate.model.link.expected_checksum` (order and encoding there); cost in
cycles: :func:`spikegate.model.link.checksum_cycles`.
"""
from amaranth.hdl import Module, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.crc import catalog
from amaranth.lib.wiring import In, Out

from ...model.conv_layer import pool_as_conv
from ...model.link import LinkGeometry
from ...model.protocol import CfgTarget

__all__ = ["ChecksumWalker", "crc32_processor"]


def crc32_processor():
    """CRC-32/ISO-HDLC over bytes (``zlib.crc32``), from Amaranth's catalogue."""
    return catalog.CRC32_ISO_HDLC(data_width=8).create()


class ChecksumWalker(wiring.Component):
    """After a ``start`` pulse, reads every parameter of the core through its idle-time
    ``param_addr``/``param_data`` port, in the order of ``expected_checksum``, and feeds each value's
    bytes into a CRC-32: 2 cycles to read a value, then one per byte. ``done`` pulses when ``crc``
    holds the result (it stays until the cycle after the next ``start``). While idle it addresses
    the first weight.

    With ``geo.registered_reads`` the port answers three cycles after its address
    (``Core.param_latency``): the walk then moves to the next value's address in ADDR,
    once it has taken the current value's flags, rather than after its last byte. The current
    value is then already on its way through the port's registers, and the next one's address has
    been there for DATA, the bytes and ADDR, at least 3 cycles, when DATA takes it (a value has at
    least one byte). The last value's ADDR points the walk back at the first weight, so that the
    next walk's first DATA, which sees the address of 2 cycles before its ADDR, finds it however
    soon ``start`` follows ``done``. Same cycle count
    (:func:`~spikegate.model.link.checksum_cycles`).
    """

    def __init__(self, net, geo: LinkGeometry, core):
        self.net, self.geo = net, geo
        # Where a dense layer follows a conv layer, its contract row i = (c, y, x) is read at the
        # packed address of input i (model.link.checksum.param_rows): counters c, y, x, in the
        # contract's order, make it without a table. None: the row is the row counter.
        geos = core.geometry
        self.packed = [geos[l - 1].conv if l and geos[l].conv is None else None for l in range(len(geos))]
        self.max_value_bytes = max(geo.write_value_bytes(l, t) for l in range(geo.n_layers) for t in CfgTarget)
        self.latency = core.param_latency
        super().__init__({
            "start": In(1), "done": Out(1), "crc": Out(32),
            "param_addr": Out(core.param_layout), "param_data": In(signed(core.data_bits)),
        })

    def elaborate(self, platform):
        m = Module()
        geo, maxvb = self.geo, self.max_value_bytes
        m.submodules.crc = crc = crc32_processor()
        pa = self.param_addr
        layer, target = Signal.like(pa.layer), Signal(CfgTarget)
        row, col = Signal.like(pa.row), Signal.like(pa.col)
        m.d.comb += [pa.layer.eq(layer), pa.target.eq(target), pa.row.eq(row), pa.col.eq(col),
                     self.crc.eq(crc.crc)]  # pa.row: the packed row instead after a conv layer (below)
        val = Signal(8 * maxvb)
        nbyte = Signal(range(maxvb + 1))
        vb = Signal(range(maxvb + 1))
        m.d.comb += [crc.data.eq(val[:8])]
        early = geo.registered_reads
        # Value k+1's address is there from DATA of value k (early: set in its ADDR), vb_k + 2 >= 3
        # cycles before DATA takes value k+1; otherwise from its own ADDR, one cycle before.
        assert self.latency <= (3 if early else 1), (self.latency, early)
        if early:
            # the value's byte count and whether it is the last one, taken before the walk moves on
            vb_now = Signal.like(vb)
            finished = Signal()

        # Per-layer constants of the current layer and what follows the current value.
        last_row, last_col, readout, last_layer = Signal(), Signal(), Signal(), Signal()
        # (c, y, x) of the contract row of a dense layer after a conv layer, and their last values
        sizes = [p.spec.out_shape for p in self.packed if p is not None] or [(1, 1, 1)]
        cc, yy, xx = (Signal(range(max(s[i] for s in sizes))) for i in range(3))
        last_x, last_y = Signal(), Signal()
        for l, lyr in enumerate(self.net.layers):
            lyr, prev = pool_as_conv(lyr), self.packed[l]
            with m.If(layer == l):
                m.d.comb += [last_row.eq(row == lyr.weights.shape[0] - 1), last_col.eq(col == lyr.weights.shape[1] - 1),
                             readout.eq(lyr.readout), last_layer.eq(l == geo.n_layers - 1)]
                if prev is not None:
                    cb, xb, _ = prev.out_fields
                    _, h, w = prev.spec.out_shape
                    m.d.comb += [last_x.eq(xx == w - 1), last_y.eq(yy == h - 1)]
                    with m.If(target == CfgTarget.WEIGHT):
                        m.d.comb += pa.row.eq((yy << (xb + cb)) | (xx << cb) | cc)
                with m.Switch(target):
                    for t in CfgTarget:
                        with m.Case(t):
                            m.d.comb += vb.eq(geo.write_value_bytes(l, t))

        def first_weight(l):
            return [layer.eq(l), target.eq(CfgTarget.WEIGHT), row.eq(0), col.eq(0), cc.eq(0), yy.eq(0), xx.eq(0)]

        def next_layer():
            with m.If(last_layer):
                if early:
                    m.d.sync += [finished.eq(1)] + first_weight(0)
                else:
                    m.next = "DONE"
            with m.Else():
                m.d.sync += first_weight(layer + 1)

        def advance(last_row, last_col, last_x, last_y, readout):
            """On to the next value's address (the contract's order), as the flags of the current
            value's position say."""
            with m.Switch(target):
                with m.Case(CfgTarget.WEIGHT):
                    m.d.sync += col.eq(col + 1)
                    with m.If(last_col):
                        m.d.sync += [col.eq(0), row.eq(row + 1), xx.eq(xx + 1)]
                        with m.If(last_x):
                            m.d.sync += [xx.eq(0), yy.eq(yy + 1)]
                            with m.If(last_y):
                                m.d.sync += [yy.eq(0), cc.eq(cc + 1)]
                        with m.If(last_row):
                            m.d.sync += [row.eq(0), target.eq(CfgTarget.BIAS)]
                with m.Case(CfgTarget.BIAS):
                    m.d.sync += col.eq(col + 1)
                    with m.If(last_col):
                        m.d.sync += col.eq(0)
                        with m.If(readout):
                            next_layer()
                        with m.Else():
                            m.d.sync += target.eq(CfgTarget.THRESHOLD)
                with m.Default():
                    next_layer()

        # Timing: ``start`` is decided by the engine in the same cycle from its command and length
        # tests. The walk's first address is therefore set in every IDLE cycle, and the CRC restarts
        # in the first ADDR, so that ``start`` steers only the state and no counter's or the CRC's
        # enable (the MNIST iCEBreaker build's critical path ran EXEC -> start -> those enables).
        first = Signal()
        with m.FSM():
            with m.State("IDLE"):
                m.d.sync += first_weight(0) + [first.eq(1)]
                if early:
                    m.d.sync += finished.eq(0)
                with m.If(self.start):
                    m.next = "ADDR"
            with m.State("ADDR"):
                m.d.comb += crc.start.eq(first)
                m.d.sync += first.eq(0)
                m.next = "DATA"
                if early:
                    m.d.sync += vb_now.eq(vb)
                    advance(last_row, last_col, last_x, last_y, readout)
            with m.State("DATA"):
                m.d.sync += [val.eq(self.param_data), nbyte.eq(0)]
                m.next = "BYTE"
            with m.State("BYTE"):
                m.d.comb += crc.valid.eq(1)
                m.d.sync += [val.eq(val >> 8), nbyte.eq(nbyte + 1)]
                m.next = "BYTE"
                with m.If(nbyte == (vb_now if early else vb) - 1):
                    if early:
                        m.next = "ADDR"
                        with m.If(finished):
                            m.next = "DONE"
                    else:
                        m.next = "ADDR"
                        advance(last_row, last_col, last_x, last_y, readout)
            with m.State("DONE"):
                m.d.comb += self.done.eq(1)
                m.next = "IDLE"
        return m
