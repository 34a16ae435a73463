"""Search spaces: ``get_space(name)`` for every space in romenas/registry.py, and derived networks."""
from __future__ import annotations

from ..registry import SPACES, space_entry
from .base import EdgePlan, NodePlan, Plan, SearchSpace
from .network import build_network, count_flops, count_parameters, network_for

__all__ = ["SPACES", "get_space", "SearchSpace", "Plan", "EdgePlan", "NodePlan", "build_network", "network_for",
           "count_parameters", "count_flops"]


def get_space(name: str) -> SearchSpace:
    """The search space registered under ``name`` (case-insensitive); RomenasError for an unknown name."""
    return space_entry(name).build()
