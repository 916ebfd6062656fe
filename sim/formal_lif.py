"""Proof that :class:`~spikegate.hdl.neuron.LIFNeuronUnit` computes the arithmetic contract.

The unit is a pipeline of ``NEURON_STAGES`` register stages with no feedback and no enable. The
harness drives its membrane, counter, sum and bias inputs with a new free value every cycle (the
threshold with one free constant: the layer changes it only while the pipeline is empty), assumes
only what the contract guarantees about the inputs, keeps the inputs of NEURON_STAGES cycles ago
in a delay line of its own, and asserts that the unit's outputs equal the contract applied to
those inputs, written again here from README's text ("The arithmetic contract"), in exact wide
arithmetic and with floor division where the contract says ``>>>``, so neither the unit's code nor
its numpy twin is reused. Free inputs every cycle also catch a stage that mixes values of
different neurons. The outputs depend only on the last NEURON_STAGES cycles' inputs, so
k-induction of length NEURON_STAGES + 1 is a complete proof for all inputs and all cycles.
"""
from __future__ import annotations

from dataclasses import dataclass

from amaranth.asserts import AnyConst, AnySeq
from amaranth.hdl import Assert, Assume, Cover, Elaboratable, Module, Signal, signed

from ..hdl.neuron import NEURON_STAGES, LIFNeuronUnit
from ..model.network import MAX_FRAC_BITS, MAX_REFRACTORY, RESET_MODES, Leak, signed_range
from .formal import Bundle, ProofResult, prove

__all__ = ["NeuronProofConfig", "NEURON_PROOF_CONFIGS", "LIFContractProof", "prove_neurons", "PROOF_DEPTH"]

# Induction length: the pipeline's depth plus the step whose outputs are checked.
PROOF_DEPTH = NEURON_STAGES + 1


@dataclass(frozen=True)
class NeuronProofConfig:
    """One generation-time configuration of the unit (small widths keep the solver quick)."""
    leak: Leak
    reset: str = "zero"
    refractory: int = 0
    readout: bool = False
    membrane_bits: int = 6
    acc_bits: int = 5

    def __post_init__(self):
        if self.reset not in RESET_MODES:
            raise ValueError(f"reset = {self.reset!r} is not valid; valid: {', '.join(RESET_MODES)}")
        if not 0 <= self.refractory <= MAX_REFRACTORY:
            raise ValueError(f"refractory = {self.refractory} is out of range; valid: 0 <= refractory <= {MAX_REFRACTORY}")
        if self.readout and (self.reset != "zero" or self.refractory != 0):
            raise ValueError("a readout unit never fires: use reset = 'zero' and refractory = 0 "
                             f"(got reset = {self.reset!r}, refractory = {self.refractory})")
        if self.membrane_bits < 2 or self.acc_bits < 2:
            raise ValueError(f"membrane_bits = {self.membrane_bits}, acc_bits = {self.acc_bits}: both must be >= 2")

    @property
    def label(self) -> str:
        lk = self.leak
        leak = {"none": "none", "shift": f"shift{lk.k}", "multiply": f"mul{lk.m}of{1 << lk.frac_bits}"}[lk.kind]
        kind = "readout" if self.readout else f"{self.reset}_R{self.refractory}"
        return f"V{self.membrane_bits}_A{self.acc_bits}_{leak}_{kind}"


_LEAKS = (Leak.none(), Leak.shift(1), Leak.shift(3), Leak.shift(8), Leak.multiply(3, 2), Leak.multiply(0, 1),
          Leak.multiply(4, 2), Leak.multiply(11, 4))
# Every leak with every reset mode, refractory off and on (R = 5 does not fill its 3-bit counter),
# and as a readout; shift 8 is wider than the membrane (v >>> 8 is 0 or -1); multiply covers
# m = 0 and m = 2^F. An accumulator wider than the membrane is proved once per leak kind.
NEURON_PROOF_CONFIGS = tuple(
    [NeuronProofConfig(lk, reset, R) for lk in _LEAKS for reset in RESET_MODES for R in (0, 5)]
    + [NeuronProofConfig(lk, readout=True) for lk in _LEAKS]
    + [NeuronProofConfig(lk, "subtract", 2, acc_bits=9) for lk in (Leak.none(), Leak.shift(2), Leak.multiply(5, 3))])


