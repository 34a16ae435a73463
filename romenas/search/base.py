"""The interface every search algorithm implements over the shared loop, and the registry.

An algorithm owns the architecture parameters and answers four questions: which
subnets (plans) the weight step and the architecture step evaluate, how their
gradients combine, and which genotype the parameters stand for. It declares the config
settings it reads (``options``), builds itself from a config, and may replace the
architecture step (``arch_step``; second-order DARTS does).

Parameters: alpha, one row of op logits per op site (edge or node, romenas/spaces/base.py),
and, where the algorithm samples topology (ROME) or the space's nodes choose their inputs
(NAS-Bench-1Shot1, for every algorithm), beta, the topology parameters of an edge sampler
(romenas/topology.py). An algorithm gives its op terms and edges to ``space.compose`` and never
builds a family's plan itself.
"""
from __future__ import annotations

import contextlib
import math
from itertools import combinations
from typing import TYPE_CHECKING, Any, ClassVar, Sequence

import torch
from torch import nn

from ..derive import darts_rule, topology_rule
from ..errors import RomenasError
from ..genotype import Genotype
from ..spaces import Plan, SearchSpace
from ..topology import get_topology_sampler

if TYPE_CHECKING:
    from .loop import Searcher

ALGORITHMS: dict[str, type["SearchAlgorithm"]] = {}
#: Settings that belong to one algorithm or another; a run records only those its algorithm reads.
ALGORITHM_OPTIONS = ("samples", "weight_sampling", "topology", "edge_sampler", "unselected_ops", "darts_order",
                     "tau_max", "tau_min")


def register(cls):
    ALGORITHMS[cls.name] = cls
    return cls


def get_algorithm(name: str) -> type["SearchAlgorithm"]:
    try:
        return ALGORITHMS[name]
    except KeyError:
        raise RomenasError(f"unknown algorithm {name!r}; use one of {sorted(ALGORITHMS)}") from None


def check_options(algorithm: str, given: dict[str, Any]) -> None:
    """A setting the algorithm does not read, given explicitly (a flag or an API argument), is an
    error: it would do nothing. A preset's or recipe's value simply does not apply."""
    cls = get_algorithm(algorithm)
    foreign = [k for k in ALGORITHM_OPTIONS if k in given and given[k] is not None and k not in cls.settings()]
    if foreign:
        owners = {k: sorted(a for a, c in ALGORITHMS.items() if k in c.settings()) for k in foreign}
        flags = ", ".join(f"--{k.replace('_', '-')} ({'/'.join(owners[k])} only)" for k in foreign)
        raise RomenasError(f"{algorithm} does not use {flags}; drop the flag(s) or search with that algorithm")


