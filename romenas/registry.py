"""What cell families and search spaces exist: plain records, readable without torch.

A *cell family* is a kind of cell and the network around it (DARTS' NASNet-style cells,
NAS-Bench-201's and NAS-Bench-101's cells): how many inputs a cell has, its cell types, how
many inputs each node keeps, where its ops sit (on edges, or on nodes as in NAS-Bench-101),
the network builders, the paper-scale size and the size rule. A *search space* is a family
plus the ops each op site offers, and the family of published search recipes it runs on. Genotypes, configs and recipes read these records; the builders are imported
only when a network is built. Adding a space: a module with its ``SearchSpace`` factory
(and, for a new family, its supernet and network) and one ``register_space`` line below
(docs/architecture.md has a worked example).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from .errors import RomenasError

__all__ = ["CellFamily", "SpaceEntry", "FAMILIES", "SPACES", "OP_NAMES", "PARAMETER_FREE", "register_family", "register_space", "get_family",
           "space_entry"]


def _resolve(path: str) -> Any:
    """'package.module:attribute' -> the attribute (imported on first use)."""
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)


#: Bounds on a network's size (cells, initial channels): far above any published network.
MAX_LAYERS = 1000
MAX_CHANNELS = 4096


@dataclass(frozen=True)
class CellFamily:
    """One cell family's facts and builders (``'module:attribute'`` paths, imported when used)."""

    name: str
    num_inputs: int                  # cell inputs (DARTS: c_{k-2}, c_{k-1}; NAS-Bench-201: 1)
    cell_types: tuple[str, ...]      # e.g. ('normal', 'reduce')
    inputs_per_node: int | None      # inputs a derived node keeps (None: every predecessor)
    supernet: str                    # (space, C, layers, num_classes, in_channels) -> nn.Module
    network: str                     # (genotype, C, layers, num_classes, in_channels, auxiliary, stem) -> nn.Module
    channels: int                    # paper-scale C of the trained network
    layers: int                      # paper-scale depth (cells, or cells per stage)
    min_layers: int = 1
    even_channels: bool = False
    ops: tuple[str, ...] = ()        # the ops its cells may hold (empty: any op romenas has)
    #: Where an op sits: on every edge (DARTS, NAS-Bench-201), or on every node, applied to the sum
    #: of the node's inputs, the output concatenating the nodes it lists (NAS-Bench-101).
    op_site: str = "edge"
    #: Its genotypes' text form ('module:attribute' of a genotype.TextForm: written, read, labelled).
    text: str = "romenas.genotype:DARTS_TEXT"
    #: What ``layers`` counts in its networks, as the model card says it.
    layers_label: str = "cells"
    #: The tabular benchmark its cells are looked up in ('nb201', 'nb101'; None: none), by
    #: ``--<benchmark>-table`` during a search and ``romenas bench <benchmark>``.
    benchmark: str | None = None

    def text_form(self):
        return _resolve(self.text)

    def check_size(self, channels: int, layers: int, flags: str = "--channels and --layers") -> None:
        """The size rule of the family's networks (search and training alike), and bounds no
        published network comes near (a typo like 100000 cells would build for minutes); the
        message names ``flags``, the options that set the size."""
        if layers > MAX_LAYERS or channels > MAX_CHANNELS:
            raise RomenasError(f"a network of {layers} cells and {channels} channels is beyond romenas' bounds "
                               f"({MAX_LAYERS} cells, {MAX_CHANNELS} channels; published ones have at most 20 cells "
                               f"and 48 channels); check {flags}")
        if layers < self.min_layers or (self.even_channels and channels % 2):
            rule = f"layers >= {self.min_layers}" + (" and an even channel count" if self.even_channels else "")
            raise RomenasError(f"a {self.name}-family network needs {rule} (got layers={layers}, "
                               f"channels={channels}); check {flags}")

    def build_supernet(self, *args, **kwargs):
        return _resolve(self.supernet)(*args, **kwargs)

    def build_network(self, *args, **kwargs):
        return _resolve(self.network)(*args, **kwargs)


