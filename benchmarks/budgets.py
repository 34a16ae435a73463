"""Search under a budget: accuracy against cost, at several targets and without one.

For every algorithm, target (and no target) and seed it finds a cell within that budget, builds
the derived network at the budget's size, measures its MFLOPs and parameters, and reports
its accuracy: looked up in NAS-Bench-201 (``--space nb201``, the default; the budget prices
the benchmark's own network, C=16, N=5 on 32x32 images, so the table's accuracy is that
network's) or from a short retrain at the budget's size (``--space darts``,
``--train-epochs``). Writes ``budgets.csv`` (columns algorithm, metric, target, seed,
mflops, mparams, met, accuracy, ...), ``budgets.md`` and ``budgets.png`` (accuracy against
MFLOPs and against parameters, per algorithm and strategy).

Two strategies side by side (``--strategies``): "penalty" searches under the budget (the hinge on
the expected cost, then the most probable cell within it); "derive" reuses the search without a
budget and derives the most probable cell within each target afterwards (``romenas derive RUN
--target-mflops X``), one search for every target.

    python benchmarks/budgets.py --seeds 0 1 --targets 60 120 240              # NB201 cpu-proxy, MFLOPs
    python benchmarks/budgets.py --metric params --targets 0.3 0.6             # parameter budgets (millions)
    python benchmarks/budgets.py --space darts --targets 40 80 --budget-channels 8 --budget-layers 5 --train-epochs 5
"""
from __future__ import annotations

import statistics
from datetime import date
from pathlib import Path

from _runs import run_benchmark
from _runs import (SHARED, VARIANTS, benchmark_parser, convergence_columns, mean_std, per_seed_table, run_settings,
                   search_all, train_once, write_csv)
from nb201_search import PRESETS as NB201_PRESETS
from robust_spaces import PRESETS as DARTS_PRESETS

#: --metric -> the search setting that sets it.
TARGET_FLAGS = {"mflops": "target_mflops", "params": "target_params", "latency": "target_latency_ms"}
#: --metric -> the cost table's metric.
METRIC_KEYS = {"mflops": "mflops", "params": "mparams", "latency": "latency_ms"}
#: How a budget acts: "penalty" searches with it (the hinge on E[cost], then the most probable cell
#: within it); "derive" searches without one and derives the most probable cell within it afterwards.
STRATEGIES = ("penalty", "derive")
UNITS = {"mflops": "MFLOPs", "mparams": "M parameters", "latency_ms": "ms"}


