"""MODEL_CARD.md: what a trained network is, how well and how fast it runs, how it was made.

Written at the end of every training run (and by ``romenas card RUN``); ``romenas show``
prints it. Latency and throughput are measured on this machine's CPU when the card is written.
"""
from __future__ import annotations

import os
import platform
import statistics
from pathlib import Path
from typing import Any

import torch

from .config import budget_line, format_cost, method_summary
from .errors import RomenasError
from .inference import TrainedModel
from .runs import RunDir, _write_atomic
from .search.budget import saved_budget
from .registry import get_family
from .spaces import count_flops, count_parameters
from .spaces.network import median_ms, timings_ms


def cpu_speed(model: TrainedModel, repeats: int = 20, batch: int = 64) -> dict[str, float]:
    """CPU latency of one image (batch 1: median and 10th/90th percentiles of ``repeats`` runs) and
    images/s at ``batch``, in eval mode."""
    net = model.net.cpu().eval()
    one = torch.zeros(1, *model.input_shape)
    many = torch.zeros(batch, *model.input_shape)
    times = sorted(timings_ms(lambda: net(one), repeats))
    return {"latency_ms": statistics.median(times), "p10": times[len(times) // 10],
            "p90": times[(9 * len(times)) // 10], "repeats": repeats,
            "throughput": batch / (median_ms(lambda: net(many), max(3, repeats // 5)) / 1000), "batch": batch,
            "threads": torch.get_num_threads()}


def _search_settings(source: str | None) -> dict[str, Any] | None:
    """The search run a genotype came from, if it was given as a search run folder."""
    if not source or not RunDir(source).is_run():
        return None
    try:
        kind, cfg = RunDir(source).info()
    except Exception:  # a damaged or foreign folder: the card just omits the search
        return None
    return cfg if kind == "search" else None


def _search_budget(source: str) -> dict[str, Any] | None:
    """The budget the genotype's search ran under, if it had one (its budget.json)."""
    try:
        return saved_budget(RunDir(source))
    except (RomenasError, OSError, ValueError):  # a damaged file: the card omits the section
        return None


def model_card(run: str | Path) -> str:
    from .viz import draw_genotype

    run_dir = RunDir(run)
    model = TrainedModel.load(run)
    cfg, spec = model.config, model.spec
    status, rows = run_dir.status(), run_dir.metrics()
    channels, size, _ = model.input_shape
    params, flops = count_parameters(model.net), count_flops(model.net, channels, size)
    speed = cpu_speed(model)
    diagrams = draw_genotype(model.genotype, run_dir.path / "cells", "png", replace=True)
    source = run_dir.config().get("genotype_source")
    searched = _search_settings(source)
    classes = spec["classes"]
    family = get_family(model.genotype.family)
    layers, width = cfg.layers or family.layers, cfg.channels or family.channels
    lines = [f"# Model card: {run_dir.path.name}", "",
             f"A {model.genotype.family.upper()}-family network found by neural architecture search and "
             f"{'fine-tuned' if cfg.init else 'trained from scratch'} by romenas on `{cfg.dataset}` "
             f"({len(classes)} classes).", "",
             "## Architecture", "",
             f"- Genotype: `{model.genotype.to_string()}`",
             f"- Genotype from: {source or 'unknown'}",
             f"- {family.layers_label.capitalize()}: {layers}, initial channels: "
             f"{width}, stem: {cfg.stem}",
             f"- Parameters: {params / 1e6:.3f} M (auxiliary head excluded)",
             f"- FLOPs per image: {flops / 1e6:.1f} M ({flops / 2e6:.1f} M multiply-adds) at input "
             f"{channels}x{size}x{size}", ""]
    lines += [f"![{p.stem} cell]({p.relative_to(run_dir.path)})" for p in diagrams if p.suffix == ".png"]
    lines += ["", "## Speed (CPU, measured when this card was written)", "",
              f"- Latency, batch 1: {speed['latency_ms']:.2f} ms per image (median of {speed['repeats']}; 10th-90th "
              f"percentile {speed['p10']:.2f}-{speed['p90']:.2f} ms; other load on the machine moves it)",
              f"- Throughput, batch {speed['batch']}: {speed['throughput']:.0f} images/s",
              f"- Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
              f"{speed['threads']} torch threads, torch {torch.__version__}", "",
              "## Data", "",
              f"- Dataset: `{cfg.dataset}`" + (f" (first {cfg.limit_train} training images)" if cfg.limit_train else ""),
              f"- Classes: {', '.join(classes[:20])}" + (f", ... ({len(classes)} in all)" if len(classes) > 20 else ""),
              f"- Input: {channels} channel(s), {size}x{size}; augmentation `{spec['augment']}`; normalised by mean "
              f"{[round(m, 4) for m in spec['mean']]}, std {[round(s, 4) for s in spec['std']]}", "",
              "## Results", ""]
    if rows:
        best = max(rows, key=lambda r: r["test_acc"])
        on = f" on the first {cfg.limit_test} test images" if cfg.limit_test else ""
        lines += [f"- Test accuracy (top-1) after epoch {rows[-1]['epoch']}: {rows[-1]['test_acc']:.2f} %{on}",
                  f"- Best epoch: {best['epoch']} ({best['test_acc']:.2f} %)"]
    lines += [f"- Status: {status.get('state', 'unknown')}", "",
              "## Training", "",
              f"- {cfg.epochs} epochs, batch {cfg.batch_size}, SGD lr {cfg.lr} (cosine to {cfg.lr_min}), momentum "
              f"{cfg.momentum}{' (Nesterov)' if cfg.nesterov else ''}, weight decay {cfg.weight_decay}",
              f"- Cutout {cfg.cutout}, drop-path {cfg.drop_path}, auxiliary weight {cfg.auxiliary_weight}, label "
              f"smoothing {cfg.label_smoothing}, gradient clip {cfg.grad_clip}",
              f"- Precision {cfg.precision}, seed {cfg.seed}" + (f", fine-tuned from {cfg.init}" if cfg.init else "")]
    if searched:
        lines += ["", "## Search", "",
                  f"- {searched.get('algorithm')} on space {searched.get('space')}, recipe {searched.get('recipe')}, "
                  f"{searched.get('epochs')} epochs, {method_summary(searched)}, dataset `{searched.get('dataset')}`, "
                  f"seed {searched.get('seed')}"
                  + (f", ops {', '.join(searched['ops'])}" if isinstance(searched.get("ops"), list) else ", all ops")]
    budget = _search_budget(source) if searched else None
    if budget:
        measured = {"mflops": flops / 1e6, "mparams": params / 1e6, "latency_ms": speed["latency_ms"]}
        size = budget["table"]["network"]
        same = (size["channels"], size["layers"], size["image_size"]) == (width, layers, model.input_shape[1])
        lines += ["", "## Budget", ""]
        if isinstance(budget.get("derived"), dict):
            lines.append(f"- The search's verdict: {budget_line(budget['derived'], size, budget.get('mode'))}")
        if same:
            lines.append("- This network (the size the budget priced), measured here: " + "; ".join(
                f"{format_cost(m, measured[m])} against {format_cost(m, t)}: {'met' if measured[m] <= t else 'NOT met'}"
                for m, t in budget["targets"].items()) + (" (latency on this machine's CPU)"
                                                          if "latency_ms" in budget["targets"] else ""))
        else:
            lines.append(f"- This network is not the size the budget priced (C={width}, {layers} layers, "
                         f"{model.input_shape[1]}px): its own parameters, FLOPs and latency are above")
    lines += ["", "## Use", "", "```bash",
              f"romenas predict {run_dir.path} IMAGE.png --topk 3",
              f"romenas evaluate {run_dir.path} --dataset FOLDER",
              f"romenas export {run_dir.path} --format onnx      # or torchscript",
              "```", "", f"Weights: `{run_dir.weights_file.name}` (safetensors, no pickle).", ""]
    return "\n".join(lines)


def write_model_card(run: str | Path) -> Path:
    run_dir = RunDir(run)
    _write_atomic(run_dir.model_card, model_card(run))
    return run_dir.model_card
