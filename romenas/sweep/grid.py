"""A sweep's runs: the grid (algorithms x seeds x settings) or a YAML list, each run named by
its settings and checked as ``romenas search`` would check it, before anything runs."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from ..algorithms import ALGORITHM_ENTRIES, option_owners
from ..config import SearchConfig, build_config, resolve_preset
from ..errors import RomenasError

#: Settings a sweep sets per run itself (its grid axes); a grid or the common flags may not.
OWN_AXES = ("algorithm", "seed")


@dataclass(frozen=True)
class SweepRun:
    """One search of a sweep: its folder name under the sweep and the settings that make it."""

    name: str
    settings: dict[str, Any] = field(hash=False)


def parse_grid(items: Sequence[str]) -> dict[str, list[Any]]:
    """``['samples=3,7', 'tau_min=0.1']`` -> ``{'samples': [3, 7], 'tau_min': [0.1]}``; each value
    read as YAML reads it (3 an int, 0.1 a float, true a bool, nb201 a string). RomenasError on
    an item without '=', an empty value list or a setting named twice."""
    grid: dict[str, list[Any]] = {}
    for item in items:
        key, sep, values = str(item).partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise RomenasError(f"--grid {item!r} is not SETTING=V1,V2,...; e.g. --grid samples=3,7")
        parts = [v.strip() for v in values.split(",")]
        if not values.strip() or any(not v for v in parts):
            raise RomenasError(f"--grid {item!r} has an empty value; give SETTING=V1,V2,... with each value set")
        if key in grid:
            raise RomenasError(f"--grid names {key} twice; give all its values in one SETTING=V1,V2,...")
        grid[key] = [_scalar(v) for v in parts]
    return grid


def _scalar(text: str) -> Any:
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return value if isinstance(value, (bool, int, float, str)) else text


def _token(value: Any) -> str:
    text = "+".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
    return re.sub(r"[^A-Za-z0-9.+=-]", "_", text)


def _check_keys(keys, algorithms: Sequence[str], where: str) -> None:
    """Every key a search setting, and an algorithm option owned by at least one of ``algorithms``."""
    shared = {f for f in SearchConfig.__dataclass_fields__ if f != "options"}
    owners = option_owners()
    for key in keys:
        if key in OWN_AXES:
            raise RomenasError(f"{where} sets {key}, which the sweep sets per run; use --{key}s")
        if key not in shared and key not in owners:
            raise RomenasError(f"{where} names {key!r}, which is no search setting; see romenas search --help")
        if key in owners and not set(owners[key]) & set(algorithms):
            raise RomenasError(f"{where} sets {key}, an option of {'/'.join(owners[key])} only, and the sweep runs "
                               f"{', '.join(algorithms)}; drop it or add that algorithm")


def grid_runs(algorithms: Sequence[str], seeds: Sequence[int], grid: Mapping[str, Sequence[Any]] | None = None,
              common: Mapping[str, Any] | None = None) -> list[SweepRun]:
    """Every (algorithm, seed, grid point): ``<algorithm>-seed<S>`` plus ``-<setting><value>`` per grid
    setting the algorithm reads (an option of another algorithm is left out of its runs)."""
    grid, common = dict(grid or {}), {k: v for k, v in (common or {}).items() if v is not None}
    if not algorithms:
        raise RomenasError("a sweep needs --algorithms (one or more of " + ", ".join(ALGORITHM_ENTRIES) + ")")
    for algorithm in algorithms:
        if algorithm not in ALGORITHM_ENTRIES:
            raise RomenasError(f"unknown algorithm {algorithm!r} in --algorithms; use some of {sorted(ALGORITHM_ENTRIES)}")
    if len(set(algorithms)) != len(algorithms):
        raise RomenasError(f"--algorithms lists one twice ({list(algorithms)}); name each once")
    if not seeds:
        raise RomenasError("a sweep needs --seeds (one or more whole numbers)")
    if any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds):
        raise RomenasError(f"--seeds takes whole numbers >= 0, got {list(seeds)}")
    if len(set(seeds)) != len(seeds):
        raise RomenasError(f"--seeds lists a seed twice ({list(seeds)}); each seed once")
    for key, values in grid.items():
        if not values:
            raise RomenasError(f"--grid {key}= has no values; give {key}=V1,V2,...")
    _check_keys(grid, algorithms, "--grid")
    _check_keys(common, algorithms, "the sweep's flags")
    owners = option_owners()
    runs, names = [], set()
    for algorithm in algorithms:
        reads = [k for k in grid if k not in owners or algorithm in owners[k]]
        mine = {k: v for k, v in common.items() if k not in owners or algorithm in owners[k]}
        for seed in seeds:
            for point in product(*(grid[k] for k in reads)):
                values = dict(zip(reads, point))
                name = "-".join([f"{algorithm}-seed{seed}", *(f"{k}{_token(v)}" for k, v in values.items())])
                if name not in names:
                    names.add(name)
                    runs.append(SweepRun(name, {**mine, **values, "algorithm": algorithm, "seed": seed}))
    return runs


def file_runs(path: str | Path, common: Mapping[str, Any] | None = None) -> list[SweepRun]:
    """Runs listed in a YAML file: ``runs: [{algorithm: rome, seed: 0, samples: 3, name: ...}, ...]``
    (or the list alone); see :func:`listed_runs`."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise RomenasError(f"cannot read runs file {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise RomenasError(f"runs file {path} is not valid YAML ({str(exc).splitlines()[0]})") from None
    return listed_runs(data.get("runs") if isinstance(data, dict) else data, common, f"runs file {path}")


def listed_runs(entries: Any, common: Mapping[str, Any] | None = None, where: str = "runs") -> list[SweepRun]:
    """Runs given one by one, each a mapping of settings with ``algorithm``, ``seed`` (default 0) and
    an optional ``name`` (default: named as the grid names its runs); ``common`` applies to each."""
    if not isinstance(entries, (list, tuple)) or not entries or not all(isinstance(e, Mapping) for e in entries):
        raise RomenasError(f"{where} must hold a list of runs, each a mapping of settings "
                           "(e.g. runs: [{algorithm: rome, seed: 0}])")
    common = {k: v for k, v in (common or {}).items() if v is not None}
    runs, names = [], set()
    for i, entry in enumerate(entries):
        entry = {k: v for k, v in entry.items() if v is not None}
        name = entry.pop("name", None)
        algorithm, seed = entry.get("algorithm"), entry.get("seed", 0)
        one = grid_runs([algorithm], [seed], {k: [v] for k, v in entry.items() if k not in OWN_AXES}, common)[0]
        name = one.name if name is None else str(name)
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._+=-]{0,120}", name):
            raise RomenasError(f"run {i + 1} of {where} is named {name!r}; use letters, digits and . _ + = - only")
        if name in names:
            raise RomenasError(f"{where} names two runs {name!r}; give each its own name or settings")
        names.add(name)
        runs.append(SweepRun(name, one.settings))
    return runs


def check_runs(runs: Sequence[SweepRun], preset: str | None) -> None:
    """Each run's settings resolved as ``romenas search`` resolves them: a bad value is one line,
    naming the run, before any run starts."""
    for run in runs:
        try:
            build_config(SearchConfig, run.settings, resolve_preset(preset, run.settings))
        except RomenasError as exc:
            raise RomenasError(f"run {run.name}: {exc}") from None
