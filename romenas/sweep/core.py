"""``romenas sweep``: many searches, each an ordinary run folder under one sweep folder, with a
manifest (``sweep.json``) that makes the same command continue where it stopped.

Re-running a sweep reuses finished runs, resumes interrupted ones from their checkpoints,
retries failed ones up to ``retries`` times, and adds only the runs a changed grid adds; a run
folder whose settings differ from the sweep's is refused, never overwritten.
"""
from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from .. import arguments
from ..errors import RomenasError
from ..runs import RunDir, _write_atomic
from .executors import EXECUTORS, LocalExecutor, RayExecutor, SlurmExecutor
from .grid import SweepRun, check_runs, file_runs, grid_runs, listed_runs, parse_grid
from .table import format_table, run_row
from .worker import TRAINED

MANIFEST = "sweep.json"


@dataclass
class SweepResult:
    """What a sweep returns: its folder, one row per run (romenas/sweep/table.py) and the table."""

    sweep_dir: Path
    rows: list[dict[str, Any]]
    table: str


def _same(a: Any, b: Any) -> bool:
    norm = (lambda v: list(v) if isinstance(v, tuple) else v)
    return norm(a) == norm(b)


def read_manifest(sweep: Path) -> dict[str, Any]:
    """The sweep folder's manifest, checked to have the shape a sweep writes."""
    path = sweep / MANIFEST
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise RomenasError(f"cannot read {path}: {exc.strerror or exc}") from None
    except ValueError:
        raise RomenasError(f"{path} is damaged (not JSON); restore it, or run the sweep again with the same "
                           "flags: its finished runs are reused") from None
    if not (isinstance(data, dict) and isinstance(data.get("runs"), dict)
            and all(isinstance(r, dict) and isinstance(r.get("settings"), dict) for r in data["runs"].values())):
        raise RomenasError(f"{path} is damaged (expected {{'runs': {{name: {{'settings': ...}}}}}}); restore it, "
                           "or delete it and run the sweep again with the same flags")
    return data


def is_sweep(path: str | Path) -> bool:
    return (Path(path) / MANIFEST).is_file()


def sweep_rows(sweep: str | Path) -> list[dict[str, Any]]:
    sweep = Path(sweep)
    return [run_row(sweep, name, entry["settings"]) for name, entry in read_manifest(sweep)["runs"].items()]


def _check_folder(sweep: Path, run: SweepRun) -> None:
    """A run folder already there must hold this run: the settings the sweep gives it, as recorded."""
    folder = RunDir(sweep / run.name)
    if not folder.is_run():
        if folder.path.exists() and any(folder.path.iterdir()):
            raise RomenasError(f"{folder.path} holds other files, not a run; move them away or use another --out")
        return
    _, saved = folder.info()
    differ = [f"{k} {saved.get(k)!r} (the sweep: {v!r})" for k, v in run.settings.items()
              if k in saved and not _same(saved[k], v)]
    if differ:
        raise RomenasError(f"{folder.path} holds a run with {', '.join(differ)}; this sweep would not reuse it: "
                           "use another --out, or the settings it was made with")


