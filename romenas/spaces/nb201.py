"""The NAS-Bench-201 family: one searched cell type in a fixed ResNet-like skeleton.

Skeleton (C=16, N=5 in the benchmark): stem conv+BN, N cells (C), a stride-2 residual
block, N cells (2C), another residual block, N cells (4C), BN-ReLU, global pooling,
linear classifier. The cell has 4 nodes; node i sums an op on every edge i<-j.
"""
from __future__ import annotations

from typing import Callable, Sequence

from torch import nn

from ..genotype import Genotype
from ..ops import ReLUConvBN
from ..registry import get_family
from .base import GenotypeDAG, Plan, SearchSpace, SuperDAG, group_replicas
from .replicas import convert_batchnorm, replica_batch

NB201_OPS = get_family("nb201").ops  # the family record's list, in the benchmark's order
NUM_NODES = 3


def nb201_space() -> SearchSpace:
    return SearchSpace("nb201", "nb201", NUM_NODES, {"cell": (NB201_OPS,) * 6},
                       "NAS-Bench-201: 1 cell type, 4 nodes, 6 edges (all kept), 5 ops")


class ResidualBlock(nn.Module):
    """NAS-Bench-201's stride-2 basic block between stages."""

    def __init__(self, C_in: int, C_out: int):
        super().__init__()
        self.conv_a = ReLUConvBN(C_in, C_out, 3, 2, 1)
        self.conv_b = ReLUConvBN(C_out, C_out, 3, 1, 1)
        # ceil_mode: an odd side gives ceil(n/2) like the strided conv (xautodl's floor fails there);
        # even sides are unchanged.
        self.downsample = nn.Sequential(nn.AvgPool2d(2, 2, ceil_mode=True), nn.Conv2d(C_in, C_out, 1, bias=False))

    def forward(self, x):
        return self.downsample(x) + self.conv_b(self.conv_a(x))


class NB201Cell(nn.Module):
    def __init__(self, dag: nn.Module):
        super().__init__()
        self.dag = dag
        self.kind = "cell"

    def forward(self, x, *dag_args):
        return self.dag([x], *dag_args)[-1]


class NB201Skeleton(nn.Module):
    def __init__(self, make_cell: Callable[[int], NB201Cell], C: int, N: int, in_channels: int, num_classes: int):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, C, 3, padding=1, bias=False), nn.BatchNorm2d(C))
        layers: list[nn.Module] = []
        widths = [C, 2 * C, 4 * C]
        for stage, width in enumerate(widths):
            if stage:
                layers.append(ResidualBlock(widths[stage - 1], width))
            layers.extend(make_cell(width) for _ in range(N))
        self.cells = nn.ModuleList(layers)
        self.lastact = nn.Sequential(nn.BatchNorm2d(widths[-1]), nn.ReLU(inplace=True))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(widths[-1], num_classes)

    def run(self, x, cell_args: tuple):
        x = self.stem(x)
        for layer in self.cells:
            x = layer(x, *cell_args) if isinstance(layer, NB201Cell) else layer(x)
        return self.classifier(self.pool(self.lastact(x)).flatten(1))


class NB201Supernet(NB201Skeleton):
    """The search network; ``forward(x, plans)`` stacks one subnet's logits per plan."""

    def __init__(self, space: SearchSpace, C: int, layers: int, num_classes: int, in_channels: int):
        def make_cell(width):
            return NB201Cell(SuperDAG(space.site_ops["cell"], 1, space.num_nodes, width, lambda i: 1, pool_bn=False))

        super().__init__(make_cell, C, layers, in_channels, num_classes)
        convert_batchnorm(self)

    def forward(self, x, plans: Sequence[Plan]):
        if len(plans) == 1:
            return self.run(x, (plans[0]["cell"],))
        with replica_batch(x.shape[0]):
            return self.run(x.repeat(len(plans), 1, 1, 1), (group_replicas([p["cell"] for p in plans], x.device),))


class NB201Network(NB201Skeleton):
    """The benchmark's discrete network for one genotype."""

    def __init__(self, genotype: Genotype, C: int, layers: int, num_classes: int, in_channels: int,
                 auxiliary: bool = False, stem: str = "cifar"):
        def make_cell(width):
            return NB201Cell(GenotypeDAG(genotype.cells["cell"], 1, width, lambda i: 1))

        super().__init__(make_cell, C, layers, in_channels, num_classes)

    def forward(self, x):
        return self.run(x, ())
