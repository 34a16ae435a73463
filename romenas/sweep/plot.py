"""``romenas plot SWEEP``: each group's seeds as points with mean and spread, and the groups'
curves over epochs (mean over seeds, the band from the worst to the best seed)."""
from __future__ import annotations

import statistics
from pathlib import Path

from ..errors import RomenasError
from ..runs import RunDir
from ..viz import _grid, _save, plt
from .core import read_manifest, sweep_rows
from .table import group_of, group_stats

#: Curves over epochs, as metrics.jsonl holds them: key, panel title, how to read a row.
_CURVES = (("val_acc", "search val accuracy (%)", lambda r: r.get("val_acc")),
           ("op_entropy", "op entropy (1 = uniform)", lambda r: r.get("op_entropy")),
           ("edge_entropy", "edge entropy (1 = uniform)", lambda r: r.get("edge_entropy")),
           ("bench", "benchmark CIFAR-10 test (%)",
            lambda r: next((r[k].get("cifar10", r[k].get("test_acc")) for k in ("nb201", "nb101")
                            if isinstance(r.get(k), dict)), None)))


def _seeds_figure(stats: list[dict]):
    """One panel per metric; per group its seeds (points), mean (bar) and std (whisker)."""
    metrics = list(dict.fromkeys(s["metric"] for s in stats))
    groups = list(dict.fromkeys(s["group"] for s in stats))
    fig, axes = plt.subplots((len(metrics) + 2) // 3, min(3, len(metrics)), squeeze=False,
                             figsize=(max(3.0, 0.9 * len(groups) + 1.6) * min(3, len(metrics)),
                                      3.4 * ((len(metrics) + 2) // 3)))
    for ax in axes.flat[len(metrics):]:
        ax.axis("off")
    for metric, ax in zip(metrics, axes.flat):
        for s in (s for s in stats if s["metric"] == metric):
            x = groups.index(s["group"])
            values = list(s["per_seed"].values())
            offsets = [0.0] if len(values) == 1 else [(i / (len(values) - 1) - 0.5) * 0.3 for i in range(len(values))]
            ax.scatter([x + o for o in offsets], values, s=14, color=f"C{x % 10}", alpha=0.8, zorder=3)
            ax.errorbar([x], [s["mean"]], yerr=[s["std"]], fmt="_", markersize=18, color="black", capsize=4, zorder=4)
        ax.set_xticks(range(len(groups)), groups, rotation=30, ha="right", fontsize=7)
        ax.set_title(metric, fontsize=9)
    fig.suptitle("per group: seeds (points), mean +- std (black)")
    return fig


def _curves_figure(sweep: Path, groups: dict[str, list[str]]):
    """Per curve panel and group: the mean over the group's seeds by epoch, shaded worst..best."""
    series: dict[str, dict[str, list[list[tuple[int, float]]]]] = {}
    for group, names in groups.items():
        for name in names:
            rows = [r for r in RunDir(sweep / name).metrics() if isinstance(r, dict) and isinstance(r.get("epoch"), int)]
            for key, _, read in _CURVES:
                points = [(r["epoch"], v) for r in rows if isinstance(v := read(r), (int, float))]
                if points:
                    series.setdefault(key, {}).setdefault(group, []).append(points)
    panels = [(key, title) for key, title, _ in _CURVES if key in series]
    if not panels:
        return None
    fig, axes = _grid(len(panels), cols=2, sharey=False, size=(4.2, 3.0))
    for (key, title), ax in zip(panels, axes):
        for i, (group, runs) in enumerate(series[key].items()):
            epochs = sorted({e for points in runs for e, _ in points})
            by_epoch = [[v for points in runs for e2, v in points if e2 == e] for e in epochs]
            ax.plot(epochs, [statistics.mean(v) for v in by_epoch], color=f"C{i % 10}", marker=".", markersize=3,
                    label=f"{group} (n={len(runs)})")
            ax.fill_between(epochs, [min(v) for v in by_epoch], [max(v) for v in by_epoch], color=f"C{i % 10}",
                            alpha=0.18, linewidth=0)
        ax.set_title(title, fontsize=8)
    axes[0].legend(fontsize=6)
    fig.suptitle("mean over seeds by epoch, shaded from the worst to the best seed")
    return fig


def plot_sweep(sweep: str | Path, out: str | Path | None = None, fmt: str = "png") -> list[Path]:
    """Write ``seeds.FMT`` (each group's seeds, mean and std per metric) and ``curves.FMT`` (the
    groups' curves over epochs) into ``out`` (default SWEEP/plots); returns the files written.
    RomenasError when no run has a result yet."""
    sweep = Path(sweep)
    stats = group_stats(sweep_rows(sweep))
    if not stats:
        raise RomenasError(f"sweep {sweep} has no results yet; plot it once a run has finished an epoch")
    groups: dict[str, list[str]] = {}
    for name in read_manifest(sweep)["runs"]:
        groups.setdefault(group_of(name), []).append(name)
    out_dir = Path(out) if out else sweep / "plots"
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RomenasError(f"cannot create plot folder {out_dir}: {exc.strerror or exc}; pass --out") from None
    written = [_save(_seeds_figure(stats), out_dir / f"seeds.{fmt}")]
    curves = _curves_figure(sweep, groups)
    if curves is not None:
        written.append(_save(curves, out_dir / f"curves.{fmt}"))
    return written
