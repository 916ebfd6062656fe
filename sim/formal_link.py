"""Proofs about the host link's frame handling: it never locks up (b), and a frame with a bad CRC
never changes any memory (c).

Both harnesses build the link's blocks for a tiny network, :class:`LinkRig`: the real
:class:`FrameDecoder`, :class:`CommandEngine` and :class:`ResponseEncoder`, connected as in
:class:`~spikegate.hdl.link.HostLink`. The UARTs are abstracted: the decoder's byte stream and
``line_error`` are free values (``AnySeq``), since the receiver's bit timing is checked by its own
tests, and the transmitter takes one byte per cycle (a real one takes ``10 * divisor`` cycles a
byte, which only scales the bounds). The proofs also leave the core's answers to the engine free
(in (b) a run must end within :data:`RUN_BOUND` cycles); the rig can drive the real
:class:`NetworkCore` instead, for simulation.

The two properties are checked by bounded model checking from reset (``mode="bmc"``); each
function states its depth and why it covers the property.

The rig is :mod:`.formal_link_rig`, proof (c) :mod:`.formal_link_crc`, proof (b) :mod:`.formal_link_live`.
"""
from .formal_link_crc import BAD_CRC_DEPTH, BadCRCProof, crc16_step, prove_bad_crc
from .formal_link_live import LIVENESS_PREFIX, RUN_BOUND, LivenessProof, idle_bound, prove_liveness
from .formal_link_rig import LinkProofConfig, LinkRig

__all__ = ["LinkProofConfig", "LinkRig", "BadCRCProof", "crc16_step", "prove_bad_crc", "BAD_CRC_DEPTH",
           "LivenessProof", "idle_bound", "prove_liveness", "LIVENESS_PREFIX", "RUN_BOUND"]
