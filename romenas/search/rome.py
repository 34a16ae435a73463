"""ROME: single-path search with disentangled topology and K-sample gradient accumulation.

Per iteration: sample K subnets, each with fresh edges (Gumbel-Top2 on beta, or a
Gumbel-max pair choice for ROME-v1) and fresh ops (Gumbel-max on alpha), and update
alpha/beta with the AVERAGE of their validation-loss gradients; then update the weights
with the SUM of the training-loss gradients of the weight step's subnets:

- ``weight_sampling="fair"`` (default; arXiv 2011.11233 v1, 2020: "fair sampling for weight
  update", FairNAS' strict fairness): |ops| subnets in which every op of every edge appears
  exactly once (one permutation per edge);
- ``"fair-edges"`` (romenas' extension): the fair step with every edge on, so an edge beta
  rarely samples is trained as often as the others (FairNAS' strict fairness applied to edges
  too; meant for edge samplers that turn edges off, e.g. ``subset`` on NAS-Bench-201, where
  the fair step trains only sampled edges and beta settles on the edges trained most);
- ``"gumbel"`` (ICCV 2023, Algorithm 1 / Eq. 12): K more Gumbel-sampled subnets;
- ``"single"``: one Gumbel subnet (GDAS' weight step; ROME's ablation without accumulation).

Only the sampled edge/op pairs are computed.
"""
from __future__ import annotations

import torch

from ..errors import RomenasError
from ..sampling import fair_op_indices
from ..spaces import Plan, SearchSpace
from ..topology import TOPOLOGY_SAMPLERS
from .base import Capabilities
from .single_path import SinglePath


class ROME(SinglePath):
    name = "rome"
    capabilities = Capabilities(tau=True, step_order="arch-first")  # Algorithm 1: alpha/beta, then w

    def __init__(self, space: SearchSpace, generator: torch.Generator, *, samples: int, weight_sampling: str,
                 topology: bool, edge_sampler: str, tau_max: float, tau_min: float):
        # Where beta decides the edges, 'none' (an absent edge) is not an op any more. Nodes keep
        # a fixed number of inputs in the DARTS family (Gumbel-Top-k, pairs); where every edge is
        # kept (NAS-Bench-201) only the subset sampler has a topology to decide (edge on, or
        # 'none'); with the others there, no betas and the op set as given.
        sampler = TOPOLOGY_SAMPLERS.get(edge_sampler)
        if topology and sampler is not None and not sampler.needs_keep and space.inputs_per_node is not None:
            raise RomenasError(f"edge sampler {edge_sampler!r} lets a node keep any number of inputs, but nodes of "
                               f"the {space.name} space keep {space.inputs_per_node}; use --edge-sampler top2"
                               + (" or pair" if space.inputs_per_node == 2 else ""))
        topology = topology and (space.inputs_per_node is not None or (sampler is not None and not sampler.needs_keep))
        if topology and space.inputs_per_node is None and "none" not in space.ops:
            raise RomenasError(f"edge sampler {edge_sampler!r} turns edges off, which is the 'none' op, but the op set "
                               f"{space.ops} has no 'none'; add it to --ops or use --no-topology")
        if topology and "none" in space.ops:
            space = space.without_op("none")
        # Without ROME's topology, nodes that choose their inputs (NAS-Bench-1Shot1) weigh them as
        # GDAS does there: a soft Gumbel-softmax.
        name = edge_sampler if topology else "gumbel-softmax" if space.op_site == "node" else None
        super().__init__(space, generator, name, tau_max, tau_min)
        self.samples, self.weight_sampling, self.topology = samples, weight_sampling, topology
        self.options_as_run = {"topology": topology}  # the config records whether beta existed

    def weight_plans(self, tau: float) -> list[Plan]:
        with torch.no_grad():
            if self.weight_sampling in ("fair", "fair-edges"):
                n_ops = self.alphas[self.space.cell_types[0]].shape[1]
                perms = {k: fair_op_indices(a.shape[0], a.shape[1], self.generator) for k, a in self.alphas.items()}
                return [self._plan(tau, {k: p[i] for k, p in perms.items()}, differentiable=False,
                                   every_edge=self.weight_sampling == "fair-edges") for i in range(n_ops)]
            n = self.samples if self.weight_sampling == "gumbel" else 1
            return [self._plan(tau, None, differentiable=False) for _ in range(n)]

    def arch_plans(self, tau: float) -> list[Plan]:
        return [self._plan(tau, None, differentiable=True) for _ in range(self.samples)]