def sweep(algorithms: Sequence[str] = (), seeds: Sequence[int] = (0,), *, out: str | Path,
          grid: Mapping[str, Sequence[Any]] | Sequence[str] | None = None, runs_file: str | Path | None = None,
          runs: Sequence[Mapping[str, Any]] | None = None,
          preset: str | None = None, jobs: int = 1, threads: int | None = None, executor: str = "local",
          devices: Sequence[str] | None = None, retries: int = 1, train: str | None = None,
          train_epochs: int | None = None, wait: bool = True, ray_address: str | None = None,
          ray_cpus: float = 1.0, ray_gpus: float = 0.0, slurm_partition: str | None = None, slurm_time: int = 240,
          slurm_gpus: int = 0, slurm_cpus: int = 2, slurm_cluster: str | None = None, progress: bool = True,
          **settings: Any) -> SweepResult:
    """Run every (algorithm, seed, grid point) search, or the runs of ``runs_file``, into ``out``.

    ``grid``: {setting: [values]} or ``['samples=3,7', ...]``; ``runs`` (or ``runs_file``, YAML): the
    runs one by one instead, ``[{'algorithm': 'rome', 'seed': 0, 'name': ..., setting: value}, ...]``;
    ``settings``: any search setting, for every run (an algorithm's option only for the algorithms that own it). ``jobs``: runs at once
    (default: 1 locally, all on Ray or SLURM); ``threads``: torch threads per local run (default: the
    cores split between the jobs). ``retries``: how often a failed run is run again (it resumes).
    ``train``: a training preset; each derived genotype is then trained from scratch into
    ``out/trained/<run>``. ``wait=False`` (SLURM only): submit and return; the same call later
    collects. Returns the rows and the table; RomenasError (one line) on bad input, before any run.
    """
    out = Path(arguments.path(out, "out"))
    executor = arguments.coerce(executor, str, "executor")
    if executor not in EXECUTORS:
        raise RomenasError(f"unknown executor {executor!r}; use one of {list(EXECUTORS)}")
    algorithms = () if algorithms in (None, ()) else arguments.strings(algorithms, "algorithms")
    seeds = [seeds] if isinstance(seeds, int) and not isinstance(seeds, bool) else seeds
    if not isinstance(seeds, (list, tuple)):
        raise RomenasError(f"seeds takes a list of whole numbers, got {arguments.shown(seeds)}")
    jobs, retries, slurm_time, slurm_gpus, slurm_cpus = (
        arguments.at_least(v, least, label) for label, v, least in (
            ("jobs", jobs, 1), ("retries", retries, 0), ("slurm_time", slurm_time, 1),
            ("slurm_gpus", slurm_gpus, 0), ("slurm_cpus", slurm_cpus, 1)))
    threads, train_epochs = (None if v is None else arguments.at_least(v, 1, label)
                             for label, v in (("threads", threads), ("train_epochs", train_epochs)))
    ray_cpus, ray_gpus = (arguments.coerce(v, float, label) for label, v in (("ray_cpus", ray_cpus),
                                                                              ("ray_gpus", ray_gpus)))
    for label, value, least in (("ray_cpus", ray_cpus, 1e-9), ("ray_gpus", ray_gpus, 0.0)):
        if value < least:
            raise RomenasError(f"{label} must be {'above' if least else 'at least'} 0 (a share of a node's CPUs "
                               f"or GPUs per run), got {value:g}")
    wait, progress = arguments.coerce(wait, bool, "wait"), arguments.coerce(progress, bool, "progress")
    preset, train, ray_address, slurm_partition, slurm_cluster = (
        None if v is None else arguments.coerce(v, str, label) for label, v in (
            ("preset", preset), ("train", train), ("ray_address", ray_address),
            ("slurm_partition", slurm_partition), ("slurm_cluster", slurm_cluster)))
    devices = None if devices is None else arguments.strings(devices, "devices")
    runs_file = arguments.optional_path(runs_file, "runs_file")
    if isinstance(grid, str):  # one 'setting=v1,v2' item, never its characters
        grid = [grid]
    if isinstance(grid, (list, tuple)):
        grid = parse_grid(grid)
    elif grid is not None:
        if not isinstance(grid, Mapping):
            raise RomenasError(f"grid takes {{setting: [values]}} or ['setting=v1,v2', ...], got "
                               f"{arguments.shown(grid)}")
        grid = {k: list(v) if isinstance(v, (list, tuple)) else [v] for k, v in grid.items()}  # a scalar: one value
    common = {k: v for k, v in settings.items() if v is not None}
    if runs_file is not None or runs is not None:
        if grid or algorithms or (runs_file is not None and runs is not None):
            raise RomenasError("--runs lists the runs itself; drop --algorithms and --grid, or drop --runs")
        runs = file_runs(runs_file, common) if runs_file is not None else listed_runs(runs, common)
    else:
        runs = grid_runs(list(algorithms), list(seeds), grid, common)
    check_runs(runs, preset)
    if out.exists() and not out.is_dir():
        raise RomenasError(f"--out {out} is a file; pass a folder for the sweep")
    if out.is_dir() and any(out.iterdir()) and not is_sweep(out):
        raise RomenasError(f"--out {out} holds files but no {MANIFEST}; pass a new folder or an earlier sweep's")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RomenasError(f"cannot create sweep folder {out}: {exc.strerror or exc}") from None
    with RunDir(out).lock():
        manifest = read_manifest(out) if is_sweep(out) else {"version": 1, "runs": {}}
        for run in runs:
            known = manifest["runs"].get(run.name)
            if known is not None and not all(_same(known["settings"].get(k), v) for k, v in run.settings.items()):
                was = {k: known["settings"].get(k) for k, v in run.settings.items()
                       if not _same(known["settings"].get(k), v)}
                raise RomenasError(f"sweep {out} made run {run.name} with {was}; this command gives it other settings "
                                   "(a common flag changed?): use another --out, or the flags it was made with")
            _check_folder(out, run)
        for run in runs:
            manifest["runs"].setdefault(run.name, {"settings": run.settings, "status": "pending", "attempts": 0})
        stages = {"preset": preset, "train": train and {"preset": train, "epochs": train_epochs}}
        for key, value in stages.items():
            if manifest["runs"] and key in manifest and manifest[key] != value:
                raise RomenasError(f"sweep {out} was made with {key} {manifest[key]!r}, this command gives {value!r}; "
                                   "use another --out, or the flags it was made with")
        manifest.update(stages)
        _save(out, manifest)
        engine = _executor(out, executor, jobs, threads, devices, ray_address, ray_cpus, ray_gpus, slurm_partition,
                           slurm_time, slurm_gpus, slurm_cpus, slurm_cluster, wait)
        names = [run.name for run in runs]
        _drive(out, manifest, names, engine, preset, threads or _threads(jobs), retries, wait, progress)
        rows = [run_row(out, name, manifest["runs"][name]["settings"]) for name in manifest["runs"]]
    table = format_table(rows)
    return SweepResult(out, rows, table)


