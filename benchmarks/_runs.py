"""What the search benchmarks share: their searches as one romenas sweep (resumable, --jobs,
--executor), the variants they compare, and mean +- std tables."""
from __future__ import annotations

import argparse
import csv
import os
import sys
import statistics
from pathlib import Path
from typing import Any, Callable, Iterable

REPO = Path(__file__).resolve().parents[1]
#: The shared data (as the tests find it: $ROMENAS_SHARED_DATA, else ../shared/data beside the repository).
SHARED = Path(os.environ.get("ROMENAS_SHARED_DATA", REPO.parent / "shared" / "data"))

#: What each benchmark may run, by name: the three algorithms on their recipes, ROME's other
#: weight step, ROME's ablation grid (ROME.md's table: topology disentanglement "td", gradient
#: accumulation on alpha "acc-alpha" = K subnets averaged, on the weights "acc-w" = the fair
#: step; what is off runs as GDAS does: no beta, one Gumbel subnet), and K at equal iterations
#: (epochs x K held at the preset's, as the paper's K=1/4/7/10 -> 350/87/50/35 epochs).
VARIANTS: dict[str, dict[str, Any]] = {
    "rome": dict(algorithm="rome"),                                    # the default: fair weights, K for alpha
    "rome-alg1": dict(algorithm="rome", weight_sampling="gumbel"),    # ICCV Algorithm 1: K Gumbel subnets for w too
    "rome-subset": dict(algorithm="rome", edge_sampler="subset"),     # NB201 with 'none': beta turns edges off
    "rome-subset-fair-edges": dict(algorithm="rome", edge_sampler="subset", weight_sampling="fair-edges"),
    "rome-fair-edges": dict(algorithm="rome", weight_sampling="fair-edges"),  # every edge in the weight step
    "darts": dict(algorithm="darts"),
    "darts-2nd": dict(algorithm="darts", darts_order=2),
    "gdas": dict(algorithm="gdas"),
    "rome-off": dict(algorithm="rome", topology=False, samples=1, weight_sampling="single"),
    "rome-acc-alpha": dict(algorithm="rome", topology=False, weight_sampling="single"),
    "rome-acc-w": dict(algorithm="rome", topology=False, samples=1),
    "rome-acc-both": dict(algorithm="rome", topology=False),
    "rome-td": dict(algorithm="rome", samples=1, weight_sampling="single"),
    "rome-td-acc-alpha": dict(algorithm="rome", weight_sampling="single"),
    "rome-td-acc-w": dict(algorithm="rome", samples=1),
    "rome-K1": dict(algorithm="rome", samples=1, equal_iterations=True),
    "rome-K3": dict(algorithm="rome", samples=3, equal_iterations=True),
    "rome-K7": dict(algorithm="rome", samples=7, equal_iterations=True),
    # Not in any recipe: weights only for the first 5 epochs, for every algorithm alike.
    "rome-warmup5": dict(algorithm="rome", warmup_epochs=5),
    "gdas-warmup5": dict(algorithm="gdas", warmup_epochs=5),
    "darts-warmup5": dict(algorithm="darts", warmup_epochs=5),
}

#: The CPU proxies' rule (docs/method.md, "CPU proxies"), fixed before any run: each algorithm's
#: architecture Adam lr is its own recipe's, scaled to the recipe's total movement of alpha
#: (a_lr_recipe x recipe steps / proxy steps), and alpha has no weight decay; the same for every
#: algorithm. ``<preset>-matched`` is preset ``<preset>`` under this rule.
MATCHED_ARCH = dict(a_lr_rule="recipe-movement", a_weight_decay=0.0)


def with_matched(presets: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``presets`` plus, for each CPU preset, its ``-matched`` twin (the rule above instead of its a_lr)."""
    matched = {f"{name}-matched": {**{k: v for k, v in preset.items() if k != "a_lr"}, **MATCHED_ARCH}
               for name, preset in presets.items() if name.startswith("cpu-")}
    return {**presets, **matched}


def benchmark_parser(doc: str, presets: dict, results: str, seeds: list[int]) -> argparse.ArgumentParser:
    """The options every search benchmark takes: preset, data, seeds, epochs, output folder."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", choices=sorted(presets), default="cpu-proxy")
    p.add_argument("--dataset", default=str(SHARED / "cifar10"), help="image folder or torchvision dataset name")
    p.add_argument("--data-dir", help="where torchvision datasets live")
    p.add_argument("--seeds", nargs="+", type=int, default=seeds)
    p.add_argument("--epochs", type=int, help="override the preset's search epochs (the rome-K* variants scale "
                                              "them by K as the preset's epochs x K)")
    p.add_argument("--ops", nargs="+", metavar="OP",
                   help="restrict every edge to these ops, for every algorithm (default: the space's own)")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / results))
    p.add_argument("--jobs", type=int, default=1, help="searches at once (romenas sweep --jobs; default 1)")
    p.add_argument("--executor", choices=("local", "ray", "slurm"), default="local",
                   help="where the searches run (romenas sweep --executor; default local)")
    return p


