"""Typed configs for search and training, YAML presets, and validation with one-line errors."""
from __future__ import annotations

import dataclasses
import functools
import types
import typing
from dataclasses import dataclass, field, fields
from importlib import resources
from typing import Any, Mapping

import yaml

from . import arguments
from .algorithms import method_summary as algorithm_method_summary
from .algorithms import DEFAULT_ALGORITHM, option_owners, refuse_foreign_options, resolve_options
from .errors import RomenasError
from .recipes import A_LR_RULES, RECIPES, recipe_name, recipe_settings
from .registry import DEFAULT_SPACE, MAX_CHANNELS, MAX_LAYERS, SPACES, get_family

DEFAULT_PRESET = "quickstart"


#: The groups a run's settings fall in, in the order ``--help`` shows them.
SETTING_GROUPS = ("algorithm and space", "data", "supernet", "network", "schedule", "weight optimiser",
                  "architecture optimiser", "optimiser", "budget", "benchmark lookups", "runtime")
#: Numerical precisions a run may use (romenas/runtime.py implements them).
PRECISIONS = ("32", "bf16-mixed", "16-mixed")


def setting(default: Any, help: str, *, group: str, path: bool = False, choices: tuple[str, ...] | None = None
            ) -> Any:
    """A config field with its meaning: the CLI's --help line (under ``group``, one of SETTING_GROUPS)
    and the API reference read it. ``path``: the value names a file or folder (a pathlib.Path is taken
    as its text). ``choices``: the values it may take (the CLI lists them; validate() refuses others)."""
    assert group in SETTING_GROUPS, group
    return field(default=default, metadata={"help": help, "group": group, "path": path, "choices": choices})


@dataclass
class RunSettings:
    """What every run (search or training) reads its data and runs with."""

    dataset: str = setting("digits", "digits (built in), cifar10, cifar100, svhn, an image-folder path or tar "
                                     "shards", path=True, group="data")
    data_dir: str | None = setting(None, "where torchvision datasets live", path=True, group="data")
    download: bool = setting(False, "let torchvision download the dataset", group="data")
    limit_train: int | None = setting(None, "use only the first N training images", group="data")
    image_size: int | None = setting(None, "resize images to this side in pixels (None: the dataset's size, or a "
                                           "folder's first image's)", group="data")
    augment: str = setting("auto", "pad-crop (CIFAR), resized-crop (ImageNet), none; auto: none for digits, "
                                   "else pad-crop", group="data", choices=("auto", "pad-crop", "resized-crop", "none"))
    workers: int | None = setting(None, "loader processes (None: 0 for in-memory data or < 4 cores, else half the "
                                        "cores, max 8)", group="data")
    seed: int = setting(0, "seed of every random draw (weights, data order, augmentation, sampling)", group="runtime")
    device: str = setting("auto", "auto (cuda when available), cpu, cuda, cuda:N", group="runtime")
    checkpoint_every: int = setting(0, "also checkpoint every N steps (0: at epoch ends only)", group="runtime")
    precision: str = setting("32", "32, bf16-mixed or 16-mixed (autocast; 16-mixed with gradient scaling)",
                             group="runtime", choices=PRECISIONS)
    channels_last: bool = setting(False, "NHWC activations", group="runtime")
    progress: bool = setting(True, "progress bars (on a terminal) and the settings line; the per-epoch lines are "
                                   "printed either way", group="runtime")


