"""LEARN, REWARD and READ_STATE, the learning commands (docs/protocol.md, "Learning on the board"),
as states of :class:`~spikegate.hdl.link.engine.CommandEngine`'s FSM, and :class:`StateReader`,
which streams a READ_STATE answer. Byte-level twin: :class:`spikegate.model.link.learn_cmds.LearnTwin`;
what is readable: :func:`spikegate.model.link.state_layout`."""
from amaranth.hdl import Cat, Module, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ...model.link import has_plastic, has_rstdp, state_layout
from ...model.protocol import (LEARN_MODES, MAX_STATE_ANSWER, READ_STATE_HEADER, READ_STATE_HEADER_LEN, REWARD_BYTES,
                               CfgTarget, Cmd, StateKind, Status, field)
from .answer import Source

__all__ = ["LearnCommands", "StateReader"]


def _readable(core):
    """``{(layer, kind): StateLayout}`` of everything ``core`` can read back."""
    return {(l, k): lay for l in range(len(core.geometry)) for k in StateKind
            if (lay := state_layout(core.geometry, l, k)) is not None}


class StateReader(wiring.Component):
    """After ``start`` (with ``layer``, ``kind``, ``first``, the index of the first value), reads one
    value at a time (weights through the core's ``param`` port, offsets through its output peek) and
    offers its little-endian bytes on ``byte``/``ready`` to the answer source, which pulses ``next``
    as it takes one. ``active`` is high from ``start`` until the last byte of ``count`` values is
    taken; it owns ``param_addr`` and ``out_addr`` meanwhile. Reading starts at value 0 and skips to
    ``first`` (weights: a row per cycle, then a column per cycle), so no divider is needed."""

    def __init__(self, core):
        self.readable = _readable(core)
        self.max_vb = max(lay.value_bytes for lay in self.readable.values())
        self.core = core
        members = {
            "start": In(1), "layer": In(8), "kind": In(8), "first": In(32), "count": In(16),
            "active": Out(1), "byte": Out(8), "ready": Out(1), "next": In(1),
            "param_addr": Out(core.param_layout), "param_data": In(signed(core.data_bits)),
            "out_addr": Out(len(core.out_addr)),
        }
        if "out_offset" in core.signature.members:
            members["out_offset"] = In(len(core.out_offset))
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        geos = self.core.geometry
        layer, kind = Signal(8), Signal(8)
        row, col = Signal(len(self.param_addr.row)), Signal(max(len(self.param_addr.col), len(self.out_addr)))
        seek = Signal(32)   # values still to skip before the first one read
        left = Signal(16)   # values still to send after the current one
        val = Signal(8 * self.max_vb)
        nbyte, vb = Signal(range(self.max_vb + 1)), Signal(range(self.max_vb + 1))
        n, n_in = Signal(16), Signal(16)
        m.d.comb += [self.param_addr.layer.eq(layer), self.param_addr.target.eq(CfgTarget.WEIGHT),
                     self.param_addr.row.eq(row), self.param_addr.col.eq(col), self.out_addr.eq(col),
                     self.byte.eq(val[:8])]
        for (l, k), lay in self.readable.items():
            with m.If((layer == l) & (kind == k)):
                m.d.comb += [vb.eq(lay.value_bytes), n.eq(geos[l].n), n_in.eq(geos[l].n_in)]
        weights = kind == StateKind.WEIGHTS
        last_col = col == n - 1

        def advance():
            with m.If(weights & last_col):
                m.d.sync += [col.eq(0), row.eq(row + 1)]
            with m.Else():
                m.d.sync += col.eq(col + 1)

        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [layer.eq(self.layer), kind.eq(self.kind), seek.eq(self.first), row.eq(0),
                                 col.eq(0), left.eq(self.count - 1)]
                    m.next = "SEEK"
            with m.State("SEEK"):
                m.d.comb += self.active.eq(1)
                with m.If(weights & (seek >= n)):
                    m.d.sync += [row.eq(row + 1), seek.eq(seek - n)]
                with m.Elif(seek != 0):
                    m.d.sync += [col.eq(col + 1), seek.eq(seek - 1)]
                with m.Else():
                    m.next = "ADDR"
            with m.State("ADDR"):   # the address is on the ports; the core answers next cycle
                m.d.comb += self.active.eq(1)
                m.next = "DATA"
            with m.State("DATA"):
                m.d.comb += self.active.eq(1)
                if "out_offset" in self.signature.members:
                    m.d.sync += val.eq(self.out_offset)
                with m.If(weights):
                    m.d.sync += val.eq(self.param_data)  # sign-extended to the value's bytes
                m.d.sync += nbyte.eq(0)
                m.next = "BYTES"
            with m.State("BYTES"):
                m.d.comb += [self.active.eq(1), self.ready.eq(1)]
                with m.If(self.next):
                    m.d.sync += [val.eq(val >> 8), nbyte.eq(nbyte + 1)]
                    with m.If(nbyte == vb - 1):
                        advance()
                        m.d.sync += left.eq(left - 1)
                        m.next = "ADDR"
                        with m.If(left == 0):
                            m.next = "IDLE"
        return m


