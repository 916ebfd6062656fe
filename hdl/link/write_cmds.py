"""WRITE, the parameter upload (docs/protocol.md), as states of
:class:`~spikegate.hdl.link.engine.CommandEngine`'s FSM. Byte-level twin:
:meth:`spikegate.model.link.CommandEngine._write`."""
from amaranth.hdl import Signal

from ...model.protocol import WRITE_HEADER, Status
from .write import WriteRules

__all__ = ["WriteCommand"]


class WriteCommand:
    """Built inside the engine's ``elaborate`` (like :class:`~.encode_cmds.EncodeCommands`) with
    the registers the commands share: the payload buffer's read port ``brd``, its pointer ``ptr``,
    the frame's ``length`` and its registered tests ``length_test``, the second-pass flag ``apply``,
    the ``dirty`` flag and the ``stat`` counters. The header is checked, then a first pass judges
    every value and a second applies them on the core's ``cfg`` port, so a frame is applied
    entirely or not at all. ``rules`` (:class:`~.write.WriteRules`) holds the header, which the
    learning commands borrow for their fixed-size payloads."""

    def __init__(self, m, eng, net, geo, *, brd, ptr, length, length_test, apply, dirty, stat):
        self.m, self.eng = m, eng
        self.ptr, self.length_test, self.apply, self.dirty, self.stat = ptr, length_test, apply, dirty, stat
        m.submodules.rules = self.rules = rules = WriteRules(net, geo)
        self.judge = Signal()  # W_NEXT follows a first-pass value: its verdict decides
        m.d.sync += self.judge.eq(0)
        m.d.comb += [rules.length.eq(length), rules.value_byte.eq(brd.data)]
        wr = eng.cfg.payload
        m.d.comb += [wr.layer.eq(rules.layer), wr.target.eq(rules.target), wr.row.eq(rules.row_now),
                     wr.col.eq(rules.col_now), wr.data.eq(rules.value)]

    def begin(self, respond):
        m = self.m
        with m.If(self.length_test(lambda n: n < WRITE_HEADER)):
            respond(Status.BAD_LENGTH)
        with m.Else():
            m.next = "W_HDR_RD"

    def states(self, respond):
        m, rules, ptr, apply = self.m, self.rules, self.ptr, self.apply
        with m.State("W_HDR_RD"):
            m.next = "W_HDR_GET"
        with m.State("W_HDR_GET"):
            m.d.comb += [rules.header_en.eq(1), rules.header_idx.eq(ptr[:3])]
            m.d.sync += self.eng.ptr_step()
            with m.If(ptr == WRITE_HEADER - 1):
                m.next = "W_CHECK1"
            with m.Else():
                m.next = "W_HDR_RD"
        with m.State("W_CHECK1"):
            with m.If(~rules.header_ok):
                respond(Status.RANGE)
            with m.Else():
                m.next = "W_CHECK2"
        with m.State("W_CHECK2"):
            with m.If(~rules.length_ok):
                respond(Status.BAD_LENGTH)
            with m.Elif(~rules.address_ok):
                respond(Status.RANGE)
            with m.Else():
                m.d.comb += rules.restart.eq(1)
                m.d.sync += [apply.eq(0), *self.eng.ptr_to(WRITE_HEADER)]
                m.next = "W_NEXT"
        with m.State("W_NEXT"):
            with m.If(self.judge & ~rules.in_range):
                respond(Status.RANGE)
            with m.Elif(rules.all_done):
                with m.If(~apply):
                    m.d.comb += rules.restart.eq(1)
                    m.d.sync += [apply.eq(1), *self.eng.ptr_to(WRITE_HEADER)]
                with m.Else():
                    m.d.sync += self.dirty.eq(1)
                    respond(Status.OK)
            with m.Else():
                m.d.comb += rules.value_start.eq(1)
                m.next = "W_VAL_RD"
        with m.State("W_VAL_RD"):
            m.next = "W_VAL_GET"
        with m.State("W_VAL_GET"):
            m.d.comb += rules.value_get.eq(1)
            m.d.sync += self.eng.ptr_step()
            with m.If(rules.value_last):
                m.next = "W_VAL_DONE"
            with m.Else():
                m.next = "W_VAL_RD"
        with m.State("W_VAL_DONE"):
            with m.If(~apply):
                # judged now, the verdict read in W_NEXT (rules.in_range is registered)
                m.d.comb += rules.value_next.eq(1)
                m.d.sync += self.judge.eq(1)
                m.next = "W_NEXT"
            with m.Else():
                m.d.comb += self.eng.cfg.valid.eq(1)
                with m.If(self.eng.cfg.ready):
                    m.d.comb += [rules.value_next.eq(1), self.stat.cfg_write.eq(1)]
                    m.next = "W_NEXT"
