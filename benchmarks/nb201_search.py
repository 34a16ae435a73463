"""NAS-Bench-201 search comparison: DARTS, GDAS, ROME and ROME's ablations over seeds.

Each search's genotype is looked up in the NAS-Bench-201 table every epoch; writes a CSV,
a Markdown table (mean +- std per algorithm) and a plot of looked-up accuracy per epoch.

    python benchmarks/nb201_search.py --preset cpu-proxy --seeds 0 1 2
    python benchmarks/nb201_search.py --preset paper --data-dir ~/data --dataset cifar10   # a GPU
"""
from __future__ import annotations

import json
import statistics
from datetime import date
from pathlib import Path

from _runs import SHARED, benchmark_parser, mean_std, search_once, write_csv

VARIANTS = {
    "darts": dict(algorithm="darts"),
    "gdas": dict(algorithm="gdas"),
    "rome": dict(algorithm="rome"),
    "rome-no-topology": dict(algorithm="rome", topology=False),
    "rome-K1": dict(algorithm="rome", samples=1),
    "rome-unfair": dict(algorithm="rome", fair=False),
}
# NAS-Bench-201 keeps every edge, so ROME has no beta there; disentangling topology from
# ops means 'none' (an absent edge) is not an op choice. "rome-no-topology" puts 'none'
# back among the ops, as GDAS and DARTS search them.
PRESETS = {
    "paper": dict(channels=16, layers=5, epochs=250, batch_size=64, samples=5, w_lr=0.025, w_weight_decay=5e-4,
                  w_nesterov=True),
    "cpu-proxy": dict(channels=8, layers=1, epochs=15, batch_size=64, samples=3, limit_train=5000, w_lr=0.025,
                      w_weight_decay=5e-4, w_nesterov=True),
}


def main():
    p = benchmark_parser(__doc__, PRESETS, "nb201", seeds=[0, 1, 2])
    p.add_argument("--table", default=str(SHARED / "nb201" / "nb201_test_accuracy_200ep.csv"))
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    args = p.parse_args()

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for variant in args.variants:
        for seed in args.seeds:
            run = out / f"{variant}-seed{seed}"
            result = search_once(run, args, PRESETS[args.preset], **VARIANTS[variant], seed=seed, space="nb201",
                                 nb201_table=args.table)
            last = result.metrics[-1]
            rows.append({"variant": variant, "seed": seed, "genotype": str(result.genotype),
                         **{k: last["nb201"][k] for k in ("cifar10", "cifar100", "imagenet16-120")},
                         "curve": json.dumps([m["nb201"]["cifar10"] for m in result.metrics]),
                         "search_seconds": sum(m["seconds"] for m in result.metrics)})
            print(f"{variant:12s} seed {seed}: CIFAR-10 {rows[-1]['cifar10']:.2f}  {result.genotype}", flush=True)
    write_csv(out / "nb201_search.csv", rows)
    lines = [f"NAS-Bench-201 search, preset {args.preset}, seeds {args.seeds}, {date.today()}", "",
             "| algorithm | CIFAR-10 | CIFAR-100 | ImageNet16-120 | search s |", "|---|---|---|---|---|"]
    for variant in args.variants:
        rs = [r for r in rows if r["variant"] == variant]
        accs = " | ".join(mean_std(r[k] for r in rs) for k in ("cifar10", "cifar100", "imagenet16-120"))
        lines.append(f"| {variant} | {accs} | {statistics.mean(r['search_seconds'] for r in rs):.0f} |")
    (out / "nb201_search.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for variant in args.variants:
        curves = [json.loads(r["curve"]) for r in rows if r["variant"] == variant]
        mean = [statistics.mean(c[i] for c in curves) for i in range(len(curves[0]))]
        ax.plot(range(1, len(mean) + 1), mean, label=variant)
    ax.set(xlabel="epoch", ylabel="looked-up CIFAR-10 accuracy (%)", title="NAS-Bench-201: derived cell per epoch")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "nb201_search.png", dpi=110)


if __name__ == "__main__":
    main()
