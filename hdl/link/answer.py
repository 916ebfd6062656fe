"""AnswerSource: the payload bytes of the command engine's answers, as a byte stream."""
from enum import IntEnum

from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ...model.link import LinkGeometry, content_digest, has_plastic
from .ahead import Ahead
from ..read_reg import late
from ..synapse import BLOCK_RAM
from ...model.protocol import MAX_STATE_ANSWER, CYCLE_BYTES, IDENTIFY_TAIL, NET_ID_BYTES, STATUS_LEN, field

__all__ = ["AnswerSource", "Source"]


class Source(IntEnum):
    """Where an answer's bytes come from."""
    IDENTIFY = 0   # identify ROM, dirty flag, network id
    STATUS = 1     # the status block
    RUN = 2        # cycles (u32), then the outputs when the answer is longer
    OUTPUTS = 3    # the outputs: count and membrane of each output neuron
    CHECKSUM = 4   # the CRC-32 of the parameters (u32)
    STATE = 5      # READ_STATE's values, byte by byte from the state reader (hdl.link.learn_cmds)


class AnswerSource(wiring.Component):
    """Streams ``length`` answer bytes from ``source`` after a ``start`` pulse.

    Ports:

    - ``start`` (in) with ``source`` (in, :class:`Source`) and ``length`` (in): begin an answer;
      ``idle`` (out): no answer under way.
    - ``o`` (stream out): its bytes.
    - ``nid_en``, ``nid_addr``, ``nid_data`` (in): write a byte of the network id (SET_NET_ID).
    - ``dirty`` (in), ``status_word`` (in, the STATUS block), ``last_cycles`` (in), ``checksum`` (in):
      answer contents.
    - ``out_addr`` (out), ``out_count``, ``out_membrane`` (in): the NetworkCore's output ports.
    - ``state_byte``, ``state_ready`` (in), ``state_next`` (out): a STATE answer's bytes; the next
      byte is fetched once ``state_ready`` is high, and ``state_next`` pulses as it is taken.

    With ``geo.registered_reads`` the memories' data go into flip-flops before the byte choice, and
    the core's output peek answers ``out_addr`` two cycles later (``Core.read_latency``):
    both are addressed a byte ahead, so the bytes and their cycles are the same. That needs ``start``
    to come at least two cycles after the last answer's final byte was taken, which the engine's
    states (IDLE, EXEC, RESP at the least) and its BATCH records give.
    """

    def __init__(self, net, geo: LinkGeometry, identify_static: bytes, core, *, ident_block: bool = False):
        # ``core``: anything with the NetworkCore's out_addr/out_count/out_membrane ports (for widths).
        # ``ident_block``: the identify payload (ROM and network id) in one block RAM instead of
        # logic: the id's 128 flip-flops take a whole iCE40 logic cell each (their input comes from
        # no logic), and the ROM and the byte choice about 200 LUTs more.
        self.net, self.geo, self.identify_static = net, geo, identify_static
        self.ident_block = bool(ident_block)
        self.plastic = has_plastic(net)
        self.max_len = max(geo.identify_len, STATUS_LEN, CYCLE_BYTES + geo.output_bytes,
                           MAX_STATE_ANSWER if self.plastic else 0)
        super().__init__({
            "start": In(1), "source": In(Source), "length": In(range(self.max_len + 1)),
            "o": Out(stream.Signature(8)),
            "nid_en": In(1), "nid_addr": In(range(NET_ID_BYTES)), "nid_data": In(8),
            "dirty": In(1), "status_word": In(8 * STATUS_LEN), "last_cycles": In(32), "checksum": In(32),
            "out_addr": Out(len(core.out_addr)), "out_count": In(len(core.out_count)),
            "out_membrane": In(signed(len(core.out_membrane))),
            "state_byte": In(8), "state_ready": In(1), "state_next": Out(1),
            "idle": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        geo = self.geo
        S = len(self.identify_static)
        dirty_at = S + field(IDENTIFY_TAIL, "dirty").offset
        nid_at = S + field(IDENTIFY_TAIL, "net_id").offset
        if self.ident_block:
            # The whole identify payload in one block RAM (the dirty byte's word is never read);
            # its synchronous read is addressed with the byte FETCH will take (``rd_next`` below).
            init = list(self.identify_static) + [0] * (nid_at - S) + list(content_digest(self.net))
            m.submodules.ident = ident = Memory(shape=8, depth=len(init), init=init, attrs=BLOCK_RAM)
            nid_wr, rom_rd = ident.write_port(), ident.read_port()
            nid_rd = rom_rd
            m.d.comb += nid_wr.addr.eq(nid_at + self.nid_addr)
        else:
            # Tiny memories go to logic: a block RAM each would cost 2 of the UP5K's 30 EBRs.
            small = {"ram_style": "logic", "rom_style": "logic"}
            m.submodules.rom = rom = Memory(shape=8, depth=S, init=list(self.identify_static), attrs=small)
            # Synchronous reads, addressed like the block RAM's (timing: an asynchronous read at
            # idx and the address arithmetic ran on into the byte register).
            rom_rd = rom.read_port()
            m.submodules.nid = nid = Memory(shape=8, depth=NET_ID_BYTES, init=list(content_digest(self.net)),
                                            attrs=small)
            nid_wr, nid_rd = nid.write_port(), nid.read_port()
            m.d.comb += nid_wr.addr.eq(self.nid_addr)
        m.d.comb += [nid_wr.en.eq(self.nid_en), nid_wr.data.eq(self.nid_data)]
        registered = geo.registered_reads
        rom_data, nid_data = rom_rd.data, nid_rd.data
        if registered:
            # timing: each memory's data into a flip-flop first (addressed a cycle ahead, below)
            rom_data = late(m, rom_rd.data, 1, "rom_data", reset_less=True)
            if nid_rd is rom_rd:
                nid_data = rom_data
            else:
                nid_data = late(m, nid_rd.data, 1, "nid_data", reset_less=True)

        source = Signal(Source)
        length = Signal.like(self.length)
        idx = Signal(range(max(self.max_len, 32) + 1))
        # out_addr leads k by a cycle with registered reads (hdl.link.ahead): the core's peek then
        # answers in the cycle after k holds the address, as a one-cycle peek does from k.
        k = Signal(range(geo.n_out + 1))
        k_ahead = Ahead(m, k, registered=registered)
        last_byte = Signal()  # (registered reads) the byte in SEND is the answer's last
        cb, mb = geo.count_bytes, geo.membrane_bytes
        j = Signal(range(cb + mb))
        out_count = Signal(8 * cb)
        out_mem = Signal(signed(8 * mb))
        m.d.comb += [out_count.eq(self.out_count), out_mem.eq(self.out_membrane), self.out_addr.eq(k_ahead.addr)]
        out_word = Cat(out_count, out_mem)
        in_out = Signal()

        # The byte is registered (timing: the source selection no longer runs on into the encoder
        # and the transmitter). It is chosen in FETCH, when (idx, j, k) name it: idx moves on as it
        # is sent, j and k as it is fetched, so out_addr holds the next output's index while the
        # byte waits in SEND, and the core's registered peek answers it by the next FETCH. k is 0
        # whenever the source is idle, ready for an answer that starts with the outputs (READ).
        byte = Signal(8)
        m.d.comb += self.o.payload.eq(byte)
        sel = Signal(8)
        # The memories are read at the address FETCH will fetch: 0 while idle, idx + 1 otherwise
        # (SEND's next byte; what FETCH reads is never used, as SEND follows it, so FETCH needs no
        # address of its own). The tests of idx that choose the byte are flip-flops taken from
        # that address too, so they always describe idx in FETCH (timing: idx -> the compares ->
        # the choice -> byte was the Tang Nano 9K's critical path; an address chosen by all three
        # states, the iCEBreaker's).
        rd_next = Signal.like(idx)
        # idx + 1 kept in a flip-flop beside idx (timing: the adder in front of the logic ROM was
        # the Tang Nano 9K's critical path at 81e50d2, idx -> + 1 -> ROM -> its read register),
        # and so is the network id's address (idx + 1 - nid_at) where the id has a memory of its
        # own (in the block RAM it is read through the ROM's port).
        idx1 = Signal.like(idx)
        m.d.comb += [rom_rd.addr.eq(rd_next), rd_next.eq(Mux(self.idle, 0, idx1))]
        nid1 = None if self.ident_block else Signal(len(nid_rd.addr))
        if nid1 is not None:
            m.d.comb += nid_rd.addr.eq(nid1)
        in_rom = Signal()
        at_dirty = Signal()
        past_cycles = Signal()
        m.d.sync += [in_rom.eq(rd_next < S if not self.ident_block else rd_next != dirty_at),
                     at_dirty.eq(rd_next == dirty_at), past_cycles.eq(rd_next >= CYCLE_BYTES)]
        m.d.comb += in_out.eq((source == Source.OUTPUTS) | ((source == Source.RUN) & past_cycles))
        with m.Switch(source):
            with m.Case(Source.IDENTIFY):
                with m.If(in_rom):
                    m.d.comb += sel.eq(rom_data)
                with m.Elif(at_dirty):
                    m.d.comb += sel.eq(self.dirty)
                with m.Else():
                    m.d.comb += sel.eq(nid_data)
            with m.Case(Source.STATUS):
                m.d.comb += sel.eq(self.status_word.word_select(idx[:5], 8))
            with m.Case(Source.CHECKSUM):
                m.d.comb += sel.eq(self.checksum.word_select(idx[:2], 8))
            with m.Case(Source.STATE):
                m.d.comb += sel.eq(self.state_byte)
            with m.Default():
                with m.If(in_out):
                    m.d.comb += sel.eq(out_word.word_select(j, 8))
                with m.Else():
                    m.d.comb += sel.eq(self.last_cycles.word_select(idx[:2], 8))

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.idle.eq(1)
                with m.If(self.start):
                    m.d.sync += [source.eq(self.source), length.eq(self.length), idx.eq(0), idx1.eq(1), j.eq(0)]
                    if nid1 is not None:
                        m.d.sync += nid1.eq(1 - nid_at)
                    with m.If(self.length != 0):
                        m.next = "FETCH"
            with m.State("FETCH"):
                # idx is the byte to fetch; the memories and out_addr have had a cycle to answer.
                # They are read at the next byte from now on (with registered reads, two cycles
                # before the next FETCH: this one and at least one SEND).
                # (only a plastic network's answers come from the state reader)
                with m.If((source != Source.STATE) | self.state_ready if self.plastic else 1):
                    m.d.sync += byte.eq(sel)
                    if registered:
                        m.d.sync += last_byte.eq(idx == length - 1)
                    m.d.comb += self.state_next.eq(source == Source.STATE)
                    with m.If(in_out):
                        m.d.sync += j.eq(j + 1)
                        with m.If(j == cb + mb - 1):
                            m.d.sync += [j.eq(0), *k_ahead.step()]
                    m.next = "SEND"
            with m.State("SEND"):
                # The memories are read at idx + 1 whether or not the byte goes (timing: o.ready,
                # from the answer FIFO's level, no longer steers their address); only a cycle
                # that sends it leads to FETCH, which reads them.
                m.d.comb += self.o.valid.eq(1)
                if registered:
                    # No output follows the last byte, so k goes back to 0 while it waits (timing:
                    # o.ready, from the answer FIFO's level, would otherwise run on through out_addr,
                    # which leads k, into the core's state memory's address).
                    with m.If(last_byte):
                        m.d.sync += k_ahead.to(0)
                with m.If(self.o.ready):
                    m.d.sync += [idx.eq(idx1), idx1.eq(idx1 + 1)]
                    if nid1 is not None:
                        m.d.sync += nid1.eq(nid1 + 1)
                    with m.If(idx == length - 1):
                        if not registered:
                            m.d.sync += k_ahead.to(0)
                        m.next = "IDLE"
                    with m.Else():
                        m.next = "FETCH"
        return m
