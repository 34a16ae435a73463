"""A sweep's results: one row per run read from its folders, and per group (algorithm x setting
x space) mean +- std, worst and best seed and the per-seed values of every metric."""
from __future__ import annotations

import csv
import io
import json
import math
import re
import statistics
from pathlib import Path
from typing import Any, Mapping

from ..report import run_state
from ..runs import RunDir
from .worker import LOGS, TRAINED

#: Per-run metrics, in the table's order: search val accuracy (%), the NAS-Bench-201 / -101 lookup
#: (CIFAR-10 test %), parameter-free ops and skips of the derived normal cell (NB201: the cell),
#: final op / edge entropy (1 = uniform), search time (s), peak process memory (MiB), and the
#: from-scratch training's test accuracy (%).
METRICS = ("val_acc", "bench_acc", "param_free", "skips", "op_entropy", "edge_entropy", "search_s", "peak_mib",
           "train_acc")


def group_of(name: str) -> str:
    """A run's group: its name without the seed (``rome-seed0-samples3`` -> ``rome-samples3``)."""
    return re.sub(r"-seed\d+", "", name, count=1)


def _number(value: Any) -> float | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if ok else None


def run_row(sweep: Path, name: str, settings: Mapping[str, Any]) -> dict[str, Any]:
    """The row of run ``name``: what it is, its state, and each of :data:`METRICS` (None: not there)."""
    row: dict[str, Any] = {"run": name, "group": group_of(name), "algorithm": settings.get("algorithm"),
                           "seed": settings.get("seed"), "space": "", "status": "pending", **dict.fromkeys(METRICS)}
    run = RunDir(sweep / name)
    if not run.is_run():
        return row
    try:
        _, cfg = run.info()
        rows = [r for r in run.metrics() if isinstance(r, dict) and _number(r.get("val_acc")) is not None]
        row.update(space=cfg.get("space", ""), status=run_state(run))
    except Exception:  # a damaged run folder is a row that says so, never a failed table
        row["status"] = "damaged"
        return row
    if rows:
        last = rows[-1]
        collapse = last.get("collapse") if isinstance(last.get("collapse"), dict) else {}
        bench = next((last[k] for k in ("nb201", "nb101") if isinstance(last.get(k), dict)), {})
        row.update(val_acc=_number(last.get("val_acc")), op_entropy=_number(last.get("op_entropy")),
                   edge_entropy=_number(last.get("edge_entropy")),
                   bench_acc=_number(bench.get("cifar10", bench.get("test_acc"))),
                   param_free=_number(collapse.get("param_free/normal", collapse.get("param_free/cell"))),
                   skips=_number(collapse.get("skip/normal", collapse.get("skip/cell"))),
                   search_s=sum(_number(r.get("seconds")) or 0.0 for r in rows), genotype=last.get("genotype"))
    trained = RunDir(sweep / TRAINED / name)
    if trained.status_file.exists():
        row["train_acc"] = _number(trained.status().get("test_acc"))
    try:
        row["peak_mib"] = _number(json.loads((sweep / LOGS / f"{name}.json").read_text()).get("peak_rss_mib"))
    except (OSError, ValueError, AttributeError):
        pass
    return row


def group_stats(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per group and metric: n, mean, std, worst and best (by value: the lowest and highest) and
    the values by seed; metrics no run of the group has are left out."""
    out = []
    for group in dict.fromkeys(r["group"] for r in rows):
        members = [r for r in rows if r["group"] == group]
        for metric in METRICS:
            by_seed = {r["seed"]: r[metric] for r in members if r[metric] is not None}
            if not by_seed:
                continue
            values = list(by_seed.values())
            out.append({"group": group, "space": members[0]["space"], "metric": metric, "n": len(values),
                        "mean": statistics.mean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
                        "worst": min(values), "best": max(values), "per_seed": by_seed})
    return out


def _fmt(value: float) -> str:
    return f"{value:.2f}" if abs(value) < 1e5 else f"{value:.3g}"


def format_table(rows: list[dict[str, Any]], as_csv: bool = False) -> str:
    """The sweep's table: a line per (group, metric) with mean +- std, worst, best and per seed."""
    stats = group_stats(rows)
    if as_csv:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["group", "space", "metric", "n", "mean", "std", "worst", "best", "per_seed"])
        for s in stats:
            writer.writerow([s["group"], s["space"], s["metric"], s["n"], s["mean"], s["std"], s["worst"], s["best"],
                             " ".join(f"{seed}:{v}" for seed, v in s["per_seed"].items())])
        return buffer.getvalue().rstrip("\n")
    done = sum(r["status"] == "finished" for r in rows)
    lines = [f"{done} of {len(rows)} runs finished"]
    if not stats:
        return lines[0]
    cells = [("group", "space", "metric", "n", "mean +- std", "worst", "best", "per seed")]
    for s in stats:
        cells.append((s["group"], s["space"], s["metric"], str(s["n"]), f"{_fmt(s['mean'])} +- {_fmt(s['std'])}",
                      _fmt(s["worst"]), _fmt(s["best"]),
                      " ".join(f"{seed}:{_fmt(v)}" for seed, v in s["per_seed"].items())))
    widths = [max(len(c[i]) for c in cells) for i in range(len(cells[0]))]
    lines += ["  ".join(c[i].ljust(widths[i]) for i in range(len(c))).rstrip() for c in cells]
    unfinished = [f"{r['run']} ({r['status']})" for r in rows if r["status"] != "finished"]
    if unfinished:
        lines.append("not finished: " + ", ".join(unfinished))
    return "\n".join(lines)
