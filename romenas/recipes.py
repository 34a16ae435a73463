"""Published search recipes: each algorithm's own optimiser and schedule settings, per space family.

A baseline is only a baseline on its own recipe, so ``recipe: auto`` (the default) gives
every (algorithm, space) the settings its authors published; a preset (data and budget)
and explicit flags still override them, and the run's config records the recipe by name.
``recipe: none`` keeps the plain config defaults. The sources are named in each entry.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

from .errors import RomenasError
from .registry import SPACES

#: Architecture optimiser shared by DARTS, GDAS and ROME (Adam, lr 3e-4, betas (0.5, 0.999), wd 1e-3).
_ARCH = dict(a_lr=3e-4, a_betas=(0.5, 0.999), a_weight_decay=1e-3)
#: Weight optimiser of DARTS' cnn/train_search.py (also RobustDARTS' default): SGD 0.025 -> 0.001, wd 3e-4.
_DARTS_SGD = dict(batch_size=64, w_lr=0.025, w_lr_min=0.001, w_momentum=0.9, w_weight_decay=3e-4,
                  w_nesterov=False, grad_clip=5.0, train_portion=0.5)
#: Weight optimiser of xautodl's NAS-Bench-201 searches (configs/nas-benchmark/algos/{DARTS,GDAS}.config).
_NB201_SGD = dict(batch_size=64, w_lr=0.025, w_lr_min=0.001, w_momentum=0.9, w_weight_decay=5e-4,
                  w_nesterov=True, grad_clip=5.0, train_portion=0.5)
_GUMBEL = dict(tau_max=10.0, tau_min=0.1)
#: NAS-Bench-1Shot1's optimizers/darts/train_search.py (also its GDAS): batch 96, SGD 0.025 -> 0.001, wd 3e-4.
_1SHOT1_SGD = dict(_DARTS_SGD, batch_size=96)
#: Step order per iteration as each source has it: DARTS' Algorithm 1 and ROME's update the
#: architecture first; xautodl's GDAS, and its DARTS on NAS-Bench-201, update the weights first.
_ARCH_FIRST, _WEIGHTS_FIRST = dict(step_order="arch-first"), dict(step_order="weights-first")
#: ROME as the arXiv-2020 version: fair weight step, the architecture averaged over K=7 Gumbel subnets.
_ROME = dict(**_GUMBEL, **_ARCH_FIRST, samples=7, weight_sampling="fair")


@dataclass(frozen=True)
class Recipe:
    """Settings an algorithm's authors published for one space family, and where they come from."""

    name: str
    source: str
    settings: Mapping[str, Any]


def _recipes(*recipes: Recipe) -> dict[str, Recipe]:
    return {r.name: r for r in recipes}


