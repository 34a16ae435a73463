"""Each recipe romenas names after a source holds that source's values.

The values below were read from the sources themselves (D-X-Y/AutoDL-Projects, quark0/darts,
automl/nasbench-1shot1, ROME's paper) and are written here with the file or section they come
from; a recipe that drifts from its source fails here. Where romenas departs from a source on
purpose, docs/method.md ("The baselines against their official code") says so.
"""
from __future__ import annotations

import pytest

from romenas.recipes import recipe_settings

#: (recipe, {setting: source value}, where the values come from)
OFFICIAL_SOURCES = [
    ("gdas-nb201",
     dict(w_lr=0.025, w_lr_min=0.001, epochs=250, w_weight_decay=5e-4, w_momentum=0.9, w_nesterov=True,
          batch_size=64, a_lr=3e-4, a_weight_decay=1e-3, a_betas=(0.5, 0.999), tau_max=10.0, tau_min=0.1,
          grad_clip=5.0, train_portion=0.5, step_order="weights-first", unselected_ops=True),
     "AutoDL-Projects configs/nas-benchmark/algos/GDAS.config (LR, eta_min, epochs, decay, momentum, nesterov, "
     "batch_size); scripts-search/NAS-Bench-201-algos/GDAS.sh (--arch_learning_rate, --arch_weight_decay, "
     "--tau_max, --tau_min); exps/NAS-Bench-201-algos/GDAS.py (Adam betas, clip_grad_norm_ 5, weights then "
     "architecture); configs/nas-benchmark/cifar-split.txt (two halves); TinyNetworkGDAS (unselected ops' terms)"),
    ("darts-nb201",
     dict(w_lr=0.025, w_lr_min=0.001, epochs=50, w_weight_decay=5e-4, w_momentum=0.9, w_nesterov=True,
          batch_size=64, a_lr=3e-4, a_weight_decay=1e-3, a_betas=(0.5, 0.999), grad_clip=5.0, train_portion=0.5,
          step_order="weights-first"),
     "AutoDL-Projects configs/nas-benchmark/algos/DARTS.config; scripts-search/NAS-Bench-201-algos/DARTS-V1.sh; "
     "exps/NAS-Bench-201-algos/DARTS-V1.py (Adam betas, --gradient_clip default 5, weights then architecture)"),
    ("gdas-darts",
     dict(w_lr=0.025, w_lr_min=0.001, epochs=250, w_weight_decay=5e-4, w_momentum=0.9, w_nesterov=True,
          batch_size=256, a_lr=3e-4, a_weight_decay=1e-3, a_betas=(0.5, 0.999), tau_max=10.0, tau_min=0.1,
          grad_clip=5.0, step_order="weights-first", unselected_ops=False),
     "AutoDL-Projects configs/search-opts/GDAS-NASNet-CIFAR.config; scripts-search/NASNet-space-search-by-GDAS.sh "
     "(arch lr/wd, tau); exps/NAS-Bench-201-algos/GDAS.py (the loop it runs); NASNetworkGDAS (the sampled op "
     "alone)"),
    ("darts-darts",
     dict(batch_size=64, w_lr=0.025, w_lr_min=0.001, w_momentum=0.9, w_weight_decay=3e-4, w_nesterov=False,
          epochs=50, grad_clip=5.0, train_portion=0.5, a_lr=3e-4, a_weight_decay=1e-3, a_betas=(0.5, 0.999),
          step_order="arch-first"),
     "quark0/darts cnn/train_search.py argparse defaults (batch_size, learning_rate, learning_rate_min, momentum, "
     "weight_decay, epochs, grad_clip, train_portion, arch_learning_rate, arch_weight_decay; SGD without "
     "nesterov; architect.step before the weight step); cnn/architect.py (Adam betas)"),
    ("darts-1shot1",
     dict(batch_size=96, w_lr=0.025, w_lr_min=0.001, w_momentum=0.9, w_weight_decay=3e-4, epochs=50,
          grad_clip=5.0, train_portion=0.5, a_lr=3e-4, a_weight_decay=1e-3),
     "automl/nasbench-1shot1 optimizers/darts/train_search.py argparse defaults"),
    ("gdas-1shot1",
     dict(batch_size=96, w_lr=0.025, w_lr_min=0.001, w_momentum=0.9, w_weight_decay=3e-4, epochs=100,
          grad_clip=5.0, train_portion=0.5, a_lr=3e-4, a_weight_decay=1e-3, tau_max=10.0, tau_min=1.0,
          unselected_ops=False),
     "automl/nasbench-1shot1 optimizers/gdas/train_search.py argparse defaults; optimizers/gdas/model_search.py "
     "(MixedOpGDAS runs only the ops of non-zero weight: the sampled one)"),
    ("rome-darts",
     dict(epochs=50, samples=7, w_momentum=0.9, w_lr=0.05, a_lr=3e-4),
     "ROME (Wang, Chu et al., ICCV 2023) Sec. 5 search settings, DARTS space on CIFAR-10 (../shared/docs/ROME.md: "
     "'50 epochs, K=7, weights SGD momentum 0.9 lr 0.05, architecture Adam lr 3e-4')"),
]


@pytest.mark.parametrize("recipe,values,source", OFFICIAL_SOURCES, ids=[r for r, _, _ in OFFICIAL_SOURCES])
def test_recipe_equals_its_official_source(recipe, values, source):
    settings = recipe_settings(recipe)
    for key, value in values.items():
        got = settings.get(key)
        got = tuple(got) if isinstance(got, list) else got
        assert got == value, f"{recipe}.{key} = {got!r}, but {source} says {value!r}"
