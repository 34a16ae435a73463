"""Genotypes: the plain-data hand-off between search and training.

A genotype lists, for every cell type and every intermediate node, the ``(op, input)``
pairs feeding that node. Inputs are numbered as in the papers: the cell inputs first
(DARTS: 0 = c_{k-2}, 1 = c_{k-1}; NAS-Bench-201: 0), then the intermediate nodes.

Three text forms round-trip exactly: JSON, the DARTS ``Genotype(normal=[...], ...)``
string and the NAS-Bench-201 ``|op~i|+|op~i|op~i|+...`` string. Parsing never calls
``eval``: DARTS strings are read as an AST of literals.
"""
from __future__ import annotations

import ast
import json
from dataclasses import dataclass
from typing import Mapping, Sequence

from .errors import RomenasError
from .ops import OPS

__all__ = ["Genotype", "GenotypeError", "parse_darts_string", "parse_nb201_string", "FAMILIES"]

Pair = tuple[str, int]
Cell = tuple[tuple[Pair, ...], ...]

#: family -> (number of cell inputs, cell types, inputs kept per node; None = every predecessor)
FAMILIES: dict[str, tuple[int, tuple[str, ...], int | None]] = {
    "darts": (2, ("normal", "reduce"), 2),
    "nb201": (1, ("cell",), None),
}


class GenotypeError(RomenasError):
    """A genotype that cannot be parsed or does not fit its space."""


@dataclass(frozen=True)
class Genotype:
    family: str
    cells: Mapping[str, Cell]
    concat: Mapping[str, tuple[int, ...]]

    # ---- construction -------------------------------------------------------------
    @classmethod
    def build(cls, family: str, cells: Mapping[str, Sequence[Sequence[Sequence]]],
              concat: Mapping[str, Sequence[int]] | None = None) -> "Genotype":
        """Normalise nested lists into tuples and validate."""
        if family not in FAMILIES:
            raise GenotypeError(f"unknown genotype family {family!r}; use one of {sorted(FAMILIES)}")
        try:
            norm = {kind: tuple(tuple((str(op), int(inp)) for op, inp in node) for node in nodes)
                    for kind, nodes in cells.items()}
        except (TypeError, ValueError) as exc:
            raise GenotypeError(f"malformed genotype cell ({exc}); each node is a list of [op, input] pairs") from None
        if concat is None:
            num_inputs = FAMILIES[family][0]
            concat = {k: tuple(range(num_inputs, num_inputs + len(v))) for k, v in norm.items()}
        if not isinstance(concat, Mapping):
            raise GenotypeError(f"genotype concat must map cell types to node lists, got {concat!r:.60}")
        try:
            concat = {k: tuple(int(i) for i in v) for k, v in concat.items()}
        except (TypeError, ValueError):
            raise GenotypeError("each *_concat must be a list of node indices, e.g. [2, 3, 4, 5]") from None
        geno = cls(family, norm, concat)
        geno.validate()
        return geno

    @property
    def num_inputs(self) -> int:
        return FAMILIES[self.family][0]

    def validate(self, allowed_ops: Sequence[str] | None = None) -> None:
        """Check cell types, ops, inputs per node and edge direction; raise GenotypeError."""
        num_inputs, kinds, per_node = FAMILIES[self.family]
        if tuple(self.cells) != kinds:
            raise GenotypeError(f"a {self.family} genotype needs cells {list(kinds)}, got {list(self.cells)}")
        allowed = set(allowed_ops) if allowed_ops is not None else set(OPS)
        for kind, nodes in self.cells.items():
            if not nodes:
                raise GenotypeError(f"{kind} cell has no intermediate nodes")
            for j, node in enumerate(nodes):
                index = num_inputs + j
                want = per_node if per_node is not None else index
                if len(node) != want:
                    raise GenotypeError(
                        f"{kind} cell node {index} has {len(node)} inputs; a {self.family} cell needs {want}")
                for op, inp in node:
                    if op not in allowed:
                        raise GenotypeError(f"{kind} cell node {index}: op {op!r} is not in the space; "
                                            f"use one of {sorted(allowed)}")
                    if not 0 <= inp < index:
                        raise GenotypeError(f"{kind} cell node {index} takes input {inp}, which is not an "
                                            f"earlier node (inputs must be 0..{index - 1})")
                if per_node is None and sorted(i for _, i in node) != list(range(index)):
                    raise GenotypeError(f"{kind} cell node {index} must take each of inputs 0..{index - 1} once")
            last = num_inputs + len(nodes)
            if any(not 0 <= i < last for i in self.concat.get(kind, ())):
                raise GenotypeError(f"{kind}_concat refers to a node outside 0..{last - 1}")

    # ---- text forms -----------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"family": self.family,
                "cells": {k: [[list(p) for p in node] for node in v] for k, v in self.cells.items()},
                "concat": {k: list(v) for k, v in self.concat.items()}}

    @classmethod
    def from_dict(cls, data: Mapping) -> "Genotype":
        if not isinstance(data, Mapping) or not {"family", "cells"} <= set(data):
            raise GenotypeError("a genotype JSON object needs the keys 'family' and 'cells'")
        return cls.build(data["family"], data["cells"], data.get("concat"))

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    def to_string(self) -> str:
        """The family's conventional string: DARTS ``Genotype(...)`` or NAS-Bench-201 ``|op~i|...``."""
        if self.family == "nb201":
            return "+".join("|" + "|".join(f"{op}~{i}" for op, i in node) + "|" for node in self.cells["cell"])
        parts = []
        for kind in ("normal", "reduce"):
            pairs = ", ".join(f"({op!r}, {i})" for node in self.cells[kind] for op, i in node)
            parts.append(f"{kind}=[{pairs}], {kind}_concat={list(self.concat[kind])}")
        return f"Genotype({', '.join(parts)})"

    __str__ = to_string

    def ops(self, kind: str | None = None) -> list[str]:
        """All ops of one cell type (or of every cell type), in node order."""
        kinds = [kind] if kind else list(self.cells)
        return [op for k in kinds for node in self.cells[k] for op, _ in node]


