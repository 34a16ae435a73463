"""Benchmark helpers: NAS-Bench-201 lookups and collapse metrics."""
from .collapse import collapse_metrics
from .nb201 import NB201Table

__all__ = ["collapse_metrics", "NB201Table"]
