"""The single-path base GDAS and ROME share: one Gumbel-max op per op site, its straight-through
weight handed to ``space.compose``, and GDAS' linear tau schedule.

A subnet (plan) computes only its sampled op of each site; the op's straight-through weight
(value 1, gradient of the Gumbel-softmax) carries the architecture gradient (GDAS, Dong & Yang,
CVPR 2019, Eq. 5-6; ROME Eq. 2-3). Subclasses say which subnets each step evaluates, and may add
terms to a site (GDAS' unselected ops) or sample edges from beta (ROME).
"""
from __future__ import annotations

import torch

from ..sampling import gumbel_max_st
from ..spaces import Plan, SearchSpace
from .base import SearchAlgorithm


class SinglePath(SearchAlgorithm):
    def __init__(self, space: SearchSpace, generator: torch.Generator, edge_sampler: str | None, tau_max: float,
                 tau_min: float):
        super().__init__(space, generator, edge_sampler)
        self.tau_max, self.tau_min = tau_max, tau_min

    def temperature(self, epoch: int, epochs: int) -> float:
        """Linear from tau_max (first epoch) to tau_min (last), as GDAS (its configs: 10 -> 0.1)."""
        return self.tau_max - (self.tau_max - self.tau_min) * epoch / max(1, epochs - 1)

    def site_terms(self, site: int, op: int, op_w: torch.Tensor) -> tuple:
        """The (op, weight) terms of one site whose sampled op is ``op``; ``op_w`` [sites, ops] holds
        the straight-through weights."""
        return ((op, op_w[site, op]),)

    def _plan(self, tau: float, ops: dict[str, torch.Tensor] | None, differentiable: bool,
              every_edge: bool = False) -> Plan:
        """One subnet: per cell type, edges from beta (unless ``every_edge``; none without beta) and
        one op per site, Gumbel-max sampled from alpha or the given indices ``ops`` [sites]. Not
        ``differentiable``: the weight step's subnet, its ops without weights."""
        plan = {}
        for kind in self.space.cell_types:
            edge_on, edge_w = (None, None) if every_edge else self._sample_edges(kind, tau)
            if ops is None:
                index, op_w = gumbel_max_st(self.alphas[kind], tau, self.generator)
            else:
                index, op_w = ops[kind], None
            terms = [((o, None),) if not differentiable else self.site_terms(s, o, op_w)
                     for s, o in enumerate(index.tolist())]
            if edge_w is not None and not differentiable:  # soft weights are values, hard ones are 1
                edge_w = edge_w.detach() if self.sampler.soft else None
            plan[kind] = self.space.compose(terms, None if edge_on is None else edge_on.tolist(), edge_w)
        return plan
