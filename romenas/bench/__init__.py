"""Benchmark helpers: NAS-Bench-201 and NAS-Bench-101 lookups and collapse metrics."""
from __future__ import annotations

from typing import Any, Mapping

from .collapse import collapse_metrics
from .nb101 import NB101Table
from .nb201 import NB201Table

__all__ = ["collapse_metrics", "NB201Table", "NB101Table", "search_tables", "lookup_lines"]


def search_tables(nb201_table: str | None, nb101_table: str | None) -> dict[str, Any]:
    """The benchmark tables a search looks its derived cell up in each epoch, by their metrics key."""
    tables = [NB201Table.load(nb201_table) if nb201_table else None, NB101Table(nb101_table) if nb101_table else None]
    return {t.name: t for t in tables if t is not None}


def lookup_lines(row: Mapping[str, Any]) -> list[str]:
    """A metrics row's benchmark lookups as summary lines ('NB201:    cifar10 93.76, ...')."""
    lines = []
    if isinstance(row.get("nb201"), dict):
        lines.append("NB201:    " + ", ".join(f"{k} {v:.2f}" for k, v in row["nb201"].items()))
    found = row.get("nb101")
    if isinstance(found, dict):
        lines.append("NB101:    " + (f"not in the benchmark ({found['missing']})" if "missing" in found else
                                     f"test {found['test_accuracy']:.2f}, validation "
                                     f"{found['validation_accuracy']:.2f} (108 epochs, mean of its runs)"))
    return lines
