"""NAS-Bench-101 cells: the spec (adjacency matrix + op list), its pruning and hash, and its network.

A NAS-Bench-101 cell (Ying et al., ICML 2019) is a DAG of at most 7 vertices and 9 edges: vertex 0
is the input, the last the output, each interior vertex applies one op (``conv3x3-bn-relu``,
``conv1x1-bn-relu``, ``maxpool3x3``) to the sum of its inputs. Ops sit on vertices, not on edges
as in the DARTS and NAS-Bench-201 cells. This module follows the benchmark's own code
(google-research/nasbench, ``lib/model_spec.py``, ``lib/graph_util.py``, ``lib/model_builder.py``;
docs/notes/nasbench-1shot1.md gives the rules and check values):

- :meth:`NB101Spec.pruned`: vertices not on a path from the input to the output are removed;
- :meth:`NB101Spec.hash`: the benchmark's graph hash of the pruned spec (a Weisfeiler-Lehman-style
  MD5 fingerprint, the key of its data file), independent of vertex order;
- :class:`NB101Network`: the benchmark's network (stem conv 3x3 to 128 channels, 3 stacks of 3
  cells, 2x2 max-pool and twice the channels between stacks, global pooling, a linear layer),
  whose vertex channel split and projections give the benchmark's parameter counts exactly
  (tests: 2,694,282 for the spec in the benchmark's README).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Sequence

import torch
from torch import nn

from ..errors import RomenasError

__all__ = ["NB101Spec", "NB101Network", "NB101_OPS", "vertex_channels"]

#: The ops of the benchmark's interior vertices, in its own order (``config.py: available_ops``),
#: which its hash labels use.
NB101_OPS = ("conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3")
#: The benchmark's bounds: vertices and edges of a cell, after pruning.
MAX_VERTICES, MAX_EDGES = 7, 9
#: Batch norm as the benchmark trains it (TF decay 0.997, i.e. PyTorch momentum 0.003; eps 1e-5).
_BN = dict(momentum=0.003, eps=1e-5)


@dataclass(frozen=True)
class NB101Spec:
    """A cell: ``matrix`` (V x V, 0/1, strictly upper triangular: ``matrix[i][j]`` is the edge i -> j)
    and ``ops`` (V labels, 'input' first, 'output' last, an op of :data:`NB101_OPS` between)."""

    matrix: tuple[tuple[int, ...], ...]
    ops: tuple[str, ...]

    @classmethod
    def build(cls, matrix: Any, ops: Any, interior_ops: Sequence[str] = NB101_OPS) -> "NB101Spec":
        """Read and check a spec (untrusted input: lists from JSON or the command line); anything
        else is a one-line RomenasError. ``interior_ops`` are the labels the vertices may take."""
        if not isinstance(matrix, (list, tuple)) or not isinstance(ops, (list, tuple)):
            raise RomenasError("a NAS-Bench-101 spec is {'matrix': [[0, 1, ...], ...], 'ops': ['input', ..., "
                               "'output']}")
        n = len(matrix)
        if not 2 <= n <= 64 or len(ops) != n:
            raise RomenasError(f"a NAS-Bench-101 spec needs 2 to 64 vertices and one op per vertex, got a "
                               f"{n}-row matrix and {len(ops)} ops")
        rows = []
        for i, row in enumerate(matrix):
            if not isinstance(row, (list, tuple)) or len(row) != n or not all(v in (0, 1) and not isinstance(v, float)
                                                                               for v in row):
                raise RomenasError(f"row {i} of the NAS-Bench-101 matrix must be {n} entries of 0 or 1")
            if any(row[: i + 1]):
                raise RomenasError(f"the NAS-Bench-101 matrix must be strictly upper triangular (edges go from a "
                                   f"vertex to a later one); row {i} has an entry on or below the diagonal")
            rows.append(tuple(int(v) for v in row))
        if ops[0] != "input" or ops[-1] != "output":
            raise RomenasError("a NAS-Bench-101 op list starts with 'input' and ends with 'output'")
        wrong = [op for op in ops[1:-1] if op not in interior_ops]
        if wrong:
            raise RomenasError(f"NAS-Bench-101 vertex op {str(wrong[0])[:40]!r} is not one of {list(interior_ops)}")
        return cls(tuple(rows), tuple(ops))

    @classmethod
    def from_json(cls, text: str) -> "NB101Spec":
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, RecursionError):
            raise RomenasError("a NAS-Bench-101 spec is JSON: {\"matrix\": [[...]], \"ops\": [...]}") from None
        if not isinstance(data, dict) or set(data) != {"matrix", "ops"}:
            raise RomenasError("a NAS-Bench-101 spec is a JSON object with exactly the keys 'matrix' and 'ops'")
        return cls.build(data["matrix"], data["ops"])

    def to_dict(self) -> dict[str, Any]:
        return {"matrix": [list(r) for r in self.matrix], "ops": list(self.ops)}

    @property
    def num_vertices(self) -> int:
        return len(self.ops)

    @property
    def num_edges(self) -> int:
        return sum(map(sum, self.matrix))

    def pruned(self) -> "NB101Spec | None":
        """The spec without the vertices that are not on a path from input to output (the benchmark's
        ``ModelSpec._prune``), or None where the output cannot be reached from the input."""
        n, m = self.num_vertices, self.matrix
        forward, backward = _reach(n, 0, lambda v: (w for w in range(v + 1, n) if m[v][w])), \
            _reach(n, n - 1, lambda v: (w for w in range(v) if m[w][v]))
        keep = sorted(forward & backward)
        if len(keep) < 2:
            return None
        return NB101Spec(tuple(tuple(m[i][j] for j in keep) for i in keep), tuple(self.ops[i] for i in keep))

    def check_in_benchmark(self) -> "NB101Spec":
        """The pruned spec where the benchmark holds it, else a one-line RomenasError (its data has
        cells of at most 7 vertices and 9 edges, over its three ops)."""
        spec = self.pruned()
        if spec is None:
            raise RomenasError("the NAS-Bench-101 cell does not connect its input to its output")
        foreign = [op for op in spec.ops[1:-1] if op not in NB101_OPS]
        if foreign:
            raise RomenasError(f"NAS-Bench-101 holds cells of its ops {list(NB101_OPS)} only; {foreign[0]} has no "
                               "entry there")
        if spec.num_vertices > MAX_VERTICES or spec.num_edges > MAX_EDGES:
            raise RomenasError(f"NAS-Bench-101 holds cells of at most {MAX_VERTICES} vertices and {MAX_EDGES} edges; "
                               f"this one has {spec.num_vertices} and {spec.num_edges} after pruning")
        return spec

    def hash(self) -> str:
        """The benchmark's fingerprint of the pruned spec (``graph_util.hash_module``): each vertex
        starts from md5 of (out-degree, in-degree, label) and is rehashed V times with its sorted in-
        and out-neighbours' hashes; the fingerprint is md5 of the sorted final hashes. Labels: -1
        input, -2 output, else the op's index in :data:`NB101_OPS`."""
        spec = self.check_in_benchmark()
        n, m = spec.num_vertices, spec.matrix
        labels = [-1] + [NB101_OPS.index(op) for op in spec.ops[1:-1]] + [-2]
        out_degree = [sum(m[v]) for v in range(n)]
        in_degree = [sum(m[w][v] for w in range(n)) for v in range(n)]
        hashes = [_md5(str((out_degree[v], in_degree[v], labels[v]))) for v in range(n)]
        for _ in range(n):
            hashes = [_md5("".join(sorted(hashes[w] for w in range(n) if m[w][v])) + "|"
                           + "".join(sorted(hashes[w] for w in range(n) if m[v][w])) + "|" + hashes[v])
                      for v in range(n)]
        return _md5(str(sorted(hashes)))