class LIFContractProof(Elaboratable):
    """Asserts ``LIFNeuronUnit(config)``'s outputs == contract of its inputs NEURON_STAGES cycles
    earlier, for every sequence of ``(v, r, acc, bias)`` and every ``theta`` in range."""

    def __init__(self, config: NeuronProofConfig):
        self.config = config
        c = config
        self.unit = LIFNeuronUnit(membrane_bits=c.membrane_bits, acc_bits=c.acc_bits, leak=c.leak, reset=c.reset,
                                  refractory=c.refractory, readout=c.readout)

    def spike_rule(self, v, theta):
        """Step 4, "spike = (v > theta)" (a method, so a test can prove a wrong rule fails)."""
        return v > theta

    def elaborate(self, platform):
        m = Module()
        m.submodules.unit = u = self.unit
        c = self.config
        V, R = c.membrane_bits, c.refractory
        lo, hi = signed_range(V)
        # Free inputs, new every cycle ("<port>_now"); the delay line's outputs are named
        # "<port>_in", so a counterexample shows the inputs of the outputs it checks by name.
        delayed = {}
        for port in ("v", "r", "acc", "bias"):
            now = Signal(getattr(u, port).shape(), name=f"{port}_now")
            m.d.comb += [now.eq(AnySeq(now.shape())), getattr(u, port).eq(now)]
            for k in range(NEURON_STAGES):
                reg = Signal(now.shape(), name=f"{port}_in" if k == NEURON_STAGES - 1 else f"{port}_d{k + 1}")
                m.d.sync += reg.eq(now)
                now = reg
            delayed[port] = now
        v, r, acc, bias = delayed.values()
        theta = Signal(u.theta.shape(), name="theta_in")
        m.d.comb += [theta.eq(AnyConst(theta.shape())), u.theta.eq(theta)]
        # The checked outputs exist from cycle NEURON_STAGES on.
        age = Signal(range(NEURON_STAGES + 1), name="age")
        with m.If(age != NEURON_STAGES):
            m.d.sync += age.eq(age + 1)
        check = age == NEURON_STAGES
        # The contract's input ranges: 0 <= theta < 2^(V-1) - 1, and a counter only ever holds
        # 0..R. v and bias are any V-bit value; acc is any value its register holds, which
        # includes every exact sum of the layer the unit was sized for.
        m.d.comb += [Assume(theta >= 0), Assume(theta < hi), Assume(u.r <= R)]

        # Exact integers: v * m < 2^(V + F), and a sum of three terms needs 2 bits more than its widest.
        W = max(V, c.acc_bits) + MAX_FRAC_BITS + 4
        leaked, total, sat = (Signal(signed(W), name=f"spec_{n}") for n in ("leaked", "total", "sat"))
        lk = c.leak
        if lk.kind == "shift":  # v - (v >>> k), >>> rounding towards minus infinity
            m.d.comb += leaked.eq(v - v // (1 << lk.k))
        elif lk.kind == "multiply":  # (v * m) >>> F
            m.d.comb += leaked.eq((v * lk.m) // (1 << lk.frac_bits))
        else:
            m.d.comb += leaked.eq(v)
        m.d.comb += total.eq(leaked + bias + acc)  # v + b + sum, saturated once
        with m.If(total > hi):
            m.d.comb += sat.eq(hi)
        with m.Elif(total < lo):
            m.d.comb += sat.eq(lo)
        with m.Else():
            m.d.comb += sat.eq(total)

        exp_v, exp_r = (Signal(signed(W), name=f"spec_{n}") for n in ("v_next", "r_next"))
        exp_spike = Signal(name="spec_spike")
        if c.readout:  # steps 2 and 3 only; never fires, so never refractory
            m.d.comb += [exp_v.eq(sat), exp_r.eq(r), exp_spike.eq(0)]
        else:
            with m.If(r > 0):  # refractory: count down, keep v, ignore inputs
                m.d.comb += [exp_v.eq(v), exp_r.eq(r - 1), exp_spike.eq(0)]
            with m.Elif(self.spike_rule(sat, theta)):
                m.d.comb += [exp_v.eq(0 if c.reset == "zero" else sat - theta), exp_r.eq(R), exp_spike.eq(1)]
            with m.Else():
                m.d.comb += [exp_v.eq(sat), exp_r.eq(0), exp_spike.eq(0)]

        with m.If(check):
            m.d.comb += [
                Assert(u.v_next == exp_v, "v_next differs from the contract"),
                Assert(u.r_next == exp_r, "r_next differs from the contract"),
                Assert(u.spike == exp_spike, "spike differs from the contract"),
            ]
        # Reachability of the interesting cases under the assumptions (checked in cover mode):
        # both rails, a spike, a refractory step, at a checked cycle.
        m.d.comb += [Cover(check & (total > hi)), Cover(check & (total < lo))]
        if not c.readout:
            m.d.comb += Cover(check & exp_spike)
            if R:
                m.d.comb += Cover(check & (r == R))
        return m


def prove_neurons(configs, *, harness: type[LIFContractProof] = LIFContractProof, mode: str = "prove",
                  name: str = "lif_contract", timeout: float = 300.0, workdir=None) -> ProofResult:
    """Prove the contract for every configuration in ``configs`` in one SymbiYosys run.

    ``mode="prove"`` is k-induction of length PROOF_DEPTH, a complete proof for the pipeline;
    ``mode="cover"`` shows that the assumptions leave both rails, a spike and a refractory step
    reachable, so the proof is not vacuous. Each configuration is a submodule named by its
    ``label``; ``ProofResult.failed_parts`` names the ones that failed.
    """
    configs = tuple(configs)
    labels = [c.label for c in configs]
    if len(set(labels)) != len(labels):
        raise ValueError(f"configs contain duplicates: {sorted(l for l in labels if labels.count(l) > 1)}")
    return prove(Bundle({c.label: harness(c) for c in configs}), name=name, mode=mode, depth=PROOF_DEPTH,
                 timeout=timeout, workdir=workdir)
