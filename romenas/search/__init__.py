"""Search algorithms on one shared bi-level loop."""
from .base import ALGORITHMS, SearchAlgorithm
from . import darts, gdas, rome  # noqa: F401  (register the algorithms)

__all__ = ["ALGORITHMS", "SearchAlgorithm"]
