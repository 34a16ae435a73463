"""Pictures: a run's architecture weights and curves over epochs, cell diagrams, confusion matrices.

Plots read only the run folder's metrics.jsonl. Cells are drawn with graphviz when its
``dot`` program is installed; otherwise matplotlib draws the same DAG, and the DOT text
is written either way.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from .arguments import printable  # noqa: E402
from .errors import RomenasError  # noqa: E402
from .genotype import Genotype  # noqa: E402
from .published import load_genotype  # noqa: E402
from .registry import FAMILIES  # noqa: E402
from .runs import RunDir  # noqa: E402


def _rows(path: str | Path) -> tuple[str, list[dict]]:
    run = RunDir(path)
    rows = run.metrics()
    if not rows or not all(isinstance(r, dict) and "epoch" in r for r in rows):
        raise RomenasError(f"{path} has no metrics yet; plot a run that has finished at least one epoch")
    label = f"{run.path.name}"
    cfg = run.config() if run.is_run() else {}
    if "algorithm" in cfg:
        label = f"{cfg['algorithm']} ({run.path.name})"
    return label, rows


def _cell(kind: str) -> str:
    """'normal cell', 'reduce cell'; NAS-Bench-201's one type is just 'cell'."""
    return "cell" if kind == "cell" else f"{kind} cell"


def _epoch_axis(ax, label: bool = True) -> None:
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if label:
        ax.set_xlabel("epoch")


def _grid(n: int, cols: int = 5, sharey: bool = True, size: tuple[float, float] = (3.2, 2.4)):
    cols = min(n, cols)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(size[0] * cols, size[1] * rows), squeeze=False, sharey=sharey)
    for ax in axes.flat[n:]:
        ax.axis("off")
    for i, ax in enumerate(axes.flat[:n]):
        _epoch_axis(ax, label=i + cols >= n)  # the bottom panel of each column says what x is
    return fig, axes.flat


def _save(fig, path: Path) -> Path:
    """Written beside ``path`` and renamed into place: a full disk leaves no truncated image."""
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        fig.savefig(tmp, dpi=110, format=path.suffix[1:] or "png")
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):  # the clean-up must not hide why the write failed
            tmp.unlink(missing_ok=True)
        raise RomenasError(f"cannot write {path}: {exc.strerror or exc}; free space or pass another --out") from None
    finally:
        plt.close(fig)
    return path


