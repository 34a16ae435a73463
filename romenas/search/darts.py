"""DARTS (Liu et al., ICLR 2019), first order: the whole supernet, ops mixed by softmax(alpha).

Memory grows with every op of every edge; this is the baseline ROME's memory claim is against.
"""
from __future__ import annotations

import torch

from ..derive import darts_rule
from ..genotype import Genotype
from ..spaces import Plan, SearchSpace
from .base import SearchAlgorithm, register


@register
class DARTS(SearchAlgorithm):
    name = "darts"

    def __init__(self, space: SearchSpace, generator: torch.Generator, **_ignored):
        super().__init__(space, generator)

    def _plan(self, detach: bool) -> Plan:
        plan = {}
        for kind, alpha in self.alphas.items():
            weights = torch.softmax(alpha.detach() if detach else alpha, dim=-1)
            plan[kind] = [tuple((o, weights[e, o]) for o in range(weights.shape[1])) for e in range(weights.shape[0])]
        return plan

    def weight_plans(self, tau: float) -> list[Plan]:
        return [self._plan(detach=True)]

    def arch_plans(self, tau: float) -> list[Plan]:
        return [self._plan(detach=False)]

    def derive(self) -> Genotype:
        return darts_rule(self.space, self.op_probs())