@dataclass
class SearchConfig(RunSettings):
    """Every setting of a search. Defaults: the quick-start search on the built-in digits."""

    algorithm: str = setting(DEFAULT_ALGORITHM, "the search algorithm (registered: romenas/algorithms.py)",
                             group="algorithm and space")
    space: str = setting(DEFAULT_SPACE, "the search space (registered: romenas/registry.py)",
                         group="algorithm and space")
    recipe: str = setting("auto", "published optimiser/schedule settings: auto (the algorithm's own for the space), "
                                  "none, or a name", group="algorithm and space")
    ops: tuple[str, ...] | None = setting(None, "restrict every edge to these ops (None: the space's own op set)",
                                          group="algorithm and space")
    train_portion: float = setting(0.5, "share of the training split for weights; the rest trains the architecture",
                                   group="data")
    channels: int = setting(8, "C: channels of the first cells", group="supernet")
    layers: int = setting(5, "cells (DARTS family) or cells per stage (NAS-Bench-201)", group="supernet")
    epochs: int = setting(20, "search epochs", group="schedule")
    batch_size: int = setting(64, "per half: weight and architecture batches each", group="schedule")
    warmup_epochs: int = setting(0, "train only the weights in the first N epochs (not part of any recipe here)",
                                 group="schedule")
    w_lr: float = setting(0.05, "supernet weights: SGD, cosine from w_lr to w_lr_min", group="weight optimiser")
    w_lr_min: float = setting(0.001, "the weights' learning rate at the end of the cosine schedule",
                              group="weight optimiser")
    w_momentum: float = setting(0.9, "the weights' SGD momentum", group="weight optimiser")
    w_weight_decay: float = setting(3e-4, "the weights' L2 weight decay", group="weight optimiser")
    w_nesterov: bool = setting(False, "Nesterov momentum for the weights", group="weight optimiser")
    grad_clip: float = setting(5.0, "max gradient norm of the weights per subnet (K subnets' sum: K x this; 0: off)",
                               group="weight optimiser")
    step_order: str = setting("auto", "per iteration: arch-first, weights-first, or auto (as the algorithm's "
                                      "source does; recipes set it)",
                              group="schedule", choices=("auto", "arch-first", "weights-first"))
    a_lr: float = setting(3e-4, "architecture parameters: Adam's learning rate", group="architecture optimiser")
    a_betas: tuple[float, float] = setting((0.5, 0.999), "Adam's betas for the architecture parameters",
                                           group="architecture optimiser")
    a_weight_decay: float = setting(1e-3, "the architecture parameters' L2 weight decay (Adam)",
                                    group="architecture optimiser")
    a_lr_rule: str = setting("as-set", "as-set: Adam's lr is a_lr; recipe-movement: the recipe's a_lr x its "
                                       "architecture steps on CIFAR-10 / this run's steps (the recipe's total "
                                       "movement of alpha in a shorter search; docs/method.md)",
                             group="architecture optimiser", choices=A_LR_RULES)
    nb201_table: str | None = setting(None, "NAS-Bench-201 accuracy table to look genotypes up each epoch",
                                      path=True, group="benchmark lookups")
    nb101_table: str | None = setting(None, "NAS-Bench-101 data file (nasbench_only108.tfrecord) to look the "
                                            "1shot1 spaces' cells up each epoch (108-epoch runs; read without TF)",
                                      path=True, group="benchmark lookups")
    parallel: str = setting("samples", "distributed: 'samples' (split K across ranks) or 'data'",
                            group="runtime", choices=("samples", "data"))
    subnet_execution: str = setting("sequential", "'sequential': one subnet's activations at a time; 'batched': "
                                                  "one pass (K x memory)",
                                    group="runtime", choices=("sequential", "batched"))
    # budget (romenas/search/budget.py): costs of the network that will be trained
    target_mflops: float | None = setting(None, "budget: MFLOPs per image of the trained network (FlopCounterMode, "
                                                "2 FLOPs per multiply-add)", group="budget")
    target_params: float | None = setting(None, "budget: millions of parameters of the trained network (auxiliary "
                                                "head excluded)", group="budget")
    target_latency_ms: float | None = setting(None, "budget: ms per image at batch 1 on the search's device (ops "
                                                    "timed once, cached in the run folder)", group="budget")
    budget_weight: float = setting(1.0, "lambda of the budget penalty lambda * sum max(0, E[cost]/target - 1) in "
                                        "the architecture loss", group="budget")
    budget_channels: int | None = setting(None, "C of the network the budget is for (None: the family's paper value, "
                                                "DARTS 36, NAS-Bench-201 16)", group="budget")
    budget_layers: int | None = setting(None, "cells of the network the budget is for (None: DARTS 20, "
                                              "NAS-Bench-201 5 per stage)", group="budget")
    #: The algorithm's own settings (romenas/algorithms.py declares them): flat keys in config.json,
    #: recipes, presets and API arguments, gathered here; :func:`resolve_options` fills the rest.
    options: dict[str, Any] = field(default_factory=dict, metadata={"help": "the algorithm's own options"})

    def validate(self) -> "SearchConfig":
        """Every value in range, the algorithm's options resolved (its own defaults filled in, another
        algorithm's dropped). A space name is checked against its registry by the search itself."""
        coerce_fields(self)
        self.options = resolve_options(self.algorithm, self.options)
        _check_runtime(self)
        if self.recipe != "none" and self.recipe not in RECIPES:
            raise RomenasError(f"unknown recipe {self.recipe!r}; use auto, none or one of {sorted(RECIPES)}")
        if self.ops is not None and (not self.ops or not all(isinstance(o, str) for o in self.ops)):
            raise RomenasError(f"ops must be a non-empty list of op names, got {self.ops!r}")
        _positive(self, "epochs", "batch_size", "channels", "layers", "w_lr", "a_lr")
        _non_negative(self, "w_lr_min", "w_weight_decay", "a_weight_decay", "grad_clip", "checkpoint_every",
                      "warmup_epochs")
        if self.warmup_epochs >= self.epochs:
            raise RomenasError(f"warmup_epochs ({self.warmup_epochs}) leaves no epoch for the architecture "
                               f"(epochs={self.epochs}); lower --warmup-epochs")
        _positive_or_none(self, "limit_train", "image_size", "target_mflops", "target_params", "target_latency_ms",
                          "budget_channels", "budget_layers")
        _positive(self, "budget_weight")
        if self.budget_weight > 1e3:
            raise RomenasError(f"budget_weight {self.budget_weight:g} is beyond 1000; the penalty's gradient would "
                               "overflow the architecture step (lambda 1-10 is the useful range)")
        _check_seed_and_sgd(self.seed, self.w_momentum, self.w_nesterov, "--w-")
        if not all(0.0 <= b < 1.0 for b in self.a_betas) or len(self.a_betas) != 2:
            raise RomenasError(f"a_betas must be two numbers in [0, 1), got {list(self.a_betas)}")
        if not 0.0 < self.train_portion < 1.0:
            raise RomenasError(f"train_portion must lie strictly between 0 and 1, got {self.train_portion}")
        entry = SPACES.get(str(self.space).lower())
        for bench in ("nb201", "nb101"):  # a table looks up the cells of the families that name its benchmark
            if getattr(self, f"{bench}_table") is not None and (entry is None
                                                                or get_family(entry.family).benchmark != bench):
                spaces = "|".join(n for n, e in SPACES.items() if get_family(e.family).benchmark == bench)
                raise RomenasError(f"--{bench}-table looks NAS-Bench-{bench[2:]} cells up, but the space is {self.space}; "
                                   f"drop it or search with --space {spaces}")
        if entry is not None:  # an unknown space is the search's to name (it owns the registry)
            family = get_family(entry.family)
            family.check_size(self.channels, self.layers)
            if self.budget_channels or self.budget_layers:
                family.check_size(self.budget_channels or family.channels, self.budget_layers or family.layers,
                                  "--budget-channels and --budget-layers")
        _check_device(self.device)
        return self


