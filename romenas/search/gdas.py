"""GDAS (Dong & Yang, CVPR 2019): the single-path baseline ROME robustifies.

GDAS is ROME's sampler with everything ROME adds switched off: one subnet per step, one
Gumbel-max op on every edge (all edges active, no topology parameters, 'none' kept),
weights updated before the architecture, and the DARTS derivation rule.

``unselected_ops``: xautodl's NAS-Bench-201 network (``TinyNetworkGDAS``,
``NAS201SearchCell.forward_gdas``) adds every unselected op's straight-through weight (zero in
value) to the node, so the architecture step gives every op of an edge a gradient, not only
the sampled one; xautodl's NASNet network (``MixedOp.forward_gdas``) and NAS-Bench-1Shot1's
GDAS (``MixedOpGDAS``) run the sampled op alone. tests/test_equivalence.py checks both
forms against xautodl's networks.
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
    options = ("unselected_ops",)

    def __init__(self, space: SearchSpace, generator: torch.Generator, unselected_ops: bool = True):
        super().__init__(space, generator, samples=1, weight_sampling="single", topology=False)
        self.unselected_op_terms = bool(unselected_ops)
