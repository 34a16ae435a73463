"""Genotypes: the plain-data hand-off between search and training.

A genotype lists, for every cell type and every intermediate node, the ``(op, input)``
pairs feeding that node. Inputs are numbered as in the papers: the cell inputs first
(DARTS: 0 = c_{k-2}, 1 = c_{k-1}; NAS-Bench-201: 0), then the intermediate nodes.

Four text forms round-trip exactly: JSON, the DARTS ``Genotype(normal=[...], ...)``
string, the NAS-Bench-201 ``|op~i|+|op~i|op~i|+...`` string and, for NAS-Bench-101 cells,
the benchmark's ``{"matrix": [[...]], "ops": ["input", ..., "output"]}``. Parsing never calls
``eval``: DARTS strings are read as an AST of literals.

NAS-Bench-101 cells (family ``nb101``) carry their ops on nodes: a node lists an ``(op, input)``
pair per input with its one op repeated, and ``concat`` lists the output's inputs, 0 (the cell
input, projected and added) included.

Genotype specs are untrusted input (command lines, files, weights metadata), so every form
ends in one strict reader, :meth:`Genotype.build`: exact types (an input index is an
integer, never a bool, a float or a string), bounded sizes (:data:`MAX_SPEC_BYTES` of text,
:data:`MAX_NODES` nodes per cell) and a one-line :class:`GenotypeError` for anything else.
"""
from __future__ import annotations

import ast
import json
import re
import reprlib
from collections import Counter
from dataclasses import dataclass
from numbers import Integral
from typing import Callable, Mapping, Sequence

from .errors import RomenasError
from .nb101_spec import NB101Spec
from .registry import FAMILIES, OP_NAMES

__all__ = ["Genotype", "GenotypeError", "parse_darts_string", "parse_nb201_string",
           "MAX_NODES", "MAX_SPEC_BYTES"]

Pair = tuple[str, int]
Cell = tuple[tuple[Pair, ...], ...]


#: Intermediate nodes per cell at most: published cells have 3 to 5, so more is a broken spec.
MAX_NODES = 64
#: Genotype text (a string or a file) at most; the largest valid cell takes a few tens of kB.
MAX_SPEC_BYTES = 1 << 20
#: Digits of a node index at most; a longer number is refused before Python converts it.
_MAX_DIGITS = 9
_LONG_NUMBER = re.compile(f"[0-9]{{{_MAX_DIGITS + 1},}}")
_ASCII_NUMBER = re.compile("[0-9]+")

_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxtuple, _REPR.maxdict = 3, 6, 6, 4
_REPR.maxstring = _REPR.maxother = 40


