"""Samplers: Gumbel-Top2 exactness and distribution, pair sampling, fair permutations, gradients."""
from itertools import combinations

import pytest
import torch

from romenas.sampling import (EdgeIndex, fair_op_indices, gumbel_max_st, gumbel_pair_edges_st,
                              gumbel_topk_edges_st)
from romenas.spaces.base import cell_edges

INDEX = EdgeIndex(cell_edges(2, 4))


def test_top2_gives_exactly_two_distinct_inputs_per_node():
    g = torch.Generator().manual_seed(1)
    beta = torch.randn(14, generator=g)
    for _ in range(200):
        on, weights = gumbel_topk_edges_st(beta, INDEX, 2, 0.5, g)
        for node_edges in INDEX.node_edges:
            assert int(on[node_edges].sum()) == 2
        assert torch.equal(weights.detach() > 0.5, on)  # hard forward value is exactly the mask


def _plackett_luce_pairs(p):
    """P(unordered pair) when drawing 2 without replacement with probabilities p."""
    return {(a, b): float(p[a] * p[b] / (1 - p[a]) + p[b] * p[a] / (1 - p[b]))
            for a, b in combinations(range(len(p)), 2)}


def test_top2_frequencies_match_plackett_luce():
    g = torch.Generator().manual_seed(2)
    beta = torch.tensor([0.0, 0.0, 1.0, -1.0, 0.5] + [0.0, 1.5, -0.5, 0.2] + [0.3, -0.3, 0.8] + [0.0, 0.0])
    node = INDEX.node_edges[3]  # the node with 5 predecessors: edges 9..13
    probs = torch.softmax(beta[node], 0)
    expected = _plackett_luce_pairs(probs)
    n = 20000
    counts = dict.fromkeys(expected, 0)
    for _ in range(n):
        on, _ = gumbel_topk_edges_st(beta, INDEX, 2, 1.0, g)
        chosen = tuple(i for i, e in enumerate(node) if on[e])
        counts[chosen] += 1
    for pair, p in expected.items():
        tolerance = 4.5 * (p * (1 - p) / n) ** 0.5 + 1e-3
        assert abs(counts[pair] / n - p) < tolerance, (pair, counts[pair] / n, p)


def test_pair_sampler_turns_on_one_pair_per_node():
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(INDEX.num_pairs, generator=g, requires_grad=True)
    on, weights = gumbel_pair_edges_st(logits, INDEX, 1.0, g)
    assert INDEX.num_pairs == 1 + 3 + 6 + 10
    for node_edges in INDEX.node_edges:
        assert int(on[node_edges].sum()) == 2
    weights.sum().backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


@pytest.mark.parametrize("num_ops", [2, 5, 7])
def test_fair_sampling_uses_every_op_once_per_edge(num_ops):
    ops = fair_op_indices(14, num_ops, torch.Generator().manual_seed(4))
    assert ops.shape == (num_ops, 14)
    for e in range(14):
        assert sorted(ops[:, e].tolist()) == list(range(num_ops))


def test_straight_through_values_are_hard_and_gradients_soft():
    g = torch.Generator().manual_seed(5)
    alpha = torch.randn(6, 5, requires_grad=True)
    index, weights = gumbel_max_st(alpha, 1.0, g)
    assert torch.allclose(weights.detach(), torch.nn.functional.one_hot(index, 5).float())
    (weights * torch.arange(5.0)).sum().backward()
    assert alpha.grad.abs().sum() > 0
    beta = torch.zeros(14, requires_grad=True)
    _, w = gumbel_topk_edges_st(beta, INDEX, 2, 1.0, g)
    (w * torch.arange(14.0)).sum().backward()
    assert torch.isfinite(beta.grad).all() and beta.grad.abs().sum() > 0