@contextlib.contextmanager
def weights_frozen(net: nn.Module):
    """Weights that need no gradient: the architecture step's weight gradients would be thrown
    away, and without them autograd keeps fewer activations (docs/performance.md has the figures)."""
    params = [p for p in net.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


def convergence(distributions: list[torch.Tensor], chosen: int | Sequence[int] = 1) -> tuple[float, float]:
    """(mean normalised entropy, mean margin) of distributions over n entries of which ``chosen``
    (k; one for all, or one per distribution) are kept; each distribution sums to 1 (for k > 1:
    each entry's probability of being kept, divided by k).

    Entropy is rescaled so 1 is uniform (log n) and 0 is decided, i.e. k entries at 1/k each
    (log k); the margin is k * (p(k-th) - p((k+1)-th)), the gap in probability of being kept
    between the last kept entry and the first dropped one (1: decided). Distributions with no
    more than k entries decide nothing and are skipped.
    """
    entropies, margins = [], []
    ks = [chosen] * len(distributions) if isinstance(chosen, int) else list(chosen)
    for p, k in zip(distributions, ks):
        n = p.numel()
        if n <= k:
            continue
        p = p.clamp_min(1e-12)
        entropy = float(-(p * p.log()).sum())
        entropies.append(min(1.0, max(0.0, (entropy - math.log(k)) / (math.log(n) - math.log(k)))))
        top = p.topk(k + 1).values
        margins.append(float(k * (top[-2] - top[-1])))
    if not entropies:
        return 0.0, 1.0
    return sum(entropies) / len(entropies), sum(margins) / len(margins)


class SearchAlgorithm(nn.Module):
    name: ClassVar[str]
    #: Architecture step before the weight step in each iteration (ROME's Algorithm 1) or after (GDAS, DARTS).
    arch_first: ClassVar[bool] = False
    #: Config settings the constructor takes (keyword arguments of the same names).
    options: ClassVar[tuple[str, ...]] = ()
    #: Whether ops are Gumbel-sampled (the tau schedule applies).
    gumbel: ClassVar[bool] = False

    @classmethod
    def settings(cls) -> tuple[str, ...]:
        """Every algorithm-specific config setting this algorithm reads."""
        return cls.options + (("tau_max", "tau_min") if cls.gumbel else ())

    @classmethod
    def from_config(cls, space: SearchSpace, generator: torch.Generator, cfg) -> "SearchAlgorithm":
        return cls(space, generator, **{k: getattr(cfg, k) for k in cls.options})

    def __init__(self, space: SearchSpace, generator: torch.Generator, edge_sampler: str | None = None):
        """``edge_sampler``: the topology sampler beta drives (romenas/topology.py), None for none."""
        super().__init__()
        self.space = space
        self.generator = generator
        self.alphas = nn.ParameterDict({
            kind: nn.Parameter(1e-3 * torch.randn(len(ops), len(ops[0]), generator=generator))
            for kind, ops in space.site_ops.items()})
        self.sampler = None if edge_sampler is None else get_topology_sampler(edge_sampler, space.edges,
                                                                              space.inputs_per_node)
        self.betas = None if self.sampler is None else nn.ParameterDict({
            k: nn.Parameter(1e-3 * torch.randn(self.sampler.num_params, generator=generator)) for k in space.cell_types})

    # -- what the loop asks ----------------------------------------------------------
    def weight_plans(self, tau: float) -> list[Plan]:
        """Subnets whose training-loss gradients are SUMMED for one weight update."""
        raise NotImplementedError

    def arch_plans(self, tau: float) -> list[Plan]:
        """Subnets whose validation-loss gradients are AVERAGED for one architecture update."""
        raise NotImplementedError

    def derive(self) -> Genotype:
        """The genotype the parameters stand for: with beta, each node's most probable input set and
        its argmax op (the topology rule); without, the DARTS rule (romenas/derive.py)."""
        if self.sampler is None:
            return darts_rule(self.space, self.op_probs())
        return topology_rule(self.space, self.op_probs(), {k: self.sampler.kept(b) for k, b in self.betas.items()})

    def _sample_edges(self, kind: str, tau: float) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """(on [edges] bool, weights [edges]) of one subnet from beta; (None, None) without beta."""
        if self.sampler is None:
            return None, None
        return self.sampler.sample(self.betas[kind], tau, self.generator)

    def arch_step(self, searcher: "Searcher", val_batch, train_batch, tau: float) -> tuple[float, float]:
        """Set the architecture parameters' gradients for one update; returns the (loss, accuracy)
        averaged over the subnets evaluated. Default: the MEAN of ``arch_plans``' validation-loss
        gradients, weights frozen."""
        plans = self.arch_plans(tau)
        with weights_frozen(searcher.net):
            loss, correct = searcher.accumulate(*val_batch, plans, 1.0 / len(plans), "architecture", "arch")
        return loss / len(plans), correct / len(plans)

    # -- what the logs and plots read ------------------------------------------------
    def op_probs(self) -> dict[str, torch.Tensor]:
        return {k: torch.softmax(a.detach(), -1).cpu() for k, a in self.alphas.items()}

    def architecture_distribution(self) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """Per cell type, p(op | edge) [edges, ops] and p(edge in the cell) [edges], differentiable:
        the factorised distribution whose expected cost a budget penalises (search/budget.py)."""
        ops = {k: torch.softmax(a, -1) for k, a in self.alphas.items()}
        return ops, {k: self.edge_inclusion(k) for k in ops}

    def edge_inclusion(self, kind: str) -> torch.Tensor:
        """[edges]: p(edge in the cell), from beta where there is one. Without topology parameters a
        node's inputs are equally likely: k/n for a node that keeps k of its n inputs (as derived), 1
        where every edge is kept."""
        if self.sampler is not None:
            return self.sampler.inclusion(self.betas[kind])
        keep = self.space.inputs_per_node
        share = [1.0 if keep is None else min(1.0, keep / node) for node, _ in self.space.edges]
        return torch.tensor(share, device=self.alphas[kind].device)

    def input_sets(self, kind: str) -> list[list[tuple[tuple[int, ...], float]]]:
        """Per node, the input sets (edge ids) a derived node may keep, with their log-probability:
        without topology parameters every set of ``inputs_per_node`` inputs (or all of them) at 0,
        so the ops alone rank them, as the DARTS rule does (a derivation under a budget reads it);
        with beta, the sampler's sets and their log-probabilities."""
        if self.sampler is not None:
            return self.sampler.input_sets(self.betas[kind])
        keep, out = self.space.inputs_per_node, []
        for node in sorted({n for n, _ in self.space.edges}):
            es = [e for e, (n, _) in enumerate(self.space.edges) if n == node]
            sets = [tuple(es)] if keep is None or keep >= len(es) else list(combinations(es, keep))
            out.append([(s, 0.0) for s in sets])
        return out

    def edge_probs(self) -> dict[str, torch.Tensor] | None:
        """Per-edge probability of being kept, where the algorithm has topology parameters."""
        if self.sampler is None:
            return None
        return {k: self.sampler.marginals(b) for k, b in self.betas.items()}

    def edge_distributions(self) -> tuple[dict[str, list[torch.Tensor]], int]:
        """Per cell type, each node's distribution over its inputs (or input pairs), and how many
        entries a node keeps; empty without topology parameters."""
        if self.sampler is None:
            return {}, 1
        return {k: self.sampler.distributions(b) for k, b in self.betas.items()}, self.sampler.chosen

    def stats(self) -> dict[str, float]:
        """Convergence of the architecture: normalised entropy and margin, per cell type and overall."""
        out = {}
        edges, kept = self.edge_distributions()
        groups = {"op": ({k: list(p) for k, p in self.op_probs().items()}, 1), "edge": (edges, kept)}
        for what, (per_kind, chosen) in groups.items():
            for kind, dists in per_kind.items():
                out[f"{what}_entropy/{kind}"], out[f"{what}_margin/{kind}"] = convergence(dists, chosen)
            if per_kind:
                every = [chosen] * sum(map(len, per_kind.values())) if isinstance(chosen, int) else \
                    [k for _ in per_kind for k in chosen]
                out[f"{what}_entropy"], out[f"{what}_margin"] = convergence(
                    [d for ds in per_kind.values() for d in ds], every)
        return out
