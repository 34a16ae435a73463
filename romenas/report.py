"""Run summaries for ``romenas show`` and ``romenas list``."""
from __future__ import annotations

import os
import socket
from datetime import datetime
from pathlib import Path
from typing import Any

from .bench import lookup_lines
from .config import budget_line, format_cost, method_summary
from .errors import RomenasError
from .runs import RunDir


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def run_state(run: RunDir) -> str:
    """finished / failed / running, or crashed when a 'running' run's process is gone."""
    status = run.status()
    state = status.get("state", "unknown")
    pid = status.get("pid")
    if state == "running" and status.get("host") == socket.gethostname() and not (
            isinstance(pid, int) and not isinstance(pid, bool) and pid > 0 and _alive(pid)):
        return "crashed"
    return state


def summary(path: str | Path) -> str:
    """One screen on a run: config, status (crashed runs detected), best epoch, genotype, lookups, timing."""
    run = RunDir(path)
    if not run.is_run():
        raise RomenasError(f"{str(path)[:80]} is not a romenas run folder (no config.json)")
    kind, saved = run.info()
    cfg = _Fields(saved)
    status, rows = run.status(), [r for r in run.metrics() if _complete(r, kind)]
    state = run_state(run)
    lines = [f"run:      {run.path}  ({kind})", f"status:   {state}"]
    if status.get("error"):
        lines.append(f"error:    {status['error']}")
    if state in ("crashed", "failed", "interrupted"):
        lines.append(f"resume:   romenas {kind} --resume {run.path}")
    started = status.get("started")
    if isinstance(started, (int, float)) and not isinstance(started, bool) and 0 < started < 1e11:
        lines.append(f"started:  {datetime.fromtimestamp(started):%Y-%m-%d %H:%M:%S}")
    if kind == "search":
        lines.append(f"setup:    {cfg['algorithm']} on {cfg['space']}, {cfg['dataset']}, C={cfg['channels']} "
                     f"layers={cfg['layers']} batch={cfg['batch_size']}, "
                     f"recipe {cfg.get('recipe', '-')}" + (f", ops {cfg['ops']}" if cfg.get("ops") else ""))
        lines.append(f"method:   {method_summary(saved)}")
    else:
        lines.append(f"setup:    {cfg['dataset']}, C={cfg['channels']} layers={cfg['layers']} epochs={cfg['epochs']} "
                     f"batch={cfg['batch_size']} lr={cfg['lr']}")
    lines.append(f"epochs:   {len(rows)} of {cfg['epochs']} done")
    if rows:
        mean_time = sum(r["seconds"] for r in rows) / len(rows)
        lines.append(f"time:     {mean_time:.1f} s per epoch")
        key = "val_acc" if kind == "search" else "test_acc"
        best = max(rows, key=lambda r: r[key])
        lines.append(f"best:     epoch {best['epoch']}, {key} {best[key]:.2f}%; last {rows[-1][key]:.2f}%")
        if kind == "search":
            try:
                lines += _search_extras(rows[-1])
            except (TypeError, ValueError, AttributeError, KeyError):
                lines.append("metrics:  the last row is damaged (see metrics.jsonl)")
    if kind == "search" and run.budget_file.exists():
        lines.append(_budget_summary(run))
    if run.genotype_file.exists():
        from .published import load_genotype
        lines.append(f"genotype: {load_genotype(run.path)}")
    elif rows and "genotype" in rows[-1]:
        lines.append(f"genotype: {rows[-1]['genotype']}  (at epoch {rows[-1]['epoch']})")
    if run.model_card.exists():
        lines += ["", run.model_card.read_text(errors="replace").rstrip()]
    return "\n".join(lines)


def _search_extras(last: dict) -> list[str]:
    """How decided the architecture is (ops, and edges where topology is searched), collapse, lookups."""
    lines = []
    if "op_entropy" in last:
        decided = f"decided:  op entropy {last['op_entropy']:.2f} (1 = uniform), margin {last['op_margin']:.2f}"
        if "edge_entropy" in last:
            decided += f"; edge entropy {last['edge_entropy']:.2f}, margin {last['edge_margin']:.2f}"
        lines.append(decided)
    lines.append(f"collapse: {last.get('collapse', '?')}")
    lines += lookup_lines(last)
    return lines


def _budget_summary(run: RunDir) -> str:
    """The search's budget: targets, and once it finished, the derived network's measured cost."""
    try:
        from .search.budget import saved_budget  # torch: show and list start without it

        saved = saved_budget(run)
    except RomenasError:
        return f"budget:   {run.budget_file.name} is damaged"
    if "derived" in saved:
        return budget_line(saved["derived"], saved["table"]["network"], saved.get("mode"))
    return "budget:   " + ", ".join(f"{format_cost(m, t)}" for m, t in saved["targets"].items()) + \
        " (the derived network is measured when the search ends)"


