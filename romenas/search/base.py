"""The interface every search algorithm implements over the shared loop, and the registry.

An algorithm owns the architecture parameters and answers four questions: which
subnets (edge plans) the weight step and the architecture step evaluate, how their
gradients combine, and which genotype the parameters stand for.
"""
from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import nn

from ..genotype import Genotype
from ..spaces import Plan, SearchSpace

ALGORITHMS: dict[str, type["SearchAlgorithm"]] = {}


def register(cls):
    ALGORITHMS[cls.name] = cls
    return cls


def convergence(distributions: list[torch.Tensor], chosen: int = 1) -> tuple[float, float]:
    """(mean normalised entropy, mean margin) of categorical distributions that pick ``chosen`` entries.

    Entropy is divided by log(n) so 1 is uniform and 0 is one-hot, whatever n; the margin is
    p(k-th) - p((k+1)-th) for k = ``chosen``, how decisively the kept entries lead. Distributions
    with no more than ``chosen`` entries decide nothing and are skipped.
    """
    entropies, margins = [], []
    for p in distributions:
        if p.numel() <= chosen:
            continue
        p = p.clamp_min(1e-12)
        entropies.append(float(-(p * p.log()).sum() / math.log(p.numel())))
        top = p.topk(chosen + 1).values
        margins.append(float(top[-2] - top[-1]))
    if not entropies:
        return 0.0, 1.0
    return sum(entropies) / len(entropies), sum(margins) / len(margins)


class SearchAlgorithm(nn.Module):
    name: ClassVar[str]
    #: Architecture step before the weight step in each iteration (ROME's Algorithm 1) or after (GDAS, DARTS).
    arch_first: ClassVar[bool] = False

    def __init__(self, space: SearchSpace, generator: torch.Generator):
        super().__init__()
        self.space = space
        self.generator = generator
        self.alphas = nn.ParameterDict({
            kind: nn.Parameter(1e-3 * torch.randn(len(ops), len(ops[0]), generator=generator))
            for kind, ops in space.edge_ops.items()})

    # -- what the loop asks ----------------------------------------------------------
    def weight_plans(self, tau: float) -> list[Plan]:
        """Subnets whose training-loss gradients are SUMMED for one weight update."""
        raise NotImplementedError

    def arch_plans(self, tau: float) -> list[Plan]:
        """Subnets whose validation-loss gradients are AVERAGED for one architecture update."""
        raise NotImplementedError

    def derive(self) -> Genotype:
        raise NotImplementedError

    # -- what the logs and plots read ------------------------------------------------
    def op_probs(self) -> dict[str, torch.Tensor]:
        return {k: torch.softmax(a.detach(), -1).cpu() for k, a in self.alphas.items()}

    def edge_probs(self) -> dict[str, torch.Tensor] | None:
        """Per-edge probability of being kept, where the algorithm samples topology."""
        return None

    def edge_distributions(self) -> tuple[dict[str, list[torch.Tensor]], int]:
        """Per cell type, each node's distribution over its inputs (or input pairs), and how many
        entries a node keeps; empty without topology parameters."""
        return {}, 1

    def stats(self) -> dict[str, float]:
        """Convergence of the architecture: normalised entropy and margin, per cell type and overall."""
        out = {}
        edges, kept = self.edge_distributions()
        groups = {"op": ({k: list(p) for k, p in self.op_probs().items()}, 1), "edge": (edges, kept)}
        for what, (per_kind, chosen) in groups.items():
            for kind, dists in per_kind.items():
                out[f"{what}_entropy/{kind}"], out[f"{what}_margin/{kind}"] = convergence(dists, chosen)
            if per_kind:
                out[f"{what}_entropy"], out[f"{what}_margin"] = convergence(
                    [d for ds in per_kind.values() for d in ds], chosen)
        return out
