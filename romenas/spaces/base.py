"""What every search space shares: its description and the two DAG executors.

A cell is a DAG: ``num_inputs`` input states, then ``num_nodes`` intermediate nodes, each
the sum of its incoming edges. Edges are numbered node by node, inputs ascending
(DARTS: 2<-0, 2<-1, 3<-0, ...; NAS-Bench-201: 1<-0, 2<-0, 2<-1, ...).

An *edge plan* tells a supernet what to compute: for every edge, the list of
``(op index, weight)`` pairs to evaluate (an empty list switches the edge off; a weight of
None means exactly 1). DARTS' plan lists every op, GDAS' one op per edge, ROME's one op
on each of the sampled edges only, so unsampled ops and edges are never computed.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Mapping, Optional, Sequence

import torch
from torch import nn

from ..errors import RomenasError
from ..genotype import FAMILIES, Cell, Genotype
from ..ops import build_op

EdgePlan = Sequence[Sequence[tuple[int, Optional[torch.Tensor]]]]
Plan = Mapping[str, EdgePlan]


def cell_edges(num_inputs: int, num_nodes: int) -> list[tuple[int, int]]:
    """(node, input) of every candidate edge, in the canonical order."""
    return [(num_inputs + j, i) for j in range(num_nodes) for i in range(num_inputs + j)]


@dataclass(frozen=True)
class SearchSpace:
    """A cell space: which ops each edge may take, per cell type, and its network family."""

    name: str
    family: str
    num_nodes: int
    edge_ops: Mapping[str, tuple[tuple[str, ...], ...]]
    description: str = ""

    @property
    def num_inputs(self) -> int:
        return FAMILIES[self.family][0]

    @property
    def cell_types(self) -> tuple[str, ...]:
        return FAMILIES[self.family][1]

    @property
    def inputs_per_node(self) -> int | None:
        """How many inputs a derived node keeps (None: all of them, as in NAS-Bench-201)."""
        return FAMILIES[self.family][2]

    @property
    def edges(self) -> list[tuple[int, int]]:
        return cell_edges(self.num_inputs, self.num_nodes)

    @property
    def ops(self) -> list[str]:
        """Every op that appears somewhere in the space."""
        return sorted({op for cell in self.edge_ops.values() for edge in cell for op in edge})

    def without_op(self, op: str) -> "SearchSpace":
        """The space with ``op`` removed from every edge (ROME drops 'none': edges are chosen by beta)."""
        edge_ops = {k: tuple(tuple(o for o in e if o != op) for e in v) for k, v in self.edge_ops.items()}
        if any(not e for v in edge_ops.values() for e in v):
            raise RomenasError(f"removing {op!r} leaves an edge of space {self.name} without ops")
        return replace(self, edge_ops=edge_ops)

    def build_supernet(self, C: int, layers: int, num_classes: int, in_channels: int) -> nn.Module:
        from . import FAMILY_BUILDERS
        return FAMILY_BUILDERS[self.family].supernet(self, C, layers, num_classes, in_channels)

    def build_network(self, genotype: Genotype, C: int, layers: int, num_classes: int, in_channels: int,
                      auxiliary: bool = False, stem: str = "cifar") -> nn.Module:
        from . import FAMILY_BUILDERS
        return FAMILY_BUILDERS[self.family].network(genotype, C, layers, num_classes, in_channels,
                                                    auxiliary=auxiliary, stem=stem)


class MixedEdge(nn.ModuleList):
    """All candidate ops of one edge (pooling followed by a parameter-free BN, as DARTS searches)."""

    def __init__(self, op_names: Sequence[str], C: int, stride: int, pool_bn: bool):
        ops = []
        for name in op_names:
            op = build_op(name, C, stride, affine=False)
            if pool_bn and "pool" in name:
                op = nn.Sequential(op, nn.BatchNorm2d(C, affine=False))
            ops.append(op)
        super().__init__(ops)
        self.op_names = tuple(op_names)


class SuperDAG(nn.Module):
    """The supernet's DAG: computes exactly the ops the edge plans name.

    ``forward`` takes one edge plan per replica: the states stack ``len(plans)`` replicas of
    the batch, and the replicas that take the same op on an edge run it together.
    """

    def __init__(self, edge_ops: Sequence[Sequence[str]], num_inputs: int, num_nodes: int, C: int,
                 stride_of: Callable[[int], int], pool_bn: bool):
        super().__init__()
        self.num_inputs, self.num_nodes = num_inputs, num_nodes
        self.inputs = [i for _, i in cell_edges(num_inputs, num_nodes)]
        self.edges = nn.ModuleList(MixedEdge(ops, C, stride_of(i), pool_bn)
                                   for ops, i in zip(edge_ops, self.inputs))

    def forward(self, states: list[torch.Tensor], plans: Sequence[EdgePlan]) -> list[torch.Tensor]:
        replicas, e = len(plans), 0
        for j in range(self.num_nodes):
            node = None
            for inp in range(self.num_inputs + j):
                for op_index, members in _group_by_op(plans, e):
                    out = _run_on_replicas(self.edges[e][op_index], states[inp], members, replicas)
                    node = out if node is None else node + out
                e += 1
            if node is None:
                raise RuntimeError(f"edge plan leaves node {self.num_inputs + j} without inputs")
            states.append(node)
        return states


def _group_by_op(plans: Sequence[EdgePlan], e: int) -> list[tuple[int, list[tuple[int, Optional[torch.Tensor]]]]]:
    """The ops edge ``e`` runs, each with its (replica, weight) members, in first-use order."""
    groups: dict[int, list] = {}
    for k, plan in enumerate(plans):
        for op_index, weight in plan[e]:
            groups.setdefault(op_index, []).append((k, weight))
    return list(groups.items())


def _run_on_replicas(op: nn.Module, x: torch.Tensor, members, replicas: int) -> torch.Tensor:
    """``op`` on the member replicas of ``x``, weighted, as a full-size term (zeros elsewhere)."""
    ks, weights = zip(*members)
    everyone = len(ks) == replicas  # always so for a single subnet: no gather, no scatter
    if everyone:
        out = op(x)
    else:
        index = torch.tensor(ks, device=x.device)
        out = op(x.view(replicas, -1, *x.shape[1:]).index_select(0, index).flatten(0, 1))
    out = out.view(len(ks), -1, *out.shape[1:])
    if any(w is not None for w in weights):
        w = torch.stack([torch.ones((), device=out.device) if w is None else w for w in weights])
        out = out * w.view(-1, *([1] * (out.dim() - 1)))
    if not everyone:
        out = out.new_zeros((replicas, *out.shape[1:])).index_add(0, index, out)
    return out.flatten(0, 1)


def drop_path(x: torch.Tensor, p: float) -> torch.Tensor:
    """Zero whole samples with probability p and rescale the rest (DARTS' drop-path)."""
    if p <= 0.0:
        return x
    keep = torch.empty(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype).bernoulli_(1.0 - p)
    return x / (1.0 - p) * keep


class GenotypeDAG(nn.Module):
    """A derived (discrete) cell's DAG: the genotype's ops, nothing else."""

    def __init__(self, cell: Cell, num_inputs: int, C: int, stride_of: Callable[[int], int]):
        super().__init__()
        self.num_inputs = num_inputs
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
