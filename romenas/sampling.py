"""Samplers: Gumbel-max with straight-through, Gumbel-Top-k edges and their inclusion probabilities, fair op permutations.

Every sampler draws its noise from an explicit ``torch.Generator`` so a search is
reproducible, resumable and identical across distributed ranks. Straight-through
estimators return ``hard - soft.detach() + soft``: the forward value is the exact hard
sample, the gradient is that of the relaxed sample (GDAS, ROME Eq. 2-3 and 7-8).
"""
from __future__ import annotations

from itertools import combinations, permutations
from typing import Sequence

import torch
import torch.nn.functional as F

__all__ = ["gumbel", "gumbel_softmax", "gumbel_max_st", "EdgeIndex", "gumbel_topk_edges_st", "plackett_luce_inclusion",
           "fair_op_indices"]


def gumbel(shape, generator: torch.Generator, device=None) -> torch.Tensor:
    """Standard Gumbel noise, -log(E) with E ~ Exp(1), drawn on the CPU generator (same on any device)."""
    return (-torch.empty(shape).exponential_(generator=generator).log()).to(device)


def _relaxed(logits: torch.Tensor, tau: float, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Perturbed scores log p + g (their argmax or top-k is the sample) and the relaxed sample
    softmax((log p + g) / tau), from one draw: nothing is resampled, so nothing can wait forever.

    (log p + g) / tau overflows for a tiny tau (1e-30), so the softmax takes each row's gaps to
    its best score: they are <= 0 with the best at 0, so it stays finite, one-hot in the limit.
    tau is floored at the dtype's smallest normal number so that 1/tau, the gradient's scale,
    stays finite, and a Gumbel draw of +inf (an exponential draw of 0) is clamped to a finite one.
    """
    logp = F.log_softmax(logits, dim=-1)
    noise = gumbel(logp.shape, generator, logp.device)
    perturbed = logp + noise.clamp(max=torch.finfo(noise.dtype).max)
    gaps = perturbed - perturbed.max(dim=-1, keepdim=True).values.detach()
    return perturbed, F.softmax(gaps / max(float(tau), torch.finfo(gaps.dtype).tiny), dim=-1)


def gumbel_softmax(logits: torch.Tensor, tau: float, generator: torch.Generator) -> torch.Tensor:
    """The relaxed sample softmax((log p + g) / tau) per row (Jang et al. 2017; GDAS' soft edges)."""
    return _relaxed(logits, tau, generator)[1]


def gumbel_max_st(logits: torch.Tensor, tau: float, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """One category per row. Returns (index [rows], straight-through one-hot weights [rows, K])."""
    perturbed, soft = _relaxed(logits, tau, generator)
    index = perturbed.argmax(-1)
    hard = F.one_hot(index, logits.shape[-1]).to(soft.dtype)
    return index, hard - soft.detach() + soft


class EdgeIndex:
    """Maps a cell's flat edge list to (node, position among its predecessors)."""

    def __init__(self, edges: list[tuple[int, int]]):
        nodes = sorted({n for n, _ in edges})
        self.num_edges = len(edges)
        self.num_nodes = len(nodes)
        self.node_edges = [[e for e, (n, _) in enumerate(edges) if n == node] for node in nodes]
        self.num_preds = torch.tensor([len(es) for es in self.node_edges])
        self.max_pred = int(self.num_preds.max())
        self.node_of = torch.tensor([nodes.index(n) for n, _ in edges])
        self.pos_of = torch.tensor([self.node_edges[nodes.index(n)].index(e) for e, (n, _) in enumerate(edges)])

    def pad(self, values: torch.Tensor, node_of: torch.Tensor, pos_of: torch.Tensor, width: int) -> torch.Tensor:
        """Scatter flat per-edge (or per-input-set) values into [nodes, width], -inf elsewhere."""
        padded = values.new_full((self.num_nodes, width), float("-inf"))
        return padded.index_put((node_of.to(values.device), pos_of.to(values.device)), values)

    def node_softmax(self, beta: torch.Tensor) -> torch.Tensor:
        """beta~: softmax of each node's edge parameters over its predecessors, flat per edge."""
        probs = F.softmax(self.pad(beta, self.node_of, self.pos_of, self.max_pred), dim=-1)
        return probs[self.node_of, self.pos_of]


def gumbel_topk_edges_st(beta: torch.Tensor, index: EdgeIndex, k: int | Sequence[int], tau: float,
                         generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """ROME-v2 (Gumbel-Top-k, Eq. 7-8 for k=2): ``k`` distinct inputs per node (one k for all nodes or
    one per node; a node with fewer predecessors keeps them all), sampled without replacement from
    softmax(beta) over the node's predecessors (Plackett-Luce).

    Returns (on [edges] bool, straight-through edge weights [edges]).
    """
    padded = index.pad(beta, index.node_of, index.pos_of, index.max_pred)
    perturbed, soft = _relaxed(padded, tau, generator)
    keep = torch.as_tensor(k).expand(index.num_nodes).clamp(max=index.num_preds).to(padded.device)
    ranked = (torch.arange(index.max_pred, device=padded.device) < keep[:, None]).to(soft.dtype)
    hard = torch.zeros_like(soft).scatter_(-1, perturbed.argsort(dim=-1, descending=True), ranked)
    # A node that keeps all of its predecessors has nothing to choose: exactly 1, no gradient to its beta.
    decided = (keep >= index.num_preds.to(padded.device))[:, None]
    st = torch.where(decided, hard, hard - soft.detach() + soft)
    node_of, pos_of = index.node_of.to(beta.device), index.pos_of.to(beta.device)
    return hard[node_of, pos_of].bool(), st[node_of, pos_of]


def plackett_luce_inclusion(probs: torch.Tensor, k: int) -> torch.Tensor:
    """[n]: the probability that each item is among ``k`` drawn without replacement with
    probabilities ``probs`` [n] (Plackett-Luce, what Gumbel-Top-k samples), exact and
    differentiable: the sum of the probabilities of the sets that hold it."""
    sets = plackett_luce_sets(probs, k)
    return torch.stack([sum((p for members, p in sets if i in members), probs.new_zeros(()))
                        for i in range(probs.numel())])


def plackett_luce_sets(probs: torch.Tensor, k: int) -> list[tuple[tuple[int, ...], torch.Tensor]]:
    """Every set of ``k`` of the n items (sorted positions) with its probability of being the set
    drawn without replacement with probabilities ``probs`` [n], differentiable: the sum over the
    set's k! ordered draws (a cell node has a handful of inputs); one set of all items,
    probability 1, where ``k >= n``."""
    n = probs.numel()
    if k >= n:
        return [(tuple(range(n)), probs.new_ones(()))]
    out = []
    for members in combinations(range(n), k):
        total = probs.new_zeros(())
        for order in permutations(members):
            prob, left = probs.new_ones(()), probs.new_ones(())
            for i in order:
                prob = prob * probs[i] / left.clamp_min(1e-12)
                left = left - probs[i]
            total = total + prob
        out.append((members, total))
    return out


def fair_op_indices(num_edges: int, num_ops: int, generator: torch.Generator) -> torch.Tensor:
    """[num_ops, num_edges]: row k is subnet k's op per edge; each op appears once per edge (a permutation)."""
    return torch.rand(num_edges, num_ops, generator=generator).argsort(dim=1).T.contiguous()