@dataclass
class TrainConfig(RunSettings):
    """Training a derived network from scratch. Defaults: a quick run on the built-in digits."""

    limit_test: int | None = setting(None, "evaluate on only the first N test images", group="data")
    test_dataset: str | None = setting(None, "held-out images (a <class>/ folder or tar shards) for a dataset "
                                             "without a test split", path=True, group="data")
    stem: str = setting("cifar", "'cifar' or 'imagenet' (DARTS family)", group="network", choices=("cifar", "imagenet"))
    channels: int | None = setting(None, "C of the first cells (None: the family's paper value, DARTS 36, "
                                         "NAS-Bench-201 16)", group="network")
    layers: int | None = setting(None, "cells (None: DARTS 20 cells, NAS-Bench-201 N=5 per stage)", group="network")
    epochs: int = setting(10, "training epochs", group="schedule")
    batch_size: int = setting(96, "images per step (per process under torchrun)", group="schedule")
    lr: float = setting(0.025, "SGD learning rate, cosine from lr to lr_min", group="optimiser")
    lr_min: float = setting(0.0, "the learning rate at the end of the cosine schedule", group="optimiser")
    momentum: float = setting(0.9, "SGD momentum", group="optimiser")
    weight_decay: float = setting(3e-4, "L2 weight decay", group="optimiser")
    nesterov: bool = setting(False, "Nesterov momentum", group="optimiser")
    cutout: int = setting(0, "Cutout square side in pixels (DARTS: 16; 0: off)", group="data")
    drop_path: float = setting(0.0, "final drop-path probability, ramped linearly (DARTS: 0.2)", group="network")
    auxiliary_weight: float = setting(0.0, "> 0 builds DARTS' auxiliary head, its loss weighted by this",
                                      group="network")
    grad_clip: float = setting(5.0, "max gradient norm (0: off)", group="optimiser")
    label_smoothing: float = setting(0.0, "label smoothing of the cross-entropy loss", group="optimiser")
    sync_bn: bool = setting(False, "distributed: SyncBatchNorm", group="runtime")
    init: str | None = setting(None, "fine-tune: start from this training run's weights (new classifier if the "
                                     "class count differs)", path=True, group="network")
    compile: bool = setting(False, "torch.compile the network (needs a C compiler on CPU)", group="runtime")

    def validate(self) -> "TrainConfig":
        coerce_fields(self)
        _check_runtime(self)
        _positive(self, "epochs", "batch_size", "lr")
        _non_negative(self, "lr_min", "weight_decay", "cutout", "drop_path", "auxiliary_weight", "grad_clip",
                      "label_smoothing", "checkpoint_every")
        _positive_or_none(self, "channels", "layers", "limit_train", "limit_test", "image_size")
        _check_seed_and_sgd(self.seed, self.momentum, self.nesterov, "--")
        if self.drop_path >= 1.0:
            raise RomenasError(f"drop_path must be below 1, got {self.drop_path}")
        if self.auxiliary_weight > 0 and self.batch_size < 2:
            raise RomenasError("the auxiliary head's batch norm sees one value per channel at batch size 1; "
                               "raise --batch-size to 2 or more, or drop --auxiliary-weight")
        _check_device(self.device)
        return self


