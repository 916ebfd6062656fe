"""Proofs about the host link's frame handling: it never locks up (b), and a frame with a bad CRC
never changes any memory (c).

Both build the link's blocks for a tiny network, :class:`LinkRig`: the real :class:`FrameDecoder`,
:class:`CommandEngine` and :class:`ResponseEncoder`, connected as in
:class:`~spikegate.hdl.link.HostLink`. The UARTs are abstracted: the decoder's byte stream and
``line_error`` are free values (``AnySeq``), since the receiver's bit timing is checked by its own
tests, and the transmitter takes one byte per cycle (a real one takes ``10 * divisor`` cycles a
byte, which only scales the bounds). The proofs also leave the core's answers to the engine free
(in (b) a run ends within :data:`RUN_BOUND` cycles and load/cfg words are taken while no run is
under way); the rig can drive the real :class:`NetworkCore` instead, for simulation.

(c) is a bounded model check from reset and, for frames of every length, a k-induction
(:mod:`.formal_link_crc`); (b) is split into checks from
arbitrary states (:mod:`.formal_link_live`, :mod:`.formal_link_drain`, :mod:`.formal_link_identify`),
run together by :func:`prove_liveness`. The rig is :mod:`.formal_link_rig`.
"""
from __future__ import annotations

from .formal import ProofResult, prove
from .formal_link_crc import (BAD_CRC_DEPTH, BAD_FRAME_ESCAPES, BadCRCProof, crc16_step, induction_depth, prove_bad_crc,
                              prove_bad_crc_any_length)
from .formal_link_drain import AnswerDrainProof
from .formal_link_identify import IdentifyProof
from .formal_link_live import (DecoderTimeoutProof, IdleHoldProof, TransactionProof, answer_rest, batch_bound,
                               batch_records, idle_bound, take_bound, transaction_bound)
from .formal_link_rig import RUN_BOUND, LinkProofConfig, LinkRig

__all__ = ["LinkProofConfig", "LinkRig", "BadCRCProof", "crc16_step", "prove_bad_crc", "BAD_CRC_DEPTH", "BAD_FRAME_ESCAPES",
           "prove_bad_crc_any_length", "induction_depth",
           "DecoderTimeoutProof", "TransactionProof", "IdleHoldProof", "AnswerDrainProof", "IdentifyProof",
           "answer_rest", "take_bound", "batch_records", "batch_bound", "transaction_bound", "idle_bound", "RUN_BOUND", "INDUCTION_DEPTH",
           "prove_decoder_timeout", "prove_transaction", "prove_idle_hold",
           "prove_answer_drain", "prove_identify", "prove_liveness"]

# k of the k-inductions (b1) and (b3): their strengthening invariants make each 1-inductive; 2 adds
# a step of margin at no measurable cost.
INDUCTION_DEPTH = 2


def prove_decoder_timeout(config: LinkProofConfig | None = None, *, mode: str = "prove",
                          depth: int = INDUCTION_DEPTH, name: str = "link_decoder_timeout", timeout: float = 300.0,
                          workdir=None, decoder=None) -> ProofResult:
    """(b1) by k-induction (``mode="prove"``; a BMC from reset with ``mode="bmc"``)."""
    return prove(DecoderTimeoutProof(config or LinkProofConfig(), decoder=decoder), name=name, mode=mode,
                 depth=depth, timeout=timeout, workdir=workdir)


def prove_transaction(config: LinkProofConfig | None = None, *, mode: str = "bmc", bound: int | None = None,
                      name: str = "link_transaction", timeout: float = 600.0, workdir=None,
                      batch_cover: bool = True) -> ProofResult:
    """(b2) by BMC of :func:`take_bound` + 1 steps from every hand-off state (the checks are
    asserted at the last step only: one solver call). ``mode="cover"`` reaches each kind of
    hand-off, and with ``batch_cover`` a BATCH that takes every step of :func:`batch_bound`."""
    harness = TransactionProof(config or LinkProofConfig(), bound=bound, batch_cover=batch_cover)
    skip = harness.depth - 1 if mode == "bmc" else 0
    return prove(harness, name=name, mode=mode, depth=harness.depth, skip=skip, timeout=timeout, workdir=workdir,
                 free_init=True)


def prove_idle_hold(config: LinkProofConfig | None = None, *, name: str = "link_idle_hold", timeout: float = 300.0,
                    workdir=None) -> ProofResult:
    """(b2), second part: one step from every state with an idle back end and no hand-off."""
    return prove(IdleHoldProof(config or LinkProofConfig()), name=name, mode="bmc", depth=2, timeout=timeout,
                 workdir=workdir, free_init=True)


def prove_answer_drain(config: LinkProofConfig | None = None, *, mode: str = "prove", depth: int = INDUCTION_DEPTH,
                       name: str = "link_answer_drain", timeout: float = 300.0, workdir=None,
                       **harness_kw) -> ProofResult:
    """(b3) by k-induction whose base case starts in every :func:`answer_started` state."""
    return prove(AnswerDrainProof(config or LinkProofConfig(), **harness_kw), name=name, mode=mode, depth=depth,
                 timeout=timeout, workdir=workdir, free_init=True)


def prove_identify(config: LinkProofConfig | None = None, *, expect: int | None = None, mode: str = "bmc",
                   name: str = "link_identify", timeout: float = 600.0, workdir=None, **harness_kw) -> ProofResult:
    """(b4) by BMC from every quiet state, to the last answer byte compared (``expect``: all that do
    not depend on the link's state, by default)."""
    harness = IdentifyProof(config or LinkProofConfig(), expect=expect, **harness_kw)
    skip = harness.depth_needed - 1 if mode == "bmc" else 0
    return prove(harness, name=name, mode=mode, depth=harness.depth_needed, skip=skip, timeout=timeout,
                 workdir=workdir, free_init=True)


def prove_liveness(config: LinkProofConfig | None = None, *, timeout: float = 600.0) -> dict[str, ProofResult]:
    """All checks of (b), each with its default depth, by name: ``b1`` (decoder timeout), ``b2``
    (transaction), ``b2_hold`` (idle back end stays idle), ``b3`` (answer drain), ``b4`` (identify).
    (b) holds when all pass; then the link is quiet after :func:`idle_bound` silent cycles."""
    config = config or LinkProofConfig()
    return {"b1": prove_decoder_timeout(config, timeout=timeout),
            "b2": prove_transaction(config, timeout=timeout),
            "b2_hold": prove_idle_hold(config, timeout=timeout),
            "b3": prove_answer_drain(config, timeout=timeout),
            "b4": prove_identify(config, timeout=timeout)}
