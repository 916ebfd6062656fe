"""Reading NIR files: the ``nir`` package (imported lazily), version checks and spikegate metadata."""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

from ..errors import UserError

__all__ = ["META_KEY", "META_FORMAT", "META_VERSION", "MIN_V_RESET_VERSION", "read_graph", "check_v_reset",
           "is_spikegate_export", "V_RESET_ASSUMPTIONS"]

META_KEY = "spikegate"
META_FORMAT = "spikegate-nir"
META_VERSION = 1
# NIR added v_reset to IF/LIF/CubaLIF in 1.0.6; before that, tools disagreed on what a spike
# resets the membrane to, so such a graph imports only under an assumption the user can choose.
MIN_V_RESET_VERSION = (1, 0, 6)


def nir_package():
    """The ``nir`` package; imported on first use so that importing spikegate stays cheap."""
    try:
        import nir
    except ImportError as e:  # pragma: no cover - nir is a dependency of spikegate
        raise UserError(f"the 'nir' package is needed for NIR import/export ({e}); pip install nir") from None
    return nir


def _version_tuple(text: str | None) -> tuple[int, ...] | None:
    if not text:
        return None
    m = re.match(r"^\s*(\d+)(?:\.(\d+))?(?:\.(\d+))?", str(text))
    if not m:
        return None
    return tuple(int(g or 0) for g in m.groups())


def read_graph(path: str | os.PathLike):
    """Read a NIR file; returns ``(graph, version, missing_v_reset)``.

    ``missing_v_reset`` lists the spiking nodes stored without a ``v_reset`` (``nir.read`` silently
    fills in zeros for them, so it has to be looked up in the HDF5 file itself).
    """
    nir = nir_package()
    import h5py
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"NIR file {str(path)!r} does not exist")
    if path.is_dir():
        raise UserError(f"NIR file {str(path)!r} is a directory")
    try:
        with h5py.File(path, "r") as f:
            version = f["version"][()] if "version" in f else None
            if isinstance(version, bytes):
                version = version.decode("utf-8", "replace")
            if "node" not in f:
                raise UserError(f"{path} is an HDF5 file but not a NIR graph (no 'node' group)")
            missing = []

            def walk(group, prefix):
                if "nodes" not in group:
                    return
                for name, node in group["nodes"].items():
                    typ = node["type"][()] if "type" in node else b""
                    typ = typ.decode() if isinstance(typ, bytes) else str(typ)
                    if typ in ("LIF", "IF", "CubaLIF") and "v_reset" not in node:
                        missing.append(prefix + name)
                    if typ == "NIRGraph":
                        walk(node, prefix + name + ".")

            walk(f["node"], "")
    except OSError as e:
        raise UserError(f"{path} is not a NIR file (cannot read it as HDF5: {e})") from None
    try:
        graph = nir.read(str(path))
    except Exception as e:  # nir raises assorted errors (KeyError, AssertionError, ...) on bad files
        raise UserError(f"{path}: nir could not read the graph ({type(e).__name__}: {e})") from None
    return graph, (str(version) if version is not None else None), missing


V_RESET_ASSUMPTIONS = ("zero", "subtract")


def check_v_reset(version: str | None, missing_v_reset, assume: str = "zero") -> dict | None:
    """What a spike does in spiking nodes stored without v_reset by NIR before 1.0.6, when tools
    disagreed on it: ``assume`` (the user's choice) is applied to those nodes, and returned as the
    import's report ``{"assumed": assume, "nodes": [...], "nir_version": version}``. The default,
    ``"zero"``, is what ``nir.read`` itself fills in. None when there is nothing to assume (no such
    node, or a newer file, where a missing v_reset is NIR's optional default 0)."""
    if assume not in V_RESET_ASSUMPTIONS:
        raise ValueError(f"v_reset assumption = {assume!r} is not valid; valid: {', '.join(V_RESET_ASSUMPTIONS)} "
                         "(option --v-reset)")
    v = _version_tuple(version)
    if not missing_v_reset or (v is not None and v >= MIN_V_RESET_VERSION):
        return None
    return {"assumed": assume, "nodes": list(missing_v_reset), "nir_version": version}


def is_spikegate_export(graph) -> bool:
    """True when the graph carries spikegate metadata (it then imports exactly, without options)."""
    return META_KEY in (getattr(graph, "metadata", None) or {})


def meta_json(where: str, meta: dict) -> dict | None:
    """A node's or graph's ``metadata["spikegate"]`` parsed from JSON; None when absent."""
    raw = (meta or {}).get(META_KEY)
    if raw is None:
        return None
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    try:
        d = json.loads(raw) if isinstance(raw, str) else None
    except json.JSONDecodeError as e:
        raise UserError(f"{where}: metadata[{META_KEY!r}] is not valid JSON ({e})") from None
    if not isinstance(d, dict):
        raise UserError(f"{where}: metadata[{META_KEY!r}] must be a JSON object")
    return d
