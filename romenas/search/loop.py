"""The shared bi-level search loop: data halves, optimisers, tau schedule, checkpoints, metrics.

Each iteration takes one batch from each half of the training split: the weight half
(SGD on the training loss) and the architecture half (Adam on the validation loss).
The algorithm decides which subnets each step evaluates; gradients are accumulated over
them, one subnet's activations in memory at a time, and applied once.
"""
from __future__ import annotations

import dataclasses
import time
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from .. import distributed as dist
from ..bench.collapse import collapse_metrics
from ..bench import search_tables
from ..checkpoint import capture_rng, seed_everything
from ..config import (SearchConfig, budget_line, build_config, resolve_device, resolve_preset,
                      setting_sources, to_dict)
from ..algorithms import refuse_foreign_options
from ..data import epoch_loader, load_data, make_transform
from ..errors import RomenasError
from ..genotype import Genotype
from ..recipes import recipe_movement_lr
from ..runtime import Runtime
from ..runs import CheckpointedLoop, RunDir, RunLifecycle, ScalarLogger
from ..spaces import Plan
from ..spaces.replicas import per_replica_loss
from .base import StepContext, build_algorithm
from .budget import BUDGET_OPTIONS, Budget, check_budget_flags, saved_budget


@dataclass
class SearchResult:
    """What a search returns: its run folder, the final derived genotype and one metrics row per epoch."""

    run_dir: Path
    genotype: Genotype
    metrics: list[dict[str, Any]]
    config: SearchConfig
    #: Per budget metric: target, the derived network's measured cost, met (None: no budget).
    budget: dict[str, dict[str, Any]] | None = None


def epoch_line(row: dict[str, Any], epochs: int) -> str:
    """The persistent console line of one search epoch: losses, accuracies, tau, convergence."""
    line = (f"epoch {row['epoch']:>3}/{epochs}  train loss {row['train_loss']:.3f} acc {row['train_acc']:5.1f}%  "
            f"val loss {row['val_loss']:.3f} acc {row['val_acc']:5.1f}%  "
            + (f"tau {row['tau']:.2f}  " if "tau" in row else "")
            + f"op entropy {row['op_entropy']:.2f} margin {row['op_margin']:.2f}")
    if "edge_entropy" in row:
        line += f"  edge entropy {row['edge_entropy']:.2f} margin {row['edge_margin']:.2f}"
    if "nb201" in row:
        line += f"  NB201 CIFAR-10 {row['nb201']['cifar10']:.2f}"
    for metric, cost in row.get("budget", {}).items():
        line += f"  E[{metric}] {cost['expected']:.4g}/{cost['target']:g}"
    return line + f"  {row['seconds']:.0f}s"