def _threads(jobs: int) -> int:
    return max(1, (os.cpu_count() or 1) // max(1, jobs))


def _executor(out, executor, jobs, threads, devices, ray_address, ray_cpus, ray_gpus, partition, time_min, gpus,
              cpus, cluster, wait):
    if executor == "local":
        engine = LocalExecutor(out, jobs, threads or _threads(jobs), list(devices or []))
    elif executor == "ray":
        engine = RayExecutor(out, jobs if jobs > 1 else None, ray_cpus, ray_gpus, ray_address)
    else:
        engine = SlurmExecutor(out, jobs if jobs > 1 else None, partition, time_min, gpus, cpus, cluster)
    if not wait and getattr(engine, "cluster", None) != "slurm":
        raise RomenasError("--no-wait leaves the runs to a scheduler, and only SLURM (sbatch) is one; drop --no-wait")
    return engine


def _save(out: Path, manifest: dict[str, Any]) -> None:
    _write_atomic(out / MANIFEST, json.dumps(manifest, indent=1) + "\n")


def _done(out: Path, name: str, train: bool) -> bool:
    for folder in [out / name] + ([out / TRAINED / name] if train else []):
        if RunDir(folder).status().get("state") != "finished":
            return False
    return True


def _drive(out: Path, manifest: dict[str, Any], names: list[str], engine, preset, threads: int, retries: int,
           wait: bool, progress: bool) -> None:
    """Submit what is not done, keep at most ``engine.slots`` in flight, retry failures, record each."""
    runs, train = manifest["runs"], manifest.get("train")
    queue = []
    for name in names:
        entry = runs[name]
        if _done(out, name, bool(train)):
            entry["status"] = "finished"
        elif entry.get("job") and hasattr(engine, "in_flight") and engine.in_flight(entry["job"]):
            entry["status"] = "submitted"
        else:
            entry["attempts"] = 0 if entry.get("status") == "failed" else entry.get("attempts", 0)
            queue.append(name)
    _save(out, manifest)
    bar = None
    if progress and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=len(names), initial=len(names) - len(queue), desc="runs", unit="run", leave=False)
    say = (bar.write if bar else print) if progress else (lambda line: None)
    slots = engine.slots or len(queue) or 1
    in_flight: set[str] = set()
    try:
        while queue or in_flight:
            while queue and len(in_flight) < slots:
                name = queue.pop(0)
                entry = runs[name]
                spec = {"sweep": str(out), "name": name, "settings": entry["settings"], "preset": preset,
                        "threads": threads, "train": train}
                job = engine.submit(spec)
                entry.update(status="running", attempts=entry.get("attempts", 0) + 1, **({"job": job} if job else {}))
                in_flight.add(name)
            _save(out, manifest)
            if not wait:
                say(f"submitted {len(in_flight)} run(s) to SLURM; run the same romenas sweep command to collect them")
                return
            for name, error in engine.poll(timeout=5.0):
                in_flight.discard(name)
                entry = runs[name]
                if error is None:
                    entry.update(status="finished", error=None)
                    row = run_row(out, name, entry["settings"])
                    say(f"finished {name}: val acc {row['val_acc']:.2f}%" if row["val_acc"] is not None
                        else f"finished {name}")
                    if bar:
                        bar.update(1)
                elif entry["attempts"] <= retries:
                    say(f"{name} failed ({error}); retrying it from its checkpoint")
                    queue.append(name)
                else:
                    entry.update(status="failed", error=error)
                    say(f"{name} failed after {entry['attempts']} attempt(s): {error}")
                    if bar:
                        bar.update(1)
                _save(out, manifest)
    except BaseException:
        engine.close()  # a stopped sweep stops its runs, each with a checkpoint to resume from
        for name in in_flight:
            runs[name]["status"] = "interrupted"
        _save(out, manifest)
        raise
    finally:
        if bar:
            bar.close()
    with contextlib.suppress(Exception):
        engine.close()
