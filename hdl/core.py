"""NetworkCore: the whole accelerator for one network, event-driven, all state in block RAM.

Port contract: docs/architecture.md ("Gateware: NetworkCore"). Behaviour and cycle count are
those of :class:`spikegate.model.core.NetworkCore`.

Input: the sample's spikes as *events* (addresses of the inputs that spiked), one ``load`` word
each, every step closed by an end-of-step word, buffered in a block-RAM input buffer of
``max_events`` words (end-of-step words included). ``start`` replays the buffer from the first
word, so a loaded sample can be run again (e.g. after a ``cfg`` write) without reloading.

Schedule (``hw.schedule``; the same arithmetic and spikes either way):

- ``"sequential"``: steps in order; within a step the layers in order, each layer's step finishing
  (integration of its events, then the sweep) before the next layer's starts (``start`` of layer
  l+1 is ``done`` of layer l).
- ``"inflight"``: waves w = 0 .. T+L-2; in wave w layer l works on step w - l (when
  0 <= w - l < T). The controller's wave-boundary cycle starts every such layer; the wave ends in
  the cycle the slowest of them is done. Layer l's spike words of step t go into the queue to
  layer l+1 while that layer reads its words of step t - 1: the queue is fenced
  (:class:`~.word_queue.WordQueue` ``fenced``), its reader sees only the words written before the
  last boundary cycle, and it holds two steps (2 * G words). Recurrence, WTA and stage 5 stay
  inside a layer's step.

Layer l's sweep pushes its non-zero spike words into a block-RAM queue (whose read register is the
registered output); layer l+1 serialises their set bits into input events, one per cycle with no
bubble between words.

Cycle count (``cycles`` port, from the cycle after ``start`` to the cycle ``done`` rises), with
``c_l(t)`` = :meth:`spikegate.model.layer.LayerGeometry.cycles` of layer l at step t
(``E * G + G + 8`` for a plain dense layer)::

    sequential:  cycles = 1 + sum_t [ 1 + sum_l c_l(t) ]
    inflight:    cycles = 1 + sum_{w=0}^{T+L-2} [ 1 + max_{l: 0 <= w-l < T} c_l(w-l) ]

- 1 per run: the final check that finds no buffered step (no wave) left;
- 1 per step (wave): the controller's boundary cycle that starts layer 0 (every layer of the wave);
- 8 per layer step (:data:`~spikegate.model.layer.LAYER_OVERHEAD`): the layer's start cycle, the
  cycle that sees the end of its events and the drain of its pipeline: the issue register
  (ISSUE_STAGES = 1), the memory read, the NEURON_STAGES = 4 neuron stages and the spike FIFO's
  output register (WORD_FIFO_STAGES = 1); the drain's last cycle is the next layer's start cycle
  (sequential) or, for the slowest layer, the cycle before the next boundary cycle (inflight).

Monitor: ``mon[l]`` is layer l's spike word of the cycle (layers emit at the same time in the
inflight schedule). The trace memory keeps ``trace_depth`` words: in emission order (sequential),
or ``trace_depth`` words per layer, read back layer after layer (inflight: one bank per layer,
since several layers may emit in one cycle).
"""
from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..model.hardware import HardwareConfig, param_latency, read_latency
from ..model.layer import bits_for, ceil_log2
from ..model.network import Network
from ..model.protocol import CfgTarget
from ..model.learning_engine import LearnState
from .conv_layer import bad_input_address, layer_cores
from .input_buffer import input_head, spram_buffer_ports
from .learning_state import state_width
from .synapse import BLOCK_RAM, BLOCK_RAM_NO_COLLISION
from .core_cfg import cfg_port, param_port
from .trace import trace_banks
from .word_queue import chain_layers

__all__ = ["NetworkCore", "CFG_LATENCY"]

# Cycles from a cfg handshake to the write (and to cfg_error for a refused word).
CFG_LATENCY = 2


