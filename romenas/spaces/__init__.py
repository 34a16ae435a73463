"""Search-space registry: ``get_space(name)`` for 'darts', 'nb201', 's1'..'s4'."""
from __future__ import annotations

from types import SimpleNamespace
from typing import Callable

from ..errors import RomenasError
from .base import EdgePlan, Plan, SearchSpace
from .darts import DartsNetwork, DartsSupernet, darts_space
from .nb201 import NB201Network, NB201Supernet, nb201_space
from .robust import robust_space

__all__ = ["SPACES", "get_space", "SearchSpace", "Plan", "EdgePlan", "FAMILY_BUILDERS"]

SPACES: dict[str, Callable[[], SearchSpace]] = {
    "darts": darts_space,
    "nb201": nb201_space,
    **{f"s{i}": (lambda i=i: robust_space(f"s{i}")) for i in range(1, 5)},
}

#: Network builders per genotype family (a space's supernet and its derived network).
FAMILY_BUILDERS = {
    "darts": SimpleNamespace(supernet=DartsSupernet, network=DartsNetwork),
    "nb201": SimpleNamespace(supernet=NB201Supernet, network=NB201Network),
}


def get_space(name: str) -> SearchSpace:
    """The search space registered under ``name`` (case-insensitive)."""
    try:
        return SPACES[name.lower()]()
    except KeyError:
        raise RomenasError(f"unknown search space {name!r}; use one of {sorted(SPACES)}") from None
