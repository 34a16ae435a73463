"""Search algorithms on one shared bi-level loop (registered in romenas/algorithms.py)."""
from .base import ALGORITHMS, SearchAlgorithm, create_algorithm

__all__ = ["ALGORITHMS", "SearchAlgorithm", "create_algorithm"]
