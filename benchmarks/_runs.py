"""What the search benchmarks share: resumable runs per (variant, seed) and mean +- std tables."""
from __future__ import annotations

import csv
import statistics
from pathlib import Path
from typing import Any, Iterable

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"


def search_once(run: Path, settings: dict[str, Any]):
    """Search into ``run``, or finish/reuse the search already there (benchmarks can be re-run)."""
    import romenas

    if (run / "config.json").exists():
        return romenas.search(resume=run, progress=False)
    return romenas.search(out=run, **settings)


def mean_std(values: Iterable[float], digits: int = 2) -> str:
    values = list(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.{digits}f} +- {std:.{digits}f}"


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