# ---- helpers ---------------------------------------------------------------------------
def _check_choices(cfg) -> None:
    """Every setting declared with ``choices`` holds one of them."""
    for f in dataclasses.fields(cfg):
        options, value = f.metadata.get("choices"), getattr(cfg, f.name)
        if options is not None and value not in options:
            raise RomenasError(f"unknown {f.name} {value!r}; use one of {sorted(options)}")


#: Image sides beyond this are refused (a 100000-pixel side would allocate tens of GB per batch).
MAX_IMAGE_SIZE = 4096
#: Epochs of a run at most (published searches take 50-250, trainings 600): 10^30 ran forever.
MAX_EPOCHS = 10_000
#: Classes of a dataset at most (the data readers' bound, and a priced network's).
MAX_CLASSES = 100_000


def network_size_fits(network: Mapping[str, Any]) -> bool:
    """A network size saved in a run folder (a cost table's ``network``) is one romenas could have
    built: positive integers within the bounds on channels, cells, image side and classes."""
    bounds = {"channels": MAX_CHANNELS, "layers": MAX_LAYERS, "image_size": MAX_IMAGE_SIZE,
              "in_channels": MAX_CHANNELS, "num_classes": MAX_CLASSES}
    return all(type(network.get(k)) is int and 0 < network[k] <= bound for k, bound in bounds.items())


def _check_runtime(cfg) -> None:
    """Data and runtime settings both configs share, and every declared choice."""
    _check_choices(cfg)
    if cfg.epochs > MAX_EPOCHS:
        raise RomenasError(f"epochs {cfg.epochs} is beyond {MAX_EPOCHS}; a run that long would never end, pass "
                           "fewer --epochs")
    if cfg.image_size is not None and cfg.image_size > MAX_IMAGE_SIZE:
        raise RomenasError(f"image_size {cfg.image_size} is beyond {MAX_IMAGE_SIZE} pixels; pass a smaller --image-size")
    if cfg.workers is not None and cfg.workers < 0:
        raise RomenasError(f"workers must not be negative, got {cfg.workers}")