class Searcher(CheckpointedLoop):
    lower_hint = "--w-lr/--a-lr"

    def __init__(self, cfg: SearchConfig, run: RunDir | None):
        self.cfg, self.run = cfg, run
        self.ctx = dist.context()
        if cfg.target_latency_ms is not None and self.ctx.world > 1:
            raise RomenasError("latency budgets are timed in one process (each rank would time its own); search "
                               "with --target-latency-ms without torchrun, or budget --target-mflops instead")
        self.device = dist.device_for(self.ctx, resolve_device(cfg.device))
        self.runtime = Runtime(self.device, cfg.precision, cfg.channels_last)
        # The architecture parameters come from their own generator, before any data is read: an
        # algorithm that refuses its settings does so at once.
        self.generator = torch.Generator().manual_seed(cfg.seed)
        self.algo = build_algorithm(cfg, self.generator).to(self.device)
        can = self.algo.capabilities
        self._check_capabilities(cfg, can)
        # Recorded as run: the config says which order the search used, and the options as the
        # algorithm resolved them against the space (whether beta existed, say).
        resolved = {"options": {**cfg.options, **self.algo.options_as_run}}
        if cfg.step_order == "auto":
            resolved["step_order"] = can.step_order
        self.cfg = cfg = dataclasses.replace(cfg, **resolved)
        self.arch_first = cfg.step_order == "arch-first"
        seed_everything(cfg.seed)
        data = load_data(cfg.dataset, cfg.data_dir, cfg.download, cfg.limit_train, None, cfg.image_size, cfg.augment)
        self.data_fingerprint = data.fingerprint()
        transform = make_transform(data, train=True)
        data_parallel = self.ctx.world > 1 and cfg.parallel == "data"
        shard = dict(rank=self.ctx.rank, world=self.ctx.world) if data_parallel else {}
        parts = ((0.0, cfg.train_portion), (cfg.train_portion, 1.0))  # weight half, architecture half
        self.loaders = [epoch_loader(data, "train", transform, cfg.batch_size, 2 * cfg.seed + i, part=part,
                                     part_seed=cfg.seed, workers=cfg.workers, device=self.device, **shard)
                        for i, part in enumerate(parts)]
        self.steps_per_epoch = dist.fewest(min(len(loader) for loader in self.loaders), self.ctx)
        if self.steps_per_epoch == 0:
            raise RomenasError(f"{len(data.train)} training images split {cfg.train_portion:g}/"
                               f"{1 - cfg.train_portion:g} leave a half smaller than one batch ({cfg.batch_size}) "
                               "per process; lower --batch-size")
        if cfg.a_lr_rule == "recipe-movement":  # recorded as run: config.json holds the lr it derived
            steps = self.steps_per_epoch * (cfg.epochs - cfg.warmup_epochs)
            self.cfg = cfg = dataclasses.replace(cfg, a_lr=recipe_movement_lr(cfg.recipe, steps))

        self.net = self.runtime.prepare(self.algo.space.build_supernet(cfg.channels, cfg.layers, data.num_classes,
                                                                       data.in_channels))
        self.batched = cfg.subnet_execution == "batched"
        self.w_opt = torch.optim.SGD(self.net.parameters(), cfg.w_lr, momentum=cfg.w_momentum,
                                     weight_decay=cfg.w_weight_decay, nesterov=cfg.w_nesterov)
        self.w_sched = torch.optim.lr_scheduler.CosineAnnealingLR(self.w_opt, cfg.epochs, eta_min=cfg.w_lr_min)
        self.a_opt = torch.optim.Adam(self.algo.parameters(), cfg.a_lr, betas=tuple(cfg.a_betas),
                                      weight_decay=cfg.a_weight_decay)
        self.tables = search_tables(cfg.nb201_table, cfg.nb101_table)
        self.budget = Budget.for_search(cfg, self.algo.space, data.num_classes, data.in_channels, data.image_size,
                                        self.device, run)
        self.epoch, self.step, self.metrics = 0, 0, []
        self.accum = self._zero_accum()
        group = self.w_opt.param_groups[0]
        self.step_context = StepContext(
            backward=lambda batch, plans, scale: self.accumulate(*batch, plans, scale, "architecture", "arch"),
            loss=self._plan_loss, weights=tuple(self.net.parameters()),
            weight_optimizer=types.MappingProxyType(group),
            momentum=lambda p: self.w_opt.state.get(p, {}).get("momentum_buffer"))
        self.learning_rates = {"w_lr": (self.w_opt, self.w_sched), "a_lr": (self.a_opt, None)}

    def _check_capabilities(self, cfg: SearchConfig, can) -> None:
        """What the algorithm declares it can do against how the search runs (before any data is read)."""
        why = f" ({can.why})" if can.why else ""
        if self.ctx.world > 1 and not can.distributed:
            raise RomenasError(f"{cfg.algorithm} with these options runs in one process{why}; run it without torchrun")
        if self.ctx.world > 1 and cfg.parallel not in can.parallel:
            raise RomenasError(f"{cfg.algorithm} cannot split its work as --parallel {cfg.parallel}{why}; use "
                               f"{' or '.join(can.parallel)}")
        if cfg.precision not in can.precisions:
            raise RomenasError(f"{cfg.algorithm} with these options works in precision {', '.join(can.precisions)}, "
                               f"not {cfg.precision}{why}; use --precision {can.precisions[0]}")

    def _plan_loss(self, batch, plan: Plan) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = batch
        logits = self.net(x, [plan])
        return torch.nn.functional.cross_entropy(logits, y), logits

    # -- state ------------------------------------------------------------------------------
    @staticmethod
    def _zero_accum() -> dict[str, float]:
        return dict.fromkeys(("w_loss", "w_correct", "w_seen", "a_loss", "a_correct", "a_seen", "seconds"), 0.0)

    def record(self) -> dict[str, Any]:
        """The config as run, flat: the algorithm's own options beside the shared settings; the
        budget's settings only where there is a budget (they did nothing otherwise)."""
        return {k: v for k, v in to_dict(self.cfg).items() if k not in BUDGET_OPTIONS or self.budget is not None}

    def state_dict(self) -> dict[str, Any]:
        return {"kind": "search", "space": self.cfg.space, "algorithm": self.cfg.algorithm,
                "config": self.record(), "epoch": self.epoch, "step": self.step,
                "net": self.net.state_dict(), "algo": self.algo.state_dict(), "w_opt": self.w_opt.state_dict(),
                "w_sched": self.w_sched.state_dict(), "a_opt": self.a_opt.state_dict(), "rng": capture_rng(),
                "generator": self.generator.get_state(), "metrics": self.metrics, "accum": self.accum,
                "scalers": self.runtime.state_dict(), **self.progress_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("algorithm") != self.cfg.algorithm:
            raise RomenasError(f"checkpoint is from algorithm {state.get('algorithm')!r}, this run is "
                               f"{self.cfg.algorithm!r}; resume each run from its own folder")
        self.load_parts(state, {"net": self.net, "algo": self.algo, "w_opt": self.w_opt, "w_sched": self.w_sched,
                                "a_opt": self.a_opt})
        self.restore_progress(state)
        try:
            self.generator.set_state(state["generator"])
            self.runtime.load_state_dict(state.get("scalers"))
        except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as exc:
            raise RomenasError(f"checkpoint sampler or scaler state is damaged ({type(exc).__name__}); it cannot be "
                               "resumed, start the run anew in another folder") from None

    # -- one iteration ------------------------------------------------------------------------
    def accumulate(self, x, y, plans: list[Plan], scale: float, where: str, optimizer: str) -> tuple[float, float]:
        """Forward and backward this rank's share of the subnets (one at a time, or all in one pass
        when batched), each loss scaled by ``scale``. Returns (summed loss, summed accuracy) over them."""
        mine = dist.my_share(plans, self.ctx, self.cfg.parallel)
        loss_sum, correct = 0.0, 0.0
        for group in ([mine] if self.batched and mine else [[p] for p in mine]):
            with self.runtime.autocast():
                logits = self.net(x, group)
                total = per_replica_loss(logits, y).sum()
            if not torch.isfinite(total):
                raise self.diverged(where, total.item(), self.lower_hint)
            self.runtime.backward(total * scale, optimizer)
            loss_sum += total.item()
            correct += (logits.argmax(1) == y.repeat(len(group))).float().mean().item() * len(group)
        return loss_sum, correct

    def _record(self, step: str, loss: float, accuracy: float, batch: int) -> None:
        """Add one step's subnet-mean loss and accuracy (this rank's share) to the epoch's sums.

        Under torchrun the sums are all-reduced, so every rank logs the single-process figures:
        in sample-parallel mode the ranks' subnet shares add up on one batch; in data-parallel
        mode each rank's batch adds its images."""
        values = [loss * batch, accuracy * batch, float(batch)]
        if self.ctx.world > 1:
            values = dist.all_reduce_sum(values, self.ctx)
            if self.cfg.parallel == "samples":
                values[2] = float(batch)
        for key, value in zip(("loss", "correct", "seen"), values):
            self.accum[f"{step}_{key}"] += value

    def _arch_step(self, x, y, tau: float, weight_batch=None) -> None:
        self.a_opt.zero_grad(set_to_none=True)
        loss, accuracy = self.algo.arch_step(self.step_context, (x, y), weight_batch, tau)
        dist.all_reduce_grads(self.algo.parameters(), self.ctx, average=self.cfg.parallel == "data")
        if self.budget is not None:  # after the all-reduce: every rank adds the same penalty once
            self.runtime.backward(self.budget.penalty(self.algo), "arch")
        self.runtime.step(self.a_opt, "arch")
        self._record("a", loss, accuracy, len(y))

    def _weight_step(self, x, y, tau: float) -> None:
        self.w_opt.zero_grad(set_to_none=True)
        plans = self.algo.weight_plans(tau)
        loss, correct = self.accumulate(x, y, plans, 1.0, "weight", "weights")
        dist.all_reduce_grads(self.net.parameters(), self.ctx, average=self.cfg.parallel == "data")
        # The weights step on the SUM of the subnets' gradients; clipping that sum at the
        # one-subnet threshold would cancel the accumulation, so the bound scales with them.
        self.runtime.step(self.w_opt, "weights", self.net.parameters(), self.cfg.grad_clip * len(plans))
        self._record("w", loss / len(plans), correct / len(plans), len(y))

    # -- epochs -------------------------------------------------------------------------------
    def _epoch_row(self, tau: float | None) -> dict[str, Any]:
        a = self.accum
        genotype, _ = self._derive()
        row = {"epoch": self.epoch + 1, **({} if tau is None else {"tau": tau}), "lr": self.w_sched.get_last_lr()[0],
               "train_loss": a["w_loss"] / max(1, a["w_seen"]), "train_acc": 100 * a["w_correct"] / max(1, a["w_seen"]),
               "val_loss": a["a_loss"] / max(1, a["a_seen"]), "val_acc": 100 * a["a_correct"] / max(1, a["a_seen"]),
               "seconds": a["seconds"], "images": {"weights": int(a["w_seen"]), "architecture": int(a["a_seen"])},
               **self.algo.stats(), "collapse": collapse_metrics(genotype),
               "genotype": genotype.to_string(),
               "op_probs": {k: v.tolist() for k, v in self.algo.op_probs().items()},
               "ops": {k: list(v[0]) for k, v in self.algo.space.site_ops.items()}, "op_site": self.algo.space.op_site}
        edge_probs = self.algo.edge_probs()
        if edge_probs is not None:
            row["edge_probs"] = {k: v.tolist() for k, v in edge_probs.items()}
        if self.budget is not None:
            row["budget"] = self.budget.row(self.algo, genotype)
        for name, table in self.tables.items():
            row[name] = table.search_row(genotype)
        return row

    def _derive(self) -> tuple[Genotype, Genotype]:
        """(the genotype the search stands for, the algorithm's most probable one): the same unless a
        budget's table prices the latter above a target (then the most probable that fits)."""
        if self.budget is None:
            genotype = self.algo.derive()
            return genotype, genotype
        return self.budget.derive(self.algo)

    def _measured_budget(self, genotype: Genotype) -> dict[str, Any]:
        """The derived network measured against the budget; a run resumed after it finished keeps
        the verdict it wrote (latency would be timed again under another load)."""
        saved = saved_budget(self.run) if self.run is not None else None
        if saved is not None and saved.get("genotype") == genotype.to_string() and "derived" in saved:
            return saved["derived"]
        return self.budget.measure(genotype, self.device)

    def fit(self) -> SearchResult:
        cfg, logger = self.cfg, ScalarLogger(self.run, enabled=self.run is not None and self.ctx.is_main)
        if self.budget is not None and self.ctx.is_main and not self.run.budget_file.exists():
            self.run.write_json(self.run.budget_file, self.budget.to_dict())
        try:
            while self.epoch < cfg.epochs:
                tau = self.algo.temperature(self.epoch, cfg.epochs)
                for loader in self.loaders:
                    loader.set_epoch(self.epoch, self.step)
                bar = tqdm(zip(*self.loaders), total=self.steps_per_epoch, initial=self.step, leave=False,
                           desc=f"{cfg.algorithm} epoch {self.epoch + 1}/{cfg.epochs}",
                           disable=not self.show_bars())
                for (xw, yw), (xa, ya) in bar:
                    if self.step >= self.steps_per_epoch:
                        break
                    started = time.perf_counter()
                    xw, yw, xa, ya = (self.runtime.inputs(t) for t in (xw, yw, xa, ya))
                    self.net.train()
                    search_arch = self.epoch >= cfg.warmup_epochs
                    if search_arch and self.arch_first:
                        self._arch_step(xa, ya, tau, (xw, yw))
                    self._weight_step(xw, yw, tau)
                    if search_arch and not self.arch_first:
                        self._arch_step(xa, ya, tau, (xw, yw))
                    self.accum["seconds"] += time.perf_counter() - started
                    self.step += 1
                    bar.set_postfix(loss=f"{self.accum['w_loss'] / max(1, self.accum['w_seen']):.3f}")
                    if cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0 and self.step < self.steps_per_epoch:
                        self.save()
                bar.close()
                self.check_finite(self.net)
                self.check_finite(self.algo)
                row = self._epoch_row(tau)
                self.report(epoch_line(row, cfg.epochs))
                self.w_sched.step()
                self.close_epoch(row, self._zero_accum(), logger)
        finally:
            logger.close()
        genotype, mode = self._derive()
        budget = None
        if self.budget is not None:
            budget = self._measured_budget(genotype)
        if self.run is not None and self.ctx.is_main:
            self.run.write_json(self.run.genotype_file, genotype.to_dict())
            if budget is not None:
                above = self.budget.mode_record(mode) if mode != genotype else None
                self.run.write_json(self.run.budget_file, {**self.budget.to_dict(), "genotype": genotype.to_string(),
                                                           "derived": budget, **({"mode": above} if above else {})})
                self.report(budget_line(budget, self.budget.table.network, above))
        return SearchResult(self.run.path if self.run else None, genotype, self.metrics, cfg, budget)


def search(config: SearchConfig | None = None, *, out: str | Path | None = None, resume: str | Path | None = None,
           preset: str | None = None, **overrides: Any) -> SearchResult:
    """Run (or resume) a search; returns the derived genotype, the per-epoch metrics and the run folder.

    Settings resolve as ``romenas search`` resolves them (:func:`romenas.config.resolve_preset`):
    the algorithm's published recipe, then the preset, then the arguments. ``search(space="nb201",
    epochs=1)`` on the built-in digits is the quick start with those changes; with a ``dataset``
    and no ``preset`` the recipe applies. ``resume`` continues the run in that folder exactly
    where its checkpoint ends.
    """
    with RunLifecycle("search") as life:
        if resume is not None:
            cfg = life.settings(SearchConfig, life.resume(resume, out=out, preset=preset), overrides)
            searcher = Searcher(cfg, life.run)
            life.restore(searcher, cfg.space)
        else:
            if config is not None:  # a config built by hand holds exactly its own values: no recipe applies
                recipe = "none" if config.recipe == "auto" else config.recipe
                refuse_foreign_options(config.algorithm, config.options)
                cfg = dataclasses.replace(config, recipe=recipe).validate()
                sources = None
            else:
                preset = resolve_preset(preset, overrides)
                cfg = build_config(SearchConfig, overrides, preset)
                check_budget_flags(cfg, overrides)
                sources = {k: v for k, v in setting_sources(SearchConfig, overrides, preset, cfg.recipe).items()
                           if k in to_dict(cfg)}
                if life.ctx.is_main and cfg.progress:
                    print(f"settings: recipe {cfg.recipe}, preset {preset or 'none'}, flags for "
                          f"{sorted(k for k, v in sources.items() if v == 'flag') or 'nothing'} "
                          "(config.json 'sources' says where each value came from)", flush=True)
            life.new(out)
            searcher = Searcher(cfg, None)  # data and supernet first: bad input leaves no run folder behind
            life.create(searcher, (cfg.algorithm, cfg.space), searcher.record(), sources, preset)
        result = life.fit(searcher)
        life.finish(epoch=searcher.epoch, genotype=result.genotype.to_string())
        return result
