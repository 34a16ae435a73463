"""GDAS (Dong & Yang, CVPR 2019): one Gumbel-max op on every edge per step, the baseline ROME robustifies.

One subnet per step for the weights and one for the architecture, all edges active, no
topology parameters, 'none' kept as an op, weights updated before the architecture, and the
DARTS derivation rule. On spaces whose nodes choose their inputs (NAS-Bench-1Shot1) the inputs
are weighted by a soft Gumbel-softmax over beta, as 1Shot1's GDAS does.

``unselected_ops``: xautodl's NAS-Bench-201 network (``TinyNetworkGDAS``,
``NAS201SearchCell.forward_gdas``) adds every unselected op's straight-through weight (zero in
value) to the node, so the architecture step gives every op of an edge a gradient, not only
the sampled one; xautodl's NASNet network (``MixedOp.forward_gdas``) and NAS-Bench-1Shot1's
GDAS (``MixedOpGDAS``) run the sampled op alone. tests/test_equivalence.py checks both
forms against xautodl's networks.
"""
from __future__ import annotations

import torch

from ..spaces import Plan, SearchSpace
from .base import Capabilities
from .single_path import SinglePath


class GDAS(SinglePath):
    name = "gdas"
    capabilities = Capabilities(tau=True, step_order="weights-first")  # xautodl's GDAS.py: w, then alpha

    def __init__(self, space: SearchSpace, generator: torch.Generator, *, unselected_ops: bool, tau_max: float,
                 tau_min: float):
        super().__init__(space, generator, "gumbel-softmax" if space.op_site == "node" else None, tau_max, tau_min)
        self.unselected_ops = bool(unselected_ops)

    def site_terms(self, site: int, op: int, op_w: torch.Tensor) -> tuple:
        if not self.unselected_ops:
            return super().site_terms(site, op, op_w)
        # + the zero-valued weights of the other ops: each gets the architecture gradient
        return (op, op_w[site, op]), (None, op_w[site].sum() - op_w[site, op])

    def weight_plans(self, tau: float) -> list[Plan]:
        with torch.no_grad():
            return [self._plan(tau, None, differentiable=False)]

    def arch_plans(self, tau: float) -> list[Plan]:
        return [self._plan(tau, None, differentiable=True)]