@functools.cache
def _kinds(cls) -> dict[str, tuple[Any, bool, bool]]:
    """Each setting's (type, whether None is allowed, whether it names a path), from its field."""
    kinds = {}
    for f in fields(cls):
        hint = typing.get_type_hints(cls)[f.name]
        args = typing.get_args(hint) if isinstance(hint, types.UnionType) else ()
        kinds[f.name] = (next((a for a in args if a is not type(None)), hint), type(None) in args,
                         f.metadata.get("path", False))
    return kinds


def coerce_setting(cls, name: str, value: Any) -> Any:
    """``value`` as setting ``name`` of ``cls`` takes it (see romenas/arguments.py: a Path for a
    path, 2.0 for 2, one string for a list of one), or a one-line RomenasError naming it. Unknown
    names pass through (:func:`from_dict` names them); a float must be finite (NaN slips through
    every range check)."""
    if name == "options" and name in _kinds(cls):
        if not isinstance(value, Mapping):
            raise RomenasError(f"options takes a dict of the algorithm's options, got {arguments.shown(value)}")
        return dict(value)
    if name not in _kinds(cls):
        return value
    kind, optional, is_path = _kinds(cls)[name]
    if value is None and optional:
        return None
    if is_path:
        return arguments.path(value, name)
    if typing.get_origin(kind) is tuple:
        items = typing.get_args(kind)
        if items[-1] is Ellipsis:
            return arguments.strings(value, name)
        if not isinstance(value, (list, tuple)) or len(value) != len(items):
            raise RomenasError(f"{name} takes {len(items)} numbers, got {arguments.shown(value)}")
        return tuple(arguments.coerce(v, k, name) for v, k in zip(value, items))
    return arguments.coerce(value, kind, name)


def coerce_settings(cls, values: Mapping[str, Any]) -> dict[str, Any]:
    """Every given setting coerced (:func:`coerce_setting`); None means "not given" and stays."""
    return {k: v if v is None else coerce_setting(cls, k, v) for k, v in values.items()}


def coerce_fields(cfg):
    """``cfg`` with its own values coerced in place: a config built by hand, a preset or a config.json."""
    for f in fields(cfg):
        setattr(cfg, f.name, coerce_setting(type(cfg), f.name, getattr(cfg, f.name)))
    return cfg


def _positive(cfg, *names: str) -> None:
    for name in names:
        if getattr(cfg, name) <= 0:
            raise RomenasError(f"{name} must be positive, got {getattr(cfg, name)}")


def _check_seed_and_sgd(seed: int, momentum: float, nesterov: bool, prefix: str) -> None:
    if not 0 <= seed < 2 ** 63:
        raise RomenasError(f"seed must lie in [0, 2**63), got {seed}")
    if momentum < 0:
        raise RomenasError(f"{prefix}momentum must not be negative, got {momentum}")
    if nesterov and momentum <= 0:
        raise RomenasError(f"Nesterov momentum needs {prefix}momentum above 0; drop {prefix}nesterov or set a momentum")


def _positive_or_none(cfg, *names: str) -> None:
    for name in names:
        value = getattr(cfg, name)
        if value is not None and value <= 0:
            raise RomenasError(f"{name} must be positive, got {value}")


def _non_negative(cfg, *names: str) -> None:
    for name in names:
        if getattr(cfg, name) < 0:
            raise RomenasError(f"{name} must not be negative, got {getattr(cfg, name)}")


def _check_device(device: str) -> None:
    if device == "auto" or device == "cpu":
        return
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise RomenasError(f"device {device!r} asked for, but CUDA is not available here; use --device cpu")
        return
    raise RomenasError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N")


def resolve_device(device: str):
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def resolve_preset(preset: str | None, overrides: Mapping[str, Any]) -> str | None:
    """The one rule, for the CLI and the API alike: a named preset is used as named; without one,
    a run on the built-in digits (no ``dataset``, or 'digits') is the quick start (preset
    ``quickstart``, the README's first command), and a run on any other data gets the
    algorithm's published recipe for everything not set (no preset)."""
    if preset is None and overrides.get("dataset") in (None, "digits"):
        return DEFAULT_PRESET
    return preset


