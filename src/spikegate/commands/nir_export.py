"""``spikegate export-nir --net NET -o MODEL.nir``: a network as a NIR graph (docs/nir.md)."""
from __future__ import annotations

import sys

from .. import datasets
from ..checks import check_output_file
from ._common import add_json_argument, add_net_argument, emit


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "export-nir", help="write a network as a NIR graph",
        description="Write a spikegate network as a NIR graph (dt = 1, integer weights as floats). What NIR "
                    "cannot express (bit widths, leak rounding, subtract reset, refractory period) is kept in "
                    "node metadata, so 'spikegate import' rebuilds the network bit for bit. See docs/nir.md.")
    add_net_argument(p)
    p.add_argument("-o", "--output", metavar="MODEL.nir", required=True, help="NIR file to write")
    add_json_argument(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from .. import nir as nir_io
    check_output_file("-o/--output", args.output)
    net = datasets.load_network(args.net)
    path = args.net if args.net is not None else "built-in digits network"
    print(f"spikegate export-nir: writing {args.output}", file=sys.stderr, flush=True)
    result = nir_io.export_nir(net, args.output)
    for w in result.warnings:
        print(f"spikegate export-nir: warning: {w}", file=sys.stderr)
    out = result.to_json()
    out["net"] = str(path)
    out["shape"] = list(net.shape)
    emit(args, out, lambda _: f"{path} -> {args.output} (NIR {result.nir_version}): {' -> '.join(result.nodes)}")
    return 0
