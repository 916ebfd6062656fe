"""LEARN, REWARD and READ_STATE, the learning commands (docs/protocol.md, "Learning on the board"),
as states of :class:`~spikegate.hdl.link.engine.CommandEngine`'s FSM, and :class:`StateReader`,
which streams a READ_STATE answer. Byte-level twin: :class:`spikegate.model.link.learn_cmds.LearnTwin`;
what is readable: :func:`spikegate.model.link.state_layout`."""
from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ...model.link import has_plastic, has_rstdp, state_layout
from ...model.protocol import (LEARN_MODES, MAX_STATE_ANSWER, READ_STATE_HEADER, READ_STATE_HEADER_LEN, REWARD_BYTES,
                               REWARD_PAYLOAD, WRITE_HEADER, CfgTarget, Cmd, RewardMode, StateKind, Status, field)
from .answer import Source

__all__ = ["LearnCommands", "StateReader"]


def _readable(core):
    """``{(layer, kind): StateLayout}`` of everything ``core`` can read back."""
    return {(l, k): lay for l in range(len(core.geometry)) for k in StateKind
            if (lay := state_layout(core.geometry, l, k)) is not None}


class StateReader(wiring.Component):
    """After ``start`` (with ``layer``, ``kind``, ``first``, the index of the first value), reads one
    value at a time (weights through the core's ``param`` port, the rest through its idle-time
    learning-state read ``state_addr``/``state_data``) and offers its little-endian bytes on
    ``byte``/``ready`` to the answer source, which pulses ``next`` as it takes one. ``active`` is
    high from ``start`` until the last byte of ``count`` values is taken; it owns ``param_addr`` and
    ``state_addr`` meanwhile. Reading starts at value 0 and skips to ``first`` (weights and
    eligibility: a row per cycle, then a column per cycle; the others a value per cycle, in ``row``
    for the pre traces, ``col`` for the rest: :func:`~spikegate.model.link.state_index`), so no
    divider is needed."""

    def __init__(self, core):
        # ADDR -> DATA: the weight of the address set with the last byte (plastic layers refuse
        # registered reads, whose parameter port answers later)
        assert core.param_latency == 1, core.param_latency
        self.readable = _readable(core)
        self.max_vb = max(lay.value_bytes for lay in self.readable.values())
        self.core = core
        super().__init__({
            "start": In(1), "layer": In(8), "kind": In(8), "first": In(32), "count": In(16),
            "active": Out(1), "byte": Out(8), "ready": Out(1), "next": In(1),
            "param_addr": Out(core.param_layout), "param_data": In(signed(core.data_bits)),
            "state_addr": Out(core.learn_state_layout), "state_data": In(signed(len(core.learn_state_data))),
        })

    def elaborate(self, platform):
        m = Module()
        geos = self.core.geometry
        layer, kind = Signal(8), Signal(8)
        row = Signal(max(len(self.param_addr.row), len(self.state_addr.row)))
        col = Signal(max(len(self.param_addr.col), len(self.state_addr.col)))
        seek = Signal(32)   # values still to skip before the first one read
        left = Signal(16)   # values still to send after the current one
        val = Signal(8 * self.max_vb)
        nbyte, vb = Signal(range(self.max_vb + 1)), Signal(range(self.max_vb + 1))
        n = Signal(16)
        m.d.comb += [self.param_addr.layer.eq(layer), self.param_addr.target.eq(CfgTarget.WEIGHT),
                     self.param_addr.row.eq(row), self.param_addr.col.eq(col),
                     self.state_addr.layer.eq(layer), self.state_addr.kind.eq(kind),
                     self.state_addr.row.eq(row), self.state_addr.col.eq(col), self.byte.eq(val[:8])]
        for (l, k), lay in self.readable.items():
            with m.If((layer == l) & (kind == k)):
                m.d.comb += [vb.eq(lay.value_bytes), n.eq(geos[l].n)]
        weights = kind == StateKind.WEIGHTS
        two_d = weights | (kind == StateKind.ELIGIBILITY)
        by_row = kind == StateKind.PRE_TRACES

        def step():  # on to the next value (state_index's order)
            with m.If(two_d & (col == n - 1)):
                m.d.sync += [col.eq(0), row.eq(row + 1)]
            with m.Elif(by_row):
                m.d.sync += row.eq(row + 1)
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
                with m.If(two_d & (seek >= n)):
                    m.d.sync += [row.eq(row + 1), seek.eq(seek - n)]
                with m.Elif(seek != 0):
                    step()
                    m.d.sync += seek.eq(seek - 1)
                with m.Else():
                    m.next = "ADDR"
            with m.State("ADDR"):   # the address is on the ports; the core answers next cycle
                m.d.comb += self.active.eq(1)
                m.next = "DATA"
            with m.State("DATA"):
                m.d.comb += self.active.eq(1)
                # sign-extended to the value's bytes (traces and offsets read with a 0 sign bit)
                m.d.sync += [val.eq(Mux(weights, self.param_data, self.state_data)), nbyte.eq(0)]
                m.next = "BYTES"
            with m.State("BYTES"):
                m.d.comb += [self.active.eq(1), self.ready.eq(1)]
                with m.If(self.next):
                    m.d.sync += [val.eq(val >> 8), nbyte.eq(nbyte + 1)]
                    with m.If(nbyte == vb - 1):
                        step()
                        m.d.sync += left.eq(left - 1)
                        m.next = "ADDR"
                        with m.If(left == 0):
                            m.next = "IDLE"
        return m


