"""NAS-Bench-101 cell specs (adjacency matrix + op list): reading, pruning and the benchmark's hash.

Plain data without torch, so genotypes (romenas/genotype.py) read and write the form
NAS-Bench-101 users know. A cell (Ying et al., ICML 2019) is a DAG of at most 7 vertices and 9
edges: vertex 0 is the input, the last the output, each interior vertex applies one op
(``conv3x3-bn-relu``, ``conv1x1-bn-relu``, ``maxpool3x3``) to the sum of its inputs. This module
follows the benchmark's own code (google-research/nasbench, ``lib/model_spec.py``,
``lib/graph_util.py``, ``lib/model_builder.py``; docs/notes/nasbench-1shot1.md gives the rules
and check values):

- :meth:`NB101Spec.pruned`: vertices not on a path from the input to the output are removed;
- :meth:`NB101Spec.hash`: the benchmark's graph hash of the pruned spec (a Weisfeiler-Lehman-style
  MD5 fingerprint, the key of its data file), independent of vertex order;
- :func:`vertex_channels`: how a cell splits its output channels over its vertices.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Sequence

from .errors import RomenasError

__all__ = ["NB101Spec", "NB101_OPS", "MAX_VERTICES", "MAX_EDGES", "vertex_channels"]

#: The ops of the benchmark's interior vertices, in its own order (``config.py: available_ops``),
#: which its hash labels use.
NB101_OPS = ("conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3")
#: The benchmark's bounds: vertices and edges of a cell, after pruning.
MAX_VERTICES, MAX_EDGES = 7, 9


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
            if not isinstance(row, (list, tuple)) or len(row) != n or not all(v in (0, 1) and type(v) is int
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
    if out_channels < len(feeding):
        raise RomenasError(f"the cell splits its {out_channels} output channels over the {len(feeding)} vertices "
                           f"feeding its output, and each needs one; use --channels {len(feeding)} or more "
                           "(NAS-Bench-101: 128)")
    share, extra = divmod(out_channels, len(feeding))
    for i, v in enumerate(feeding):
        channels[v] = share + (1 if i < extra else 0)
    for v in range(n - 3, 0, -1):
        if not matrix[v][n - 1]:
            channels[v] = max(channels[w] for w in range(v + 1, n - 1) if matrix[v][w])
    return channels
