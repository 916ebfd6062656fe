"""The catalogue of bad inputs run by ``bench/bad_inputs.py``: the input files it needs
(:func:`make_inputs`) and the cases (:func:`catalogue`), generated from the CLI parser.

Each case starts from a command's valid base arguments and replaces one of them (or adds one) with
a bad value, so that the bad value is the only reason to fail. The first case of each (command,
kind) pair is in the fast CI subset.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bad_input_specific import DROP as _DROP, OPEN, specific  # noqa: E402  (the sibling module)

__all__ = ["Case", "make_inputs", "catalogue", "commands", "nir_graph"]


@dataclass
class Case:
    command: str
    args: list
    label: str
    option: str = ""              # the option (or value) a clean message must name
    stdout_full: bool = False     # run with stdout on /dev/full
    fast: bool = False            # part of the CI subset


# Valid arguments of each command; a case overrides one of them. Outputs are relative to the
# case's own working directory. "@name" is the input file ``name`` made by make_inputs.
BASE = {
    "boards": {},
    "info": {},
    "learn": {"--out": "l.json", "--epochs": "1"},
    "model": {"--samples": "3"},
    "demo": {"--samples": "3"},
    "train": {"--out": "t.json", "--epochs": "1"},
    "export": {"-o": "x.v"},
    "export-nir": {"-o": "x.nir"},
    "import": {"": "@ok.nir", "-o": "n.json", "--dt": "0.001"},
    "sim": {"--samples": "2"},
    "run": {"--board": "sim", "--port": "socket://127.0.0.1:9", "--timeout": "0.5", "--retries": "0"},
    "build": {"--board": "icebreaker", "--out": "b"},
    "flash": {"--board": "icebreaker", "--bitstream": "@ok.bin", "--dry-run": None},
    "plot": {"": "raster", "-o": "p.png"},
    "explore": {"--board": "icebreaker", "--out": "e"},
    "cache": {"--info": None},
}
# Extreme values that are valid for an option (so not a bad input there).
VALID = {("--memory-budget", "huge"), ("--calibrate-samples", "huge"), ("--seed", "0"), ("--trace-depth", "0"),
         ("--waves-sample", "0"), ("--retries", "0"), ("--max-events", "huge-info"), ("--regress-seed", "0"),
         ("--sample", "0"), ("--layer", "0")}
FILE_OUTPUTS = {"-o", "--output", "--waves", "--plot"}
DIR_OUTPUTS = {"--build-dir", "--cache-dir", "--sim-build-dir", "--build-out"}
NET = {"format": "spikegate-network", "version": 1}


def _net_variants() -> dict:
    """Corrupt network files: name -> text (bytes for binary)."""
    from spikegate.datasets import load_network
    good = json.loads(load_network(None).to_json())
    L0 = good["layers"][0]

    def with_layer(**change):
        d = json.loads(json.dumps(good))
        d["layers"][0].update(change)
        return json.dumps(d)

    def without(key):
        d = json.loads(json.dumps(good))
        del d["layers"][0][key]
        return json.dumps(d)

    return {
        "empty.json": "", "garbage.json": os.urandom(2000), "text.json": "this is not json",
        "list.json": "[]", "number.json": "42", "other-format.json": json.dumps({"format": "other"}),
        "deep.json": "[" * 200_000 + "]" * 200_000, "deep-object.json": '{"a":' * 100_000 + "1" + "}" * 100_000,
        "leak-string.json": with_layer(leak="shift"), "leak-unknown.json": with_layer(leak={"kind": "shift", "q": 1}),
        "leak-kind.json": with_layer(leak={"kind": "exp"}), "float-weights.json": with_layer(
            weights=[[0.5] * L0["n"]] * L0["n_in"]),
        "huge-weight.json": with_layer(weights=[[10 ** 300] * L0["n"]] * L0["n_in"]),
        "ragged.json": with_layer(weights=[[1, 2], [3]]), "no-weights.json": without("weights"),
        "unknown-field.json": with_layer(colour="red"), "bad-utf8.json": b'{"format": "\xff\xfe"}',
        "timesteps-0.json": json.dumps({**good, "timesteps": 0}), "layers-empty.json": json.dumps({**good, "layers": []}),
        "bias-shape.json": with_layer(bias=[1, 2, 3]), "weight-bits-99.json": with_layer(weight_bits=99),
        "reset-bad.json": with_layer(reset="sometimes"), "nan.json": with_layer(threshold=float("nan")),
        "threshold-string.json": with_layer(threshold="high"), "version-9.json": json.dumps({**good, "version": 9}),
    }


def make_inputs(d: Path) -> Path:
    """Write the catalogue's input files into ``d`` (made) and return it."""
    import numpy as np
    from spikegate.datasets import load_network
    d.mkdir(parents=True, exist_ok=True)
    load_network(None).save(d / "ok.json")
    for name, body in _net_variants().items():
        (d / name).write_bytes(body if isinstance(body, bytes) else body.encode())
    (d / "adir").mkdir(exist_ok=True)
    (d / "afile").write_text("a regular file\n")
    if not (d / "fifo").exists():
        os.mkfifo(d / "fifo")
    with open(d / "sparse-huge.json", "wb") as f:  # 300 MiB, sparse: costs no disk
        f.truncate(300 << 20)
    (d / "ok.bin").write_bytes(b"\xff\x00\x00\xff\x7e\xaa\x99\x7e" + bytes(1000))
    (d / "empty.bin").write_bytes(b"")
    (d / "random.bin").write_bytes(os.urandom(4000))
    (d / "random.bit").write_bytes(os.urandom(4000))
    (d / "ice40.bit").write_bytes((d / "ok.bin").read_bytes())
    (d / "text.fs").write_text("hello\n")
    net = json.loads((d / "ok.json").read_text())
    (d / "poisson.json").write_text(json.dumps({**net, "encoding": "poisson"}))  # no on-chip encoder
    np.save(d / "calib-shape.npy", np.zeros((3, 5)))
    (d / "calib-garbage.npy").write_bytes(os.urandom(300))
    _nir_files(d, np)
    return d


