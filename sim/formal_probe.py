"""Reading a block's internal registers and FSM states from a proof harness.

Inductive proofs and proofs from an arbitrary state have to say things about a block's insides (its
FSM's state, a timeout counter) that its ports do not show. :class:`Probe` elaborates the block
once and finds those signals by name in the statements of its fragment, so the block's code stays
as it is; the harness then adds the probe's ``fragment`` as the submodule in place of the block.
"""
from __future__ import annotations

from amaranth.hdl import Fragment, Value

__all__ = ["Probe"]


class Probe:
    """The elaborated ``block`` and its named signals (``"sub.name"`` inside its submodule ``sub``).

    ``probe["tcount"]`` is the signal; ``probe.state("HUNT")`` is 1 while the block's FSM
    (``probe.state("IDLE", fsm="answer.fsm")`` for a submodule's) is in that state."""

    def __init__(self, block, platform=None):
        self.block = block
        self.fragment = Fragment.get(block, platform)
        self._signals: dict[str, dict[int, Value]] = {}
        self._registers: set[int] = set()
        self._collect(self.fragment, "")

    def _collect(self, fragment, prefix):
        for domain, statements in fragment.statements.items():
            for stmt in statements:
                for sig in (*stmt._lhs_signals(), *stmt._rhs_signals()):
                    self._signals.setdefault(prefix + sig.name, {})[id(sig)] = sig
                if domain != "comb":
                    self._registers.update(id(sig) for sig in stmt._lhs_signals())
        for sub, name, _ in fragment.subfragments:
            if name is not None:
                self._collect(sub, f"{prefix}{name}.")

    def __getitem__(self, name: str):
        found = self._signals.get(name, {})
        if len(found) != 1:
            what = "several signals" if found else "no signal"
            raise KeyError(f"{type(self.block).__name__} has {what} named {name!r}; unique names: "
                           f"{', '.join(sorted(k for k, v in self._signals.items() if len(v) == 1))}")
        return next(iter(found.values()))

    def submodule(self, name: str):
        """The elaboratable of the block's submodule ``name``."""
        for sub, sub_name, _ in self.fragment.subfragments:
            if sub_name == name:
                return sub.origins[0]
        raise KeyError(f"{type(self.block).__name__} has no submodule {name!r}")

    def register(self, name: str):
        """The register (a signal assigned in a clocked domain) named ``name``, where a port of the
        same name exists too."""
        found = [s for i, s in self._signals.get(name, {}).items() if i in self._registers]
        if len(found) != 1:
            raise KeyError(f"{type(self.block).__name__} has {len(found)} registers named {name!r}")
        return found[0]

    def states(self, fsm: str = "fsm") -> dict[str, int]:
        """The encoding of each state of the FSM named ``fsm`` (``"sub.fsm"`` in a submodule)."""
        sig = self[f"{fsm}_state"]
        codes = {}
        for code in range(1 << len(sig)):
            try:
                codes[sig.decoder(code).rsplit("/", 1)[0]] = code
            except KeyError:  # not an encoding of any state
                pass
        return codes

    def state(self, *names: str, fsm: str = "fsm"):
        """1 while the FSM ``fsm`` is in one of the states ``names``."""
        codes = self.states(fsm)
        unknown = [n for n in names if n not in codes]
        if unknown or not names:
            raise KeyError(f"{fsm} of {type(self.block).__name__} has no state {unknown or names!r}; "
                           f"its states: {', '.join(codes)}")
        sig = self[f"{fsm}_state"]
        return sig.matches(*(codes[n] for n in names))