RECIPES: dict[str, Recipe] = _recipes(
    Recipe("darts-darts", "DARTS (Liu et al., ICLR 2019) cnn/train_search.py: 50 epochs, first order "
           "(darts_order 2 = its unrolled variant), alpha updated before w (its Algorithm 1)",
           {**_DARTS_SGD, **_ARCH, **_ARCH_FIRST, "epochs": 50}),
    Recipe("darts-robust", "RobustDARTS (Zela et al., ICLR 2020): the DARTS search settings on S1-S4",
           {**_DARTS_SGD, **_ARCH, **_ARCH_FIRST, "epochs": 50}),
    Recipe("darts-nb201", "xautodl DARTS-V1/V2 on NAS-Bench-201 (scripts-search/NAS-Bench-201-algos): 50 epochs, "
           "w updated before alpha", {**_NB201_SGD, **_ARCH, **_WEIGHTS_FIRST, "epochs": 50}),
    Recipe("gdas-darts", "GDAS (Dong & Yang, CVPR 2019), xautodl configs/search-opts/GDAS-NASNet-CIFAR.config: "
           "250 epochs, batch 256, SGD nesterov wd 5e-4, tau 10 -> 0.1, w updated before alpha, the sampled op "
           "alone (NASNetworkGDAS)",
           {**_NB201_SGD, **_ARCH, **_GUMBEL, **_WEIGHTS_FIRST, "epochs": 250, "batch_size": 256,
            "unselected_ops": False}),
    Recipe("gdas-robust", "GDAS on S1-S4 as ROME's paper runs it: the DARTS search settings, tau 10 -> 0.1, "
           "w updated before alpha, the sampled op alone (xautodl's NASNet GDAS)",
           {**_DARTS_SGD, **_ARCH, **_GUMBEL, **_WEIGHTS_FIRST, "epochs": 50, "unselected_ops": False}),
    Recipe("gdas-nb201", "xautodl GDAS on NAS-Bench-201 (configs/nas-benchmark/algos/GDAS.config, GDAS.sh): "
           "250 epochs, SGD nesterov wd 5e-4, tau 10 -> 0.1, w updated before alpha, the unselected ops' "
           "straight-through terms (TinyNetworkGDAS)",
           {**_NB201_SGD, **_ARCH, **_GUMBEL, **_WEIGHTS_FIRST, "epochs": 250, "unselected_ops": True}),
    Recipe("rome-darts", "ROME arXiv 2011.11233 v1 (2020): fair weight step, K=7 Gumbel subnets averaged for "
           "alpha/beta; ICCV 2023 Sec. 5 settings: 50 epochs, SGD lr 0.05, the DARTS/GDAS rest",
           {**_DARTS_SGD, **_ARCH, **_ROME, "epochs": 50, "w_lr": 0.05}),
    Recipe("rome-robust", "ROME (2020 weight step, fair) on S1-S4: its DARTS-space settings",
           {**_DARTS_SGD, **_ARCH, **_ROME, "epochs": 50, "w_lr": 0.05}),
    Recipe("rome-nb201", "ROME's paper has no NAS-Bench-201 search: xautodl's NB201 weight optimiser with "
           "ROME's fair weight step, K=7 and 50 epochs", {**_NB201_SGD, **_ARCH, **_ROME, "epochs": 50}),
    Recipe("darts-1shot1", "NAS-Bench-1Shot1 (Zela et al., ICLR 2020) optimizers/darts/train_search.py: batch 96, "
           "SGD 0.025 -> 0.001, 50 epochs (its argparse default; its cluster scripts run 25), first order, input "
           "weights softmax(beta)", {**_1SHOT1_SGD, **_ARCH, **_ARCH_FIRST, "epochs": 50}),
    Recipe("gdas-1shot1", "NAS-Bench-1Shot1's GDAS: its DARTS settings, 100 epochs, hard Gumbel on ops and soft "
           "Gumbel-softmax on inputs (the sampled op alone, its MixedOpGDAS), tau 10 -> 1",
           {**_1SHOT1_SGD, **_ARCH, **_WEIGHTS_FIRST, "epochs": 100, "tau_max": 10.0, "tau_min": 1.0,
            "unselected_ops": False}),
    Recipe("rome-1shot1", "ROME's paper gives no NAS-Bench-1Shot1 settings: 1Shot1's DARTS weight optimiser with "
           "ROME's fair weight step, K=7, tau 10 -> 0.1 and its DARTS-space 50 epochs",
           {**_1SHOT1_SGD, **_ARCH, **_ROME, "epochs": 50}),
)



#: Every recipe above searches CIFAR-10's 50,000 training images (split by its train_portion).
RECIPE_IMAGES = 50_000
#: How a run's architecture learning rate follows from its recipe (SearchConfig.a_lr_rule).
A_LR_RULES = ("as-set", "recipe-movement")


def recipe_steps(name: str) -> int:
    """Architecture steps of recipe ``name`` over its whole search: epochs x the batches of its
    architecture half of CIFAR-10 (e.g. rome-nb201: 50 x ceil(25,000 / 64) = 19,550)."""
    s = RECIPES[name].settings
    return s["epochs"] * math.ceil(RECIPE_IMAGES * (1.0 - s["train_portion"]) / s["batch_size"])


def recipe_movement_lr(name: str, steps: int) -> float:
    """The architecture lr that moves alpha as far in ``steps`` Adam steps as recipe ``name`` does in
    its own: lr_recipe x recipe_steps / steps. Adam moves a parameter about lr per step whatever
    the gradient's size, so a search with 30x fewer steps needs 30x the lr for the recipe's total
    movement (docs/method.md, "CPU proxies"). RomenasError for recipe 'none'."""
    if name not in RECIPES:
        raise RomenasError(f"a_lr_rule recipe-movement scales a recipe's a_lr, and this run has recipe {name!r}; "
                           "use --recipe auto or a recipe name, or --a-lr-rule as-set")
    return RECIPES[name].settings["a_lr"] * recipe_steps(name) / steps


def recipe_name(algorithm: str, space: str) -> str:
    """The published recipe of ``algorithm`` in ``space`` ('<algorithm>-<darts|robust|nb201|1shot1>'), or 'none'."""
    entry = SPACES.get(str(space).lower())
    name = f"{algorithm}-{entry.recipe_family if entry else space}"
    return name if name in RECIPES else "none"


def recipe_settings(name: str) -> dict[str, Any]:
    """The settings of recipe ``name`` ('none': no settings)."""
    if name == "none":
        return {}
    if name not in RECIPES:
        raise RomenasError(f"unknown recipe {name!r}; use auto, none or one of {sorted(RECIPES)}")
    return dict(RECIPES[name].settings)