@dataclass(frozen=True)
class SpaceEntry:
    """A registered search space: its cell family, recipe family and factory."""

    name: str
    family: str
    recipe_family: str               # which published recipes apply ('<algorithm>-<recipe_family>')
    factory: str                     # 'module:function' returning the SearchSpace
    args: tuple = ()

    def build(self):
        return _resolve(self.factory)(*self.args)


#: Every candidate operation's name (romenas/ops.py builds them) and those without weights: the
#: ones a collapsed search fills its cells with.
OP_NAMES = ("none", "noise", "skip_connect", "max_pool_3x3", "avg_pool_3x3", "sep_conv_3x3", "sep_conv_5x5",
            "dil_conv_3x3", "dil_conv_5x5", "nor_conv_1x1", "nor_conv_3x3", "conv3x3-bn-relu", "conv1x1-bn-relu",
            "maxpool3x3")
PARAMETER_FREE = frozenset({"none", "noise", "skip_connect", "max_pool_3x3", "avg_pool_3x3", "maxpool3x3"})

FAMILIES: dict[str, CellFamily] = {}
SPACES: dict[str, SpaceEntry] = {}
#: The space a search runs in when none is named: the DARTS space, ROME's main table's.
DEFAULT_SPACE = "darts"


def _add(table: dict, what: str, name: str, value):
    """Register ``value`` under ``name``; a second registration under a taken name is refused."""
    if name in table:
        raise ValueError(f"a {what} named {name!r} is registered already")
    table[name] = value
    return value


def register_family(family: CellFamily) -> CellFamily:
    return _add(FAMILIES, "cell family", family.name, family)


def register_space(entry: SpaceEntry) -> SpaceEntry:
    if entry.family not in FAMILIES:
        raise ValueError(f"space {entry.name!r}: register its cell family {entry.family!r} first")
    return _add(SPACES, "space", entry.name, entry)


def get_family(name: str) -> CellFamily:
    try:
        return FAMILIES[name]
    except KeyError:
        raise RomenasError(f"unknown genotype family {name!r}; use one of {sorted(FAMILIES)}") from None


def space_entry(name: str) -> SpaceEntry:
    """The space registered under ``name`` (case-insensitive)."""
    try:
        return SPACES[str(name).lower()]
    except KeyError:
        raise RomenasError(f"unknown search space {name!r}; use one of {sorted(SPACES)}") from None


register_family(CellFamily("darts", 2, ("normal", "reduce"), 2, supernet="romenas.spaces.darts:DartsSupernet",
                           network="romenas.spaces.darts:DartsNetwork", channels=36, layers=20, min_layers=3,
                           even_channels=True, ops=("none", "noise", "skip_connect", "max_pool_3x3", "avg_pool_3x3",
                                                    "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5")))
register_family(CellFamily("nb201", 1, ("cell",), None, supernet="romenas.spaces.nb201:NB201Supernet",
                           network="romenas.spaces.nb201:NB201Network", channels=16, layers=5,
                           ops=("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"),
                           text="romenas.genotype:NB201_TEXT", layers_label="cells per stage", benchmark="nb201"))
# NAS-Bench-101's cells (ops on nodes); layers = cells per stack (3 stacks), as the benchmark counts them.
register_family(CellFamily("nb101", 1, ("cell",), None, supernet="romenas.spaces.nb101:OneShot1Supernet",
                           network="romenas.spaces.nb101:NB101GenotypeNetwork", channels=128, layers=3,
                           ops=("maxpool3x3", "conv3x3-bn-relu", "conv1x1-bn-relu", "skip_connect"), op_site="node",
                           text="romenas.genotype:NB101_TEXT", layers_label="cells per stack", benchmark="nb101"))

register_space(SpaceEntry("darts", "darts", "darts", "romenas.spaces.darts:darts_space"))
register_space(SpaceEntry("nb201", "nb201", "nb201", "romenas.spaces.nb201:nb201_space"))
for _name in ("s1", "s2", "s3", "s4"):
    register_space(SpaceEntry(_name, "darts", "robust", "romenas.spaces.robust:robust_space", (_name,)))
for _name in ("1shot1-s1", "1shot1-s2", "1shot1-s3"):
    register_space(SpaceEntry(_name, "nb101", "1shot1", "romenas.spaces.nb101:oneshot1_space", (_name,)))
