"""Topology samplers: which inputs each node of a cell keeps, from topology parameters beta.

One interface for ROME's two edge samplers (ICCV 2023, Sec. 3.2): ``sample`` draws a
subnet's edges with straight-through weights, ``kept`` derives them (argmax of p(z)),
``marginals`` and ``distributions`` are what the logs and plots read. A sampler is built
for a cell's edge list and the number of inputs each node keeps. Two *soft* samplers give
DARTS and GDAS the input weights NAS-Bench-1Shot1 searches with (every input on, weighted).
"""
from __future__ import annotations

import math
from itertools import combinations
from typing import ClassVar

import torch

from .errors import RomenasError
from .sampling import (EdgeIndex, gumbel_max_st, gumbel_softmax, gumbel_topk_edges_st, plackett_luce_inclusion,
                       plackett_luce_sets)

__all__ = ["TopologySampler", "GumbelTopK", "GumbelPairs", "GumbelSubsets", "SoftmaxInputs", "GumbelSoftmaxInputs",
           "TOPOLOGY_SAMPLERS", "get_topology_sampler"]


class TopologySampler:
    """Samples, for every node, ``keep`` of its incoming edges from beta (a flat vector of
    ``num_params`` entries). Nodes with no more than ``keep`` predecessors keep them all."""

    name: ClassVar[str]
    #: Whether the sampler needs a fixed number of inputs per node (``keep``), as Gumbel-Top-k does.
    needs_keep: ClassVar[bool] = True
    #: Whether a sample's edge weights are values the forward pass needs (soft relaxations), not
    #: straight-through weights of value 1 whose gradient alone matters.
    soft: ClassVar[bool] = False

    def __init__(self, edges: list[tuple[int, int]], keep: int | None):
        self.index = EdgeIndex(edges)
        self.keep = keep
        #: Entries of a node's distribution that a subnet keeps.
        self.chosen = keep

    @property
    def num_params(self) -> int:
        raise NotImplementedError

    def sample(self, beta: torch.Tensor, tau: float, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(on [edges] bool, straight-through weights [edges]): one subnet's edges."""
        raise NotImplementedError

    def kept(self, beta: torch.Tensor) -> list[list[int]]:
        """Per node, the sorted edge ids the derived cell keeps (the mode of p(edges; beta))."""
        raise NotImplementedError

    def marginals(self, beta: torch.Tensor) -> torch.Tensor:
        """[edges]: each edge's probability of being kept in a sampled subnet (plots, logs)."""
        return self.inclusion(beta.detach().cpu())

    def inclusion(self, beta: torch.Tensor) -> torch.Tensor:
        """[edges]: the probability that a sampled subnet has each edge, differentiable in beta
        (a budget's expected cost reads it)."""
        raise NotImplementedError

    def input_sets(self, beta: torch.Tensor) -> list[list[tuple[tuple[int, ...], float]]]:
        """Per node, every input set a derived node may keep (sorted edge ids) with its log-probability
        under p(edges; beta): what a derivation under a budget maximises (romenas/derive.py)."""
        raise NotImplementedError

    def distributions(self, beta: torch.Tensor) -> list[torch.Tensor]:
        """Each node's distribution over its inputs or input sets (summing to 1), of which the node
        keeps ``chosen`` entries (convergence statistics); for Gumbel-Top-k each input's probability
        of being kept, divided by k."""
        raise NotImplementedError


class _TopKByBeta(TopologySampler):
    """One beta per edge; a derived node keeps its ``keep`` inputs of largest beta (one count for
    every node, or one per node), and a subnet's edge probabilities are Plackett-Luce inclusions
    of softmax(beta) over the node's predecessors. Subclasses say how a subnet is drawn."""

    def __init__(self, edges, keep):
        super().__init__(edges, keep)
        for es, k in zip(self.index.node_edges, self._per_node()):
            if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= len(es):
                raise RomenasError(f"a node with {len(es)} possible inputs cannot keep {k!r}; each node keeps 1 to "
                                   "as many inputs as it has predecessors")

    @property
    def num_params(self) -> int:
        return self.index.num_edges

    def kept(self, beta):
        beta, keep = beta.detach().cpu(), self._per_node()
        return [sorted(sorted(es, key=lambda e: -float(beta[e]))[:k]) for es, k in zip(self.index.node_edges, keep)]

    def _per_node(self) -> list[int]:
        return [self.keep] * self.index.num_nodes if isinstance(self.keep, int) else list(self.keep)

    def inclusion(self, beta):
        out = torch.zeros_like(beta)
        for es, k in zip(self.index.node_edges, self._per_node()):
            out = out.index_put((torch.tensor(es, device=beta.device),),
                                plackett_luce_inclusion(torch.softmax(beta[es], -1), k))
        return out

    def input_sets(self, beta):
        beta, out = beta.detach().cpu().double(), []
        for es, k in zip(self.index.node_edges, self._per_node()):
            sets = plackett_luce_sets(torch.softmax(beta[es], -1), k)
            out.append([(tuple(es[i] for i in members), math.log(max(float(p), 1e-300))) for members, p in sets])
        return out

    def distributions(self, beta):
        incl = self.marginals(beta)
        return [incl[es] / k for es, k in zip(self.index.node_edges, self._per_node())]


class GumbelTopK(_TopKByBeta):
    """ROME-v2 (Eq. 7-8): each node keeps ``keep`` distinct inputs drawn by Gumbel-Top-k over
    softmax(beta) of its predecessors (sampling without replacement)."""

    name = "top2"

    def sample(self, beta, tau, generator):
        return gumbel_topk_edges_st(beta, self.index, self.keep, tau, generator)


class _GumbelSets(TopologySampler):
    """ROME-v1's construction (Eq. 4-6): one parameter per admissible set of a node's inputs,
    Gumbel-max picks one set per node, and an edge is on when its set is chosen (straight-through
    through the sets' incidence). Subclasses say which sets are admissible."""

    def __init__(self, edges, keep):
        super().__init__(edges, keep)
        self.chosen = 1  # one input set per node
        self.sets = [self._input_sets(es) for es in self.index.node_edges]
        self.width = max(len(s) for s in self.sets)
        flat = [(j, q) for j, sets in enumerate(self.sets) for q in range(len(sets))]
        self.set_node = torch.tensor([j for j, _ in flat])
        self.set_pos = torch.tensor([q for _, q in flat])
        self.incidence = torch.zeros(self.index.num_nodes * self.width, self.index.num_edges)
        for j, sets in enumerate(self.sets):
            for q, members in enumerate(sets):
                self.incidence[j * self.width + q, list(members)] = 1.0

    def _input_sets(self, node_edges: list[int]) -> list[tuple[int, ...]]:
        raise NotImplementedError

    @property
    def num_params(self) -> int:
        return sum(len(s) for s in self.sets)

    def _padded(self, beta):
        return self.index.pad(beta, self.set_node, self.set_pos, self.width)

    def sample(self, beta, tau, generator):
        _, st = gumbel_max_st(self._padded(beta), tau, generator)
        weights = st.flatten() @ self.incidence.to(st.device)
        return weights.detach() > 0.5, weights

    def _groups(self, beta):
        return list(beta.detach().cpu().split([len(s) for s in self.sets]))

    def kept(self, beta):
        return [list(sets[int(scores.argmax())]) for sets, scores in zip(self.sets, self._groups(beta))]

    def inclusion(self, beta):
        return torch.softmax(self._padded(beta), -1).flatten() @ self.incidence.to(beta.device)

    def input_sets(self, beta):
        return [list(zip(sets, torch.log_softmax(g.double(), -1).tolist())) for sets, g in zip(self.sets, self._groups(beta))]

    def distributions(self, beta):
        return [torch.softmax(g, -1) for g in self._groups(beta)]


class GumbelPairs(_GumbelSets):
    """ROME-v1 (Eq. 4-6): the admissible sets are the pairs of a node's predecessors. Defined for
    nodes that keep two inputs."""

    name = "pair"

    def __init__(self, edges, keep):
        if keep != 2:
            raise RomenasError(f"the pair sampler (ROME-v1) keeps two inputs per node, the space keeps {keep}; "
                               "use --edge-sampler top2")
        super().__init__(edges, keep)

    def _input_sets(self, node_edges):
        return list(combinations(node_edges, 2))


class GumbelSubsets(_GumbelSets):
    """ROME-v1's construction over every non-empty set of a node's inputs (romenas' extension, for
    spaces that keep every edge, as NAS-Bench-201 does). An edge that is off is the 'none' op, so
    the topology parameters, not alpha, decide it; every node keeps at least one input."""

    name = "subset"
    needs_keep = False

    def __init__(self, edges, keep=None):
        super().__init__(edges, keep)

    def _input_sets(self, node_edges):
        return [s for size in range(1, len(node_edges) + 1) for s in combinations(node_edges, size)]


class SoftmaxInputs(_TopKByBeta):
    """DARTS' relaxation of a node's inputs, as NAS-Bench-1Shot1 searches (``alphas_inputs``,
    ``alphas_output``): every input on, weighted by softmax(beta) over the node's predecessors; a
    node with no choice (no more predecessors than it keeps) takes them at weight 1. Derived: the
    top-k inputs by beta (1Shot1's ``get_top_k``), as for Gumbel-Top-k."""

    name = "softmax"
    soft = True

    def __init__(self, edges, keep):
        super().__init__(edges, keep)
        per_node = self._per_node()
        self.fixed = torch.tensor([len(self.index.node_edges[n]) <= per_node[n] for n in self.index.node_of.tolist()])

    def _relaxation(self, beta, tau, generator):
        return self.index.node_softmax(beta)

    def sample(self, beta, tau, generator):
        weights = self._relaxation(beta, tau, generator)
        fixed = self.fixed.to(weights.device)
        return torch.ones_like(fixed), torch.where(fixed, torch.ones_like(weights), weights)


class GumbelSoftmaxInputs(SoftmaxInputs):
    """GDAS' soft Gumbel-softmax over a node's inputs, as NAS-Bench-1Shot1 runs GDAS (hard Gumbel on
    ops, soft on edges): weights softmax((log softmax(beta) + g) / tau) over the predecessors."""

    name = "gumbel-softmax"

    def _relaxation(self, beta, tau, generator):
        padded = self.index.pad(beta, self.index.node_of, self.index.pos_of, self.index.max_pred)
        return gumbel_softmax(padded, tau, generator)[self.index.node_of, self.index.pos_of]


TOPOLOGY_SAMPLERS: dict[str, type[TopologySampler]] = {cls.name: cls for cls in (
    GumbelTopK, GumbelPairs, GumbelSubsets, SoftmaxInputs, GumbelSoftmaxInputs)}


def get_topology_sampler(name: str, edges: list[tuple[int, int]], keep: int | None) -> TopologySampler:
    """The sampler ``name`` for a cell's ``edges`` whose nodes keep ``keep`` inputs (None: any number)."""
    try:
        cls = TOPOLOGY_SAMPLERS[name]
    except KeyError:
        raise RomenasError(f"unknown edge sampler {name!r}; use one of {sorted(TOPOLOGY_SAMPLERS)} "
                           "('top2' = ROME-v2 Gumbel-Top-k, 'pair' = ROME-v1, 'subset' = any non-empty input "
                           "set, for spaces that keep every edge; 'softmax' and 'gumbel-softmax' weigh every "
                           "input, as DARTS and GDAS do)") from None
    if cls.needs_keep and keep is None:
        raise RomenasError(f"edge sampler {name!r} keeps a fixed number of inputs per node, but this space keeps "
                           "every edge; use --edge-sampler subset (edges on or off, 'none' decided by beta) "
                           "or --no-topology")
    return cls(edges, keep)