def setting_sources(cls, overrides: Mapping[str, Any] | None, preset: str | None, recipe: str = "none"
                    ) -> dict[str, str]:
    """Where each setting's value came from: 'flag', 'preset <name>', 'recipe <name>' or 'default'."""
    given = {k for k, v in upgrade_settings(overrides or {}).items() if v is not None}
    from_preset = set(load_preset(preset, "search" if cls is SearchConfig else "train")) if preset else set()
    from_recipe = set(recipe_settings(recipe)) if recipe not in ("auto", "none") else set()
    names = [f.name for f in fields(cls) if f.name != "options"] + (list(option_owners()) if cls is SearchConfig
                                                                   else [])
    return {name: "flag" if name in given else f"preset {preset}" if name in from_preset
            else f"recipe {recipe}" if name in from_recipe else "default" for name in names}


def build_config(cls, overrides: Mapping[str, Any] | None = None, preset: str | None = None):
    """Recipe (searches), then preset values, then overrides (None values are ignored), validated.

    A search's ``recipe: auto`` resolves to its algorithm's published recipe for its space,
    recorded by name in the config.
    """
    values: dict[str, Any] = {}
    if preset:
        values.update(load_preset(preset, "search" if cls is SearchConfig else "train"))
    explicit = {k: v for k, v in coerce_settings(cls, upgrade_settings(overrides or {})).items() if v is not None}
    values.update(explicit)
    if cls is SearchConfig:
        refuse_foreign_options(values.get("algorithm", cls.algorithm), explicit)
        recipe = values.get("recipe", "auto")
        if recipe == "auto":
            recipe = recipe_name(values.get("algorithm", cls.algorithm), values.get("space", cls.space))
        from_recipe = recipe_settings(recipe)
        values = {**from_recipe, **values, "recipe": recipe}
        cfg = from_dict(cls, values)
        stray = sorted(k for k in from_recipe if k in option_owners() and cfg.algorithm not in option_owners()[k])
        if stray:  # a recipe is one algorithm's: an option it sets that its algorithm lacks is a typo
            raise RomenasError(f"recipe {recipe!r} sets {stray}, which {cfg.algorithm} does not own; use the "
                               f"recipe of {cfg.algorithm} (--recipe auto) or --recipe none")
        return cfg.validate()
    return from_dict(cls, values).validate()


#: What may differ when a run is resumed: how it runs, not what it computes.
RESUMABLE = ("progress", "device", "checkpoint_every", "workers")
#: Learning rates may change on resume too (after a divergence, say), from the resume point on;
#: the run's config records the change and when it happened.
RETUNABLE = ("w_lr", "a_lr", "lr")


def retuned(saved: Mapping[str, Any], cfg) -> dict[str, Any]:
    """The learning rates ``cfg`` changes with respect to the run's ``saved`` settings."""
    return {k: getattr(cfg, k) for k in RETUNABLE if hasattr(cfg, k) and k in saved and saved[k] != getattr(cfg, k)}


def resumed_config(cls, saved: Mapping[str, Any], overrides: Mapping[str, Any]):
    """A resumed run's config: its own saved settings; a flag that would change them is refused."""
    saved, overrides = upgrade_settings(saved), upgrade_settings(overrides)
    free = RESUMABLE + RETUNABLE
    changed = {k: v for k, v in overrides.items()
               if v is not None and k not in free and saved.get(k) != (list(v) if isinstance(v, tuple) else v)}
    if changed:
        flags = ", ".join(f"--{k.replace('_', '-')} {v} (run: {saved.get(k)})" for k, v in changed.items())
        raise RomenasError(f"--resume continues a run with its own settings, and {flags} would change them; "
                           "drop the flag(s), or start a new run with --out")
    return from_dict(cls, {**saved, **{k: v for k, v in overrides.items() if k in free and v is not None}}
                     ).validate()


def field_help(cls) -> dict[str, str]:
    """Each setting's meaning, from its field's metadata (CLI help, API docs)."""
    return {f.name: f.metadata.get("help", "") for f in fields(cls)}


def method_summary(cfg: Mapping[str, Any]) -> str:
    """The search settings the run's algorithm used, in words, from a saved or resolved config
    (``show``, the model card): e.g. 'K=7, fair weight step (arXiv 2020: ...), topology top2, arch-first'."""
    return algorithm_method_summary(upgrade_settings(cfg))


