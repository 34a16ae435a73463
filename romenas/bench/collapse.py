"""Collapse metrics: how far a genotype has drifted towards parameter-free ops.

A collapsed DARTS/GDAS search fills its cells with skip connections, pooling, 'none' or
'noise' and produces shallow cells; these numbers make that visible per cell type.
"""
from __future__ import annotations

from ..genotype import Genotype
from ..registry import FAMILIES, PARAMETER_FREE


def cell_depth(genotype: Genotype, kind: str) -> int:
    """Longest chain of ops from a cell input to the cell's output, counting only what the cell
    computes: a node whose every input is 'none' (or such a node) is zero and adds no depth, and
    a cell whose output does not depend on its input has depth 0. The output is the concatenated
    nodes (DARTS and NAS-Bench-101 families, the latter's 0 being the input itself) or the last
    node (NAS-Bench-201, whose nodes keep every input)."""
    n_in = genotype.num_inputs
    depth: list[int | None] = [0] * n_in  # None: the node is identically zero
    for node in genotype.cells[kind]:
        live = [depth[i] + 1 for op, i in node if op != "none" and depth[i] is not None]
        depth.append(max(live) if live else None)
    family = FAMILIES[genotype.family]
    last_only = family.inputs_per_node is None and family.op_site == "edge"
    outputs = [len(depth) - 1] if last_only else list(genotype.concat[kind])
    return max((depth[i] for i in outputs if depth[i] is not None), default=0)


def _live_ops(genotype: Genotype, kind: str) -> list[str]:
    """The cell's ops that the network computes: all of them, except where ops sit on nodes
    (NAS-Bench-101), whose network prunes the nodes off every input-output path."""
    if FAMILIES[genotype.family].op_site == "edge":
        return genotype.ops(kind)
    spec = genotype.nb101_spec().pruned()
    return list(spec.ops[1:-1]) if spec is not None else []


def collapse_metrics(genotype: Genotype) -> dict[str, int]:
    """Per cell type: parameter-free ops, skips and depth of the computed cell."""
    out = {}
    for kind in genotype.cells:
        ops = _live_ops(genotype, kind)
        out[f"param_free/{kind}"] = sum(op in PARAMETER_FREE for op in ops)
        out[f"skip/{kind}"] = ops.count("skip_connect")
        out[f"depth/{kind}"] = cell_depth(genotype, kind)
    return out
