"""Derivation: from architecture parameters to a discrete genotype.

Two rules. The DARTS rule (DARTS, GDAS) keeps, per node, the inputs whose strongest
non-'none' op weighs most. The topology rule (ROME) keeps the inputs chosen by the
topology parameters (each node's most probable input set) and takes the most probable op on each.
Spaces that keep every edge (NAS-Bench-201) take the argmax op of each edge, 'none' included.
Under a budget, the most probable genotype whose cost fits (:func:`most_probable_within`).
"""
from __future__ import annotations

from itertools import product
from typing import Mapping, Sequence

import numpy as np
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
                op, w = _best_op(space.site_ops[kind][e], op_weights[kind][e], allow_none=keep_all)
                scored.append((w, op, edges[e][1]))
            chosen = scored if keep_all else sorted(scored, key=lambda t: -t[0])[:space.inputs_per_node]
            nodes.append(sorted(((op, inp) for _, op, inp in chosen), key=lambda p: p[1]))
        cells[kind] = nodes
    return Genotype.build(space.family, cells)


def topology_rule(space: SearchSpace, op_weights: Mapping[str, torch.Tensor],
                  kept_edges: Mapping[str, Sequence[Sequence[int]]]) -> Genotype:
    """The given edges per node (chosen by the topology parameters), each with its argmax op. In a
    space whose genotypes list every edge (NAS-Bench-201), the edges not kept are 'none'. Where ops
    sit on nodes (NAS-Bench-101), each node's argmax op on its kept inputs, the last node's kept
    inputs being the output's (as NAS-Bench-1Shot1 derives: top-k inputs, argmax op)."""
    if space.op_site == "node":
        return _node_rule(space, op_weights, kept_edges)
    edges, every_edge = space.edges, space.inputs_per_node is None
    cells = {}
    for kind in space.cell_types:
        nodes = []
        for node, kept in zip(_node_edges(space), kept_edges[kind]):
            chosen = [e for e in node if e in kept or every_edge]
            nodes.append([(_best_op(space.site_ops[kind][e], op_weights[kind][e], allow_none=True)[0]
                           if e in kept else "none", edges[e][1]) for e in chosen])
        cells[kind] = nodes
    return Genotype.build(space.family, cells)


def _node_rule(space: SearchSpace, op_weights: Mapping[str, torch.Tensor],
               kept_edges: Mapping[str, Sequence[Sequence[int]]]) -> Genotype:
    edges, cells, concat = space.edges, {}, {}
    for kind in space.cell_types:
        *blocks, output = kept_edges[kind]
        cells[kind] = [[(_best_op(space.site_ops[kind][j], op_weights[kind][j], allow_none=False)[0], edges[e][1])
                        for e in kept] for j, kept in enumerate(blocks)]
        concat[kind] = [edges[e][1] for e in output]
    return Genotype.build(space.family, cells, concat)


#: Cost resolution of the derivation under a budget: partial cells whose costs agree to this
#: share of the target are merged (the most probable kept), which bounds the search's size.
_RESOLUTION = 1e-4