#: The costs a budget bounds, and their units: MFLOPs per image, millions of parameters, ms per image (batch 1).
METRICS = {"mflops": "MFLOPs", "mparams": "M params", "latency_ms": "ms"}
#: Search setting of each budget target -> the cost metric it bounds.
TARGETS = {"target_mflops": "mflops", "target_params": "mparams", "target_latency_ms": "latency_ms"}


def format_cost(metric: str, value: float) -> str:
    """'46.4 MFLOPs', '0.802 M params', '3.6 ms': four significant digits, whatever the size."""
    return f"{value:.4g} {METRICS[metric]}"


def budget_line(result: dict[str, dict[str, Any]], network: dict[str, Any] | None = None,
                mode: dict[str, Any] | None = None) -> str:
    """One line: each budget, the derived network's measured cost, met or NOT met; with ``mode``
    (the most probable cell, which the budget ruled out), what that one would have cost."""
    parts = [f"{format_cost(m, r['measured'])} <= {format_cost(m, r['target'])} met" if r["met"] else
             f"{format_cost(m, r['measured'])} > {format_cost(m, r['target'])} NOT met"
             for m, r in result.items()]
    size = f" (C={network['channels']}, {network['layers']} layers, {network['image_size']}px)" if network else ""
    line = "budget" + size + ": " + "; ".join(parts)
    if isinstance(mode, dict) and isinstance(mode.get("cost"), dict):
        line += (" - the most probable cell (" + ", ".join(format_cost(m, mode["cost"][m]) for m in result
                                                          if isinstance(mode["cost"].get(m), (int, float)))
                 + ") is above it; derived the most probable one within it")
    if not all(r["met"] for r in result.values()):
        line += " - the derived network exceeds its budget: raise --budget-weight or search longer"
    return line


def upgrade_settings(values: Mapping[str, Any]) -> dict[str, Any]:
    """Settings saved or passed under an older name: ``fair`` (true: the fair weight step; false:
    Algorithm 1's K Gumbel subnets, the default before weight_sampling existed)."""
    values = dict(values)
    if "fair" in values:
        fair = values.pop("fair")
        if fair is not None:
            values.setdefault("weight_sampling", "fair" if fair else "gumbel")
    return values


def from_dict(cls, values: Mapping[str, Any]):
    """A config from flat settings (config.json, a preset, API arguments); a search's algorithm
    options (any registered algorithm's) are gathered into ``options``."""
    values = upgrade_settings(values)
    known = {f.name: f for f in fields(cls)}
    if cls is SearchConfig:
        owned = set(option_owners())
        options = {**(values.pop("options", None) or {}), **{k: values.pop(k) for k in list(values) if k in owned}}
        values["options"] = options
    unknown = sorted(set(values) - set(known))
    if unknown:
        extra = f" or an algorithm's option {sorted(option_owners())}" if cls is SearchConfig else ""
        raise RomenasError(f"unknown {cls.__name__} key(s) {unknown}; known keys: {sorted(set(known) - {'options'})}"
                           + extra)
    try:
        cfg = cls(**values)
    except TypeError as exc:
        raise RomenasError(f"bad {cls.__name__}: {exc}") from None
    return cfg


def to_dict(cfg) -> dict[str, Any]:
    """Flat settings: a search's options sit beside the shared ones, as config.json stores them."""
    values = {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(cfg).items()}
    options = values.pop("options", {})  # popped first: each option once, not also nested under "options"
    return {**values, **options}


def preset_names() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files("romenas.presets").iterdir() if p.name.endswith(".yaml"))


def load_preset(name: str, kind: str) -> dict[str, Any]:
    """The ``kind`` section ('search' or 'train') of a shipped preset."""
    if name not in preset_names():  # names only: a path would read YAML from anywhere
        raise RomenasError(f"unknown preset {name!r}; use one of {preset_names()} (set anything else with flags)")
    path = resources.files("romenas.presets") / f"{name}.yaml"
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise RomenasError(f"preset {name!r} is not valid YAML ({str(exc).splitlines()[0]}); reinstall romenas") from None
    if not isinstance(data, dict) or not isinstance(data.get(kind, {}), dict):
        raise RomenasError(f"preset {name!r} is damaged (expected sections search:/train: of settings)")
    if kind not in data:
        raise RomenasError(f"preset {name!r} has no {kind} settings; it offers {sorted(k for k in data if k != 'about')}")
    return dict(data[kind])