class _Fields(dict):
    """A saved config read for display: a missing setting shows as '?' instead of failing."""

    def __missing__(self, key: str) -> str:
        return "?"


def _complete(row, kind: str) -> bool:
    """A metrics row with the fields ``show`` reads (a damaged line is left out, not fatal)."""
    need = ("epoch", "seconds", "val_acc" if kind == "search" else "test_acc")
    return isinstance(row, dict) and all(isinstance(row.get(k), (int, float)) for k in need)


#: The columns of ``romenas list``, in order.
LIST_COLUMNS = ("run", "kind", "algorithm", "space", "dataset", "epochs", "accuracy", "nb201", "param_free",
                "budget", "status")


def run_rows(root: str | Path) -> list[dict[str, Any]]:
    """One row per run folder under ``root``: what it is, how far it got, its result ('accuracy' is a
    search's last val_acc or a training's test_acc; 'nb201' the looked-up CIFAR-10 accuracy; 'param_free'
    the parameter-free ops of the derived normal cell / NB201 cell; 'budget' met or NOT met). A damaged
    run is a row that says so."""
    root = Path(root)
    if not root.is_dir():
        raise RomenasError(f"{root} is not a folder; pass the folder that holds your runs")
    rows = []
    for config in sorted(root.glob("*/config.json")):
        run = RunDir(config.parent)
        row = dict.fromkeys(LIST_COLUMNS, "")
        row["run"] = run.path.name
        try:
            kind, cfg = run.info()
            metrics = [r for r in run.metrics() if _complete(r, kind)]
            last = metrics[-1] if metrics else {}
            collapse = last.get("collapse") if isinstance(last.get("collapse"), dict) else {}
            nb201 = last.get("nb201") if isinstance(last.get("nb201"), dict) else {}
            row.update(kind=kind, algorithm=cfg.get("algorithm", "-") if kind == "search" else "-",
                       space=cfg.get("space", "-") if kind == "search" else _family(cfg),
                       dataset=str(cfg.get("dataset", "?")), epochs=f"{len(metrics)}/{cfg.get('epochs', '?')}",
                       accuracy=round(last[_ACCURACY[kind]], 2) if last else "",
                       nb201=round(nb201["cifar10"], 2) if isinstance(nb201.get("cifar10"), (int, float)) else "",
                       param_free=collapse.get("param_free/normal", collapse.get("param_free/cell", "")),
                       budget=_budget_verdict(run) if kind == "search" else "", status=run_state(run))
        except (RomenasError, KeyError, TypeError, ValueError, AttributeError):  # one damaged run must not hide the rest
            row.update(kind="?", status="damaged")
        rows.append(row)
    return rows


_ACCURACY = {"search": "val_acc", "train": "test_acc"}


def _budget_verdict(run: RunDir) -> str:
    """'met' / 'NOT met' once a budgeted search has measured its derived network ('' without a budget)."""
    if not run.budget_file.is_file():
        return ""
    try:
        from .search.budget import saved_budget  # torch: show and list start without it

        saved = saved_budget(run)
    except RomenasError:
        return "?"
    if saved is None:
        return ""
    if "derived" not in saved:
        return "pending" if run_state(run) == "running" else "?"
    return "met" if all(r["met"] for r in saved["derived"].values()) else "NOT met"


def _family(cfg: dict[str, Any]) -> str:
    genotype = cfg.get("genotype")
    return str(genotype.get("family", "?")) if isinstance(genotype, dict) else "?"


def list_runs(root: str | Path, sort: str = "run", csv: bool = False) -> str:
    """``romenas list``: the runs under ``root`` as a table (or CSV), sorted by a column (numbers
    descending, so the best accuracy comes first; text ascending)."""
    if sort not in LIST_COLUMNS:
        raise RomenasError(f"unknown column {sort!r} for --sort; use one of {list(LIST_COLUMNS)}")
    rows = run_rows(root)
    numbers = [r for r in rows if isinstance(r[sort], (int, float))]
    others = [r for r in rows if not isinstance(r[sort], (int, float))]
    rows = sorted(numbers, key=lambda r: -r[sort]) + sorted(others, key=lambda r: str(r[sort]))
    if csv:
        import csv as csv_module
        import io

        buffer = io.StringIO()
        writer = csv_module.DictWriter(buffer, fieldnames=LIST_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return buffer.getvalue().rstrip("\n")
    if not rows:
        return f"no runs under {root} (a run folder holds a config.json)"
    header = {c: c.replace("_", "-") for c in LIST_COLUMNS}
    widths = {c: max(len(str(r[c])) for r in [header, *rows]) for c in LIST_COLUMNS}
    return "\n".join("  ".join(f"{str(r[c]):{widths[c]}s}" for c in LIST_COLUMNS).rstrip() for r in [header, *rows])
