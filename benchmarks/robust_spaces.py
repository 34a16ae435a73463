"""RobustDARTS spaces S1-S4: do DARTS, GDAS and ROME collapse to parameter-free ops?

For every (space, algorithm, seed) it searches on CIFAR-10 (image folder), derives the
cell and counts its parameter-free ops and skip connections per cell type; with
``--train-epochs N`` it also trains each derived network from scratch and reports its
test accuracy. Writes a CSV and a Markdown table to ``--out``.

    python benchmarks/robust_spaces.py --preset cpu-proxy --spaces s2 s3 --seeds 0
    python benchmarks/robust_spaces.py --spaces s3 --ops sep_conv_3x3 skip_connect   # S3 without 'none' for all
    python benchmarks/robust_spaces.py --spaces s3 --algorithms ablation              # ROME's ablation grid
    python benchmarks/robust_spaces.py --preset paper --dataset cifar10 --data-dir ~/data   # a GPU
"""
from __future__ import annotations

from datetime import date
from pathlib import Path

from _runs import run_benchmark
from _runs import (VARIANTS, benchmark_parser, convergence_columns, mean_std, run_settings, search_all,
                   space_algorithm_table, train_once, with_matched, write_csv)

ALGORITHMS = ("darts", "gdas", "rome")
#: ROME's ablation in S1-S4, where topology disentanglement exists (benchmarks/_runs.py: VARIANTS).
ABLATION = ("gdas", "rome-off", "rome-acc-alpha", "rome-acc-w", "rome-acc-both", "rome-td", "rome-td-acc-alpha",
            "rome-td-acc-w", "rome")
# "paper": the published scale, the rest from each algorithm's recipe. The CPU presets adapt
# the architecture optimiser as the NAS-Bench-201 cpu-proxy does (lr 0.05, no weight decay;
# see benchmarks/nb201_search.py), the same for every algorithm.
#: ROME's paper (ICCV 2023), CIFAR-10, 3 searches each: parameter-free ops in the normal cell
#: ("Num"; DARTS' is not reported), printed beside ours (../shared/docs/ROME.md).
PAPER_PARAM_FREE = {("s1", "gdas"): "3.8 +- 0.4", ("s2", "gdas"): "6.0 +- 0.7", ("s3", "gdas"): "6.5 +- 0.5",
                    ("s4", "gdas"): "0.0", ("s1", "rome"): "1.3 +- 0.4", ("s2", "rome"): "2.0 +- 0.0",
                    ("s3", "rome"): "2.0 +- 0.0", ("s4", "rome"): "0.0"}
_CPU_ARCH = dict(a_lr=0.05, a_weight_decay=0.0)
PRESETS = with_matched({
    "paper": dict(channels=16, layers=8),
    "cpu-proxy": dict(channels=8, layers=5, epochs=10, batch_size=64, samples=3, limit_train=1000, **_CPU_ARCH),
    # 6x the proxy's steps: gives the weights time to train, which is when DARTS turns to skips.
    "cpu-long": dict(channels=8, layers=5, epochs=30, batch_size=64, samples=3, limit_train=2000, **_CPU_ARCH),
})


def main():
    p = benchmark_parser(__doc__, PRESETS, "robust", seeds=[0])
    p.add_argument("--spaces", nargs="+", default=["s1", "s2", "s3", "s4"], choices=["s1", "s2", "s3", "s4"])
    p.add_argument("--algorithms", nargs="+", default=list(ALGORITHMS), choices=[*VARIANTS, "ablation"],
                   help="algorithms or benchmark variants (benchmarks/_runs.py); 'ablation': ROME's ablation grid")
    p.add_argument("--train-epochs", type=int, default=0, help="also train each derived cell (0: skip)")
    args = p.parse_args()
    if "ablation" in args.algorithms:
        i = args.algorithms.index("ablation")
        args.algorithms[i:i + 1] = [a for a in ABLATION if a not in args.algorithms]

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    grid = [(space, algorithm, seed) for space in args.spaces for algorithm in args.algorithms for seed in args.seeds]
    results = search_all(args, {f"{space}-{algorithm}-seed{seed}": run_settings(
        args, PRESETS[args.preset], **VARIANTS[algorithm], space=space, seed=seed) for space, algorithm, seed in grid})
    rows = []
    for space, algorithm, seed in grid:
        name = f"{space}-{algorithm}-seed{seed}"
        result = results[name]
        collapse = result.metrics[-1]["collapse"]
        row = {"space": space, "algorithm": algorithm, "seed": seed,
               "param_free_normal": collapse["param_free/normal"], "skip_normal": collapse["skip/normal"],
               "param_free_reduce": collapse["param_free/reduce"], "skip_reduce": collapse["skip/reduce"],
               **convergence_columns(result.metrics[-1]),
               "search_seconds": round(sum(m["seconds"] for m in result.metrics)),
               "genotype": result.genotype.to_string(), "test_acc": ""}
        if args.train_epochs:
            row["test_acc"] = train_once(out / "trained" / name, result.genotype, args, seed).test_acc
        rows.append(row)
        print(f"{space} {algorithm:6s} seed {seed}: param-free normal {row['param_free_normal']}, "
              f"skip normal {row['skip_normal']}  {row['genotype']}", flush=True)
    write_csv(out / "robust_spaces.csv", rows)
    columns = {
        "param-free ops (normal)": lambda rs: mean_std((r["param_free_normal"] for r in rs), 1),
        "worst seed": lambda rs: str(max(r["param_free_normal"] for r in rs)),
        "paper (normal)": lambda rs: PAPER_PARAM_FREE.get((rs[0]["space"], rs[0]["algorithm"]), "-"),
        "skips (normal)": lambda rs: mean_std((r["skip_normal"] for r in rs), 1),
        "param-free ops (reduce)": lambda rs: mean_std((r["param_free_reduce"] for r in rs), 1),
        "test acc (%)": lambda rs: mean_std(r["test_acc"] for r in rs) if args.train_epochs else "-",
        "search s": lambda rs: f"{sum(r['search_seconds'] for r in rs) / len(rs):.0f}",
    }
    lines = [f"RobustDARTS spaces, preset {args.preset}, seeds {args.seeds}, {date.today()}", ""]
    lines += space_algorithm_table(rows, args.spaces, args.algorithms, args.seeds, columns,
                                   ("Per seed (parameter-free ops in the normal cell):", "param_free_normal"))
    (out / "robust_spaces.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    run_benchmark(main)