def main() -> None:
    p = benchmark_parser(__doc__, {**NB201_PRESETS, **DARTS_PRESETS}, "budgets", seeds=[0, 1])
    p.add_argument("--space", choices=["nb201", "darts"], default="nb201")
    p.add_argument("--algorithms", nargs="+", default=["rome"], choices=list(VARIANTS))
    p.add_argument("--metric", choices=list(TARGET_FLAGS), default="mflops")
    p.add_argument("--targets", nargs="+", type=float, default=[60.0, 120.0, 240.0],
                   help="budgets in the metric's unit (MFLOPs, millions of parameters, ms); no budget is always run")
    p.add_argument("--strategies", nargs="+", choices=STRATEGIES, default=list(STRATEGIES),
                   help="penalty: search under the budget; derive: search without one, derive within it afterwards")
    p.add_argument("--budget-weight", type=float, help="lambda of the penalty (default: romenas')")
    p.add_argument("--budget-channels", type=int, help="C of the network the budget prices (default: the paper's)")
    p.add_argument("--budget-layers", type=int, help="cells of that network (default: the paper's)")
    p.add_argument("--train-epochs", type=int, default=0, help="DARTS space: retrain each derived network this long")
    p.add_argument("--table", default=str(SHARED / "nb201" / "nb201_test_accuracy_200ep.csv"))
    args = p.parse_args()
    if args.space == "darts" and not args.train_epochs:
        p.error("the DARTS space has no accuracy table: give --train-epochs N to retrain each derived network")

    from romenas.bench.nb201 import NB201Table
    from romenas.data import dataset_shape
    from romenas.search.budget import derive_within
    from romenas.spaces import build_network
    from romenas.spaces.cost import network_cost

    preset = (NB201_PRESETS if args.space == "nb201" else DARTS_PRESETS)[args.preset]
    size = {k: v for k, v in (("budget_channels", args.budget_channels), ("budget_layers", args.budget_layers),
                              ("budget_weight", args.budget_weight)) if v is not None}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table = NB201Table.load(args.table) if args.space == "nb201" else None
    rows = []

    def add(algorithm, strategy, target, seed, trained, genotype, last, budget_result, searched):
        if budget_result is not None:
            measured = {m: r["measured"] for m, r in budget_result.items()}
            met = all(r["met"] for r in budget_result.values())
        else:
            measured, met = {}, ""
        if "mflops" not in measured or "mparams" not in measured:  # the metrics no target measured
            classes, channels, side = dataset_shape(args.dataset)
            net = build_network(genotype, args.budget_channels, args.budget_layers, classes, channels)
            measured = {**network_cost(net, channels, side), **measured}
            if target is not None:
                met = measured[METRIC_KEYS[args.metric]] <= target
        if table is not None:
            accuracy = table.lookup(genotype)["cifar10"]
        else:
            accuracy = train_once(trained, genotype, args, seed, limit_train=preset.get("limit_train"),
                                  channels=args.budget_channels, layers=args.budget_layers).test_acc
        label = "none" if target is None else f"{target:g}"
        rows.append({"algorithm": algorithm, "strategy": strategy if target is not None else "-",
                     "metric": args.metric, "target": "" if target is None else target,
                     "seed": seed, "mflops": round(measured["mflops"], 3), "mparams": round(measured["mparams"], 4),
                     "latency_ms": round(measured["latency_ms"], 2) if "latency_ms" in measured else "",
                     "met": met, "accuracy": accuracy, **convergence_columns(last),
                     "search_seconds": round(sum(m["seconds"] for m in searched.metrics)),
                     "genotype": genotype.to_string()})
        print(f"{algorithm} {strategy} {args.metric} target {label} seed {seed}: {measured['mflops']:.1f} MFLOPs, "
              f"{measured['mparams']:.3f} M params, met {met}, accuracy {accuracy:.2f}", flush=True)

    extra = {"nb201_table": args.table} if args.space == "nb201" else {}
    names, searches = {}, {}  # (algorithm, seed, target) -> run name (target None: unconstrained)
    for algorithm in args.algorithms:
        for seed in args.seeds:
            targets = [None] + (list(args.targets) if "penalty" in args.strategies else [])
            for target in targets:
                label = "none" if target is None else f"{target:g}"
                budget = {} if target is None else {TARGET_FLAGS[args.metric]: target, **size}
                name = names[(algorithm, seed, target)] = f"{args.space}-{algorithm}-{args.metric}-{label}-seed{seed}"
                searches[name] = run_settings(args, preset, **VARIANTS[algorithm], **budget, **extra, space=args.space,
                                              seed=seed)
    results = search_all(args, searches)
    for algorithm in args.algorithms:
        for seed in args.seeds:
            free = out / "sweep" / names[(algorithm, seed, None)]
            unconstrained = results[free.name]
            add(algorithm, "-", None, seed, out / "trained" / free.name, unconstrained.genotype, unconstrained.metrics[-1], None,
                unconstrained)
            for target in args.targets:
                label = f"{target:g}"
                if "penalty" in args.strategies:
                    name = names[(algorithm, seed, target)]
                    result = results[name]
                    add(algorithm, "penalty", target, seed, out / "trained" / name, result.genotype, result.metrics[-1], result.budget,
                        result)
                if "derive" in args.strategies:
                    genotype, *_ = derive_within(free, {METRIC_KEYS[args.metric]: target},
                                                   channels=args.budget_channels, layers=args.budget_layers)
                    add(algorithm, "derive", target, seed, out / "trained" / f"{free.name}-derive{label}", genotype,
                        unconstrained.metrics[-1], None, unconstrained)
    write_csv(out / "budgets.csv", rows)
    source = "NAS-Bench-201 CIFAR-10 (looked up)" if args.space == "nb201" else f"test, {args.train_epochs}-epoch retrain"
    lines = [f"Budgets: {args.space}, preset {args.preset}, {args.metric} targets {args.targets}, seeds {args.seeds}, "
             f"{date.today()}", "",
             f"| algorithm | strategy | target | MFLOPs | M params | met | accuracy (%, {source}) | worst seed |",
             "|---|---|---|---|---|---|---|---|"]
    groups = {}
    for algorithm in args.algorithms:
        for strategy, target in [("-", ""), *((s, t) for t in args.targets for s in args.strategies)]:
            rs = [r for r in rows if r["algorithm"] == algorithm and r["target"] == target and r["strategy"] == strategy]
            groups[(algorithm, strategy, f"{target:g}" if target != "" else "none")] = rs
            met = "-" if target == "" else f"{sum(bool(r['met']) for r in rs)}/{len(rs)}"
            lines.append(f"| {algorithm} | {strategy} | {target if target != '' else 'none'} | "
                         f"{mean_std((r['mflops'] for r in rs), 1)} | {mean_std((r['mparams'] for r in rs), 3)} | "
                         f"{met} | {mean_std(r['accuracy'] for r in rs)} | {min(r['accuracy'] for r in rs):.2f} |")
    lines += per_seed_table("Per seed (MFLOPs / accuracy):", ["algorithm", "strategy", "target"],
                            {k: {r["seed"]: f"{r['mflops']:.1f} / {r['accuracy']:.2f}" for r in rs}
                             for k, rs in groups.items()}, args.seeds)
    (out / "budgets.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    _plot(rows, groups, args, out / "budgets.png")


def _plot(rows, groups, args, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    ylabel = "NAS-Bench-201 CIFAR-10 accuracy (%)" if args.space == "nb201" else "test accuracy (%)"
    for ax, metric in zip(axes, ("mflops", "mparams")):
        for algorithm in args.algorithms:
            for strategy in args.strategies:
                mine = {k: rs for k, rs in groups.items() if k[0] == algorithm and k[1] in ("-", strategy) and rs}
                xs = [statistics.mean(r[metric] for r in rs) for rs in mine.values()]
                ys = [statistics.mean(r["accuracy"] for r in rs) for rs in mine.values()]
                ax.scatter([r[metric] for rs in mine.values() for r in rs],
                           [r["accuracy"] for rs in mine.values() for r in rs], s=14, alpha=0.4)
                order = sorted(range(len(xs)), key=xs.__getitem__)
                ax.plot([xs[i] for i in order], [ys[i] for i in order], marker="o",
                        label=f"{algorithm}, {strategy} (seed mean)")
                for (_, _, target), x, y in zip(mine, xs, ys):
                    ax.annotate("no budget" if target == "none" else f"target {target}", (x, y),
                                textcoords="offset points", xytext=(4, 4), fontsize=7)
        ax.set(xlabel=f"derived network: {UNITS[metric]}", ylabel=ylabel,
               title=f"accuracy against {UNITS[metric]} ({args.metric} budgets)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    run_benchmark(main)
