"""Train a derived genotype from scratch: the evaluation half of every NAS paper.

Recipes (DARTS CIFAR, NAS-Bench-201, ImageNet mobile) are presets; the run folder,
checkpoints and resume work as for search, and resuming ends with the same weights as
an uninterrupted run.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from . import distributed as dist
from .checkpoint import capture_rng, seed_everything
from .config import TrainConfig, build_config, resolve_device, resolve_preset, to_dict
from .data import dataset_shape, epoch_loader, load_data, make_transform
from .errors import RomenasError
from .genotype import Genotype
from .published import load_genotype
from .runtime import Runtime
from .runs import CheckpointedLoop, RunDir, RunLifecycle, ScalarLogger
from .weights import save_weights, trained_weights
from .spaces import count_flops, count_parameters, network_for


@dataclass
class TrainResult:
    """What training returns: run folder, genotype, per-epoch metrics, final test accuracy (%), parameters."""

    run_dir: Path | None
    genotype: Genotype
    metrics: list[dict[str, Any]]
    test_acc: float | None
    params: int


#: What a new training run takes from the run folder it starts from, where the user set nothing:
#: a search run lends its data; a trained run its data and network (so training or describing it
#: builds the run's own network); ``--init`` lends the network shape only (fine-tuning is on new data).
_LENT = {"search": ("dataset", "data_dir", "image_size"),
         "train": ("dataset", "data_dir", "image_size", "channels", "layers", "stem"),
         "init": ("channels", "layers", "stem")}


def lent_settings(source: Any, role: str, given: dict[str, Any]) -> dict[str, Any]:
    """The settings ``source`` (a run folder given as the genotype, or as ``--init`` when ``role``
    is 'init') lends a new run: those of :data:`_LENT` that ``given`` leaves unset."""
    if isinstance(source, Genotype) or source is None:
        return {}
    run = RunDir(str(source))
    try:
        if not run.is_run():
            return {}
        kind, saved = run.info()
    except (RomenasError, OSError, ValueError):  # not a run folder (a genotype string), or a damaged one
        return {}
    keys = _LENT["init" if role == "init" else kind]
    return {k: saved[k] for k in keys if given.get(k) is None and saved.get(k) is not None}


def _with_lent(genotype: Any, overrides: dict[str, Any], announce: bool = True) -> dict[str, Any]:
    lent = {**lent_settings(genotype, "genotype", overrides), **lent_settings(overrides.get("init"), "init", overrides)}
    if lent and announce and overrides.get("progress", True):
        print("from the run folder: " + ", ".join(f"{k} {v}" for k, v in lent.items()) + " (flags override)",
              flush=True)
    return {**overrides, **lent}


def describe(genotype: "str | Genotype", config: TrainConfig | None = None, *, preset: str | None = None,
             **overrides) -> dict[str, Any]:
    """Build the network without training: parameters and FLOPs (``romenas train --dry-run``).

    Settings resolve as :func:`train`'s: a trained run folder describes its own network."""
    if config is None:
        overrides = _with_lent(genotype, overrides)
        cfg = build_config(TrainConfig, overrides, resolve_preset(preset, overrides))
    else:
        cfg = config.validate()
    genotype = load_genotype(genotype)
    classes, channels, size = dataset_shape(cfg.dataset, cfg.image_size)
    net = network_for(genotype, cfg, classes, channels)
    return {"genotype": genotype.to_string(), "params": count_parameters(net),
            "flops": count_flops(net, channels, size), "input": [channels, size, size], "classes": classes}


def check_init_genotype(source: str | Path, genotype: Genotype, metadata: dict | None = None) -> None:
    """``--init`` continues a trained network: it must be the run's own genotype."""
    metadata = metadata if metadata is not None else trained_weights(source)[1]
    if Genotype.from_dict(metadata["genotype"]) != genotype:
        raise RomenasError(f"--init {source} holds genotype {Genotype.from_dict(metadata['genotype'])}, not "
                           f"{genotype}; train that run's own genotype (omit the genotype argument)")


