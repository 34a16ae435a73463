"""Collapse metrics: how far a genotype has drifted towards parameter-free ops.

A collapsed DARTS/GDAS search fills its cells with skip connections, pooling, 'none' or
'noise' and produces shallow cells; these numbers make that visible per cell type.
"""
from __future__ import annotations

from ..genotype import Genotype
from ..registry import PARAMETER_FREE


def cell_depth(genotype: Genotype, kind: str) -> int:
    """Longest chain of (non-'none') ops from a cell input to an intermediate node."""
    depth = [0] * genotype.num_inputs
    for node in genotype.cells[kind]:
        reachable = [depth[i] + 1 for op, i in node if op != "none"]
        depth.append(max(reachable, default=0))
    return max(depth[genotype.num_inputs:])


def collapse_metrics(genotype: Genotype) -> dict[str, int]:
    out = {}
    for kind in genotype.cells:
        ops = genotype.ops(kind)
        out[f"param_free/{kind}"] = sum(op in PARAMETER_FREE for op in ops)
        out[f"skip/{kind}"] = ops.count("skip_connect")
        out[f"depth/{kind}"] = cell_depth(genotype, kind)
    return out