def nir_graph(path, w) -> str:
    """Write a float NIR graph Affine(w) -> LIF -> Linear -> LI (3 outputs) to ``path``."""
    import nir
    import numpy as np
    n = w.shape[0]
    g = nir.NIRGraph.from_list(
        nir.Affine(w, np.zeros(n)),
        nir.LIF(tau=np.full(n, 0.02), r=np.full(n, 20.0), v_leak=np.zeros(n), v_threshold=np.full(n, 0.8),
                v_reset=np.zeros(n)),
        nir.Linear(np.ones((3, n))), nir.LI(tau=np.full(3, 0.05), r=np.full(3, 50.0), v_leak=np.zeros(3)))
    nir.write(str(path), g)
    return str(path)


def _nir_files(d: Path, np) -> None:
    try:
        import nir  # noqa: F401
    except ImportError:
        return
    w = np.random.default_rng(0).normal(size=(6, 64))
    nir_graph(d / "ok.nir", w)
    huge = w.copy()
    huge[0, 0] = 1e300
    nir_graph(d / "huge.nir", huge)
    nir_graph(d / "zero.nir", np.zeros((0, 64)))
    (d / "garbage.nir").write_bytes(os.urandom(3000))
    (d / "empty.nir").write_bytes(b"")
    from spikegate.nir import export_nir
    from spikegate.datasets import load_network
    export_nir(load_network(None), d / "exported.nir")


def commands() -> dict:
    """Command name -> its argparse parser, from the CLI."""
    from spikegate.cli import build_parser
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def _argv(base: dict, inputs: Path, override: dict) -> list:
    """Arguments from ``base`` with ``override`` applied (a None value drops the option)."""
    merged = {**base, **override}
    out = []
    for opt, val in merged.items():
        if val is _DROP:
            continue
        v = str(inputs / val[1:]) if isinstance(val, str) and val.startswith("@") else val
        if opt == "":
            out.insert(0, v)
        elif val is None:
            out.append(opt)
        else:
            out += [opt, v]
    return out