def run_settings(args: argparse.Namespace, preset: dict[str, Any], **settings: Any) -> dict[str, Any]:
    """One search's settings: the preset, then ``settings`` (a variant's, the space, the seed), then
    the benchmark's data, epochs and ops options."""
    from romenas.algorithms import algorithm_entry, option_owners

    # A preset's value of a setting the variant's algorithm does not read does not apply (as in
    # the CLI); passed explicitly, it would be refused (DARTS takes no K).
    used = algorithm_entry(settings.get("algorithm", preset.get("algorithm", "rome"))).option_names
    preset = {k: v for k, v in preset.items() if k not in option_owners() or k in used}
    settings = {**preset, **settings, "dataset": args.dataset, "data_dir": args.data_dir}
    if args.epochs:
        settings["epochs"] = args.epochs
    if settings.pop("equal_iterations", False):  # epochs x K as the preset's (else ROME's recipe: 50 x 7)
        base = settings.get("epochs", 50) * preset.get("samples", 7)
        settings["epochs"] = max(1, round(base / settings["samples"]))
    if args.ops:
        settings["ops"] = args.ops
    return settings


def search_all(args: argparse.Namespace, runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Every search of ``runs`` (folder name -> :func:`run_settings`) as one romenas sweep into
    ``args.out/sweep``, ``args.jobs`` at once on ``args.executor``; returns each run's SearchResult.
    Re-running the benchmark reuses finished searches and resumes interrupted ones."""
    import romenas
    from romenas.errors import RomenasError

    folder = Path(args.out) / "sweep"
    entries = [{"name": name, **settings} for name, settings in runs.items()]
    done = romenas.sweep(runs=entries, out=folder, jobs=args.jobs, executor=args.executor, progress=True)
    failed = [f"{r['run']} ({r['status']})" for r in done.rows if r["run"] in runs and r["status"] != "finished"]
    if failed:
        raise RomenasError(f"searches not finished: {', '.join(failed)}; see {folder}/logs, then run the "
                           "benchmark again to resume them")
    return {name: romenas.search(resume=folder / name, progress=False) for name in runs}


def train_once(run: Path, genotype, args: argparse.Namespace, seed: int, **settings: Any):
    """Train ``genotype`` from scratch into ``run`` for ``args.train_epochs`` on the benchmark's data
    (a training already there is finished or reused instead)."""
    import romenas

    if (run / "config.json").exists():
        return romenas.train(resume=run, progress=False)
    return romenas.train(genotype, out=run, dataset=args.dataset, data_dir=args.data_dir, epochs=args.train_epochs,
                         seed=seed, progress=False, **settings)


def mean_std(values: Iterable[float], digits: int = 2) -> str:
    values = list(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.{digits}f} +- {std:.{digits}f}"


def per_seed_table(title: str, labels: list[str], groups: dict[tuple, dict[int, str]], seeds: list[int]) -> list[str]:
    """Markdown lines: one row per group (its label cells), one column per seed ('-' where missing)."""
    lines = ["", title, "", "| " + " | ".join(labels) + " | " + " | ".join(f"seed {s}" for s in seeds) + " |",
             "|" + "---|" * (len(labels) + len(seeds))]
    for key, by_seed in groups.items():
        lines.append("| " + " | ".join(key) + " | " + " | ".join(by_seed.get(s, "-") for s in seeds) + " |")
    return lines


def space_algorithm_table(rows: list[dict[str, Any]], spaces: list[str], algorithms: list[str], seeds: list[int],
                          columns: dict[str, Callable[[list[dict[str, Any]]], str]],
                          per_seed: tuple[str, str]) -> list[str]:
    """Markdown lines for a (space, algorithm) grid: a row per pair, a column per ``columns`` entry
    (its header -> its text from the pair's rows), then the per-seed table of ``per_seed`` (title, field)."""
    header = ["space", "algorithm", *columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    groups = {}
    for space in spaces:
        for algorithm in algorithms:
            rs = [r for r in rows if (r["space"], r["algorithm"]) == (space, algorithm)]
            lines.append("| " + " | ".join([space, algorithm] + [cell(rs) for cell in columns.values()]) + " |")
            groups[(space, algorithm)] = {r["seed"]: str(r[per_seed[1]]) for r in rs}
    return lines + per_seed_table(per_seed[0], ["space", "algorithm"], groups, seeds)


def convergence_columns(last: dict[str, Any]) -> dict[str, Any]:
    """A search's final mean normalised entropy and margin of its op (and edge) distributions."""
    keys = ("op_entropy", "op_margin", "edge_entropy", "edge_margin")
    return {k: round(last[k], 4) if k in last else "" for k in keys}


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def run_benchmark(main) -> None:
    """Run a benchmark's ``main``; romenas' own one-line errors (a missing data folder, a bad seed)
    end it with that line and exit 2, as the CLI does, instead of a traceback."""
    from romenas.errors import RomenasError

    try:
        main()
    except RomenasError as exc:
        print(f"{Path(sys.argv[0]).name}: error: {exc}", file=sys.stderr)
        sys.exit(2)
