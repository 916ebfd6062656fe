"""Conv layer core: one event-driven conv2d layer (twin: :class:`spikegate.model.conv_layer.ConvLayerCore`).

The same ports and the same step as :class:`spikegate.hdl.layer.LayerCore`, so the network core
chains it like a dense layer. One layer step, started by ``start`` while idle:

1. INTEG: the event on ``events`` is a packed address (c, y, x) (model/conv_layer.py). Generation-time
   tables give, per row y and column x, the first output it reaches, how many, and the kernel offset
   there; the event is held for max(1, ny * nx * Gc) cycles, each issuing one tap: kernel word
   (c, dy, dx, gc) and accumulator word (oy, ox, gc), whose addresses step by constants from tap to
   tap. The tap is registered (ISSUE_STAGES), the kernel and accumulator block RAMs read, and one
   cycle later the P lane sums are written back (read-modify-write). Only back-to-back taps can hit
   the same accumulator word (taps of one event never do), so one forwarding register covers the
   read that overlaps the previous tap's write.
2. SWEEP: as the dense layer's, over the Ho * Wo * Gc accumulator/membrane words in (oy, ox, gc)
   order; each accumulator word is cleared as it is read. The bias word is the channel group's.
   Spike words leave with the packed group (oy, ox, gc).
3. DRAIN: LAYER_OVERHEAD - 1 cycles, as in the dense layer.

Cycles from ``start`` to ``done``: the twin's ``LayerGeometry.cycles`` minus one, as for a dense layer.

A new run starts from v = 0, r = 0, count = 0 without clearing G words: the membrane memory keeps an
epoch bit per word, ``reset_state`` marks the layer pending and the next ``start`` flips the layer's
epoch, so every word written in an earlier run reads as fresh (zero) until this run writes it. (A run
of one step or more writes every word, which is what makes one bit enough.) The accumulators are zero
between runs because every sweep clears them.
"""
from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory

from ..model.conv_layer import axis_reach, pool_as_conv
from ..model.layer import LAYER_OVERHEAD, LayerGeometry, ceil_log2
from ..model.network import Layer
from ..model.protocol import CfgTarget
from ..model.synapse import pack_lanes
from .layer_ports import drive_params, drive_peek, layer_members
from .neuron import LIFNeuronUnit, neuron_aligned
from .synapse import BLOCK_RAM_NO_COLLISION

__all__ = ["ConvLayerCore"]


def _table(values, index):
    """A generation-time constant table read combinationally (a LUT multiplexer)."""
    values = [int(v) for v in values]
    width = max(1, max(values).bit_length())
    if len(values) == 1:
        return Const(values[0], width)
    return Array(Const(v, width) for v in values)[index]