def _edge_styles(n: int) -> list[dict]:
    """A distinct colour per edge (tab20), then line styles, so no two of up to 80 edges look alike."""
    colours = plt.get_cmap("tab20").colors
    styles = ("-", "--", ":", "-.")
    return [{"color": colours[e % 20], "linestyle": styles[(e // 20) % 4], "marker": ".", "markersize": 3}
            for e in range(n)]


def plot_runs(run: str | Path, compare: list[str | Path], out: str | Path | None, fmt: str = "png") -> list[Path]:
    """A run's curves over epochs (search or training), and for a search its op and edge
    probabilities and collapse metrics; ``compare`` overlays other runs' curves (one colour per run)."""
    label, rows = _rows(run)
    runs = [(label, rows)] + [_rows(c) for c in compare]  # every input checked before anything is written
    out_dir = Path(out) if out else Path(run) / "plots"
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RomenasError(f"cannot create plot folder {out_dir}: {exc.strerror or exc}; pass --out") from None
    epochs = [r["epoch"] for r in rows]
    written = []
    if "op_probs" in rows[0] and "ops" in rows[0]:
        site = rows[0].get("op_site", "edge")  # NAS-Bench-101 cells: one op per node, nodes from 1
        for kind, ops in rows[0]["ops"].items():
            n_sites = len(rows[0]["op_probs"][kind])
            fig, axes = _grid(n_sites)
            for e, ax in zip(range(n_sites), axes):
                for o, op in enumerate(ops):
                    ax.plot(epochs, [r["op_probs"][kind][e][o] for r in rows], label=op, color=f"C{o}", marker=".",
                            markersize=3)  # a marker: a one-epoch run still shows its point
                ax.set_title(f"{site} {e + (site == 'node')}", fontsize=8)
            axes[0].set_ylabel("probability")
            axes[0].legend(fontsize=6)
            fig.suptitle(f"{label}: op probabilities softmax(alpha), {_cell(kind)}")
            written.append(_save(fig, out_dir / f"op_probs_{kind}.{fmt}"))
    if "edge_probs" in rows[0]:
        for kind in rows[0]["edge_probs"]:
            probs = [r["edge_probs"][kind] for r in rows]
            fig, ax = plt.subplots(figsize=(7, 4))
            for e, style in enumerate(_edge_styles(len(probs[0]))):
                ax.plot(epochs, [p[e] for p in probs], label=f"edge {e}", **style)
            ax.set(ylabel="p(edge kept) from beta", ylim=(-0.02, 1.02), title=f"{label}: topology, {_cell(kind)}")
            _epoch_axis(ax)
            ax.legend(fontsize=6, ncol=2)
            written.append(_save(fig, out_dir / f"edge_probs_{kind}.{fmt}"))
    if "collapse" in rows[0]:
        metrics = sorted(rows[0]["collapse"])
        fig, axes = _grid(len(metrics))
        for name, ax in zip(metrics, axes):
            for i, (run_label, run_rows) in enumerate(runs):
                if all("collapse" in r and name in r["collapse"] for r in run_rows):
                    ax.plot([r["epoch"] for r in run_rows], [r["collapse"][name] for r in run_rows], label=run_label,
                            color=f"C{i}", marker="os^vD"[i % 5], markersize=3, alpha=0.85)
            ax.set_title(name, fontsize=8)
        axes[0].set_ylabel("count in the derived cell")
        axes[0].legend(fontsize=6)
        fig.suptitle("collapse metrics of the derived genotype")
        written.append(_save(fig, out_dir / f"collapse.{fmt}"))
    written.append(_save(_curves(runs), out_dir / f"curves.{fmt}"))
    return written


#: The curves figure: one axis per quantity, each with its own scale (search: val; training: test).
_CURVE_PANELS = (("loss", ("train_loss", "val_loss", "test_loss"), None),
                 ("accuracy (%)", ("train_acc", "val_acc", "test_acc"), None),
                 ("normalised entropy (1 = uniform)", ("op_entropy", "edge_entropy"), (0.0, 1.05)),
                 ("NAS-Bench-201 CIFAR-10 (%)", ("nb201",), None),
                 ("learning rate", ("lr",), None))


def _curves(runs: list[tuple[str, list[dict]]]):
    """One colour per run in every panel; solid = training/op, dashed = validation or test/edge; markers
    tell runs apart where their curves coincide."""
    panels = [(title, keys, ylim) for title, keys, ylim in _CURVE_PANELS
              if any(k in run_rows[0] for _, run_rows in runs for k in keys)]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), squeeze=False)
    for (title, keys, ylim), ax in zip(panels, axes.flat):
        for i, (run_label, run_rows) in enumerate(runs):
            for key in keys:
                if not all(key in r for r in run_rows):
                    continue
                values = [r[key]["cifar10"] if key == "nb201" else r[key] for r in run_rows]
                label = run_label if len(keys) == 1 else f"{run_label}: {key.split('_')[0]}"
                ax.plot([r["epoch"] for r in run_rows], values, label=label, color=f"C{i}",
                        linestyle="--" if key.startswith(("val", "test", "edge")) else "-",
                        marker="os^vD"[i % 5], markersize=3, alpha=0.85)
        ax.set(title=title)
        if ylim:
            ax.set_ylim(*ylim)
        _epoch_axis(ax)
        ax.legend(fontsize=6)
    return fig


# ---- cell diagrams --------------------------------------------------------------------------
def _ops_on_nodes(genotype: Genotype) -> bool:
    """NAS-Bench-101 cells: the op is the node's (its label), edges carry none."""
    return FAMILIES[genotype.family].op_site == "node"


def _output(genotype: Genotype) -> str | None:
    """The output node's label where the cell concatenates listed nodes (DARTS, NAS-Bench-101), None
    where its last node is the output (NAS-Bench-201)."""
    family = FAMILIES[genotype.family]
    if family.inputs_per_node is None and family.op_site == "edge":
        return None
    return "c_{k}" if family.num_inputs == 2 else "out"


def to_dot(genotype: Genotype, kind: str) -> str:
    names = genotype.node_labels(kind)
    lines = [f'digraph "{kind}" {{', "  rankdir=LR;", '  node [style=filled, shape=box, fontname="Helvetica"];']
    for i in range(genotype.num_inputs):
        lines.append(f'  n{i} [label="{names[i]}", fillcolor=darkseagreen2];')
    for j in range(len(genotype.cells[kind])):
        lines.append(f'  n{genotype.num_inputs + j} [label="{names[genotype.num_inputs + j]}", '
                     'shape=rect, fillcolor=lightblue];')
    for j, node in enumerate(genotype.cells[kind]):
        for op, inp in node:
            if op != "none":
                label = "" if _ops_on_nodes(genotype) else f' [label="{op}", fontsize=10]'
                lines.append(f'  n{inp} -> n{genotype.num_inputs + j}{label};')
    if _output(genotype):
        lines.append(f'  out [label="{_output(genotype)}", fillcolor=palegoldenrod];')
        lines += [f"  n{i} -> out;" for i in genotype.concat[kind]]
    lines.append("}")
    return "\n".join(lines) + "\n"


def _draw_matplotlib(genotype: Genotype, kind: str, path: Path) -> None:
    """The fallback, laid out like the DARTS paper's figures: inputs left, nodes in order,
    the output right; each edge curved and coloured by its op, its label on the curve."""
    names = genotype.node_labels(kind)
    n_in, n_nodes = genotype.num_inputs, len(genotype.cells[kind])
    pos = {i: (0.0, 1.6 * i) for i in range(n_in)}
    for j in range(n_nodes):
        pos[n_in + j] = (2.4 * (j + 1), 2.4 * (j % 2) - 0.4 + 0.4 * (n_in == 1))
    ops = sorted({op for node in genotype.cells[kind] for op, _ in node if op != "none"})
    colour = dict(zip(ops, plt.get_cmap("tab10").colors))
    fig, ax = plt.subplots(figsize=(2.4 * (n_nodes + 2), 4.2))
    for j, node in enumerate(genotype.cells[kind]):
        for op, inp in node:
            if op == "none":
                continue
            (x0, y0), (x1, y1) = pos[inp], pos[n_in + j]
            rad = 0.12 * (1 if (inp + j) % 2 else -1)
            ax.annotate("", (x1, y1), (x0, y0), arrowprops=dict(
                arrowstyle="-|>", color=colour[op], lw=1.6, shrinkA=14, shrinkB=14,
                connectionstyle=f"arc3,rad={rad}"))
            # a point on matplotlib's arc3 curve (a quadratic Bezier), nearer the target node
            cx, cy = (x0 + x1) / 2 + rad * (y1 - y0), (y0 + y1) / 2 - rad * (x1 - x0)
            t = 0.68
            mx = (1 - t) ** 2 * x0 + 2 * (1 - t) * t * cx + t ** 2 * x1
            my = (1 - t) ** 2 * y0 + 2 * (1 - t) * t * cy + t ** 2 * y1
            if not _ops_on_nodes(genotype):
                ax.text(mx, my, op, fontsize=8, ha="center", va="center", color=colour[op],
                        bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.9))
    if _output(genotype):
        pos["out"] = (2.4 * (n_nodes + 1), 0.4)
        for i in genotype.concat[kind]:
            ax.annotate("", pos["out"], pos[i], arrowprops=dict(arrowstyle="-|>", color="lightgray",
                                                                 shrinkA=14, shrinkB=18))
    for i, (x, y) in pos.items():
        fill = "palegoldenrod" if i == "out" else "darkseagreen" if i < n_in else "lightblue"
        ax.text(x, y, _output(genotype) if i == "out" else names[i], ha="center", va="center", fontsize=11,
                bbox=dict(boxstyle="round,pad=0.4", fc=fill))
    xs, ys = [x for x, _ in pos.values()], [y for _, y in pos.values()]
    ax.set_xlim(min(xs) - 1.0, max(xs) + 1.0)
    ax.set_ylim(min(ys) - 0.8, max(ys) + 0.8)
    ax.axis("off")
    ax.set_title(f"{kind} cell" if kind != "cell" else "cell")
    _save(fig, path)


