"""NAS-Bench-1Shot1 with skip_connect added: does GDAS fill its cells with skips, and ROME not?

ROME's paper (arXiv 2011.11233, NAS-Bench-1Shot1 figures; no numbers are given) adds
skip_connect to the choice blocks' ops {maxpool3x3, conv3x3-bn-relu, conv1x1-bn-relu} and
shows GDAS' derived cells full of skips in all three spaces, ROME's not. For every (space,
algorithm, seed) this searches on CIFAR-10 (image folder), derives the cell and counts its
skip connections and parameter-free choice blocks (skip or max-pool), both in the derived
cell and in the cell the network runs (NAS-Bench-101 pruning drops blocks off every
input-output path). Writes a CSV and a Markdown table to ``--out``.

    python benchmarks/oneshot1_skips.py --preset cpu-proxy --seeds 0 1 2
    python benchmarks/oneshot1_skips.py --spaces 1shot1-s3 --algorithms gdas rome --seeds 0
    python benchmarks/oneshot1_skips.py --preset paper --dataset cifar10 --data-dir ~/data   # a GPU
"""
from __future__ import annotations

from datetime import date
from pathlib import Path

from _runs import (VARIANTS, benchmark_parser, convergence_columns, mean_std, run_benchmark, run_settings, search_all,
                   space_algorithm_table, with_matched, write_csv)

SPACES = ("1shot1-s1", "1shot1-s2", "1shot1-s3")
ALGORITHMS = ("darts", "gdas", "rome")
#: The choice blocks' ops with skip_connect added, as ROME's paper searches NAS-Bench-1Shot1.
OPS = ("maxpool3x3", "conv3x3-bn-relu", "conv1x1-bn-relu", "skip_connect")
_CPU_ARCH = dict(a_lr=0.05, a_weight_decay=0.0)  # as the other CPU proxies (benchmarks/nb201_search.py)
PRESETS = with_matched({
    "paper": dict(channels=16, layers=3),  # 1Shot1's supernet: C=16, 3 stacks of 3 cells; epochs from the recipes
    "cpu-proxy": dict(channels=8, layers=1, epochs=10, batch_size=64, samples=3, limit_train=1000, **_CPU_ARCH),
    # 6x the proxy's steps, for ops that decide (as robust_spaces' cpu-long)
    "cpu-long": dict(channels=8, layers=1, epochs=30, batch_size=64, samples=3, limit_train=2000, **_CPU_ARCH),
})


def skip_counts(genotype) -> dict[str, int]:
    """Skips and parameter-free blocks of the derived cell, and of the cell after NAS-Bench-101 pruning."""
    from romenas.registry import PARAMETER_FREE

    ops = genotype.ops("cell")
    spec = genotype.nb101_spec().pruned()
    kept = list(spec.ops[1:-1]) if spec is not None else []
    return {"skips": ops.count("skip_connect"), "param_free": sum(op in PARAMETER_FREE for op in ops),
            "blocks": len(ops), "skips_pruned": kept.count("skip_connect"),
            "param_free_pruned": sum(op in PARAMETER_FREE for op in kept), "blocks_pruned": len(kept)}


def main():
    p = benchmark_parser(__doc__, PRESETS, "oneshot1", seeds=[0, 1, 2])
    p.set_defaults(ops=list(OPS))
    p.add_argument("--spaces", nargs="+", default=list(SPACES), choices=SPACES)
    p.add_argument("--algorithms", nargs="+", default=list(ALGORITHMS), choices=list(VARIANTS))
    args = p.parse_args()

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    grid = [(space, algorithm, seed) for space in args.spaces for algorithm in args.algorithms for seed in args.seeds]
    results = search_all(args, {f"{space}-{algorithm}-seed{seed}": run_settings(
        args, PRESETS[args.preset], **VARIANTS[algorithm], space=space, seed=seed) for space, algorithm, seed in grid})
    rows = []
    for space, algorithm, seed in grid:
        result = results[f"{space}-{algorithm}-seed{seed}"]
        row = {"space": space, "algorithm": algorithm, "seed": seed, **skip_counts(result.genotype),
               **convergence_columns(result.metrics[-1]),
               "search_seconds": round(sum(m["seconds"] for m in result.metrics)),
               "genotype": result.genotype.to_string()}
        rows.append(row)
        print(f"{space} {algorithm:6s} seed {seed}: skips {row['skips']}/{row['blocks']} "
              f"(run: {row['skips_pruned']}/{row['blocks_pruned']})  {row['genotype']}", flush=True)
    write_csv(out / "oneshot1_skips.csv", rows)
    columns = {
        "skips per cell": lambda rs: f"{mean_std((r['skips'] for r in rs), 1)} of {rs[0]['blocks']}",
        "worst seed": lambda rs: str(max(r["skips"] for r in rs)),
        "param-free blocks": lambda rs: mean_std((r["param_free"] for r in rs), 1),
        "skips in the pruned cell": lambda rs: mean_std((r["skips_pruned"] for r in rs), 1),
        "blocks kept by pruning": lambda rs: mean_std((r["blocks_pruned"] for r in rs), 1),
        # how decided the ops are (1: uniform): a skip count from undecided ops is a draw, not a choice
        "op entropy": lambda rs: mean_std(r["op_entropy"] for r in rs),
        "search s": lambda rs: f"{sum(r['search_seconds'] for r in rs) / len(rs):.0f}",
    }
    lines = [f"NAS-Bench-1Shot1 with ops {list(args.ops)}, preset {args.preset}, seeds {args.seeds}, {date.today()}", ""]
    lines += space_algorithm_table(rows, args.spaces, args.algorithms, args.seeds, columns,
                                   ("Per seed (skips per derived cell):", "skips"))
    (out / "oneshot1_skips.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    run_benchmark(main)
