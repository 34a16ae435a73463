"""The interface every search algorithm implements over the shared loop, and the registry.

An algorithm owns the architecture parameters and answers four questions: which
subnets (plans) the weight step and the architecture step evaluate, how their
gradients combine, and which genotype the parameters stand for. Its options are declared
where it is registered (romenas/algorithms.py) and reach its constructor as keyword
arguments; it tells the loop what it needs (:class:`Capabilities`) and may replace the
architecture step (``arch_step``, over a :class:`StepContext`; second-order DARTS does).

Parameters: alpha, one row of op logits per op site (edge or node, romenas/spaces/base.py),
and, where the algorithm samples topology (ROME) or the space's nodes choose their inputs
(NAS-Bench-1Shot1, for every algorithm), beta, the topology parameters of an edge sampler
(romenas/topology.py). An algorithm gives its op terms and edges to ``space.compose`` and never
builds a family's plan itself.
"""
from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import combinations
from typing import Any, Callable, ClassVar, Iterable, Iterator, Sequence

import torch
from torch import nn

from ..algorithms import ALGORITHM_ENTRIES, algorithm_entry, resolve_options
from ..derive import darts_rule, topology_rule
from ..genotype import Genotype
from ..spaces import Plan, SearchSpace, get_space
from ..topology import get_topology_sampler

Batch = tuple[torch.Tensor, torch.Tensor]


def get_algorithm(name: str) -> type["SearchAlgorithm"]:
    """The class registered under ``name`` (romenas/algorithms.py); RomenasError if there is none."""
    return algorithm_entry(name).implementation()


def create_algorithm(name: str, space: SearchSpace, generator: torch.Generator, **options: Any
                     ) -> "SearchAlgorithm":
    """Algorithm ``name`` over ``space`` with ``options`` (the rest at their registered defaults,
    each checked; another algorithm's option is refused)."""
    return get_algorithm(name)(space, generator, **resolve_options(name, {}, options))


def build_algorithm(cfg, generator: torch.Generator) -> "SearchAlgorithm":
    """The config's algorithm over its space (restricted to ``cfg.ops``); a bad name or op set
    fails here, before any data is read."""
    space = get_space(cfg.space)
    if cfg.ops is not None:
        space = space.restricted(cfg.ops)
    return create_algorithm(cfg.algorithm, space, generator, **cfg.options)


class _Algorithms(Mapping):
    """Every registered algorithm's class by name, read from the registry when asked."""

    def __getitem__(self, name: str) -> type["SearchAlgorithm"]:
        if name not in ALGORITHM_ENTRIES:
            raise KeyError(name)
        return get_algorithm(name)

    def __iter__(self) -> Iterator[str]:
        return iter(ALGORITHM_ENTRIES)

    def __len__(self) -> int:
        return len(ALGORITHM_ENTRIES)


ALGORITHMS: Mapping[str, type["SearchAlgorithm"]] = _Algorithms()


@dataclass(frozen=True)
class Capabilities:
    """What the loop must know of an algorithm (it names no algorithm itself)."""

    #: Whether its sampling reads the Gumbel temperature (the loop then logs tau per epoch).
    tau: bool = False
    #: Whether it may run under torchrun, and in which modes ('samples': K split across ranks, 'data').
    distributed: bool = True
    parallel: tuple[str, ...] = ("samples", "data")
    #: Numerical precisions it works in.
    precisions: tuple[str, ...] = ("32", "bf16-mixed", "16-mixed")
    #: Its source's order per iteration: 'arch-first' or 'weights-first' (``--step-order auto``).
    step_order: str = "weights-first"
    #: Why it is limited (said when a run asks for more), e.g. 'its step takes finite differences'.
    why: str = ""


@dataclass(frozen=True)
class StepContext:
    """What an architecture step may use of the loop, and no more.

    ``backward(batch, plans, scale)``: forward and backward each plan on the batch (the loop's
    precision, sharing under torchrun and divergence check), each loss scaled by ``scale``; returns
    (summed loss, summed accuracy) over the plans. ``loss(batch, plan)``: (one plan's mean
    cross-entropy as a tensor to differentiate by hand, its logits), as second-order DARTS needs. ``weights``: the
    supernet's trainable weights. ``weight_optimizer``: a read-only, live view of the weight
    optimiser's settings (lr, momentum, weight_decay, ...); ``momentum(p)``: its momentum buffer
    of ``p`` (None before the first step).
    """

    backward: Callable[[Batch, Sequence[Plan], float], tuple[float, float]]
    loss: Callable[[Batch, Plan], tuple[torch.Tensor, torch.Tensor]]
    weights: tuple[nn.Parameter, ...]
    weight_optimizer: Mapping[str, Any]
    momentum: Callable[[nn.Parameter], torch.Tensor | None]


@contextlib.contextmanager
def weights_frozen(weights: Iterable[nn.Parameter]):
    """Weights that need no gradient: the architecture step's weight gradients would be thrown
    away, and without them autograd keeps fewer activations (docs/performance.md has the figures)."""
    params = [p for p in weights if p.requires_grad]
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
    capabilities: Capabilities = Capabilities()

    def __init__(self, space: SearchSpace, generator: torch.Generator, edge_sampler: str | None = None):
        """``edge_sampler``: the topology sampler beta drives (romenas/topology.py), None for none."""
        super().__init__()
        #: The options as the search runs them (an algorithm may resolve one against its space).
        self.options_as_run: dict[str, Any] = {}
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
    def temperature(self, epoch: int, epochs: int) -> float | None:
        """The sampling temperature tau of ``epoch`` (0-based) of ``epochs``; None: none is used."""
        return None

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

    def arch_step(self, ctx: StepContext, val_batch: Batch, train_batch: Batch, tau: float) -> tuple[float, float]:
        """Set the architecture parameters' gradients for one update; returns the (loss, accuracy)
        averaged over the subnets evaluated. Default: the MEAN of ``arch_plans``' validation-loss
        gradients, weights frozen."""
        plans = self.arch_plans(tau)
        with weights_frozen(ctx.weights):
            loss, correct = ctx.backward(val_batch, plans, 1.0 / len(plans))
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