def draw_genotype(genotype: "str | Genotype", out: str | Path, fmt: str = "png", replace: bool = False
                  ) -> list[Path]:
    """One diagram per cell type (graphviz when installed, else matplotlib), plus the .dot source.

    A file already in ``out`` is replaced only if romenas drew it (``out/.romenas-drawn`` lists
    those) or ``replace`` is set (a run's own cells/ folder); a user's file is refused."""
    genotype = load_genotype(genotype)
    out = Path(out)
    manifest = out / ".romenas-drawn"
    try:
        ours = set(manifest.read_text().split("\n")) if manifest.is_file() else set()
    except (OSError, UnicodeDecodeError):
        ours = set()
    targets = [out / f"{kind}.{ext}" for kind in genotype.cells for ext in (fmt, "dot")]
    taken = [p for p in targets if p.exists() and p.name not in ours]
    if taken and not replace:
        raise RomenasError(f"{taken[0]} already exists; romenas does not overwrite files it did not write: remove "
                           "it or pass another --out")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RomenasError(f"cannot create {out}: {exc.strerror or exc}; pass another --out") from None
    written = []
    dot = shutil.which("dot")
    for kind in genotype.cells:
        dot_path = out / f"{kind}.dot"
        try:
            dot_path.write_text(to_dot(genotype, kind))
        except OSError as exc:
            raise RomenasError(f"cannot write {dot_path}: {exc.strerror or exc}; free space or pass another "
                               "--out") from None
        image = out / f"{kind}.{fmt}"
        rendered = dot is not None and subprocess.run([dot, f"-T{fmt}", str(dot_path), "-o", str(image)],
                                                      capture_output=True).returncode == 0
        if not rendered:
            _draw_matplotlib(genotype, kind, image)
        written += [image, dot_path]
    try:
        manifest.write_text("\n".join(sorted(ours | {p.name for p in written})) + "\n")
    except OSError:
        pass  # the diagrams are written; only a later redraw will ask before replacing them
    return written


def plot_confusion(confusion: list[list[int]], classes: list[str], path: Path) -> Path:
    """The confusion matrix, rows true classes and columns predictions, each row normalised."""
    import numpy as np

    matrix = np.asarray(confusion, dtype=float)
    rows = matrix / np.maximum(matrix.sum(1, keepdims=True), 1)
    classes = [printable(c) for c in classes]  # names from files: no control characters on the axes
    n = len(classes)
    fig, ax = plt.subplots(figsize=(2 + 0.45 * n, 1.6 + 0.45 * n))
    image = ax.imshow(rows, cmap="Blues", vmin=0, vmax=1)
    ticks = range(n)
    ax.set_xticks(ticks, classes, rotation=90 if n > 6 else 0)
    ax.set_yticks(ticks, classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if n <= 20:
        for i in range(n):
            for j in range(n):
                if matrix[i, j]:
                    ax.text(j, i, int(matrix[i, j]), ha="center", va="center", fontsize=7,
                            color="white" if rows[i, j] > 0.5 else "black")
    fig.colorbar(image, ax=ax, fraction=0.046, label="share of the true class")
    ax.set_title("confusion matrix")
    return _save(fig, path)