def initialise_from(net: nn.Module, source: str | Path, genotype: Genotype) -> None:
    """Start from a trained run's weights (``--init``); a classifier of another class count is left new."""
    state, metadata = trained_weights(source)
    check_init_genotype(source, genotype, metadata)
    own = net.state_dict()
    heads = ("classifier.", "aux_head.")
    wrong = [k for k, v in state.items() if k in own and own[k].shape != v.shape and not k.startswith(heads)]
    missing = [k for k in own if k not in state and not k.startswith(heads)]
    stem = next((k for k in wrong if k.startswith("stem")), None)
    if stem is not None and state[stem].dim() == 4 and state[stem].shape[1] != own[stem].shape[1]:
        raise RomenasError(f"--init {source} was trained on {state[stem].shape[1]}-channel images and this data has "
                           f"{own[stem].shape[1]}; fine-tune on images with the same channels (grayscale or colour)")
    if wrong or missing:
        key = (wrong or missing)[0]
        raise RomenasError(f"--init {source} has a network of another size ({key}); use its --channels "
                           f"{metadata['config'].get('channels')} and --layers {metadata['config'].get('layers')}")
    net.load_state_dict({k: v for k, v in state.items() if k in own and own[k].shape == v.shape}, strict=False)


class Trainer(CheckpointedLoop):
    lower_hint = "--lr"

    def __init__(self, genotype: Genotype, cfg: TrainConfig, run: RunDir | None):
        self.genotype, self.cfg, self.run = genotype, cfg, run
        self.ctx = dist.context()
        self.device = dist.device_for(self.ctx, resolve_device(cfg.device))
        self.runtime = Runtime(self.device, cfg.precision, cfg.channels_last)
        seed_everything(cfg.seed)
        data = load_data(cfg.dataset, cfg.data_dir, cfg.download, cfg.limit_train, cfg.limit_test, cfg.image_size,
                         cfg.augment)
        if cfg.test_dataset:
            held_out = load_data(cfg.test_dataset, cfg.data_dir, cfg.download, cfg.limit_test, None, data.image_size,
                                 data.augment)
            if held_out.classes != data.classes:
                raise RomenasError(f"--test-dataset {cfg.test_dataset} has classes {held_out.classes}, but "
                                   f"{cfg.dataset} has {data.classes}; make them match")
            data.test = held_out.train
        if data.test is None:
            raise RomenasError(f"dataset {cfg.dataset} has no test split; give an image folder with train/ and test/, "
                               "or --test-dataset FOLDER|SHARDS")
        self.data_fingerprint = data.fingerprint()
        self.stats = data.stats()
        self.data_spec = data.spec(self.stats)
        # DistributedSampler's role: each rank takes every world-th batch of one shared order.
        self.train_loader = epoch_loader(data, "train", make_transform(data, True, cfg.cutout, self.stats),
                                         cfg.batch_size, cfg.seed, workers=cfg.workers, device=self.device,
                                         rank=self.ctx.rank, world=self.ctx.world)
        # Every rank takes the same number of steps (the batches need not divide by the ranks).
        self.steps_per_epoch = dist.fewest(len(self.train_loader), self.ctx)
        if self.steps_per_epoch == 0:
            raise RomenasError(f"{len(data.train)} training images are fewer than one batch ({cfg.batch_size}) per "
                               "process; lower --batch-size")
        self.test_loader = epoch_loader(data, "test", make_transform(data, False, stats=self.stats), 256, cfg.seed,
                                        train=False, workers=cfg.workers, device=self.device)
        net = network_for(genotype, cfg, data.num_classes, data.in_channels)
        if cfg.init:
            initialise_from(net, cfg.init, genotype)
        if self.ctx.world > 1 and cfg.sync_bn:
            net = nn.SyncBatchNorm.convert_sync_batchnorm(net)
        self.net = self.runtime.prepare(net)
        self.params = count_parameters(self.net)
        self.model = (nn.parallel.DistributedDataParallel(self.net, device_ids=[self.device.index]
                                                          if self.device.type == "cuda" else None)
                      if self.ctx.world > 1 else self.net)
        if cfg.compile:
            self.model = torch.compile(self.model)
        self.opt = torch.optim.SGD(self.net.parameters(), cfg.lr, momentum=cfg.momentum,
                                   weight_decay=cfg.weight_decay, nesterov=cfg.nesterov)
        self.sched = torch.optim.lr_scheduler.CosineAnnealingLR(self.opt, cfg.epochs, eta_min=cfg.lr_min)
        self.learning_rates = {"lr": (self.opt, self.sched)}
        self.epoch, self.step, self.metrics = 0, 0, []
        self.accum = self._zero_accum()

    @staticmethod
    def _zero_accum() -> dict[str, float]:
        return {"loss": 0.0, "correct": 0.0, "seen": 0.0, "seconds": 0.0}

    def state_dict(self) -> dict[str, Any]:
        return {"kind": "train", "space": self.genotype.family, "genotype": self.genotype.to_dict(),
                "config": to_dict(self.cfg), "epoch": self.epoch, "step": self.step, "net": self.net.state_dict(),
                "opt": self.opt.state_dict(), "sched": self.sched.state_dict(), "rng": capture_rng(),
                "metrics": self.metrics, "accum": self.accum, "scalers": self.runtime.state_dict(),
                "data": self.data_spec, **self.progress_state()}

    def save(self) -> None:
        """The checkpoint, then the weights alone as safetensors beside it (inference reads those)."""
        super().save()
        if self.run is not None and self.ctx.is_main:
            save_weights(self.net.state_dict(), self.run.weights_file,
                         {"genotype": self.genotype.to_dict(), "config": to_dict(self.cfg), "data": self.data_spec})

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.load_parts(state, {"net": self.net, "opt": self.opt, "sched": self.sched})
        self.restore_progress(state)
        try:
            self.runtime.load_state_dict(state.get("scalers"))
        except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as exc:
            raise RomenasError(f"checkpoint scaler state is damaged ({type(exc).__name__}); it cannot be resumed, "
                               "start the run anew in another folder") from None

    @torch.no_grad()
    def evaluate(self) -> tuple[float, float]:
        self.net.eval()
        loss, correct, seen = 0.0, 0, 0
        for x, y in self.test_loader:
            x, y = self.runtime.inputs(x), y.to(self.device)
            with self.runtime.autocast():
                logits = self.net(x)
            loss += F.cross_entropy(logits.float(), y, reduction="sum").item()
            correct += int((logits.argmax(1) == y).sum())
            seen += len(y)
        return loss / seen, 100.0 * correct / seen

    def _train_step(self, x, y) -> None:
        cfg = self.cfg
        self.opt.zero_grad(set_to_none=True)
        with self.runtime.autocast():
            out = self.model(x)
            logits, aux = out if isinstance(out, tuple) else (out, None)
            loss = F.cross_entropy(logits, y, label_smoothing=cfg.label_smoothing)
            if aux is not None:
                loss = loss + cfg.auxiliary_weight * F.cross_entropy(aux, y, label_smoothing=cfg.label_smoothing)
        if not torch.isfinite(loss):
            raise self.diverged("training", loss.item(), self.lower_hint)
        self.runtime.backward(loss, "weights")
        self.runtime.step(self.opt, "weights", self.net.parameters(), cfg.grad_clip)
        self.accum["loss"] += loss.item() * len(y)
        self.accum["correct"] += float((logits.argmax(1) == y).sum())
        self.accum["seen"] += len(y)

    def fit(self) -> TrainResult:
        cfg = self.cfg
        logger = ScalarLogger(self.run, enabled=self.run is not None and self.ctx.is_main)
        try:
            while self.epoch < cfg.epochs:
                if hasattr(self.net, "drop_path_prob"):
                    self.net.drop_path_prob = cfg.drop_path * self.epoch / cfg.epochs
                self.train_loader.set_epoch(self.epoch, self.step)
                self.net.train()
                bar = tqdm(self.train_loader, total=self.steps_per_epoch, initial=self.step, leave=False,
                           desc=f"train epoch {self.epoch + 1}/{cfg.epochs}",
                           disable=not self.show_bars())
                for x, y in bar:
                    if self.step >= self.steps_per_epoch:
                        break
                    started = time.perf_counter()
                    self._train_step(self.runtime.inputs(x), y.to(self.device))
                    self.accum["seconds"] += time.perf_counter() - started
                    self.step += 1
                    if cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0 and self.step < self.steps_per_epoch:
                        self.save()
                bar.close()
                self.check_finite(self.net)
                test_loss, test_acc = self.evaluate()
                a = self.accum
                row = {"epoch": self.epoch + 1, "lr": self.sched.get_last_lr()[0],
                       "train_loss": a["loss"] / max(1, a["seen"]), "train_acc": 100 * a["correct"] / max(1, a["seen"]),
                       "test_loss": test_loss, "test_acc": test_acc, "seconds": a["seconds"]}
                self.report(f"epoch {row['epoch']:>3}/{cfg.epochs}  train loss {row['train_loss']:.3f} acc "
                            f"{row['train_acc']:5.1f}%  test loss {row['test_loss']:.3f} acc {row['test_acc']:5.2f}%  "
                            f"lr {row['lr']:.4g}  {row['seconds']:.0f}s")
                self.sched.step()
                self.close_epoch(row, self._zero_accum(), logger)
        finally:
            logger.close()
        test_acc = self.metrics[-1]["test_acc"] if self.metrics else None
        return TrainResult(self.run.path if self.run else None, self.genotype, self.metrics, test_acc, self.params)


