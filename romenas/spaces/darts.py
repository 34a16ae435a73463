"""The DARTS CNN family: NASNet-style cells (normal + reduction), CIFAR and ImageNet skeletons.

One skeleton serves the supernet and the derived network; only the cell's DAG differs.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn

from ..genotype import Genotype
from ..ops import FactorizedReduce, ReLUConvBN
from .base import GenotypeDAG, Plan, SearchSpace, SuperDAG, group_replicas
from .replicas import convert_batchnorm, replica_batch

DARTS_OPS = ("none", "max_pool_3x3", "avg_pool_3x3", "skip_connect",
             "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5")
NUM_NODES = 4


def darts_space() -> SearchSpace:
    n_edges = sum(2 + j for j in range(NUM_NODES))
    return SearchSpace("darts", "darts", NUM_NODES, {k: (DARTS_OPS,) * n_edges for k in ("normal", "reduce")},
                       "DARTS CNN space: 2 cell types, 4 nodes, 14 edges, 8 ops")


class DartsCell(nn.Module):
    """Preprocess the two inputs, run the DAG, concatenate the chosen nodes."""

    def __init__(self, dag: nn.Module, C_pp: int, C_p: int, C: int, reduction_prev: bool,
                 concat: tuple[int, ...], affine: bool, kind: str):
        super().__init__()
        self.kind = kind
        self.preprocess0 = FactorizedReduce(C_pp, C, affine) if reduction_prev else ReLUConvBN(C_pp, C, 1, 1, 0, 1, affine)
        self.preprocess1 = ReLUConvBN(C_p, C, 1, 1, 0, 1, affine)
        self.dag, self.concat = dag, concat

    @property
    def multiplier(self) -> int:
        return len(self.concat)

    def forward(self, s0, s1, *dag_args):
        states = self.dag([self.preprocess0(s0), self.preprocess1(s1)], *dag_args)
        return torch.cat([states[i] for i in self.concat], dim=1)


class AuxiliaryHead(nn.Module):
    """DARTS' auxiliary classifier; adaptive pooling makes it fit any input size."""

    def __init__(self, C: int, num_classes: int):
        super().__init__()
        self.features = nn.Sequential(
            nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(2),
            nn.Conv2d(C, 128, 1, bias=False), nn.BatchNorm2d(128), nn.ReLU(inplace=True),
            nn.Conv2d(128, 768, 2, bias=False), nn.BatchNorm2d(768), nn.ReLU(inplace=True))
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


MakeCell = Callable[[str, int, int, int, bool], DartsCell]


class DartsSkeleton(nn.Module):
    """Stem, ``layers`` cells with reductions at 1/3 and 2/3 depth, pooling and a classifier."""

    def __init__(self, make_cell: MakeCell, C: int, layers: int, in_channels: int, num_classes: int,
                 stem: str = "cifar", auxiliary: bool = False, stem_multiplier: int = 3):
        super().__init__()
        if stem == "imagenet":
            self.stem = nn.Sequential(
                nn.Conv2d(in_channels, C // 2, 3, 2, 1, bias=False), nn.BatchNorm2d(C // 2), nn.ReLU(inplace=True),
                nn.Conv2d(C // 2, C, 3, 2, 1, bias=False), nn.BatchNorm2d(C))
            self.stem1 = nn.Sequential(nn.ReLU(inplace=False), nn.Conv2d(C, C, 3, 2, 1, bias=False), nn.BatchNorm2d(C))
            C_pp, C_p, C_curr, reduction_prev = C, C, C, True
        else:
            C_stem = stem_multiplier * C
            self.stem = nn.Sequential(nn.Conv2d(in_channels, C_stem, 3, padding=1, bias=False), nn.BatchNorm2d(C_stem))
            self.stem1 = nn.Identity()
            C_pp, C_p, C_curr, reduction_prev = C_stem, C_stem, C, False
        self.cells = nn.ModuleList()
        self.aux_index = 2 * layers // 3
        self.aux_head = None
        for i in range(layers):
            reduction = i in (layers // 3, 2 * layers // 3)
            if reduction:
                C_curr *= 2
            cell = make_cell("reduce" if reduction else "normal", C_pp, C_p, C_curr, reduction_prev)
            self.cells.append(cell)
            reduction_prev = reduction
            C_pp, C_p = C_p, cell.multiplier * C_curr
            if auxiliary and i == self.aux_index:
                self.aux_head = AuxiliaryHead(C_p, num_classes)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(C_p, num_classes)

    def run(self, x, cell_args: dict[str, tuple]):
        s0 = self.stem(x)
        s1 = self.stem1(s0)
        aux = None
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, *cell_args[cell.kind])
            if self.aux_head is not None and self.training and i == self.aux_index:
                aux = self.aux_head(s1)
        logits = self.classifier(self.pool(s1).flatten(1))
        return logits if aux is None else (logits, aux)


def _stride_of(reduction: bool):
    return lambda inp: 2 if reduction and inp < 2 else 1


class DartsSupernet(DartsSkeleton):
    """The search network: every cell of a type shares the type's edge plan.

    ``forward(x, plans)`` evaluates one subnet per plan on the same batch and returns their
    logits stacked (``len(plans) * len(x)`` rows), see :mod:`.replicas`.
    """

    def __init__(self, space: SearchSpace, C: int, layers: int, num_classes: int, in_channels: int):
        concat = tuple(range(2, 2 + space.num_nodes))

        def make_cell(kind, C_pp, C_p, C_cur, reduction_prev):
            dag = SuperDAG(space.site_ops[kind], 2, space.num_nodes, C_cur, _stride_of(kind == "reduce"), pool_bn=True)
            return DartsCell(dag, C_pp, C_p, C_cur, reduction_prev, concat, affine=False, kind=kind)

        super().__init__(make_cell, C, layers, in_channels, num_classes)
        convert_batchnorm(self)

    def forward(self, x, plans: Sequence[Plan]):
        if len(plans) == 1:
            return self.run(x, {k: (edges,) for k, edges in plans[0].items()})
        with replica_batch(x.shape[0]):
            grouped = {k: (group_replicas([p[k] for p in plans], x.device),) for k in plans[0]}
            return self.run(x.repeat(len(plans), 1, 1, 1), grouped)


class DartsNetwork(DartsSkeleton):
    """A derived network; ``drop_path_prob`` is set by the trainer each epoch."""

    def __init__(self, genotype: Genotype, C: int, layers: int, num_classes: int, in_channels: int,
                 auxiliary: bool = False, stem: str = "cifar"):
        def make_cell(kind, C_pp, C_p, C_cur, reduction_prev):
            dag = GenotypeDAG(genotype.cells[kind], 2, C_cur, _stride_of(kind == "reduce"), kind)
            return DartsCell(dag, C_pp, C_p, C_cur, reduction_prev, genotype.concat[kind], affine=True, kind=kind)

        super().__init__(make_cell, C, layers, in_channels, num_classes, stem=stem, auxiliary=auxiliary)
        self.drop_path_prob = 0.0

    def forward(self, x):
        p = (self.drop_path_prob,)
        return self.run(x, {"normal": p, "reduce": p})
