"""InputEncoder: one sample's input levels (a byte per input) in, the core's ``load`` words out.

The gateware side of README "Input encoders": ``rate``, ``latency`` and the xorshift32
``bernoulli`` encoder, made on the chip so the host sends n_in bytes per sample instead of every
spike. Cycle-exact twin: :class:`spikegate.model.encode.InputEncoder`.
"""
from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from ..model.encode import LEVELS, InputEncoder as _Twin
from ..model.protocol import Encoding
from .link.ahead import Ahead
from .link.signatures import BufferRead, byte_zero
from .read_reg import late
from .synapse import BLOCK_RAM

__all__ = ["InputEncoder", "load_layout"]


def load_layout(n_in: int) -> data.StructLayout:
    """The payload of NetworkCore's ``load`` stream for ``n_in`` network inputs."""
    return data.StructLayout({"addr": max(1, ceil_log2(n_in)), "end_of_step": 1})


class InputEncoder(wiring.Component):
    """Turns the levels of one sample into ``load`` words, step by step.

    Parameters: ``n_in`` inputs, ``timesteps`` T (fixed by the network), ``buf_depth`` (size of
    the byte memory the levels are read from, e.g. the link's payload buffer).

    Ports:

    - ``start`` (in): a one-cycle pulse while ``busy`` is low starts a sample with ``encoding``
      (in, :class:`~spikegate.model.protocol.Encoding`), ``state`` (in, 32 bits: the initial
      xorshift32 state for ``bernoulli``, non-zero) and ``base`` (in: address of input 0's level).
    - ``buf`` (out, :class:`BufferRead`): reads level i at ``base + i``; the byte arrives one cycle
      after its address.
    - ``o`` (stream out, the core's ``load`` layout): the words, exactly
      ``model.core.input_words`` of the contract's spikes.
    - ``busy`` (out): high from the cycle after ``start`` until the last word is taken; with ``o``
      always ready that is ``T * (n_in + 1) + 1`` cycles (``model.encode.InputEncoder.cycles``).

    A two-stage loop visits the pairs (t, i) step-major, one per cycle, and an end-of-step slot
    after each step: stage A addresses the level and the input's ``rate`` remainder, stage B
    decides and offers the word. ``o`` not ready holds both stages while stage B is on, offering
    or not (the level is re-read from stage B's address while it waits).

    ``registered`` (``HardwareConfig.registered_reads``): ``buf`` answers two cycles after its
    address (its data comes from a flip-flop behind the block RAM), and the remainder memory's
    data goes into a flip-flop too. Stage A then addresses both a cycle ahead (the addresses its
    counters move to, :class:`~spikegate.hdl.link.ahead.Ahead`), and stage B keeps its level and
    remainder while it stalls: the same words in the same cycles.
    """

    def __init__(self, n_in: int, timesteps: int, buf_depth: int, layout: data.StructLayout | None = None,
                 *, registered: bool = False):
        _Twin(n_in, timesteps)  # validates the parameters the same way
        self.n_in, self.timesteps, self.buf_depth = int(n_in), int(timesteps), int(buf_depth)
        self.registered = bool(registered)
        layout = load_layout(n_in) if layout is None else layout
        super().__init__({
            "start": In(1), "encoding": In(Encoding), "state": In(32), "base": In(range(buf_depth)),
            "buf": Out(BufferRead(buf_depth)),
            "o": Out(stream.Signature(layout)),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        n, T = self.n_in, self.timesteps
        # rate's remainder per input, t * q mod 255 (only read back from step 1 on); one block RAM
        # (in flip-flops it would cost about 9 logic cells an input)
        m.submodules.rem = rem = Memory(shape=8, depth=n, init=[], attrs=BLOCK_RAM)
        registered = self.registered
        if registered and n == 1:
            # read a cycle ahead, input 0's remainder is read in the cycle stage B writes it
            rem_wr = rem.write_port()
            rem_rd = rem.read_port(transparent_for=(rem_wr,))
        else:
            rem_rd, rem_wr = rem.read_port(), rem.write_port()

        encoding, s, base = Signal(Encoding), Signal(32), Signal.like(self.base)
        a_on, k, t = Signal(), Signal(range(n + 1)), Signal(range(T))        # stage A
        b_on, kb, tb = Signal(), Signal(range(n + 1)), Signal(range(T))      # stage B
        stall = Signal()
        # base + k and base + kb, kept as counters (timing: o.ready, from the core's state, chose
        # between k and kb in front of the adder on its way to the level memory's address).
        ak, akb = Signal.like(self.base), Signal.like(self.base)
        # with registered reads both memories are read at stage A's next address (hdl.link.ahead)
        k_ahead, ak_ahead = Ahead(m, k, registered=registered), Ahead(m, ak, registered=registered)
        m.d.comb += [stall.eq(b_on & ~self.o.ready), self.busy.eq(a_on | b_on)]
        if not registered:
            # A stall holds stage B whether or not it offers a word (timing: the decision, which
            # needs the level just read, would otherwise steer the level memory's address); with
            # ``o`` ready it never happens, so the words and the cycle count are the same.
            m.d.comb += [self.buf.addr.eq(Mux(stall, akb, ak)), rem_rd.addr.eq(k), rem_rd.en.eq(~stall)]
            level, rem_data = self.buf, rem_rd.data
        else:
            # Both memories read at stage A's next address; their data reach stage B through a
            # flip-flop each (the buffer's is the decoder's). A stall holds stage A, so its address
            # is read again, and stage B keeps what it had (held_*, chosen by the stall a cycle on).
            rem_q = late(m, rem_rd.data, 1, "rem_q", reset_less=True)
            m.d.comb += [self.buf.addr.eq(ak_ahead.addr), rem_rd.addr.eq(k_ahead.addr)]
            stall_q = Signal()
            level = BufferRead(self.buf_depth).flip().create()
            rem_data, held = Signal(8), Signal(17)
            m.d.sync += [stall_q.eq(stall), held.eq(Cat(level.data, level.small, rem_data))]
            m.d.comb += Cat(level.data, level.small, rem_data).eq(
                Mux(stall_q, held, Cat(self.buf.data, self.buf.small, rem_q)))

        # --- stage B: decide ---
        q = level.data
        q_zero = byte_zero(level)  # from the buffer's small flag (timing: not an 8-input test)
        eos = kb == n
        r_in = Mux(tb == 0, 0, rem_data)
        r_sum = Signal(9)
        m.d.comb += r_sum.eq(r_in + q)
        # r_in + q >= 255 <=> q >= 255 - r_in = ~r_in (8 bits): one comparison of the level as it
        # leaves the block RAM, in parallel with the sum (timing: not a compare after the adder)
        rate_fire = q >= Mux(tb == 0, LEVELS, ~rem_data)
        # latency: step t fires the levels L(t) <= q < L(t - 1), L(-1) = 256, with
        # L(t) = 255 - floor((255 t + 127) / (T - 1)) the least level whose step is <= t; the
        # quotient steps by 255 / (T - 1) a step, so no multiplier or divider is needed.
        l_cur, l_prev = Signal(signed(10)), Signal(signed(10))
        if T == 1:
            latency_fire = ~q_zero
        else:
            a_step, b_step = divmod(LEVELS, T - 1)
            q0, r0 = divmod(127, T - 1)
            rem_t = Signal(range(2 * (T - 1)))
            latency_fire = ~q_zero & (q >= l_cur) & (q < l_prev)
            # Registered (timing: the compare and the two subtractions after it were the
            # iCEBreaker's critical path). rem_t changes only at an end of step or a start, and the
            # next end of step comes n_in + 1 >= 2 cycles later, when wrap has caught up.
            wrap = Signal()
            m.d.sync += wrap.eq(rem_t + b_step >= T - 1)
            with m.If(~stall & b_on & eos):
                m.d.sync += [l_prev.eq(l_cur), l_cur.eq(l_cur - a_step - wrap),
                             rem_t.eq(Mux(wrap, rem_t + b_step - (T - 1), rem_t + b_step))]
            with m.If(self.start & ~self.busy):
                m.d.sync += [l_cur.eq(LEVELS - q0), l_prev.eq(LEVELS + 1), rem_t.eq(r0)]
        s1 = Signal(32)
        s2 = Signal(32)
        s3 = Signal(32)
        m.d.comb += [s1.eq(s ^ (s << 13)[:32]), s2.eq(s1 ^ (s1 >> 17)), s3.eq(s2 ^ (s2 << 5)[:32])]
        d = s3[16:]
        # 255 d < 2^16 q  <=>  d <= 257 q = {q, q} for q > 0 (ceil(2^16 q / 255) = 257 q + 1)
        bernoulli_fire = ~q_zero & (d <= Cat(q, q))
        fire = Mux(encoding == Encoding.RATE, rate_fire,
                   Mux(encoding == Encoding.LATENCY, latency_fire, bernoulli_fire))
        m.d.comb += [self.o.valid.eq(b_on & (eos | fire)),
                     self.o.payload.addr.eq(Mux(eos, 0, kb)), self.o.payload.end_of_step.eq(eos)]

        with m.If(~stall):
            with m.If(b_on & ~eos):
                m.d.sync += s.eq(s3)
                m.d.comb += [rem_wr.addr.eq(kb), rem_wr.data.eq(Mux(rate_fire, r_sum - LEVELS, r_sum)),
                             rem_wr.en.eq(encoding == Encoding.RATE)]
            m.d.sync += [b_on.eq(a_on), kb.eq(k), tb.eq(t), akb.eq(ak)]
            with m.If(a_on):
                with m.If(k == n):
                    m.d.sync += [*k_ahead.to(0), *ak_ahead.to(base)]
                    with m.If(t == T - 1):
                        m.d.sync += a_on.eq(0)
                    with m.Else():
                        m.d.sync += t.eq(t + 1)
                with m.Else():
                    m.d.sync += [*k_ahead.step(), *ak_ahead.step()]

        with m.If(self.start & ~self.busy):
            m.d.sync += [encoding.eq(self.encoding), s.eq(self.state), base.eq(self.base),
                         a_on.eq(1), *k_ahead.to(0), t.eq(0), *ak_ahead.to(self.base)]
        return m