INT_VALUES = {"abc": "abc", "1.5": "1.5", "empty": "", "-5": "-5", "0": "0", "huge": str(10 ** 30)}
FLOAT_VALUES = {"abc": "abc", "nan": "nan", "inf": "inf", "-inf": "-inf", "-1": "-1", "0": "0", "1e308": "1e308"}
LANES = {"3": "3", "0": "0", "abc": "abc", "-4": "-4", "128": "128", "many": ",".join(["4"] * 9), "empty": ""}


def _options(parser) -> list:
    return [a for a in parser._actions if a.option_strings and a.dest != "help"]


def catalogue(inputs: Path) -> list:
    """Every case for every command of the CLI."""
    cases: list = []
    seen: set = set()

    def add(cmd, kind, label, override, option="", stdout_full=False):
        base = BASE.get(cmd, {})
        # A known open defect stays in the full matrix (and its report) but out of the CI subset.
        fast = (cmd, kind) not in seen and (cmd, f"{kind}: {label}") not in OPEN
        if fast:
            seen.add((cmd, kind))
        cases.append(Case(cmd, _argv(base, inputs, override), f"{kind}: {label}", option, stdout_full, fast))

    for cmd, parser in commands().items():
        base = BASE.get(cmd, {})
        add(cmd, "unknown option", "--no-such-option", {"--no-such-option": "1"}, "--no-such-option")
        required = [a for a in parser._actions if a.required]
        if required:
            add(cmd, "missing argument", "no arguments", {k: _DROP for k in base}, "required")
        for a in _options(parser):
            opt = a.option_strings[-1] if a.option_strings[-1] in base or a.option_strings[0] not in base \
                else a.option_strings[0]
            key = next((o for o in a.option_strings if o in base), opt)
            if a.type is int:
                for label, v in INT_VALUES.items():
                    if (opt, label) not in VALID and not (label == "huge" and opt == "--max-events" and cmd == "info"):
                        add(cmd, "int option", f"{opt} {label}", {key: v}, opt)
            elif a.type is float:
                for label, v in FLOAT_VALUES.items():
                    add(cmd, "float option", f"{opt} {label}", {key: v}, opt)
            elif a.choices:
                add(cmd, "choice option", f"{opt} bogus", {key: "bogus"}, opt)
            if opt == "--lanes":
                for label, v in LANES.items():
                    if cmd == "explore" and label == "many":  # a sweep list: repeats are one point
                        label, v = "empty item", "4,,x"
                    add(cmd, "lanes", f"--lanes {label}", {key: v}, "--lanes")
            if opt == "--board":
                add(cmd, "board", "--board bogus", {key: "bogus"}, "bogus")
            if opt == "--net":
                for name in ["none.json", "adir", "fifo", "sparse-huge.json", *_net_variants()]:
                    add(cmd, "net file", name, {key: f"@{name}"}, name)
                add(cmd, "net file", "/dev/zero", {key: "/dev/zero"}, "/dev/zero")
            if opt in FILE_OUTPUTS or (opt == "--out" and a.metavar == "FILE"):
                for label, v in (("missing dir", "nodir/x.out"), ("a directory", "@adir"),
                                 ("under a file", "@afile/x.out"), ("empty", ""), ("a device", "/dev/full")):
                    if not (label == "empty" and a.nargs == "?"):  # there "" asks for the default name
                        add(cmd, "output path", f"{opt} {label}", {key: v}, opt)
            if opt in DIR_OUTPUTS or (opt == "--out" and a.metavar == "DIR"):
                for label, v in (("a file", "@afile"), ("under a file", "@afile/sub"), ("empty", ""),
                                 ("a device", "/dev/null")):
                    add(cmd, "output dir", f"{opt} {label}", {key: v}, opt)
            if opt == "--data-dir":
                add(cmd, "data dir", "--data-dir missing", {key: "@nodir"}, opt)
                add(cmd, "data dir", "--data-dir a file", {key: "@afile"}, opt)
        # (plot's product is its file: a full stdout fails the command after the figure is written.)
        if cmd in ("boards", "info", "model", "demo", "cache"):
            add(cmd, "stdout full", "stdout is /dev/full", {}, "stdout", stdout_full=True)
            add(cmd, "stdout full", "--json, stdout is /dev/full", {"--json": None}, "stdout", stdout_full=True)
    specific(add)
    return cases
