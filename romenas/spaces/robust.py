"""RobustDARTS spaces S1-S4 (Zela et al., ICLR 2020): the DARTS cell with reduced per-edge op lists.

The lists come from the RobustDARTS release, indexed by global edge id (see the JSON file).
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from .base import SearchSpace, cell_edges

_DESCRIPTIONS = {
    "s1": "RobustDARTS S1: the two strongest ops of a DARTS run, per edge",
    "s2": "RobustDARTS S2: {sep_conv_3x3, skip_connect} on every edge",
    "s3": "RobustDARTS S3: {none, sep_conv_3x3, skip_connect} on every edge",
    "s4": "RobustDARTS S4: {sep_conv_3x3, noise} on every edge",
}


@lru_cache(maxsize=None)
def _table() -> dict:
    data = json.loads((Path(__file__).with_name("robust_darts_spaces.json")).read_text())
    if [tuple(e) for e in data["edges"]] != cell_edges(2, 4):
        raise RuntimeError("robust_darts_spaces.json lists edges in an unexpected order")
    return data


def robust_space(name: str) -> SearchSpace:
    cells = _table()[name]
    return SearchSpace(name, "darts", 4, {k: tuple(tuple(ops) for ops in cells[k]) for k in ("normal", "reduce")},
                       _DESCRIPTIONS[name])