# ---- parsing ---------------------------------------------------------------------------
_MAX_CONCAT = 64


def _literal(node: ast.AST):
    """A literal, or ``range(a, b)`` as DARTS writes concat lists; nothing else is evaluated."""
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range"
            and not node.keywords and all(isinstance(a, ast.Constant) and isinstance(a.value, int) for a in node.args)):
        bounds = range(*(a.value for a in node.args))
        if len(bounds) > _MAX_CONCAT:  # a cell has a handful of nodes; never build a huge list
            raise ValueError(f"range of {len(bounds)} nodes is longer than any cell")
        return list(bounds)
    return ast.literal_eval(node)


def parse_darts_string(text: str) -> Genotype:
    try:
        call = ast.parse(text, mode="eval").body
        if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name)
                and call.func.id == "Genotype" and not call.args):
            raise ValueError("expected Genotype(normal=..., normal_concat=..., reduce=..., reduce_concat=...)")
        fields = {kw.arg: _literal(kw.value) for kw in call.keywords}
    except (SyntaxError, ValueError, TypeError) as exc:
        raise GenotypeError(f"cannot parse DARTS genotype string: {exc}") from None
    missing = {"normal", "reduce"} - set(fields)
    if missing:
        raise GenotypeError(f"DARTS genotype string lacks {sorted(missing)}; write Genotype(normal=[...], reduce=[...])")
    cells, concat = {}, {}
    for kind in ("normal", "reduce"):
        pairs = fields[kind]
        if not isinstance(pairs, (list, tuple)) or len(pairs) % 2 or not pairs:
            raise GenotypeError(f"DARTS genotype {kind} must list two (op, input) pairs per node")
        cells[kind] = [pairs[i:i + 2] for i in range(0, len(pairs), 2)]
        concat[kind] = fields.get(f"{kind}_concat", list(range(2, 2 + len(cells[kind]))))
    return Genotype.build("darts", cells, concat)


def parse_nb201_string(text: str) -> Genotype:
    nodes = []
    for chunk in text.split("+"):
        chunk = chunk.strip()
        if not (chunk.startswith("|") and chunk.endswith("|")) or len(chunk) < 3:
            raise GenotypeError(f"cannot parse NAS-Bench-201 node {chunk!r}; write nodes as |op~input|op~input|")
        node = []
        for item in chunk[1:-1].split("|"):
            op, sep, inp = item.partition("~")
            if not sep or not inp.isdigit():
                raise GenotypeError(f"cannot parse NAS-Bench-201 edge {item!r}; write it as op~input, e.g. nor_conv_3x3~0")
            node.append((op, int(inp)))
        nodes.append(node)
    return Genotype.build("nb201", {"cell": nodes})
