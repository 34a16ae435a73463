"""The interface every search algorithm implements over the shared loop, and the registry.

An algorithm owns the architecture parameters and answers four questions: which
subnets (edge plans) the weight step and the architecture step evaluate, how their
gradients combine, and which genotype the parameters stand for.
"""
from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from ..genotype import Genotype
from ..spaces import Plan, SearchSpace

ALGORITHMS: dict[str, type["SearchAlgorithm"]] = {}


def register(cls):
    ALGORITHMS[cls.name] = cls
    return cls


def _entropy(probs: torch.Tensor) -> float:
    """Mean entropy (nats) of a batch of distributions along the last dim."""
    p = probs.clamp_min(1e-12)
    return float(-(p * p.log()).sum(-1).mean())


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

    def stats(self) -> dict[str, float]:
        out = {f"alpha_entropy/{k}": _entropy(p) for k, p in self.op_probs().items()}
        return out