def _reach(n: int, start: int, step) -> set[int]:
    seen, frontier = {start}, [start]
    while frontier:
        for w in step(frontier.pop()):
            if w not in seen:
                seen.add(w)
                frontier.append(w)
    return seen


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def vertex_channels(in_channels: int, out_channels: int, matrix: Sequence[Sequence[int]]) -> list[int]:
    """Channels of every vertex (``model_builder.compute_vertex_channels``): the vertices feeding the
    output split its channels (the first ones one more where it does not divide), every other
    interior vertex takes the most of its successors'. ``matrix`` is a pruned spec's."""
    n = len(matrix)
    channels = [0] * n
    channels[0], channels[-1] = in_channels, out_channels
    if n == 2:
        return channels
    feeding = [v for v in range(1, n - 1) if matrix[v][n - 1]]
    share, extra = divmod(out_channels, len(feeding))
    for i, v in enumerate(feeding):
        channels[v] = share + (1 if i < extra else 0)
    for v in range(n - 3, 0, -1):
        if not matrix[v][n - 1]:
            channels[v] = max(channels[w] for w in range(v + 1, n - 1) if matrix[v][w])
    return channels


def conv_bn_relu(C_in: int, C_out: int, kernel: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(C_in, C_out, kernel, padding=kernel // 2, bias=False),
                         nn.BatchNorm2d(C_out, **_BN), nn.ReLU(inplace=False))


def _vertex_op(name: str, C: int) -> nn.Module:
    if name == "maxpool3x3":
        return nn.MaxPool2d(3, 1, padding=1)
    if name == "skip_connect":
        return nn.Identity()
    return conv_bn_relu(C, C, 3 if name == "conv3x3-bn-relu" else 1)


class NB101Cell(nn.Module):
    """One cell of a (pruned) spec, as ``model_builder.build_module`` computes it: a vertex sums its
    interior predecessors (cut to its channels) and a 1x1 projection of the input where 0 -> v;
    the output concatenates the vertices feeding it, plus a projection of the input where 0 -> out."""

    def __init__(self, spec: NB101Spec, C_in: int, C_out: int):
        super().__init__()
        m, n = spec.matrix, spec.num_vertices
        self.matrix, self.channels = m, vertex_channels(C_in, C_out, m)
        self.projections = nn.ModuleDict({str(v): conv_bn_relu(C_in, self.channels[v], 1)
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
        self.stem = conv_bn_relu(in_channels, stem_channels, 3)
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
