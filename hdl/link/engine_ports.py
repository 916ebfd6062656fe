"""The ports of :class:`~spikegate.hdl.link.engine.CommandEngine` (its signature) and their
connection to the NetworkCore: the engine mirrors the core's control ports, so the two change together."""
from amaranth.hdl import signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .signatures import BufferRead, FrameInfo, ResponseInfo, RxEvents

__all__ = ["CommandEngineSignature", "connect_core"]


class CommandEngineSignature(wiring.Signature):
    """Ports of :class:`CommandEngine` for a NetworkCore ``core`` and a ``max_payload`` buffer."""
    def __init__(self, core, max_payload: int):
        super().__init__({
            "frame": In(stream.Signature(FrameInfo(max_payload))),
            "buf": Out(BufferRead(max_payload)),
            "events": In(RxEvents()),
            "resp": Out(stream.Signature(ResponseInfo())),
            "data": Out(stream.Signature(8)),
            "error": Out(1),
            # the core's control ports, mirrored
            "load": Out(stream.Signature(core.load_layout)),
            "cfg": Out(stream.Signature(core.cfg_layout)),
            "clear": Out(1),
            "start": Out(1),
            "done": In(1),
            "cycles": In(32),
            "overflow": In(1),
            "cfg_error": In(1),
            "out_addr": Out(len(core.out_addr)),
            "out_count": In(len(core.out_count)),
            "out_membrane": In(signed(len(core.out_membrane))),
            "param_addr": Out(core.param_layout),
            "param_data": In(signed(len(core.param_data))),
            # plastic networks: the learning mode and the learning-state read; rstdp: the rewards
            **({"learn": Out(1), "learn_state_addr": Out(core.learn_state_layout),
                "learn_state_data": In(signed(len(core.learn_state_data)))}
               if "learn" in core.signature.members else {}),
            **({"reward": Out(stream.Signature(signed(16))), "step_reward": Out(signed(16))}
               if "reward" in core.signature.members else {}),
        })


def connect_core(m, engine, core):
    """Connect ``engine``'s core-control ports to the NetworkCore ``core`` in module ``m``."""
    wiring.connect(m, engine.load, core.load)
    wiring.connect(m, engine.cfg, core.cfg)
    m.d.comb += [core.clear.eq(engine.clear), core.start.eq(engine.start), core.out_addr.eq(engine.out_addr),
                 engine.done.eq(core.done), engine.cycles.eq(core.cycles), engine.overflow.eq(core.overflow),
                 engine.cfg_error.eq(core.cfg_error), engine.out_count.eq(core.out_count),
                 engine.out_membrane.eq(core.out_membrane), core.param_addr.eq(engine.param_addr),
                 engine.param_data.eq(core.param_data)]
    if "learn" in core.signature.members:
        m.d.comb += [core.learn.eq(engine.learn), core.learn_state_addr.eq(engine.learn_state_addr),
                     engine.learn_state_data.eq(core.learn_state_data)]
    if "reward" in core.signature.members:
        wiring.connect(m, engine.reward, core.reward)
        m.d.comb += core.step_reward.eq(engine.step_reward)
