"""Derivation: from architecture parameters to a discrete genotype.

Two rules. The DARTS rule (DARTS, GDAS) keeps, per node, the inputs whose strongest
non-'none' op weighs most. The topology rule (ROME) keeps the inputs chosen by the
topology parameters and takes the most probable op on each: argmax_z p(z).
Spaces that keep every edge (NAS-Bench-201) take the argmax op of each edge, 'none' included.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import torch

from .genotype import Genotype
from .spaces import SearchSpace


def _node_edges(space: SearchSpace) -> list[list[int]]:
    edges = space.edges
    return [[e for e, (n, _) in enumerate(edges) if n == node]
            for node in range(space.num_inputs, space.num_inputs + space.num_nodes)]


def _best_op(ops: Sequence[str], weights: torch.Tensor, allow_none: bool) -> tuple[str, float]:
    ranked = sorted(range(len(ops)), key=lambda o: -float(weights[o]))
    best = next(o for o in ranked if allow_none or ops[o] != "none")
    return ops[best], float(weights[best])


def darts_rule(space: SearchSpace, op_weights: Mapping[str, torch.Tensor]) -> Genotype:
    """Per node the ``inputs_per_node`` strongest inputs (by their best non-'none' op)."""
    edges = space.edges
    keep_all = space.inputs_per_node is None
    cells = {}
    for kind in space.cell_types:
        nodes = []
        for node_edges in _node_edges(space):
            scored = []
            for e in node_edges:
                op, w = _best_op(space.edge_ops[kind][e], op_weights[kind][e], allow_none=keep_all)
                scored.append((w, op, edges[e][1]))
            chosen = scored if keep_all else sorted(scored, key=lambda t: -t[0])[:space.inputs_per_node]
            nodes.append(sorted(((op, inp) for _, op, inp in chosen), key=lambda p: p[1]))
        cells[kind] = nodes
    return Genotype.build(space.family, cells)


def topology_rule(space: SearchSpace, op_weights: Mapping[str, torch.Tensor],
                  kept_edges: Mapping[str, Sequence[Sequence[int]]]) -> Genotype:
    """The given edges per node (chosen by the topology parameters), each with its argmax op. In a
    space whose genotypes list every edge (NAS-Bench-201), the edges not kept are 'none'."""
    edges, every_edge = space.edges, space.inputs_per_node is None
    cells = {}
    for kind in space.cell_types:
        nodes = []
        for node, kept in zip(_node_edges(space), kept_edges[kind]):
            chosen = [e for e in node if e in kept or every_edge]
            nodes.append([(_best_op(space.edge_ops[kind][e], op_weights[kind][e], allow_none=True)[0]
                           if e in kept else "none", edges[e][1]) for e in chosen])
        cells[kind] = nodes
    return Genotype.build(space.family, cells)
