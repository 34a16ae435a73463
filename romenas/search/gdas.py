"""GDAS (Dong & Yang, CVPR 2019): the single-path baseline ROME robustifies.

GDAS is ROME's sampler with everything ROME adds switched off: one subnet per step, one
Gumbel-max op on every edge (all 14 edges active, no topology parameters, 'none' kept),
weights updated before the architecture, and the DARTS derivation rule.
"""
from __future__ import annotations

import torch

from ..spaces import SearchSpace
from .base import register
from .rome import ROME


@register
class GDAS(ROME):
    name = "gdas"
    arch_first = False

    def __init__(self, space: SearchSpace, generator: torch.Generator, **_ignored):
        super().__init__(space, generator, samples=1, fair=False, topology=False)
