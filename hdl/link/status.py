"""StatusCounters: the counters and flags of the STATUS block, laid out by ``protocol.STATUS_FIELDS``."""
from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ...model.protocol import STATUS_FIELDS, STATUS_FLAGS, STATUS_LEN
from .signatures import RxEvents, cat_fields

__all__ = ["StatusCounters"]


class StatusCounters(wiring.Component):
    """Counts what the link saw and keeps the STATUS block ready to send.

    Ports:

    - ``events`` (in, :class:`RxEvents`): the frame decoder's pulses (good frames, CRC errors,
      timeouts, rx errors, over-long frames, the last counted as frame errors).
    - ``failed`` (in): the engine answered a frame with an error (a frame error).
    - ``cfg_write`` (in): one value was written through ``cfg``.
    - ``latch`` (in): take the free-running uptime into the block (a STATUS request).
    - ``run_done`` (in) with ``cycles`` (in): a run finished after that many cycles.
    - ``loaded`` (in): words in the input buffer.
    - ``dirty``, ``overflow``, ``cfg_error``, ``done`` (in): the flag bits (``STATUS_FLAGS``).
    - ``last_cycles`` (out): the cycles of the last run; ``word`` (out): the STATUS block, byte 0
      in bits 0..7.

    ``latch_cycles`` False passes ``cycles`` through instead of latching it at ``run_done``: right
    when the core's counter changes only in runs (no REWARD), as the engine answers only between
    them; it saves 32 flip-flops, each a whole iCE40 logic cell (their input comes from no logic).
    """

    def __init__(self, latch_cycles: bool = True):
        self.latch_cycles = latch_cycles
        super().__init__({
            "events": In(RxEvents()), "failed": In(1), "cfg_write": In(1), "latch": In(1),
            "run_done": In(1), "cycles": In(32), "loaded": In(24),
            "dirty": In(1), "overflow": In(1), "cfg_error": In(1), "done": In(1),
            "last_cycles": Out(32), "word": Out(8 * STATUS_LEN),
        })

    def elaborate(self, platform):
        m = Module()
        counters = {f.name: Signal(8 * f.size, name=f.name) for f in STATUS_FIELDS
                    if f.name not in ("flags", "loaded", "last_cycles")}
        uptime = Signal(48)
        m.d.sync += uptime.eq(uptime + 1)
        with m.If(self.latch):
            m.d.sync += counters["uptime"].eq(uptime)
        if self.latch_cycles:
            with m.If(self.run_done):
                m.d.sync += self.last_cycles.eq(self.cycles)
        else:
            m.d.comb += self.last_cycles.eq(self.cycles)
        ev = self.events
        for name, pulse in (("frames_ok", ev.frame_ok), ("crc_errors", ev.crc_error), ("timeouts", ev.timeout),
                            ("rx_errors", ev.rx_error), ("frame_errors", self.failed | ev.length_error),
                            ("cfg_writes", self.cfg_write)):
            # Counted a cycle after the pulse (timing: the decoder's header compares and the
            # engine's decisions ran on into the 16 enables; the Tang Nano 9K's critical path). The
            # counters are read live; the earliest read of a frame's own count, its answer's
            # first byte, comes three cycles after the decoder hands the frame over.
            pulse_q = Signal(name=f"{name}_pulse")
            m.d.sync += pulse_q.eq(pulse)
            with m.If(pulse_q):
                m.d.sync += counters[name].eq(counters[name] + 1)
        flags = Cat(*[getattr(self, name) for name in STATUS_FLAGS])
        m.d.comb += self.word.eq(cat_fields(STATUS_FIELDS, {"flags": flags, "loaded": self.loaded,
                                                            "last_cycles": self.last_cycles, **counters}))
        return m
