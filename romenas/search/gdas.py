"""GDAS (Dong & Yang, CVPR 2019): the single-path baseline ROME robustifies.

GDAS is ROME's sampler with everything ROME adds switched off: one subnet per step, one
Gumbel-max op on every edge (all edges active, no topology parameters, 'none' kept),
weights updated before the architecture, and the DARTS derivation rule. As in the official
code (xautodl), every unselected op adds its straight-through weight (zero in value) to the
node, so the architecture step gives every op of an edge a gradient, not only the sampled one.
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
    options = ()
    unselected_op_terms = True

    def __init__(self, space: SearchSpace, generator: torch.Generator):
        super().__init__(space, generator, samples=1, weight_sampling="single", topology=False)