class ConvLayerCore(wiring.Component):
    def __init__(self, layer: Layer, geometry: LayerGeometry):
        layer = pool_as_conv(layer)  # a pooling layer runs as its conv2d equivalent (the twin's rule)
        self.layer, self.geo = layer, geometry
        cg = self.cg = geometry.conv
        spec = layer.conv
        P, V, Gc, G = geometry.lanes, geometry.membrane_bits, cg.channel_groups, cg.groups
        self.kernel_words = spec.kernel_rows * Gc
        col_bits = max(1, (G * P - 1).bit_length())
        self.col_bits = col_bits
        row_bits = max(geometry.addr_bits, ceil_log2(spec.kernel_rows), 1)
        # Run-time writes: the threshold only (the kernels and biases are fixed at generation);
        # param reads: kernel[param_row][param_col] (row (c, dy, dx), column the output channel).
        # peek_addr: word g = peek_addr // P (linear (oy, ox, gc) order), lane peek_addr % P.
        super().__init__(layer_members(geometry, row_bits=row_bits, col_bits=col_bits))
        wb = geometry.weight_bits
        kernel = [[0] * (Gc * P) for _ in range(spec.kernel_rows)]
        for r in range(spec.kernel_rows):
            for o in range(spec.out_channels):
                kernel[r][o] = int(layer.weights[r, o])
        kernel_init = [pack_lanes(kernel[r][gc * P:(gc + 1) * P], wb) for r in range(spec.kernel_rows) for gc in range(Gc)]
        bias = [int(b) for b in layer.bias] + [0] * (Gc * P - spec.out_channels)
        self.kernel_mem = Memory(shape=unsigned(P * wb), depth=self.kernel_words, init=kernel_init,
                                 attrs=BLOCK_RAM_NO_COLLISION)
        self.acc_mem = Memory(shape=unsigned(P * geometry.acc_bits), depth=G, init=[], attrs=BLOCK_RAM_NO_COLLISION)
        # Membranes with the epoch bit on top.
        self.v_mem = Memory(shape=unsigned(P * V + 1), depth=G, init=[], attrs=BLOCK_RAM_NO_COLLISION)
        # Biases are fixed at generation and only Gc words: a logic table, not a block RAM.
        self.bias_words = [pack_lanes(bias[gc * P:(gc + 1) * P], V) for gc in range(Gc)]
        self.r_mem = (Memory(shape=unsigned(P * geometry.refr_bits), depth=G, init=[], attrs=BLOCK_RAM_NO_COLLISION)
                      if layer.refractory else None)
        self.count_mem = (Memory(shape=unsigned(P * geometry.count_bits), depth=G, init=[],
                                 attrs=BLOCK_RAM_NO_COLLISION) if geometry.count_bits else None)

    def elaborate(self, platform):
        m = Module()
        geo, layer, cg, spec = self.geo, self.layer, self.cg, self.layer.conv
        P, V, Gc, G = geo.lanes, geo.membrane_bits, cg.channel_groups, cg.groups
        AB, wb = geo.acc_bits, geo.weight_bits
        lane_bits = ceil_log2(P)
        (_, h, w), (_, ho, wo) = spec.in_shape, spec.out_shape
        (kh, kw), (sh, sw), (ph, pw) = spec.kernel, spec.stride, spec.padding
        cb, xb, yb = cg.in_fields
        gcb = ceil_log2(Gc)
        _, oxb, oyb = cg.out_fields

        for name in ("kernel_mem", "acc_mem", "v_mem", "r_mem", "count_mem"):
            if getattr(self, name) is not None:
                m.submodules[name] = getattr(self, name)
        k_rd = self.kernel_mem.read_port()
        a_rd, a_wr = self.acc_mem.read_port(), self.acc_mem.write_port()
        v_rd, v_wr = self.v_mem.read_port(), self.v_mem.write_port()
        if self.r_mem is not None:
            r_rd, r_wr = self.r_mem.read_port(), self.r_mem.write_port()
        if self.count_mem is not None:
            c_rd, c_wr = self.count_mem.read_port(), self.count_mem.write_port()

        theta = Signal(signed(V), init=layer.threshold)
        epoch = Signal()
        pending = Signal(init=1)

        # --- event decode: generation-time tables per input row and column ----------------------
        pay = self.events.payload
        c_in = pay[:cb]
        x_in = pay[cb:cb + xb]
        y_in = pay[cb + xb:cb + xb + yb]
        oy0, ny = axis_reach(h, ho, kh, sh, ph)
        ox0, nx = axis_reach(w, wo, kw, sw, pw)
        dy0 = [y + ph - int(o) * sh for y, o in enumerate(oy0)]
        dx0 = [x + pw - int(o) * sw for x, o in enumerate(ox0)]
        t_ny, t_nx = _table(ny, y_in), _table(nx, x_in)
        k0 = (_table([c * kh * kw * Gc for c in range(spec.in_shape[0])], c_in)
              + _table([d * kw * Gc for d in dy0], y_in) + _table([d * Gc for d in dx0], x_in))
        a0 = _table([int(o) * wo * Gc for o in oy0], y_in) + _table([int(o) * Gc for o in ox0], x_in)

        # --- the tap loop ------------------------------------------------------------------------
        kbits, abits = max(1, ceil_log2(self.kernel_words)), max(1, ceil_log2(G))
        active = Signal()
        iy, ix = Signal(range(max(2, kh + 1))), Signal(range(max(2, kw + 1)))
        ny_r, nx_r = Signal.like(iy), Signal.like(ix)
        gc = Signal(range(max(2, Gc)))
        k_cur, k_line = Signal(kbits), Signal(kbits)
        a_cur, a_line = Signal(abits), Signal(abits)
        cur = {name: Signal(like.shape(), name=f"cur_{name}") for name, like in
               (("iy", iy), ("ix", ix), ("ny", ny_r), ("nx", nx_r), ("gc", gc), ("k", k_cur), ("kl", k_line),
                ("a", a_cur), ("al", a_line))}
        m.d.comb += [
            cur["iy"].eq(Mux(active, iy, 0)), cur["ix"].eq(Mux(active, ix, 0)), cur["gc"].eq(Mux(active, gc, 0)),
            cur["ny"].eq(Mux(active, ny_r, t_ny)), cur["nx"].eq(Mux(active, nx_r, t_nx)),
            cur["k"].eq(Mux(active, k_cur, k0)), cur["kl"].eq(Mux(active, k_line, k0)),
            cur["a"].eq(Mux(active, a_cur, a0)), cur["al"].eq(Mux(active, a_line, a0)),
        ]
        empty = (cur["ny"] == 0) | (cur["nx"] == 0)
        gc_last = cur["gc"] == Gc - 1
        ix_last = cur["ix"] + 1 == cur["nx"]
        iy_last = cur["iy"] + 1 == cur["ny"]
        last = Signal()
        m.d.comb += last.eq(empty | (gc_last & ix_last & iy_last))

        g = Signal(range(max(2, G)))
        s_gc, s_ox, s_oy = Signal(range(max(2, Gc))), Signal(range(max(2, wo))), Signal(range(max(2, ho)))
        integ_issue, sweep_issue = Signal(), Signal()
        drain = Signal(range(LAYER_OVERHEAD - 1))

        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [g.eq(0), s_gc.eq(0), s_ox.eq(0), s_oy.eq(0), active.eq(0)]
                    with m.If(pending):
                        m.d.sync += [epoch.eq(~epoch), pending.eq(0)]
                    m.next = "INTEG"
            with m.State("INTEG"):
                m.d.comb += self.busy.eq(1)
                with m.If(self.events.valid):
                    m.d.comb += [integ_issue.eq(~empty), self.events.ready.eq(last)]
                    m.d.sync += [active.eq(~last), iy.eq(cur["iy"]), ix.eq(cur["ix"]), ny_r.eq(cur["ny"]),
                                 nx_r.eq(cur["nx"]), k_line.eq(cur["kl"]), a_line.eq(cur["al"])]
                    with m.If(~gc_last):
                        m.d.sync += [gc.eq(cur["gc"] + 1), k_cur.eq(cur["k"] + 1), a_cur.eq(cur["a"] + 1)]
                    with m.Elif(~ix_last):
                        m.d.sync += [gc.eq(0), ix.eq(cur["ix"] + 1), a_cur.eq(cur["a"] + 1),
                                     k_cur.eq(cur["k"] - (Gc - 1) - sw * Gc)]
                    with m.Else():
                        step_k, step_a = cur["kl"] - sh * kw * Gc, cur["al"] + wo * Gc
                        m.d.sync += [gc.eq(0), ix.eq(0), iy.eq(cur["iy"] + 1), k_line.eq(step_k),
                                     a_line.eq(step_a), k_cur.eq(step_k), a_cur.eq(step_a)]
                with m.Elif(self.events_end):
                    m.d.comb += self.end_ack.eq(1)
                    m.next = "SWEEP"
            with m.State("SWEEP"):
                m.d.comb += [self.busy.eq(1), sweep_issue.eq(1)]
                m.d.sync += [g.eq(g + 1), s_gc.eq(s_gc + 1)]
                with m.If(s_gc == Gc - 1):
                    m.d.sync += [s_gc.eq(0), s_ox.eq(s_ox + 1)]
                    with m.If(s_ox == wo - 1):
                        m.d.sync += [s_ox.eq(0), s_oy.eq(s_oy + 1)]
                with m.If(g == G - 1):
                    m.next = "DRAIN"
            with m.State("DRAIN"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += drain.eq(drain + 1)
                with m.If(drain == LAYER_OVERHEAD - 2):
                    m.d.comb += self.done.eq(1)
                    m.d.sync += drain.eq(0)
                    m.next = "IDLE"
        with m.If(self.reset_state):
            m.d.sync += pending.eq(1)

        # --- stage 0 -> 1: the issue register ----------------------------------------------------
        iss_r, k_r, a_r = Signal(), Signal(kbits), Signal(abits)
        sweep_r, group_r, gc_r = Signal(), Signal.like(g), Signal.like(s_gc)
        packed_r = Signal(geo.group_bits)
        m.d.sync += [iss_r.eq(integ_issue), k_r.eq(cur["k"]), a_r.eq(cur["a"]),
                     sweep_r.eq(sweep_issue), group_r.eq(g), gc_r.eq(s_gc),
                     packed_r.eq(Cat(s_gc[:gcb], s_ox[:oxb], s_oy[:oyb]))]

        # --- stage 1: addresses ------------------------------------------------------------------
        peek_g = self.peek_addr[lane_bits:]
        rd_g = Signal.like(g)
        m.d.comb += rd_g.eq(Mux(sweep_r, group_r, peek_g))
        param_gc = self.param_col[lane_bits:]
        m.d.comb += [
            k_rd.addr.eq(Mux(iss_r, k_r, self.param_row * Gc + param_gc)),
            a_rd.addr.eq(Mux(iss_r, a_r, group_r)),
            v_rd.addr.eq(rd_g),
        ]
        # The bias table's address is registered like a block RAM's, so its word arrives with the others.
        b_addr = Signal(max(1, ceil_log2(Gc)))
        m.d.sync += b_addr.eq(Mux(sweep_r, gc_r, param_gc))
        b_word = Signal(P * V)
        m.d.comb += b_word.eq(_table(self.bias_words, b_addr))
        if self.r_mem is not None:
            m.d.comb += r_rd.addr.eq(rd_g)
        if self.count_mem is not None:
            m.d.comb += c_rd.addr.eq(rd_g)
        iss_q, a_q, sweep_q, group_q, gc_q, packed_q = (Signal(), Signal(abits), Signal(), Signal.like(g),
                                                        Signal.like(s_gc), Signal.like(packed_r))
        peek_lane_q = Signal(max(1, lane_bits))
        param_lane_q = Signal(max(1, lane_bits))
        m.d.sync += [iss_q.eq(iss_r), a_q.eq(a_r), sweep_q.eq(sweep_r), group_q.eq(group_r), gc_q.eq(gc_r),
                     packed_q.eq(packed_r), peek_lane_q.eq(self.peek_addr[:lane_bits] if lane_bits else 0),
                     param_lane_q.eq(self.param_col[:lane_bits] if lane_bits else 0)]

        # --- stage 2: read-modify-write of the accumulators, or the sweep's read and clear --------
        k_lanes = data.ArrayLayout(signed(wb), P)(k_rd.data)
        acc_lanes = data.ArrayLayout(signed(AB), P)(a_rd.data)
        fwd_valid, fwd_addr = Signal(), Signal(abits)
        fwd_data = Signal(data.ArrayLayout(signed(AB), P))
        old = Signal(data.ArrayLayout(signed(AB), P))
        total = Signal(data.ArrayLayout(signed(AB), P))
        m.d.comb += old.eq(Mux(fwd_valid & (fwd_addr == a_q), fwd_data, a_rd.data))
        m.d.comb += [total[k].eq(old[k] + k_lanes[k]) for k in range(P)]
        m.d.sync += [fwd_valid.eq(iss_q), fwd_addr.eq(a_q), fwd_data.eq(total)]
        m.d.comb += [a_wr.addr.eq(Mux(iss_q, a_q, group_q)), a_wr.data.eq(Mux(iss_q, total, 0)),
                     a_wr.en.eq(iss_q | sweep_q)]

        fresh_q = Signal()
        m.d.comb += fresh_q.eq(pending | (v_rd.data[P * V] != epoch))
        v_lanes = data.ArrayLayout(signed(V), P)(v_rd.data[:P * V])
        b_lanes = data.ArrayLayout(signed(V), P)(b_word)
        rb, cbits = geo.refr_bits, geo.count_bits
        r_lanes = data.ArrayLayout(unsigned(rb), P)(r_rd.data) if self.r_mem is not None else None
        c_lanes = data.ArrayLayout(unsigned(cbits), P)(c_rd.data) if self.count_mem is not None else None

        sweep_w, group_w = neuron_aligned(m, "sweep", sweep_q), neuron_aligned(m, "group", group_q)
        gc_w, packed_w = neuron_aligned(m, "gc", gc_q), neuron_aligned(m, "packed", packed_q)
        fresh_w = neuron_aligned(m, "fresh", fresh_q) if c_lanes is not None else None
        c_old = (data.ArrayLayout(unsigned(cbits), P)(neuron_aligned(m, "count", c_rd.data))
                 if c_lanes is not None else None)
        n_last = spec.out_channels - (Gc - 1) * P
        lane_mask = Signal(P)
        m.d.comb += lane_mask.eq(Mux(gc_w == Gc - 1, (1 << n_last) - 1, (1 << P) - 1))
        v_new = Signal(data.ArrayLayout(signed(V), P))
        r_new = Signal(data.ArrayLayout(unsigned(rb), P))
        c_new = Signal(data.ArrayLayout(unsigned(max(1, cbits)), P))
        word = Signal(P)
        for k in range(P):
            unit = LIFNeuronUnit(membrane_bits=V, acc_bits=AB, leak=layer.leak, reset=layer.reset,
                                 refractory=layer.refractory, readout=layer.readout)
            m.submodules[f"lane{k}"] = unit
            m.d.comb += [unit.v.eq(Mux(fresh_q, 0, v_lanes[k])), unit.acc.eq(acc_lanes[k]),
                         unit.bias.eq(b_lanes[k]), unit.theta.eq(theta)]
            if r_lanes is not None:
                m.d.comb += unit.r.eq(Mux(fresh_q, 0, r_lanes[k]))
            m.d.comb += [v_new[k].eq(unit.v_next), r_new[k].eq(unit.r_next), word[k].eq(unit.spike & lane_mask[k])]
            if c_lanes is not None:
                m.d.comb += c_new[k].eq(Mux(fresh_w, 0, c_old[k]) + word[k])
        m.d.comb += [
            v_wr.addr.eq(group_w), v_wr.data.eq(Cat(v_new, epoch)), v_wr.en.eq(sweep_w),
            self.spikes.valid.eq(sweep_w & (word != 0)), self.swept.eq(sweep_w),
            self.spikes.group.eq(packed_w), self.spikes.word.eq(word),
        ]
        if self.r_mem is not None:
            m.d.comb += [r_wr.addr.eq(group_w), r_wr.data.eq(r_new), r_wr.en.eq(sweep_w)]
        if self.count_mem is not None:
            m.d.comb += [c_wr.addr.eq(group_w), c_wr.data.eq(c_new), c_wr.en.eq(sweep_w)]

        # --- idle-time peek, parameter reads and threshold writes ---------------------------------
        drive_peek(m, self, fresh_q, peek_lane_q if lane_bits else 0, v_lanes, r_lanes, c_lanes)
        drive_params(m, self, param_lane_q if lane_bits else 0, k_lanes, b_lanes, theta, 0)  # (no registered reads)
        with m.If(self.cfg_en & (self.cfg_target == CfgTarget.THRESHOLD)):
            m.d.sync += theta.eq(self.cfg_data)
        return m


def layer_cores(net, geometry, *, spram_primitive=False) -> list:
    """The gateware of every layer: a ConvLayerCore for a conv layer, a LayerCore otherwise (after a
    conv layer with its weight rows at the packed addresses, as the twin's layer_cores)."""
    from ..model.conv_layer import hardware_layer
    from .layer import LayerCore
    cores = []
    for l, (layer, geo) in enumerate(zip(net.layers, geometry)):
        if geo.conv is not None:
            cores.append(ConvLayerCore(layer, geo))
            continue
        if l and geometry[l - 1].conv is not None:
            prev = geometry[l - 1].conv
            layer = hardware_layer(layer, prev.out_fields, prev.spec.out_shape)
        cores.append(LayerCore(layer, geo, spram_primitive=spram_primitive))
    return cores


def bad_input_address(geo: LayerGeometry, addr):
    """A packed input address of a conv-first network whose channel, row or column is out of range."""
    cb, xb, yb = geo.conv.in_fields
    c, h, w = geo.conv.spec.in_shape
    bad = Const(0)
    for value, bits, size in ((addr[:cb], cb, c), (addr[cb:cb + xb], xb, w), (addr[cb + xb:cb + xb + yb], yb, h)):
        if size < (1 << bits):
            bad = bad | (value >= size)
    return bad