class NetworkCore(wiring.Component):
    """The accelerator for ``net`` as configured by ``hw`` (ports: docs/architecture.md).

    Networks with a reward-modulated (``rule = "rstdp"``) plastic layer have two more inputs
    (``hdl.eligibility``; the model is :meth:`spikegate.model.core.NetworkCore.reward` and
    ``run(..., reward=R)``):

    - ``reward``: ``stream.Signature(signed(16))``, a per-sample reward. Ready while the core is
      idle (and ``start`` is low); a transfer with R != 0 makes every rstdp layer sweep its
      synapses once, ``W <- clip(W + ((R * E) >>> reward_shift), w_min, w_max)`` from the
      eligibility E the last run left (learning on; a run with learning off leaves E = 0). ``busy``
      is high and ``done`` low until it is applied; ``cycles`` then shows the reward's cycles,
      ``REWARD_OVERHEAD + max_l (n_in_l * G_l + ELIG_DRAIN)`` (1 for R = 0). A host REWARD
      command sends the value here after the sample's run.
    - ``step_reward``: ``signed(16)``, held for a whole run like ``learn``: R(t) of every step of
      the run (applied after each step's eligibility update); 0 for no per-step reward.

    Every plastic network has ``learn_state_addr`` (layer, kind, row, col) / ``learn_state_data``:
    an idle-time read of a plastic layer's traces, offsets or eligibility, one cycle later
    (:class:`~spikegate.model.learning_engine.LearnState`, hdl.learning_state).

    ``spram_primitive`` only chooses how SPRAM weight memories (``hw.weight_ram``) are realised,
    not what they do: True instantiates SB_SPRAM256KA (iCE40 synthesis), ``"model"`` a cycle
    model of it (Amaranth's simulator), False a behavioural memory of the same contents and timing.
    """

    def __init__(self, net: Network, hw: HardwareConfig = HardwareConfig(), *, spram_primitive=False):
        if not isinstance(hw, HardwareConfig):
            raise TypeError(f"hw must be a HardwareConfig, got {type(hw).__name__}")
        # Validate everything before building any gateware.
        self.geometry = geos = hw.geometry(net)
        self.net, self.hw = net, hw
        # cycles from out_addr / param_addr to their data (model.hardware: with registered reads)
        self.read_latency, self.param_latency = read_latency(geos), param_latency(geos)
        max_events, trace_depth = hw.max_events, hw.trace_depth
        L = len(net.layers)
        self.layer_bits = max(1, ceil_log2(L))
        self.step_bits = bits_for(max_events)
        self.col_bits = max(g.groups * g.lanes for g in geos)
        self.col_bits = max(1, ceil_log2(self.col_bits))
        # A conv layer's mon base is its packed (row, column, channel) address (hdl/conv_layer.py).
        self.col_bits = max([self.col_bits] + [g.group_bits + ceil_log2(g.lanes) for g in geos if g.conv is not None])
        self.row_bits = max(1, ceil_log2(max(g.n_in for g in geos)))
        self.data_bits = max(max(g.weight_bits, g.membrane_bits) for g in geos)
        self.max_lanes = max(g.lanes for g in geos)
        last = geos[-1]
        self.load_layout = data.StructLayout({"addr": geos[0].addr_bits, "end_of_step": 1})
        self.cfg_layout = data.StructLayout({
            "layer": self.layer_bits, "target": CfgTarget, "row": self.row_bits, "col": self.col_bits,
            "data": signed(self.data_bits)})
        self.param_layout = data.StructLayout({
            "layer": self.layer_bits, "target": CfgTarget, "row": self.row_bits, "col": self.col_bits})
        self.mon_layout = data.StructLayout({
            "valid": 1, "layer": self.layer_bits, "step": self.step_bits, "base": self.col_bits,
            "word": self.max_lanes})
        self.trace_layout = data.StructLayout({
            "layer": self.layer_bits, "step": self.step_bits, "base": self.col_bits, "word": self.max_lanes})
        # Trace banks: the layers whose words each trace memory records (one write a cycle each).
        self.trace_banks = ([list(range(L))] if hw.schedule == "sequential" else [[l] for l in range(L)])
        trace_words = trace_depth * len(self.trace_banks)
        members = {
            "load": In(stream.Signature(self.load_layout)),
            "clear": In(1),
            "start": In(1),
            "busy": Out(1),
            "done": Out(1),
            "cycles": Out(32),
            "overflow": Out(1),
            "out_addr": In(max(1, ceil_log2(last.n))),
            "out_count": Out(self.step_bits),
            "out_membrane": Out(signed(last.membrane_bits)),
            "cfg": In(stream.Signature(self.cfg_layout)),
            "cfg_error": Out(1),
            # Idle-only parameter read (CHECKSUM): the value at param_addr, param_latency cycles later.
            "param_addr": In(self.param_layout),
            "param_data": Out(signed(self.data_bits)),
            "mon": Out(data.ArrayLayout(self.mon_layout, L)),
        }
        plastic = [g for g in geos if g.learning is not None]
        if plastic:
            # Plastic networks only: stage 5 of every plastic layer runs while high (hold it for a run);
            # idle-time reads of the learning state (hdl.learning_state), answered one cycle later.
            members["learn"] = In(1)
            self.learn_state_layout = data.StructLayout({
                "layer": self.layer_bits, "kind": LearnState, "row": self.row_bits, "col": self.col_bits})
            members["learn_state_addr"] = In(self.learn_state_layout)
            members["learn_state_data"] = Out(signed(max(state_width(g) for g in plastic)))
        if any(g.learning is not None and g.learning.elig_bits for g in geos):
            # rstdp networks only: a per-sample reward (idle) and the per-step reward (held for a run).
            members["reward"] = In(stream.Signature(signed(16)))
            members["step_reward"] = In(signed(16))
        if trace_depth:
            members.update({
                "trace_addr": In(max(1, ceil_log2(trace_words))),
                "trace_data": Out(self.trace_layout),
                "trace_count": Out(bits_for(trace_words)),
                "trace_overflow": Out(1),
            })
        super().__init__(members)
        self.layers = layer_cores(net, geos, spram_primitive=spram_primitive)
        # No collision logic: the buffer is written only while idle, when its read port reads
        # address 0 for the next start (a load in the very cycle of start is not part of the
        # port contract: load, then start).
        # (input_ram = "spram" with spram_primitive False: a behavioural memory, as for the weights)
        self.input_spram = spram_primitive if hw.input_ram == "spram" else False
        self.input_buffer = None if self.input_spram else Memory(
            shape=unsigned(geos[0].addr_bits + 1), depth=max_events, init=[], attrs=BLOCK_RAM_NO_COLLISION)
        self.trace_mems = [Memory(shape=self.trace_layout, depth=trace_depth, init=[], attrs=BLOCK_RAM)
                           for _ in self.trace_banks] if trace_depth else []

    @property
    def max_events(self) -> int:
        return self.hw.max_events

    @property
    def trace_depth(self) -> int:
        return self.hw.trace_depth

    def elaborate(self, platform):
        m = Module()
        geos, L = self.geometry, len(self.layers)
        if any(g.learning is not None for g in geos):
            state_layer = Signal(self.layer_bits)
            m.d.sync += state_layer.eq(self.learn_state_addr.layer)
        for l, core in enumerate(self.layers):
            m.submodules[f"layer{l}"] = core
            if geos[l].learning is not None:  # (a conv layer is never plastic)
                sa = self.learn_state_addr
                m.d.comb += [core.learn.eq(self.learn), core.state_addr.kind.eq(sa.kind),
                             core.state_addr.row.eq(sa.row), core.state_addr.col.eq(sa.col)]
                with m.If(state_layer == l):
                    m.d.comb += self.learn_state_data.eq(core.state_data)

        idle = Signal()
        step = Signal(self.step_bits)
        n_steps = Signal(self.step_bits)
        # "No step left" (step == n_steps) as a register, set when step changes (at start and
        # at each step's end), so the controller's boundary cycle does not put a comparator in
        # front of layer 0's start. n_zero is "n_steps == 0", kept up to date by load and clear.
        at_end = Signal(init=1)
        n_zero = Signal(init=1)
        eos_loaded = Signal()
        wr_ptr = Signal(range(self.max_events + 1))
        rd_ptr = Signal(range(self.max_events + 1))
        cycles = Signal(32)
        done = Signal()
        overflow = Signal()
        cfg_error = Signal()
        m.d.comb += [
            self.busy.eq(~idle), self.done.eq(done), self.cycles.eq(cycles),
            self.overflow.eq(overflow), self.cfg_error.eq(cfg_error),
        ]

        # --- input buffer ------------------------------------------------------------------------
        if self.input_spram:
            ib_wr, ib_rd = spram_buffer_ports(m, geos[0].addr_bits + 1, self.input_spram)
        else:
            m.submodules.input_buffer = self.input_buffer
            ib_wr = self.input_buffer.write_port()
            ib_rd = self.input_buffer.read_port()
        ab0 = geos[0].addr_bits
        n_in = geos[0].n_in
        m.d.comb += self.load.ready.eq(idle)
        # Address and data in every cycle, so only the write enable waits for the word's checks:
        # the blocks of a deep buffer lie across the die (784-128-10 on the ULX3S: the link's state
        # → the address check → a block's address pins was the critical path).
        m.d.comb += [ib_wr.addr.eq(wr_ptr), ib_wr.data.eq(self.load.payload)]
        with m.If(self.load.valid & idle):
            m.d.sync += done.eq(0)
            bad_addr = (~self.load.payload.end_of_step & (self.load.payload.addr >= n_in)
                        if n_in < (1 << ab0) else Const(0))
            if geos[0].conv is not None:  # packed (row, column, channel) addresses
                bad_addr = ~self.load.payload.end_of_step & bad_input_address(geos[0], self.load.payload.addr)
            with m.If((wr_ptr == self.max_events) | bad_addr):
                m.d.sync += overflow.eq(1)
            with m.Else():
                m.d.comb += ib_wr.en.eq(1)
                m.d.sync += wr_ptr.eq(wr_ptr + 1)
                with m.If(self.load.payload.end_of_step):
                    m.d.comb += eos_loaded.eq(1)
                    m.d.sync += [n_steps.eq(n_steps + 1), n_zero.eq(0)]
        with m.If(self.clear & idle):
            m.d.sync += [wr_ptr.eq(0), n_steps.eq(0), n_zero.eq(1), overflow.eq(0), cfg_error.eq(0), done.eq(0)]

        # The read port looks one word ahead: its address is next cycle's rd_ptr, so the head
        # word is on ib_rd.data every cycle without a bubble after a pop.
        head = ib_rd.data
        if self.hw.registered_reads:
            head = Signal.like(ib_rd.data, name="input_head")
        head_addr = head[:ab0]
        head_eos = head[ab0]
        first = self.layers[0]
        pop = Signal()
        run_active = Signal()
        m.d.comb += [
            first.events.payload.eq(head_addr),
            first.events.valid.eq(run_active & ~head_eos),
            first.events_end.eq(run_active & head_eos),
            pop.eq((first.events.valid & first.events.ready) | first.end_ack),
        ]
        # rd_ptr + 1 is kept in a register of its own, so a pop selects the next address
        # without a carry chain between the handshake and the buffer's read address.
        rd_ptr1 = Signal.like(rd_ptr, init=1)
        rd_next = Signal.like(rd_ptr)
        m.d.comb += rd_next.eq(rd_ptr)
        with m.If(pop):
            m.d.comb += rd_next.eq(rd_ptr1)
        m.d.sync += rd_ptr1.eq(rd_next + 1)
        # (rd_ptr is 0 whenever the core is idle: the run's last cycle rewinds it, below)
        m.d.sync += rd_ptr.eq(rd_next)
        rewind = []
        if self.hw.registered_reads:
            rewind = input_head(m, ib_rd, head, idle, pop, rd_ptr, rd_ptr1, rd_next)
        else:
            m.d.comb += ib_rd.addr.eq(rd_next)

        # --- layers chained through spike-word queues --------------------------------------------
        inflight = self.hw.schedule == "inflight"
        seal = Signal()  # inflight: the boundary cycle (and idle) moves every queue's fence
        chain_layers(m, self.layers, geos, inflight, seal)

        # --- controller --------------------------------------------------------------------------
        # lstep[l]: the step layer l works on (the mon words' step field).
        lstep = [Signal(self.step_bits, name=f"step{l}") for l in range(L)]
        last = self.layers[-1]
        rstdp = [core for core, geo in zip(self.layers, geos) if geo.learning is not None and geo.learning.elig_bits]
        if rstdp:
            sample_reward = Signal(signed(16))
            rewarding = Signal()
            m.d.comb += self.reward.ready.eq(idle & ~self.start)
            for core in rstdp:
                m.d.comb += core.reward.eq(Mux(rewarding, sample_reward, self.step_reward))
        if inflight:
            # active[l]: layer l has a step in this wave. Layer l's step in wave w is the one layer
            # l-1 had in wave w-1, so both shift one layer on at every boundary.
            active = Signal(L)
            fin = Signal(L)
            dones = Cat(*(core.done for core in self.layers))
            nxt = Cat(~at_end, active[:L - 1])
            wave_done = Signal()
            m.d.comb += wave_done.eq(((~active) | fin | dones) == (1 << L) - 1)
        else:
            m.d.comb += [lstep[l].eq(step) for l in range(L)]
        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += [idle.eq(1), seal.eq(1)]
                if rstdp:
                    with m.If(self.reward.valid & ~self.start):
                        m.d.sync += [sample_reward.eq(self.reward.payload), cycles.eq(0), done.eq(0)]
                        m.d.comb += [core.reward_start.eq(self.reward.payload != 0) for core in rstdp]
                        m.next = "REWARD"
                with m.If(self.start):
                    # n_steps as it is after this cycle's load or clear, if any
                    m.d.sync += [step.eq(0), cycles.eq(0), done.eq(0),
                                 at_end.eq(Mux(self.clear, 1, Mux(eos_loaded, 0, n_zero)))]
                    if inflight:
                        m.d.sync += active.eq(0)
                    m.d.comb += [core.reset_state.eq(1) for core in self.layers]
                    m.next = "NEXT"
            with m.State("NEXT"):
                m.d.sync += cycles.eq(cycles + 1)
                m.d.comb += seal.eq(1)
                with m.If(nxt == 0 if inflight else at_end):
                    m.d.sync += [done.eq(1), rd_ptr.eq(0), rd_ptr1.eq(1), *rewind]
                    m.next = "IDLE"
                with m.Else():
                    if inflight:
                        m.d.sync += [active.eq(nxt), fin.eq(0), lstep[0].eq(step)]
                        m.d.sync += [lstep[l].eq(lstep[l - 1]) for l in range(1, L)]
                        m.d.comb += [core.start.eq(nxt[l]) for l, core in enumerate(self.layers)]
                    else:
                        m.d.comb += first.start.eq(1)
                    m.next = "RUN"
            with m.State("RUN"):
                m.d.comb += run_active.eq(1)
                m.d.sync += cycles.eq(cycles + 1)
                if inflight:
                    m.d.sync += fin.eq(fin | dones)
                    with m.If(wave_done):
                        with m.If(active[0]):
                            m.d.sync += [step.eq(step + 1), at_end.eq(step + 1 == n_steps)]
                        m.next = "NEXT"
                else:
                    with m.If(last.done):
                        m.d.sync += [step.eq(step + 1), at_end.eq(step + 1 == n_steps)]
                        m.next = "NEXT"
            if rstdp:
                with m.State("REWARD"):  # REWARD_OVERHEAD: the cycle that sees every layer idle
                    m.d.comb += rewarding.eq(1)
                    m.d.sync += cycles.eq(cycles + 1)
                    with m.If(~Cat(*[core.busy for core in rstdp]).any()):
                        m.d.sync += done.eq(1)
                        m.next = "IDLE"

        # --- outputs -----------------------------------------------------------------------------
        m.d.comb += [
            last.peek_addr.eq(self.out_addr),
            self.out_membrane.eq(last.peek_v),
        ]
        if geos[-1].count_bits:
            m.d.comb += self.out_count.eq(last.peek_count)

        for l, core in enumerate(self.layers):
            lane_bits = (geos[l].lanes - 1).bit_length()
            m.d.comb += [
                self.mon[l].valid.eq(core.spikes.valid),
                self.mon[l].layer.eq(l),
                self.mon[l].step.eq(lstep[l]),
                self.mon[l].base.eq(core.spikes.group << lane_bits),
                self.mon[l].word.eq(core.spikes.word),
            ]

        if self.trace_mems:
            trace_banks(m, self, idle)

        cfg_port(m, self, idle, cfg_error)
        param_port(m, self)
        return m
