"""What every search space shares: its description and the two DAG executors.

A cell is a DAG: ``num_inputs`` input states, then ``num_nodes`` intermediate nodes, each
the sum of its incoming edges. Edges are numbered node by node, inputs ascending
(DARTS: 2<-0, 2<-1, 3<-0, ...; NAS-Bench-201: 1<-0, 2<-0, 2<-1, ...).

An *edge plan* tells a supernet what to compute: for every edge, the list of
``(op index, weight)`` pairs to evaluate (an empty list switches the edge off; a weight of
None means exactly 1). DARTS' plan lists every op, GDAS' one op per edge, ROME's one op
on each of the sampled edges only, so unsampled ops and edges are never computed. An op
index of None adds the weight itself to the node (no op runs): GDAS' estimator adds the
straight-through weight of every unselected op this way, so those ops get a gradient.

Where ops sit on nodes (NAS-Bench-101 cells), a :class:`NodePlan` says the same per node
(its op terms, applied to the sum of its inputs) and per edge (on or off, and its weight).
Algorithms never build either form themselves: they give their op terms per op site and
their edge weights to :meth:`SearchSpace.compose`, which builds the family's plan.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Mapping, Optional, Sequence

import torch
from torch import nn

from ..errors import RomenasError
from ..genotype import Cell
from ..ops import Zero, build_op
from ..registry import CellFamily, get_family

OpTerms = Sequence[tuple[Optional[int], Optional[torch.Tensor]]]
EdgePlan = Sequence[OpTerms]


@dataclass(frozen=True)
class NodePlan:
    """One subnet of a cell whose ops sit on nodes: per node its op terms (as an edge plan's), per
    edge whether it is on and its weight (None: exactly 1)."""

    ops: Sequence[OpTerms]
    edges: Sequence[tuple[bool, Optional[torch.Tensor]]]


Plan = Mapping[str, "EdgePlan | NodePlan"]


def cell_edges(num_inputs: int, num_nodes: int) -> list[tuple[int, int]]:
    """(node, input) of every candidate edge, in the canonical order."""
    return [(num_inputs + j, i) for j in range(num_nodes) for i in range(num_inputs + j)]


@dataclass(frozen=True)
class SearchSpace:
    """A cell space: which ops each op site may take, per cell type, and its network family.

    ``site_ops``: per cell type, one op tuple per op site: per edge (canonical order) where the
    family's ops sit on edges, per intermediate node where they sit on nodes. ``num_nodes``
    counts the nodes that choose inputs (for node-site families: the intermediate nodes and the
    output). ``keep``: the inputs each of those nodes keeps, where the space sets it per node
    (NAS-Bench-1Shot1); else the family's ``inputs_per_node``. ``extra_ops``: ops ``--ops`` may
    add to every site (not offered by default)."""

    name: str
    family: str
    num_nodes: int
    site_ops: Mapping[str, tuple[tuple[str, ...], ...]]
    description: str = ""
    keep: Optional[tuple[int, ...]] = None
    extra_ops: tuple[str, ...] = ()

    @property
    def cell_family(self) -> CellFamily:
        return get_family(self.family)

    @property
    def num_inputs(self) -> int:
        return self.cell_family.num_inputs

    @property
    def cell_types(self) -> tuple[str, ...]:
        return self.cell_family.cell_types

    @property
    def inputs_per_node(self) -> int | tuple[int, ...] | None:
        """How many inputs a derived node keeps: one count, one per node (``keep``), or None: all of
        them, as in NAS-Bench-201."""
        return self.keep if self.keep is not None else self.cell_family.inputs_per_node

    @property
    def op_site(self) -> str:
        """'edge' or 'node': where the family's ops sit (romenas/registry.py)."""
        return self.cell_family.op_site

    def site_name(self, kind: str, site: int) -> str:
        """How messages name an op site: 'edge 3 of the normal cell', 'node 2 of the cell'."""
        return f"{self.op_site} {site + (self.num_inputs if self.op_site == 'node' else 0)} of the {kind} cell"

    @property
    def edges(self) -> list[tuple[int, int]]:
        return cell_edges(self.num_inputs, self.num_nodes)

    @property
    def ops(self) -> list[str]:
        """Every op that appears somewhere in the space."""
        return sorted({op for cell in self.site_ops.values() for site in cell for op in site})

    def without_op(self, op: str) -> "SearchSpace":
        """The space with ``op`` removed from every edge (ROME drops 'none': edges are chosen by beta)."""
        return self.restricted([o for o in self.ops if o != op])

    def restricted(self, ops: Sequence[str]) -> "SearchSpace":
        """The space with only ``ops`` left on every op site (``--ops``); each site must keep one.
        An op the space does not offer is refused, except its ``extra_ops`` (skip_connect in the
        NAS-Bench-1Shot1 spaces, which ROME's paper adds): those join every site."""
        extra = [o for o in self.extra_ops if o in ops and o not in self.ops]
        unknown = sorted(set(ops) - set(self.ops) - set(extra))
        if unknown:
            offered = self.ops + [o for o in self.extra_ops if o not in self.ops]
            raise RomenasError(f"op(s) {unknown} are not in space {self.name}; its ops are {offered}")
        keep = set(ops)
        site_ops = {k: tuple(tuple(o for o in site if o in keep) + tuple(o for o in extra if o not in site)
                             for site in v) for k, v in self.site_ops.items()}
        only_none = [(k, e) for k, v in site_ops.items() for e, ops_left in enumerate(v) if ops_left == ("none",)]
        if only_none:
            kind, e = only_none[0]
            raise RomenasError(f"the op set {sorted(keep)} leaves {self.site_name(kind, e)} of space {self.name} "
                               "with only 'none': no cell can be derived from absent edges; add a real op to --ops")
        empty = [(k, e) for k, v in site_ops.items() for e, ops_left in enumerate(v) if not ops_left]
        if empty:
            kind, e = empty[0]
            raise RomenasError(f"the op set {sorted(keep)} leaves {self.site_name(kind, e)} of space {self.name} "
                               f"without ops (it offers {list(self.site_ops[kind][e])}); add one of them to --ops")
        counts = {len(ops_left) for v in site_ops.values() for ops_left in v}
        if len(counts) > 1:
            raise RomenasError(f"the op set {sorted(keep)} leaves op sites of space {self.name} with different op "
                               f"counts {sorted(counts)}; architecture parameters need the same count on every site")
        return replace(self, site_ops=site_ops)

    def compose(self, ops: Sequence[OpTerms], on: Sequence[bool] | None,
                weights: torch.Tensor | None) -> "EdgePlan | NodePlan":
        """One cell type's plan from an algorithm's op terms per op site and its edges: ``on``
        [edges] (None: every edge) and ``weights`` [edges] (None: 1), each edge weight multiplying
        the op terms of its edge (edge sites) or the edge's input to its node (node sites)."""
        num_edges = len(self.edges)
        on = [True] * num_edges if on is None else list(on)
        if self.op_site == "node":
            return NodePlan(list(ops), [(on[e], None if weights is None else weights[e]) for e in range(num_edges)])
        plan = []
        for e, terms in enumerate(ops):
            if not on[e]:
                plan.append(())
            elif weights is None:
                plan.append(tuple(terms))
            else:
                plan.append(tuple((o, w if o is None else (weights[e] if w is None else w * weights[e]))
                                  for o, w in terms))
        return plan

    def build_supernet(self, C: int, layers: int, num_classes: int, in_channels: int) -> nn.Module:
        self.cell_family.check_size(C, layers)
        return self.cell_family.build_supernet(self, C, layers, num_classes, in_channels)


class MixedEdge(nn.ModuleList):
    """All candidate ops of one op site (pooling followed by a parameter-free BN, as DARTS searches;
    BN without affine parameters unless ``affine``, as NAS-Bench-1Shot1's supernet has them)."""

    def __init__(self, op_names: Sequence[str], C: int, stride: int, pool_bn: bool, affine: bool = False):
        ops = []
        for name in op_names:
            op = build_op(name, C, stride, affine=affine)
            if pool_bn and "pool" in name:
                op = nn.Sequential(op, nn.BatchNorm2d(C, affine=False))
            ops.append(op)
        super().__init__(ops)
        self.op_names = tuple(op_names)


@dataclass(frozen=True)
class EdgeGroup:
    """One op of an edge and the replicas that take it (``index`` None: all of them), with their weights.

    ``op`` None: no op runs, the weights are added to the node as constants."""

    op: Optional[int]
    index: Optional[torch.Tensor]
    weights: Optional[torch.Tensor]


@dataclass(frozen=True)
class ReplicaPlan:
    """K edge plans grouped once per forward: for every edge, the ops it runs and for which replicas."""

    replicas: int
    edges: list[list[EdgeGroup]]


def group_replicas(plans: Sequence[EdgePlan], device: torch.device) -> ReplicaPlan:
    """Group K replicas' edge plans by op, edge by edge (ops in first-use order)."""
    replicas, edges = len(plans), []
    for e in range(len(plans[0])):
        members: dict[int, list] = {}
        for k, plan in enumerate(plans):
            for op_index, weight in plan[e]:
                members.setdefault(op_index, []).append((k, weight))
        groups = []
        for op_index, taken in members.items():
            ks, weights = zip(*taken)
            index = None if len(ks) == replicas else torch.tensor(ks, device=device)
            if all(w is None for w in weights):
                stacked = None
            else:
                stacked = torch.stack([torch.ones((), device=device) if w is None else w for w in weights])
            groups.append(EdgeGroup(op_index, index, stacked))
        edges.append(groups)
    return ReplicaPlan(replicas, edges)


class SuperDAG(nn.Module):
    """The supernet's DAG: computes exactly the ops the edge plan names.

    ``forward(states, plan)`` runs one subnet (an :data:`EdgePlan`). Given a :class:`ReplicaPlan`
    (``--subnet-execution batched``), the states stack one replica of the batch per subnet and
    the replicas that take the same op on an edge run it together.
    """

    def __init__(self, edge_ops: Sequence[Sequence[str]], num_inputs: int, num_nodes: int, C: int,
                 stride_of: Callable[[int], int], pool_bn: bool):
        super().__init__()
        self.num_inputs, self.num_nodes = num_inputs, num_nodes
        self.inputs = [i for _, i in cell_edges(num_inputs, num_nodes)]
        self.edges = nn.ModuleList(MixedEdge(ops, C, stride_of(i), pool_bn)
                                   for ops, i in zip(edge_ops, self.inputs))

    def forward(self, states: list[torch.Tensor], plan: "EdgePlan | ReplicaPlan") -> list[torch.Tensor]:
        if isinstance(plan, ReplicaPlan):
            return self._forward_replicas(states, plan)
        e = 0
        for j in range(self.num_nodes):
            node, constants = None, []
            for inp in range(self.num_inputs + j):
                edge, choices = self.edges[e], plan[e]
                real_op_runs = any(o is not None and not isinstance(edge[o], Zero) for o, _ in choices)
                for o, weight in choices:
                    if o is None:
                        constants.append(weight)
                    elif not (isinstance(edge[o], Zero) and real_op_runs):  # see _runs_for_all
                        out = edge[o](states[inp])
                        out = out if weight is None else out * weight
                        node = out if node is None else node + out
                e += 1
            if node is None:
                raise RuntimeError(f"edge plan leaves node {self.num_inputs + j} without inputs")
            for weight in constants:
                node = node + weight
            states.append(node)
        return states

    def _forward_replicas(self, states: list[torch.Tensor], plan: ReplicaPlan) -> list[torch.Tensor]:
        e = 0
        for j in range(self.num_nodes):
            node, constants = None, []
            for inp in range(self.num_inputs + j):
                edge, groups = self.edges[e], plan.edges[e]
                for group in groups:
                    if group.op is None:
                        constants.append(group)
                    elif not (isinstance(edge[group.op], Zero) and _runs_for_all(edge, groups)):
                        out = _run_group(edge[group.op], states[inp], group, plan.replicas)
                        node = out if node is None else node + out
                e += 1
            if node is None:
                raise RuntimeError(f"edge plan leaves node {self.num_inputs + j} without inputs")
            for group in constants:
                node = _add_constant(node, group, plan.replicas)
            states.append(node)
        return states


def _runs_for_all(edge: MixedEdge, groups: Sequence[EdgeGroup]) -> bool:
    """Whether a real (non-'none') op of the edge runs for every replica.

    Then the edge's 'none' term (weight x 0) can be skipped: it adds nothing, gives its
    weight no gradient and leaves the graph connected, so every parameter gets the same
    gradient as with it; DARTS' mixed edges save one activation each this way."""
    return any(g.op is not None and g.index is None and not isinstance(edge[g.op], Zero) for g in groups)


def _run_group(op: nn.Module, x: torch.Tensor, group: EdgeGroup, replicas: int) -> torch.Tensor:
    """``op`` on the group's replicas of ``x``, weighted, as a full-size term (zeros elsewhere)."""
    if group.index is None:  # every replica takes this op (always so for a single subnet)
        out = op(x)
        out = out.view(replicas, -1, *out.shape[1:])
    else:
        out = op(x.view(replicas, -1, *x.shape[1:]).index_select(0, group.index).flatten(0, 1))
        out = out.view(len(group.index), -1, *out.shape[1:])
    if group.weights is not None:
        out = out * group.weights.view(-1, *([1] * (out.dim() - 1)))
    if group.index is not None:
        out = out.new_zeros((replicas, *out.shape[1:])).index_add(0, group.index, out)
    return out.flatten(0, 1)


def _add_constant(node: torch.Tensor, group: EdgeGroup, replicas: int) -> torch.Tensor:
    """``node`` plus the group's weight of each replica, broadcast (an op-less plan entry)."""
    weights = group.weights
    if group.index is not None:
        weights = weights.new_zeros(replicas).index_add(0, group.index, weights)
    shaped = node.view(replicas, -1, *node.shape[1:])
    return (shaped + weights.view(-1, *([1] * (shaped.dim() - 1)))).flatten(0, 1)


def drop_path(x: torch.Tensor, p: float) -> torch.Tensor:
    """Zero whole samples with probability p and rescale the rest (DARTS' drop-path)."""
    if p <= 0.0:
        return x
    keep = torch.empty(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype).bernoulli_(1.0 - p)
    return x / (1.0 - p) * keep


class GenotypeDAG(nn.Module):
    """A derived (discrete) cell's DAG: the genotype's ops, nothing else.

    It remembers its cell type, width and the stride of every state's outgoing edges, so cost
    tables (:mod:`.cost`) can price any op at any of its edges."""

    def __init__(self, cell: Cell, num_inputs: int, C: int, stride_of: Callable[[int], int], kind: str = "cell"):
        super().__init__()
        self.num_inputs, self.kind, self.C = num_inputs, kind, C
        self.strides = tuple(stride_of(i) for i in range(num_inputs + len(cell)))
        self.nodes = [[inp for _, inp in node] for node in cell]
        self.ops = nn.ModuleList(nn.ModuleList(build_op(op, C, stride_of(inp), affine=True) for op, inp in node)
                                 for node in cell)

    def forward(self, states: list[torch.Tensor], drop_prob: float = 0.0) -> list[torch.Tensor]:
        for inputs, ops in zip(self.nodes, self.ops):
            terms = []
            for inp, op in zip(inputs, ops):
                out = op(states[inp])
                if self.training and drop_prob > 0 and not isinstance(op, nn.Identity):
                    out = drop_path(out, drop_prob)
                terms.append(out)
            states.append(sum(terms[1:], terms[0]))
        return states
