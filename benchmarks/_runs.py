"""What the search benchmarks share: resumable runs per (variant, seed) and mean +- std tables."""
from __future__ import annotations

import argparse
import csv
import statistics
from pathlib import Path
from typing import Any, Iterable

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"


def benchmark_parser(doc: str, presets: dict, results: str, seeds: list[int]) -> argparse.ArgumentParser:
    """The options every search benchmark takes: preset, data, seeds, epochs, output folder."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", choices=sorted(presets), default="cpu-proxy")
    p.add_argument("--dataset", default=str(SHARED / "cifar10"), help="image folder or torchvision dataset name")
    p.add_argument("--data-dir", help="where torchvision datasets live")
    p.add_argument("--seeds", nargs="+", type=int, default=seeds)
    p.add_argument("--epochs", type=int, help="override the preset's search epochs")
    p.add_argument("--ops", nargs="+", metavar="OP",
                   help="restrict every edge to these ops, for every algorithm (default: the space's own)")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / results))
    return p


def search_once(run: Path, args: argparse.Namespace, preset: dict[str, Any], **settings: Any):
    """Search into ``run`` with the preset, the benchmark's data and epochs options and ``settings``;
    a search already there is finished or reused instead (benchmarks can be re-run)."""
    import romenas

    if (run / "config.json").exists():
        return romenas.search(resume=run, progress=False)
    settings = {**preset, **settings, "dataset": args.dataset, "data_dir": args.data_dir, "progress": False}
    if args.epochs:
        settings["epochs"] = args.epochs
    if args.ops:
        settings["ops"] = args.ops
    return romenas.search(out=run, **settings)


def mean_std(values: Iterable[float], digits: int = 2) -> str:
    values = list(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.{digits}f} +- {std:.{digits}f}"


def convergence_columns(last: dict[str, Any]) -> dict[str, Any]:
    """A search's final mean normalised entropy and margin of its op (and edge) distributions."""
    keys = ("op_entropy", "op_margin", "edge_entropy", "edge_margin")
    return {k: round(last[k], 4) if k in last else "" for k in keys}


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