def _short(value) -> str:
    """A bounded repr for messages: specs can be megabytes long or nested 100,000 deep."""
    try:
        return _REPR.repr(value)
    except ValueError:  # an int too long for str()
        return f"a {type(value).__name__}"


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
        """The one strict reader every form ends in: exact types, bounded sizes, cells in
        the family's order, NAS-Bench-201 edges sorted by input (one canonical form), then
        :meth:`validate`."""
        if not isinstance(family, str) or family not in FAMILIES:
            raise GenotypeError(f"unknown genotype family {_short(family)}; use one of {sorted(FAMILIES)}")
        record = FAMILIES[family]
        num_inputs, kinds, per_node = record.num_inputs, record.cell_types, record.inputs_per_node
        if not isinstance(cells, Mapping) or set(cells) != set(kinds):
            got = list(cells) if isinstance(cells, Mapping) else cells
            raise GenotypeError(f"a {family} genotype needs cells {list(kinds)} (an object of node lists), "
                                f"got {_short(got)}")
        norm = {kind: _read_cell(kind, cells[kind], num_inputs, by_input=per_node is None or record.op_site == "node")
                for kind in kinds}
        geno = cls(family, norm, _read_concat(concat, norm, num_inputs))
        geno.validate()
        return geno

    @property
    def num_inputs(self) -> int:
        return FAMILIES[self.family].num_inputs

    def validate(self, allowed_ops: Sequence[str] | None = None) -> None:
        """Check cells, node inputs, ops and concat lists (what the network can build); raise GenotypeError."""
        record = FAMILIES[self.family]
        num_inputs, kinds, per_node = record.num_inputs, record.cell_types, record.inputs_per_node
        if tuple(self.cells) != kinds:
            raise GenotypeError(f"a {self.family} genotype needs cells {list(kinds)}, got {_short(list(self.cells))}")
        allowed = set(allowed_ops) if allowed_ops is not None else set(record.ops or OP_NAMES)
        for kind, nodes in self.cells.items():
            if not nodes:
                raise GenotypeError(f"{kind} cell has no intermediate nodes")
            for j, node in enumerate(nodes):
                index = num_inputs + j
                where = _node_name(kind, index)
                if record.op_site == "node":
                    _check_node_site(where, node, index)
                elif per_node is None:
                    _check_every_input(where, node, index)
                else:
                    _check_inputs(where, node, index, per_node, self.family)
                for op, _ in node:
                    if op not in allowed:
                        raise GenotypeError(f"{where}: op {_short(op)} is not in the space; "
                                            f"use one of {sorted(allowed)}")
            last = num_inputs + len(nodes)
            if record.op_site == "node":
                _check_output_inputs(kind, self.concat.get(kind, ()), last)
            else:
                _check_concat(kind, self.concat.get(kind, ()), num_inputs, last, outputs_last=per_node is None)

    # ---- text forms -----------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"family": self.family,
                "cells": {k: [[list(p) for p in node] for node in v] for k, v in self.cells.items()},
                "concat": {k: list(v) for k, v in self.concat.items()}}

    @classmethod
    def from_dict(cls, data: Mapping) -> "Genotype":
        """The JSON form, also as weights metadata stores it, or a NAS-Bench-101 spec
        ``{"matrix", "ops"}``: any JSON value is read or refused."""
        if isinstance(data, Mapping) and set(data) == {"matrix", "ops"}:
            return cls.from_nb101(data["matrix"], data["ops"])
        if isinstance(data, Mapping) and "family" not in data and {"matrix", "ops"} & set(data):
            raise GenotypeError("a NAS-Bench-101 spec is a JSON object with exactly the keys 'matrix' and 'ops', not "
                                f"{_short(sorted(map(str, data)))}")
        if not isinstance(data, Mapping) or not {"family", "cells"} <= set(data):
            raise GenotypeError("a genotype JSON object needs the keys 'family' and 'cells' (or, for a NAS-Bench-101 "
                                "cell, exactly 'matrix' and 'ops')")
        unknown = sorted(map(str, set(data) - {"family", "cells", "concat"}))
        if unknown:
            raise GenotypeError(f"a genotype JSON object has the keys 'family', 'cells' and 'concat', "
                                f"not {_short(unknown)}")
        return cls.build(data["family"], data["cells"], data.get("concat"))

    @classmethod
    def from_json(cls, text: str) -> "Genotype":
        """Parse the JSON form; too long, too deep or malformed JSON is a one-line GenotypeError."""
        _check_text(text)
        try:
            data = json.loads(text)
        except RecursionError:
            raise GenotypeError("genotype JSON is nested too deeply; a genotype is an object of cells, "
                                "each a list of nodes of [op, input] pairs, or a NAS-Bench-101 spec "
                                "{\"matrix\": [[0, 1, ...], ...], \"ops\": [...]}") from None
        except ValueError as exc:
            raise GenotypeError(f"genotype JSON is malformed: {exc}") from None
        return cls.from_dict(data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_nb101(cls, matrix, ops) -> "Genotype":
        """A NAS-Bench-101 spec (adjacency matrix, op list) as an ``nb101`` genotype, pruned as the
        benchmark prunes it (vertices off every input-output path removed)."""
        try:
            spec = NB101Spec.build(matrix, ops, interior_ops=FAMILIES["nb101"].ops)
        except RomenasError as exc:
            raise GenotypeError(str(exc)) from None
        spec = spec.pruned()
        if spec is None:
            raise GenotypeError("the NAS-Bench-101 cell does not connect its input to its output")
        m, n = spec.matrix, spec.num_vertices
        nodes = [[(spec.ops[v], w) for w in range(v) if m[w][v]] for v in range(1, n - 1)]
        if not nodes:
            raise GenotypeError("the NAS-Bench-101 cell has no interior vertex; romenas searches and trains cells "
                                "with at least one op")
        return cls.build("nb101", {"cell": nodes}, {"cell": [w for w in range(n - 1) if m[w][n - 1]]})

    def to_nb101(self) -> dict:
        """The NAS-Bench-101 spec of an ``nb101`` genotype: ``{"matrix": V x V 0/1, "ops": [...]}``,
        vertex 0 the input, the last the output (not pruned: the benchmark prunes on reading)."""
        if self.family != "nb101":
            raise GenotypeError(f"a {self.family} genotype has no NAS-Bench-101 form")
        nodes = self.cells["cell"]
        n = len(nodes) + 2
        matrix = [[0] * n for _ in range(n)]
        for v, node in enumerate(nodes, start=1):
            for _, w in node:
                matrix[w][v] = 1
        for w in self.concat["cell"]:
            matrix[w][n - 1] = 1
        return {"matrix": matrix, "ops": ["input"] + [node[0][0] for node in nodes] + ["output"]}

    def nb101_spec(self) -> NB101Spec:
        """The :class:`NB101Spec` of an ``nb101`` genotype (its ops: the family's), not pruned."""
        return NB101Spec.build(**self.to_nb101(), interior_ops=FAMILIES["nb101"].ops)

    def to_string(self) -> str:
        """The family's conventional string (its :class:`TextForm`): DARTS ``Genotype(...)``,
        NAS-Bench-201 ``|op~i|...`` or NAS-Bench-101's ``{"matrix": ..., "ops": ...}``."""
        return FAMILIES[self.family].text_form().format(self)

    def node_labels(self, kind: str) -> list[str]:
        """Labels of cell ``kind``'s inputs and nodes in the family's convention, for drawing."""
        return FAMILIES[self.family].text_form().labels(self, kind)

    __str__ = to_string

    def ops(self, kind: str | None = None) -> list[str]:
        """All ops of one cell type (or of every cell type), in node order: one per edge, or one
        per node where ops sit on nodes (NAS-Bench-101)."""
        kinds = [kind] if kind else list(self.cells)
        if FAMILIES[self.family].op_site == "node":
            return [node[0][0] for k in kinds for node in self.cells[k]]
        return [op for k in kinds for node in self.cells[k] for op, _ in node]


# ---- the strict reader -----------------------------------------------------------------
def _read_cell(kind: str, nodes, num_inputs: int, by_input: bool) -> Cell:
    """One cell as tuples; NAS-Bench-201 nodes sorted by input, since there the edge order
    means nothing and lookups need one canonical string."""
    if not isinstance(nodes, (list, tuple)):
        raise GenotypeError(f"{kind} cell must be a list of nodes, each a list of [op, input] pairs; "
                            f"got {_short(nodes)}")
    if len(nodes) > MAX_NODES:
        raise GenotypeError(f"{kind} cell has {len(nodes):,} intermediate nodes; romenas builds cells of "
                            f"at most {MAX_NODES}")
    cell = []
    for j, node in enumerate(nodes):
        where = _node_name(kind, num_inputs + j)
        if not isinstance(node, (list, tuple)):
            raise GenotypeError(f"{where} must be a list of [op, input] pairs, got {_short(node)}")
        pairs = tuple(_read_pair(where, pair) for pair in node)
        cell.append(tuple(sorted(pairs, key=lambda p: p[1])) if by_input else pairs)
    return tuple(cell)


def _node_name(kind: str, index: int) -> str:
    """'normal cell node 3'; NAS-Bench-201's one cell type is 'cell', so 'cell node 3'."""
    return f"cell node {index}" if kind == "cell" else f"{kind} cell node {index}"


def _read_pair(where: str, pair) -> Pair:
    if not isinstance(pair, (list, tuple)) or len(pair) != 2:
        raise GenotypeError(f"{where}: each input is an [op, input] pair such as ['sep_conv_3x3', 0], "
                            f"got {_short(pair)}")
    op, inp = pair
    if not isinstance(op, str):
        raise GenotypeError(f"{where}: an op is a name such as 'sep_conv_3x3', got {_short(op)}")
    return op, _read_index(f"{where} input", inp)


def _read_index(what: str, value) -> int:
    """A node index. ``int()`` would truncate 0.9, take True as 1 and read other scripts'
    digits, so only integers pass; huge ones are refused before anything prints them."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise GenotypeError(f"{what} must be an integer node index, got {_short(value)}")
    if abs(value) >= 10 ** _MAX_DIGITS:
        raise GenotypeError(f"{what} is a number of more than {_MAX_DIGITS} digits; node indices are "
                            f"0..{MAX_NODES + 1}")
    return int(value)


def _read_concat(concat, cells: Mapping[str, Cell], num_inputs: int) -> dict[str, tuple[int, ...]]:
    """Per cell type, the nodes concatenated into the output; all intermediate nodes where
    none is given (as DARTS writes it, and what NAS-Bench-201 cells compute)."""
    default = {k: tuple(range(num_inputs, num_inputs + len(v))) for k, v in cells.items()}
    if concat is None:
        return default
    if not isinstance(concat, Mapping):
        raise GenotypeError(f"genotype concat must map cell types to node lists, got {_short(concat)}")
    unknown = [k for k in concat if k not in cells]
    if unknown:
        raise GenotypeError(f"genotype concat names the cell type {_short(unknown[0])}; "
                            f"the cell types are {list(cells)}")
    return {k: _read_concat_list(k, concat[k]) if k in concat else default[k] for k in cells}


def _read_concat_list(kind: str, value) -> tuple[int, ...]:
    if not isinstance(value, (list, tuple, range)):
        raise GenotypeError(f"each *_concat must be a list of node indices, e.g. [2, 3, 4, 5]; "
                            f"{kind}_concat is {_short(value)}")
    if len(value) > MAX_NODES:
        raise GenotypeError(f"{kind}_concat lists {len(value):,} nodes, longer than any cell "
                            f"(at most {MAX_NODES} nodes)")
    return tuple(_read_index(f"{kind}_concat entry", i) for i in value)


def _check_inputs(where: str, node: tuple[Pair, ...], index: int, want: int, family: str) -> None:
    """DARTS: a fixed number of inputs per node, each an earlier node."""
    if len(node) != want:
        raise GenotypeError(f"{where} has {len(node)} inputs; a {family} cell needs {want}")
    _check_earlier(where, node, index)


def _check_every_input(where: str, node: tuple[Pair, ...], index: int) -> None:
    """NAS-Bench-201: node ``index`` takes each earlier node once. Names the actual problem:
    a missing node shows up as a node listing the inputs of the next one."""
    inputs = [i for _, i in node]
    if len(inputs) > index and sorted(inputs) == list(range(len(inputs))):
        raise GenotypeError(f"{where} lists inputs 0..{len(inputs) - 1}, those of node {len(inputs)}: a node "
                            f"before it is missing (node j takes each of 0..j-1 once; '+' separates nodes)")
    _check_earlier(where, node, index)
    twice = [i for i, count in Counter(inputs).items() if count > 1]
    if twice:
        raise GenotypeError(f"{where} takes input {twice[0]} twice; a NAS-Bench-201 node takes each of "
                            f"0..{index - 1} once")
    if len(inputs) != index:
        missing = sorted(set(range(index)) - set(inputs))
        raise GenotypeError(f"{where} has {len(inputs)} inputs and lacks {missing}; a nb201 node needs {index}, "
                            f"one from each of 0..{index - 1}")


def _check_node_site(where: str, node: tuple[Pair, ...], index: int) -> None:
    """NAS-Bench-101: one op per node, applied to the sum of one or more distinct earlier nodes."""
    if not node:
        raise GenotypeError(f"{where} has no inputs; a NAS-Bench-101 node takes at least one earlier node")
    ops = sorted({op for op, _ in node})
    if len(ops) > 1:
        raise GenotypeError(f"{where} lists the ops {ops}; a NAS-Bench-101 node applies one op to the sum of its "
                            "inputs, so every pair of a node names the same op")
    _check_earlier(where, node, index)
    twice = [i for i, count in Counter(i for _, i in node).items() if count > 1]
    if twice:
        raise GenotypeError(f"{where} takes input {twice[0]} twice; a node takes each input once")


def _check_output_inputs(kind: str, concat: tuple[int, ...], last: int) -> None:
    """NAS-Bench-101: the output concatenates distinct nodes (0, the cell input, is projected and added)."""
    problem = _concat_problem(concat, 0, list(range(last)))
    if problem:
        raise GenotypeError(f"{kind} concat (the output's inputs) {problem}; it lists distinct nodes 0..{last - 1}")


def _check_earlier(where: str, node: tuple[Pair, ...], index: int) -> None:
    for _, inp in node:
        if not 0 <= inp < index:
            raise GenotypeError(f"{where} takes input {inp}, which is not an earlier node "
                                f"(inputs must be 0..{index - 1})")


def _check_concat(kind: str, concat: tuple[int, ...], first: int, last: int, outputs_last: bool) -> None:
    """What the network can build: a DARTS cell concatenates distinct intermediate nodes (the
    cell inputs have another resolution in a reduction cell); a NAS-Bench-201 cell outputs its
    last node, so its concat is fixed."""
    nodes = list(range(first, last))
    if outputs_last:
        if list(concat) != nodes:
            raise GenotypeError(f"{kind} concat {list(concat)} cannot be built: a NAS-Bench-201 cell outputs its "
                                f"last node, so its concat is always {nodes}; leave it out")
        return
    problem = _concat_problem(concat, first, nodes)
    if problem:
        raise GenotypeError(f"{kind}_concat {problem}; the network builds {kind}_concat from distinct "
                            f"intermediate nodes {first}..{last - 1}, e.g. {nodes}")


def _concat_problem(concat: tuple[int, ...], first: int, nodes: list[int]) -> str | None:
    if not concat:
        return "is empty"
    repeated = [i for i, count in Counter(concat).items() if count > 1]
    if repeated:
        return f"lists node {repeated[0]} twice"
    outside = [i for i in concat if i not in nodes]
    if outside:
        return f"includes {outside[0]}, " + ("a cell input" if 0 <= outside[0] < first else "not a node of the cell")
    return None


# ---- parsing ---------------------------------------------------------------------------
_DARTS_FIELDS = ("normal", "normal_concat", "reduce", "reduce_concat")
#: Commas a DARTS string of two MAX_NODES-node cells can hold (4 per node, 1 per concat entry,
#: 3 between fields); more cannot be valid, and parsing megabytes into an AST costs hundreds of MB.
_MAX_DARTS_COMMAS = 2 * (4 * MAX_NODES + MAX_NODES) + 3


def _check_text(text: str) -> None:
    """Bound what is parsed: megabytes or a 5,000-digit number are a wrong file or hostile
    input, refused before a parser or ``int()`` spends time and memory on them."""
    if len(text) > MAX_SPEC_BYTES:
        raise GenotypeError(f"genotype spec is {len(text):,} characters long; a genotype takes at most "
                            f"{MAX_SPEC_BYTES:,}, give one genotype")
    number = _LONG_NUMBER.search(text)
    if number:
        raise GenotypeError(f"genotype spec holds a {len(number.group()):,}-digit number; node indices are "
                            f"0..{MAX_NODES + 1} and NAS-Bench-101 matrix entries 0 or 1")


def _literal(node: ast.AST, field: str):
    """A constant, a list or tuple of literals, or ``range(a, b)`` as DARTS writes concat
    lists; anything else is refused, never evaluated. Types are checked by the reader."""
    if isinstance(node, ast.Constant):
        return node.value
    if (isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant)
            and type(node.operand.value) in (int, float)):
        return -node.operand.value
    if isinstance(node, (ast.List, ast.Tuple)):
        values = [_literal(e, field) for e in node.elts]
        return values if isinstance(node, ast.List) else tuple(values)
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range"
            and not node.keywords and 1 <= len(node.args) <= 2):
        return range(*(_read_index(f"{field} range bound", _literal(a, field)) for a in node.args))
    raise GenotypeError(f"cannot parse DARTS genotype {field}: only literals and range(a, b) are read, "
                        f"found an expression ({type(node).__name__})")


def _darts_fields(text: str) -> dict:
    """The keyword arguments of ``Genotype(...)`` as plain values."""
    try:
        call = ast.parse(text, mode="eval").body
    except (RecursionError, MemoryError):
        raise GenotypeError("cannot parse DARTS genotype string: it is nested too deeply") from None
    except (SyntaxError, ValueError) as exc:  # ValueError: NUL bytes
        raise GenotypeError(f"cannot parse DARTS genotype string: {getattr(exc, 'msg', exc)}") from None
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name)
            and call.func.id == "Genotype" and not call.args):
        raise GenotypeError("cannot parse DARTS genotype string: expected "
                            "Genotype(normal=..., normal_concat=..., reduce=..., reduce_concat=...)")
    fields = {}
    for kw in call.keywords:
        if kw.arg not in _DARTS_FIELDS or kw.arg in fields:
            raise GenotypeError(f"cannot parse DARTS genotype string: {kw.arg or '**'} is "
                                f"{'given twice' if kw.arg in fields else 'not a field'}; "
                                f"the fields are {', '.join(_DARTS_FIELDS)}")
        fields[kw.arg] = _literal(kw.value, kw.arg)
    return fields


def parse_darts_string(text: str) -> Genotype:
    """``Genotype(normal=[(op, input), ...], normal_concat=range(2, 6), reduce=[...], reduce_concat=...)``."""
    _check_text(text)
    if text.count(",") > _MAX_DARTS_COMMAS:
        raise GenotypeError(f"DARTS genotype string lists more nodes than a cell can have (at most {MAX_NODES} "
                            f"per cell)")
    fields = _darts_fields(text.strip())
    missing = {"normal", "reduce"} - set(fields)
    if missing:
        raise GenotypeError(f"DARTS genotype string lacks {sorted(missing)}; write Genotype(normal=[...], reduce=[...])")
    cells, concat = {}, {}
    for kind in ("normal", "reduce"):
        pairs = fields[kind]
        if not isinstance(pairs, (list, tuple)) or len(pairs) % 2:
            raise GenotypeError(f"DARTS genotype {kind} must list two (op, input) pairs per node, got {_short(pairs)}")
        cells[kind] = [pairs[i:i + 2] for i in range(0, len(pairs), 2)]
        if f"{kind}_concat" in fields:
            concat[kind] = fields[f"{kind}_concat"]
    return Genotype.build("darts", cells, concat)


def parse_nb201_string(text: str) -> Genotype:
    """``|op~input|+|op~input|op~input|+...``: node j lists its edges from nodes 0..j-1 in any
    order; the genotype keeps them sorted by input, the benchmark's form."""
    _check_text(text)
    nodes = [_nb201_node(chunk.strip(), j) for j, chunk in enumerate(text.strip().split("+"), start=1)]
    return Genotype.build("nb201", {"cell": nodes})


def _nb201_node(chunk: str, index: int) -> list[Pair]:
    if chunk in ("", "||"):
        raise GenotypeError(f"NAS-Bench-201 node {index} is empty; write each node as |op~input|...| "
                            "and join the nodes with one '+'")
    if not (chunk.startswith("|") and chunk.endswith("|")) or len(chunk) < 3:
        raise GenotypeError(f"cannot parse NAS-Bench-201 node {_short(chunk)}; write nodes as |op~input|op~input|")
    return [_nb201_edge(item, index) for item in chunk[1:-1].split("|")]


def _nb201_edge(item: str, index: int) -> Pair:
    """``op~input``; the input in ASCII digits (``str.isdigit`` would pass '²' and '٠')."""
    op, sep, inp = item.partition("~")
    if not (sep and op and _ASCII_NUMBER.fullmatch(inp)):
        raise GenotypeError(f"cannot parse NAS-Bench-201 edge {_short(item)} of node {index}; write it as "
                            "op~input with the input in ASCII digits, e.g. nor_conv_3x3~0")
    return op, int(inp)


# ---- each family's text form (its record names one: registry.CellFamily.text) -------------------
@dataclass(frozen=True)
class TextForm:
    """How a cell family's genotypes are written and read as text, and how its nodes are labelled.
    ``prefix``: how the text starts, so parse_genotype can tell the forms apart."""

    prefix: str
    format: Callable[[Genotype], str]
    parse: Callable[[str], Genotype]
    labels: Callable[[Genotype, str], list[str]]


def _darts_text(genotype: Genotype) -> str:
    parts = []
    for kind in FAMILIES[genotype.family].cell_types:
        pairs = ", ".join(f"({op!r}, {i})" for node in genotype.cells[kind] for op, i in node)
        parts.append(f"{kind}=[{pairs}], {kind}_concat={list(genotype.concat[kind])}")
    return f"Genotype({', '.join(parts)})"


def _nb201_text(genotype: Genotype) -> str:
    return "+".join("|" + "|".join(f"{op}~{i}" for op, i in node) + "|" for node in genotype.cells["cell"])


#: DARTS: ``Genotype(normal=[...], ...)``; inputs c_{k-2}, c_{k-1}, intermediate nodes from 0 (DARTS' plots).
DARTS_TEXT = TextForm("Genotype(", _darts_text, parse_darts_string,
                      lambda g, kind: ["c_{k-2}", "c_{k-1}"] + [str(i) for i in range(len(g.cells[kind]))])
#: NAS-Bench-201: ``|op~0|+|op~0|op~1|+...``; the input node 'in', then nodes 1, 2, 3 (the benchmark's indices).
NB201_TEXT = TextForm("|", _nb201_text, parse_nb201_string,
                      lambda g, kind: ["in"] + [str(i) for i in range(1, len(g.cells[kind]) + 1)])
#: NAS-Bench-101: the spec as JSON; the op is the node's, so each node is labelled with it.
NB101_TEXT = TextForm("{", lambda g: json.dumps(g.to_nb101(), separators=(",", ":")), Genotype.from_json,
                      lambda g, kind: ["in"] + [f"{j}: {node[0][0]}" for j, node in enumerate(g.cells[kind], 1)])