def train(genotype: "str | Genotype | None" = None, config: TrainConfig | None = None, *,
          out: str | Path | None = None, resume: str | Path | None = None, preset: str | None = None,
          **overrides: Any) -> TrainResult:
    """Train ``genotype`` (a run folder, JSON file, string or published name) from scratch, or resume a run."""
    with RunLifecycle("train") as life:
        if resume is not None:
            saved = dict(life.resume(resume, genotype=genotype, out=out, preset=preset))
            finished_before = life.run.status().get("state") == "finished" and life.run.model_card.exists()
            if "genotype" not in saved:
                raise RomenasError(f"{life.run.config_file} has no genotype; it is damaged, start the run anew in "
                                   "another folder")
            genotype = Genotype.from_dict(saved.pop("genotype"))
            saved.pop("genotype_source", None)
            cfg = life.settings(TrainConfig, saved, overrides)
            trainer = Trainer(genotype, cfg, life.run)
            life.restore(trainer, genotype.family)
        else:
            finished_before = False
            init = overrides.get("init") or (config.init if config is not None else None)
            if genotype is None and init:  # fine-tuning: the trained run's own genotype
                genotype = Genotype.from_dict(trained_weights(init)[1]["genotype"])
            if genotype is None:
                raise RomenasError("no genotype given; pass a run folder, a genotype file or string, or a published "
                                   "name")
            source = str(genotype) if isinstance(genotype, (str, Path)) else "given"
            genotype = load_genotype(genotype)
            if init:  # before its shape is lent: a run of another genotype cannot be continued
                check_init_genotype(init, genotype)
            if config is None:
                overrides = _with_lent(None if source == "given" else source, overrides, announce=life.ctx.is_main)
                preset = resolve_preset(preset, overrides)
                cfg = build_config(TrainConfig, overrides, preset)
            else:
                cfg = config.validate()
            life.new(out)
            trainer = Trainer(genotype, cfg, None)  # data and network first: bad input leaves no run folder
            record = {**to_dict(cfg), "genotype": genotype.to_dict(), "genotype_source": source}
            life.create(trainer, (genotype.family,), record, preset=preset if config is None else None)
        if life.ctx.is_main:
            life.run.write_json(life.run.genotype_file, genotype.to_dict())
        result = life.fit(trainer, params=trainer.params)
        checksums = dist.parameter_checksums(trainer.net, life.ctx)
        if len(set(checksums)) > 1:
            raise RomenasError(f"distributed ranks ended with different weights ({checksums}); "
                               "this is a bug: please report it with the run folder")
        life.finish(epoch=trainer.epoch, test_acc=result.test_acc, params=result.params, rank_checksums=checksums)
        if life.ctx.is_main and not finished_before:  # resuming a finished run changes nothing: its card stays
            from .model_card import write_model_card

            write_model_card(life.run.path)
        return result
