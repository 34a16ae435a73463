"""NAS-Bench-101 networks: the benchmark's network of one cell spec, and the NAS-Bench-1Shot1 supernet.

Ops sit on vertices in these cells, not on edges as in the DARTS and NAS-Bench-201 cells
(specs, pruning and hash: romenas/nb101_spec.py).

- :class:`NB101Network`: the benchmark's network (stem conv 3x3 to 128 channels, 3 stacks of 3
  cells, 2x2 max-pool and twice the channels between stacks, global pooling, a linear layer),
  whose vertex channel split and projections give the benchmark's parameter counts exactly
  (tests: 2,694,282 for the spec in the benchmark's README); :class:`NB101GenotypeNetwork`
  builds it from a genotype of the ``nb101`` family;
- NAS-Bench-1Shot1's search spaces 1-3 (Zela et al., ICLR 2020; its code's
  ``search_space_{1,2,3}.py`` and ``model_search.py``): :func:`oneshot1_space` and
  :class:`OneShot1Supernet`, whose choice blocks keep the space's number of inputs per node.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..errors import RomenasError
from ..genotype import Genotype
from ..nb101_spec import NB101Spec, vertex_channels
from ..ops import ReLUConvBN, build_op, conv_bn_relu as _conv_bn_relu
from .base import MixedEdge, NodePlan, Plan, SearchSpace

__all__ = ["NB101Network", "NB101GenotypeNetwork", "OneShot1Supernet", "oneshot1_space", "ONESHOT1_KEEP",
           "ONESHOT1_OPS"]

#: Batch norm as the benchmark trains it (TF decay 0.997, i.e. PyTorch momentum 0.003; eps 1e-5).
_BN = dict(momentum=0.003, eps=1e-5)


def _benchmark_conv_bn_relu(C_in: int, C_out: int, kernel: int) -> nn.Sequential:
    return _conv_bn_relu(C_in, C_out, kernel, **_BN)


def _vertex_op(name: str, C: int) -> nn.Module:
    """A vertex's op at the benchmark's batch norm (skip_connect: ROME's added op, the identity)."""
    if name in ("conv3x3-bn-relu", "conv1x1-bn-relu"):
        return _benchmark_conv_bn_relu(C, C, 3 if name == "conv3x3-bn-relu" else 1)
    return build_op(name, C, 1, affine=True)


class NB101Cell(nn.Module):
    """One cell of a (pruned) spec, as ``model_builder.build_module`` computes it: a vertex sums its
    interior predecessors (cut to its channels) and a 1x1 projection of the input where 0 -> v;
    the output concatenates the vertices feeding it, plus a projection of the input where 0 -> out."""

    def __init__(self, spec: NB101Spec, C_in: int, C_out: int):
        super().__init__()
        m, n = spec.matrix, spec.num_vertices
        self.matrix, self.channels = m, vertex_channels(C_in, C_out, m)
        self.projections = nn.ModuleDict({str(v): _benchmark_conv_bn_relu(C_in, self.channels[v], 1)
                                          for v in range(1, n) if m[0][v]})
        self.ops = nn.ModuleList(_vertex_op(op, c) for op, c in zip(spec.ops[1:-1], self.channels[1:-1]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m, n = self.matrix, len(self.matrix)
        states = [x]
        for v in range(1, n - 1):
            terms = [states[w][:, : self.channels[v]] for w in range(1, v) if m[w][v]]
            if m[0][v]:
                terms.append(self.projections[str(v)](x))
            states.append(self.ops[v - 1](sum(terms[1:], terms[0])))
        feeding = [states[v] for v in range(1, n - 1) if m[v][n - 1]]
        out = torch.cat(feeding, 1) if feeding else None
        if m[0][n - 1]:
            projected = self.projections[str(n - 1)](x)
            out = projected if out is None else out + projected
        return out


class NB101Network(nn.Module):
    """The benchmark's network of one spec: stem conv_bn_relu 3x3 to ``stem_channels``, ``stacks``
    stacks of ``cells`` cells, a 2x2 stride-2 max-pool and twice the channels before each later
    stack, global average pooling and a linear classifier (NAS-Bench-101: 128, 3, 3)."""

    def __init__(self, spec: NB101Spec, num_classes: int, in_channels: int = 3, stem_channels: int = 128,
                 stacks: int = 3, cells: int = 3):
        super().__init__()
        spec = spec.pruned()
        if spec is None:
            raise RomenasError("the NAS-Bench-101 cell does not connect its input to its output")
        self.spec = spec
        self.stem = _benchmark_conv_bn_relu(in_channels, stem_channels, 3)
        layers, C_in, C = [], stem_channels, stem_channels
        for stack in range(stacks):
            if stack > 0:
                layers.append(nn.MaxPool2d(2, 2, ceil_mode=True))  # TF 'same': odd sides round up
                C *= 2
            for _ in range(cells):
                layers.append(NB101Cell(spec, C_in, C))
                C_in = C
        self.cells = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(C_in, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.cells(self.stem(x))).flatten(1))


class NB101GenotypeNetwork(NB101Network):
    """The benchmark's network of an ``nb101``-family genotype: C stem channels, ``layers`` cells per
    stack (NAS-Bench-101: 128 and 3). The benchmark's network has no auxiliary head and one stem;
    ``auxiliary`` and ``stem`` are accepted as every family's builder takes them, and unused."""

    def __init__(self, genotype: Genotype, C: int, layers: int, num_classes: int, in_channels: int,
                 auxiliary: bool = False, stem: str = "cifar"):
        spec = genotype.nb101_spec()
        super().__init__(spec, num_classes, in_channels, stem_channels=C, cells=layers)
        self.genotype = genotype


# ---- NAS-Bench-1Shot1 (Zela et al., ICLR 2020): the three search spaces and their supernet ----------
#: Inputs each choice block keeps, then the output's (nasbench-1shot1 ``search_space_{1,2,3}.py``:
#: ``num_parents_per_node``); a block may take the input and any earlier block.
ONESHOT1_KEEP = {"1shot1-s1": (1, 2, 2, 2, 2), "1shot1-s2": (1, 1, 2, 2, 3), "1shot1-s3": (1, 1, 1, 2, 2, 2)}
#: The choice blocks' ops in 1Shot1's PRIMITIVES order (its alpha columns).
ONESHOT1_OPS = ("maxpool3x3", "conv3x3-bn-relu", "conv1x1-bn-relu")


def oneshot1_space(name: str) -> SearchSpace:
    """NAS-Bench-1Shot1 search space 1, 2 or 3: 4, 4 or 5 choice blocks of ONESHOT1_OPS, each keeping
    its space's number of inputs; ``--ops`` may add skip_connect, as ROME's paper does."""
    keep = ONESHOT1_KEEP[name]
    blocks = len(keep) - 1
    return SearchSpace(name, "nb101", blocks + 1, {"cell": (ONESHOT1_OPS,) * blocks},
                       f"NAS-Bench-1Shot1 search space {name[-1]}: {blocks} choice blocks (ops on nodes), inputs "
                       f"kept per block {list(keep[:-1])}, output {keep[-1]}", keep=keep, extra_ops=("skip_connect",))


class OneShot1Cell(nn.Module):
    """1Shot1's one-shot cell (``optimizers/darts/model_search.py``): choice block j sums its weighted
    inputs (a 1x1 projection of the cell input, earlier blocks) and applies its mixed op; the output
    concatenates the weighted blocks (C each) and adds the weighted projection of the input."""

    def __init__(self, space: SearchSpace, C_in: int, C: int, pool: bool):
        super().__init__()
        ops = space.site_ops["cell"]
        self.blocks = len(ops)
        self.pool = nn.MaxPool2d(2, 2, padding=1) if pool else nn.Identity()
        self.projections = nn.ModuleList(_conv_bn_relu(C_in, C, 1) for _ in ops)
        self.out_projection = _conv_bn_relu(C_in, C * self.blocks, 1)
        self.ops = nn.ModuleList(MixedEdge(site, C, 1, pool_bn=False, affine=True) for site in ops)

    def forward(self, x: torch.Tensor, plan: NodePlan) -> torch.Tensor:
        x = self.pool(x)
        outs, e = [], 0
        for j in range(self.blocks):
            node = None
            for inp in range(j + 1):
                on, w = plan.edges[e]
                e += 1
                if on:
                    term = self.projections[j](x) if inp == 0 else outs[inp - 1]
                    term = term if w is None else term * w
                    node = term if node is None else node + term
            if node is None:
                raise RuntimeError(f"node plan leaves choice block {j + 1} without inputs")
            out, constants = None, []
            for o, w in plan.ops[j]:
                if o is None:
                    constants.append(w)
                    continue
                term = self.ops[j][o](node)
                term = term if w is None else term * w
                out = term if out is None else out + term
            outs.append(sum(constants, out))
        on, w = plan.edges[e]
        projected = None
        if on:
            projected = self.out_projection(x)
            projected = projected if w is None else projected * w
        parts = []
        for j, block in enumerate(outs):
            on, w = plan.edges[e + 1 + j]
            parts.append(block.mul(0.0) if not on else block if w is None else block * w)
        out = torch.cat(parts, 1)
        return out if projected is None else out + projected


class OneShot1Supernet(nn.Module):
    """1Shot1's search network: stem conv_bn_relu 3x3 to C, 3 stacks of ``layers`` cells (1Shot1: 3),
    channels doubled and the cell input max-pooled (2x2, stride 2, padding 1) before the first cell
    of stacks 2 and 3, then ReLU-conv 1x1-BN to the last C, global pooling and a linear classifier.
    ``forward(x, plans)`` stacks one subnet's logits per plan."""

    def __init__(self, space: SearchSpace, C: int, layers: int, num_classes: int, in_channels: int):
        super().__init__()
        blocks = len(space.site_ops["cell"])
        self.stem = _conv_bn_relu(in_channels, C, 3)
        cells, C_in, C_cur = [], C, C
        for stack in range(3):
            if stack:
                C_cur *= 2
            for i in range(layers):
                cells.append(OneShot1Cell(space, C_in, C_cur, pool=stack > 0 and i == 0))
                C_in = C_cur * blocks
        self.cells = nn.ModuleList(cells)
        self.post = ReLUConvBN(C_in, C_cur, 1, 1, 0, affine=False)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(C_cur, num_classes)

    def forward(self, x: torch.Tensor, plans: Sequence[Plan]) -> torch.Tensor:
        return torch.cat([self._run(x, plan["cell"]) for plan in plans])

    def _run(self, x: torch.Tensor, plan: NodePlan) -> torch.Tensor:
        x = self.stem(x)
        for cell in self.cells:
            x = cell(x, plan)
        return self.classifier(self.pool(self.post(x)).flatten(1))