class LearnCommands:
    """Built inside the engine's ``elaborate`` (like :class:`~.encode_cmds.EncodeCommands`) with
    the registers the commands share: the payload buffer's read port ``brd``, its pointer ``ptr``,
    the frame-length tests ``length_test`` (:class:`~.registered_test.RegisteredTest`), the ``dirty`` flag,
    the ``answer`` source and the WRITE header register of ``rules`` (:class:`~.write.WriteRules`),
    which holds READ_STATE's and REWARD's payloads. ``mode`` is the learning mode flag, driven into
    the core's ``learn`` input; a run started with it set sets ``dirty``.
    rstdp networks: ``step_reward`` (REWARD STEP) drives the core's ``step_reward``; a REWARD
    SAMPLE goes to the core's ``reward`` stream and is answered when the core is done with it."""

    def __init__(self, m, eng, core, *, brd, ptr, length_test, dirty, answer, rules):
        self.m, self.eng = m, eng
        self.brd, self.ptr, self.length_test, self.answer = brd, ptr, length_test, answer
        self.plastic, self.rstdp = has_plastic(core.net), has_rstdp(core.net)
        self.mode = Signal()
        # the request's fixed-size payload (READ_STATE's header, REWARD's), byte k in header byte k
        assert max(READ_STATE_HEADER_LEN, REWARD_BYTES) <= WRITE_HEADER
        self.rules = rules
        if self.plastic:
            m.d.comb += eng.learn.eq(self.mode)
            with m.If(eng.start & self.mode):
                m.d.sync += dirty.eq(1)  # the weights may change: they are no longer the network id's
        if self.rstdp:
            self.step_reward, self.sample = Signal(signed(16)), Signal(signed(16))
            m.d.comb += [eng.step_reward.eq(self.step_reward), eng.reward.payload.eq(self.sample)]
        self.reader = None
        if self.plastic:
            m.submodules.state_reader = rd = self.reader = StateReader(core)
            self.readable = rd.readable
            m.d.comb += [rd.param_data.eq(eng.param_data), rd.state_data.eq(eng.learn_state_data),
                         eng.learn_state_addr.eq(rd.state_addr), answer.state_byte.eq(rd.byte),
                         answer.state_ready.eq(rd.ready), rd.next.eq(answer.state_next)]
            # Later than the engine's own assignments, so these win while the reader is active.
            with m.If(rd.active):
                m.d.comb += eng.param_addr.eq(rd.param_addr)

    def _hfield(self, table, name):
        """Field ``name`` of ``table`` in the header register once the request's bytes are in."""
        f = field(table, name)
        return self.rules.header[8 * f.offset:8 * (f.offset + f.size)]

    def begin(self, respond):
        """The EXEC cases of the three commands."""
        m, length_test = self.m, self.length_test
        with self.eng.cmd_case(Cmd.LEARN):
            with m.If(length_test(lambda n: n != 1)):
                respond(Status.BAD_LENGTH)
            with m.Else():
                if self.plastic:
                    m.next = "LN_RD"
                else:
                    respond(Status.UNSUPPORTED)
        for cmd, n, supported, state in ((Cmd.REWARD, REWARD_BYTES, self.rstdp, "RW_CHECK"),
                                         (Cmd.READ_STATE, READ_STATE_HEADER_LEN, self.plastic, "RS_CHECK")):
            with self.eng.cmd_case(cmd):
                with m.If(length_test(lambda v, n=n: v != n)):
                    respond(Status.BAD_LENGTH)
                with m.Else():
                    if supported:
                        m.d.sync += self.eng.ptr_to(0)
                        m.next = f"{state}_RD"
                    else:  # no payload decoding in a bitstream without the feature
                        respond(Status.UNSUPPORTED)

    def _payload_states(self, state: str, n: int):
        """Store the request's ``n`` bytes in the header register, then go to ``state``."""
        m, ptr, rules = self.m, self.ptr, self.rules
        with m.State(f"{state}_RD"):
            m.next = f"{state}_GET"
        with m.State(f"{state}_GET"):
            # rules.value_byte is the payload byte read now (the engine connects it)
            m.d.comb += [rules.header_en.eq(1), rules.header_idx.eq(ptr[:3])]
            m.d.sync += self.eng.ptr_step()
            with m.If(ptr == n - 1):
                m.next = state
            with m.Else():
                m.next = f"{state}_RD"

    def states(self, respond):
        m, brd = self.m, self.brd
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

        if self.rstdp:
            self._reward_states(respond)

        self._payload_states("RS_CHECK", READ_STATE_HEADER_LEN)
        with m.State("RS_CHECK"):
            layer, kind = self._hfield(READ_STATE_HEADER, "layer"), self._hfield(READ_STATE_HEADER, "kind")
            first, count = self._hfield(READ_STATE_HEADER, "start"), self._hfield(READ_STATE_HEADER, "count")
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

    def _reward_states(self, respond):
        m, eng = self.m, self.eng
        self._payload_states("RW_CHECK", REWARD_BYTES)
        with m.State("RW_CHECK"):
            mode, value = self._hfield(REWARD_PAYLOAD, "mode"), self._hfield(REWARD_PAYLOAD, "reward")
            with m.If(mode > max(RewardMode)):
                respond(Status.RANGE)
            with m.Elif(mode == RewardMode.STEP):
                m.d.sync += self.step_reward.eq(value)
                respond(Status.OK)
            with m.Else():
                m.d.sync += self.sample.eq(value)
                m.next = "RW_SEND"
        with m.State("RW_SEND"):  # the core takes it while idle (it is: no run is under way)
            m.d.comb += eng.reward.valid.eq(1)
            with m.If(eng.reward.ready):
                m.next = "RW_WAIT1"
        with m.State("RW_WAIT1"):  # done falls the cycle after the core takes the reward
            m.next = "RW_WAIT"
        with m.State("RW_WAIT"):
            with m.If(eng.done):
                respond(Status.OK)