def most_probable_within(space: SearchSpace, op_probs: Mapping[str, torch.Tensor],
                         input_sets: Mapping[str, Sequence[Sequence[tuple[tuple[int, ...], float]]]],
                         table, targets: Mapping[str, float]) -> Genotype | None:
    """The most probable genotype whose table cost fits every target, None where none does.

    Maximises log p(z) = sum over nodes of log p(input set) + sum over kept edges of
    log p(op | edge), subject to ``table``'s cost (romenas/spaces/cost.py) <= each target: a
    multiple-choice knapsack (one option per node, costs additive), solved exactly by dynamic
    programming over the Pareto front of (log p, cost) of the cells' first nodes. ``op_probs``
    [edges, ops] per cell type; ``input_sets`` per cell type and node, the input sets a node may
    keep (edge ids) with their log-probability (0 for every set: the DARTS rule, which ranks
    inputs by their ops alone). 'none' is derivable only where nodes keep every input (an
    absent edge costs nothing). Unbounded, it is the DARTS rule's cell; ROME's rule decides the
    topology before the ops, so its cell can be less probable than this joint mode
    (:meth:`romenas.search.budget.Budget.derive` keeps the algorithm's own cell wherever it fits).
    """
    metrics = list(targets)
    limit = np.array([targets[m] - table.constant[m] for m in metrics])
    allow_none = space.inputs_per_node is None
    groups = []  # (kind, node position, [(log p, cost [M], {edge: op index})])
    for kind in space.cell_types:
        logp = torch.log(op_probs[kind].detach().cpu().double().clamp_min(1e-300))
        prices = np.stack([table.table(m, kind).numpy() for m in metrics], -1)  # [edges, ops, M]
        per_edge = {}
        for e, ops in enumerate(space.site_ops[kind]):
            choices = [(float(logp[e, o]), prices[e, o], o) for o, op in enumerate(ops) if op != "none" or allow_none]
            per_edge[e] = _pareto(choices)
        for j, sets in enumerate(input_sets[kind]):
            options = []
            for members, set_logp in sets:
                for combo in product(*(per_edge[e] for e in members)):
                    cost = sum((c for _, c, _ in combo), np.zeros(len(metrics)))
                    chosen = {e: o for e, (_, _, o) in zip(members, combo)}
                    options.append((set_logp + sum(lp for lp, _, _ in combo), cost, chosen))
            groups.append((kind, j, _pareto(options)))
    least_after = np.zeros((len(groups) + 1, len(metrics)))
    for g in range(len(groups) - 1, -1, -1):
        least_after[g] = least_after[g + 1] + np.min([c for _, c, _ in groups[g][2]], axis=0)
    if np.any(least_after[0] > limit + 1e-9):
        return None
    scores, costs, trail = np.zeros(1), np.zeros((1, len(metrics))), []
    for g, (_, _, options) in enumerate(groups):
        opt_lp = np.array([lp for lp, _, _ in options])
        opt_cost = np.stack([c for _, c, _ in options])
        s = (scores[:, None] + opt_lp[None, :]).ravel()
        c = (costs[:, None, :] + opt_cost[None, :, :]).reshape(-1, len(metrics))
        parent, option = np.divmod(np.arange(s.size), len(options))
        fits = np.all(c + least_after[g + 1] <= limit + 1e-9, axis=1)
        keep = _front(s[fits], c[fits], limit)
        idx = np.flatnonzero(fits)[keep]
        scores, costs = s[idx], c[idx]
        trail.append((parent[idx], option[idx]))
        if not scores.size:  # each target alone can be met, not all of them together
            return None
    best = int(np.argmax(scores))
    picks = []
    for parent, option in reversed(trail):
        picks.append(int(option[best]))
        best = int(parent[best])
    picks.reverse()
    weights = {k: torch.zeros_like(op_probs[k], device="cpu") for k in space.cell_types}
    kept: dict[str, list[list[int]]] = {k: [] for k in space.cell_types}
    for (kind, _, options), pick in zip(groups, picks):
        chosen = options[pick][2]
        for e, o in chosen.items():
            weights[kind][e, o] = 1.0
        kept[kind].append(sorted(chosen))
    return topology_rule(space, weights, kept)


def _pareto(choices: list) -> list:
    """The choices (log p, cost [M], payload) not dominated by a more probable one that costs no
    more on every metric."""
    front: list = []
    for choice in sorted(choices, key=lambda t: -t[0]):
        if not any(np.all(kept[1] <= choice[1]) for kept in front):
            front.append(choice)
    return front


def _front(scores: np.ndarray, costs: np.ndarray, limit: np.ndarray) -> np.ndarray:
    """Indices of the partial cells on the (log p, cost) Pareto front, most probable first; costs
    within ``_RESOLUTION`` of the target count as equal."""
    order = np.argsort(-scores, kind="stable")
    scale = np.where(limit > 0, limit, 1.0) * _RESOLUTION
    cells = np.floor(costs[order] / scale).astype(np.int64)
    _, first = np.unique(cells, axis=0, return_index=True)  # the most probable of each cost cell
    order = order[np.sort(first)]
    if costs.shape[1] == 1:  # one metric: keep what is cheaper than everything more probable
        c = costs[order, 0]
        best_before = np.minimum.accumulate(np.concatenate([[np.inf], c[:-1]]))
        return order[c < best_before]
    kept: list[int] = []
    for i in order:
        if not kept or not np.any(np.all(costs[kept] <= costs[i], axis=1)):
            kept.append(int(i))
    return np.array(kept, dtype=np.int64)