class LearnCommands:
    """Built inside the engine's ``elaborate`` (like :class:`~.encode_cmds.EncodeCommands`) with
    the registers the commands share: the payload buffer's read port ``brd``, its pointer ``ptr``,
    the frame's ``length``, the ``dirty`` flag and the ``answer`` source. ``mode`` is the learning
    mode flag, driven into the core's ``learn`` input; a run started with it set sets ``dirty``."""

    def __init__(self, m, eng, core, *, brd, ptr, length, dirty, answer):
        self.m, self.eng = m, eng
        self.brd, self.ptr, self.length, self.answer = brd, ptr, length, answer
        self.plastic, self.rstdp = has_plastic(core.net), has_rstdp(core.net)
        if self.rstdp:
            # HardwareConfig.geometry refuses rstdp layers, so no core reaches this; REWARD's
            # handler is to drive the core's reward input once it has one.
            raise ValueError("the command engine has no REWARD handler for an rstdp layer yet")
        self.mode = Signal()
        if self.plastic:
            m.d.comb += eng.learn.eq(self.mode)
            with m.If(eng.start & self.mode):
                m.d.sync += dirty.eq(1)  # the weights may change: they are no longer the network id's
        self.hdr = Signal(8 * READ_STATE_HEADER_LEN)
        self.reader = None
        if self.plastic:
            m.submodules.state_reader = rd = self.reader = StateReader(core)
            self.readable = rd.readable
            m.d.comb += [rd.param_data.eq(eng.param_data), answer.state_byte.eq(rd.byte),
                         answer.state_ready.eq(rd.ready), rd.next.eq(answer.state_next)]
            if "out_offset" in rd.signature.members:
                m.d.comb += rd.out_offset.eq(eng.out_offset)
            # Later than the engine's own assignments, so these win while the reader is active.
            with m.If(rd.active):
                m.d.comb += [eng.param_addr.eq(rd.param_addr), eng.out_addr.eq(rd.out_addr)]

    def _hfield(self, name):
        f = field(READ_STATE_HEADER, name)
        return self.hdr[8 * f.offset:8 * (f.offset + f.size)]

    def begin(self, respond):
        """The EXEC cases of the three commands."""
        m, length = self.m, self.length
        with m.Case(Cmd.LEARN):
            with m.If(length != 1):
                respond(Status.BAD_LENGTH)
            with m.Else():
                if self.plastic:
                    m.next = "LN_RD"
                else:
                    respond(Status.UNSUPPORTED)
        with m.Case(Cmd.REWARD):
            with m.If(length != REWARD_BYTES):
                respond(Status.BAD_LENGTH)
            with m.Else():
                respond(Status.UNSUPPORTED)  # (no rstdp layer: see __init__)
        with m.Case(Cmd.READ_STATE):
            with m.If(length != READ_STATE_HEADER_LEN):
                respond(Status.BAD_LENGTH)
            with m.Else():
                if self.plastic:
                    m.d.sync += self.ptr.eq(0)
                    m.next = "RS_HDR_RD"
                else:  # nothing to read: no header decoding in a bitstream that cannot learn
                    respond(Status.UNSUPPORTED)

    def states(self, respond):
        m, ptr, brd = self.m, self.ptr, self.brd
        if not self.plastic:
            return
        with m.State("LN_RD"):
            m.next = "LN_GET"
        with m.State("LN_GET"):
            with m.If(brd.data > max(LEARN_MODES)):
                respond(Status.RANGE)
            with m.Else():
                m.d.sync += self.mode.eq(brd.data[0])
                respond(Status.OK)

        with m.State("RS_HDR_RD"):
            m.next = "RS_HDR_GET"
        with m.State("RS_HDR_GET"):
            m.d.sync += [self.hdr.eq(Cat(self.hdr[8:], brd.data)), ptr.eq(ptr + 1)]
            with m.If(ptr == READ_STATE_HEADER_LEN - 1):
                m.next = "RS_CHECK"
            with m.Else():
                m.next = "RS_HDR_RD"
        with m.State("RS_CHECK"):
            layer, kind = self._hfield("layer"), self._hfield("kind")
            first, count = self._hfield("start"), self._hfield("count")
            n_layers = len(self.eng._core.geometry)
            hit, bad = Signal(), Signal()
            n_bytes = Signal(16)
            for (l, k), lay in self.readable.items():
                with m.If((layer == l) & (kind == k)):
                    m.d.comb += [hit.eq(1), n_bytes.eq(count * lay.value_bytes),
                                 bad.eq((count == 0) | (first + count > lay.total)
                                        | (count > MAX_STATE_ANSWER // lay.value_bytes))]
            with m.If((layer >= n_layers) | (kind > max(StateKind))):
                respond(Status.RANGE)
            with m.Elif(~hit):
                respond(Status.UNSUPPORTED)
            with m.Elif(bad):
                respond(Status.RANGE)
            with m.Else():
                m.d.comb += [self.reader.start.eq(1), self.reader.layer.eq(layer), self.reader.kind.eq(kind),
                             self.reader.first.eq(first), self.reader.count.eq(count)]
                respond(Status.OK, n_bytes, Source.STATE)
