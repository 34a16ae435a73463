"""Samplers: Gumbel-Top2 exactness and distribution, pair sampling, fair permutations, gradients."""
from itertools import permutations

import pytest
import torch

from romenas.sampling import EdgeIndex, fair_op_indices, gumbel_max_st, gumbel_topk_edges_st
from romenas.topology import GumbelPairs
from romenas.errors import RomenasError
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


def _plackett_luce_subsets(p, k):
    """P(unordered k-subset) when drawing k without replacement with probabilities p (Plackett-Luce)."""
    out = {}
    for order in permutations(range(len(p)), k):
        prob, left = 1.0, 1.0
        for i in order:
            prob *= float(p[i]) / left
            left -= float(p[i])
        key = tuple(sorted(order))
        out[key] = out.get(key, 0.0) + prob
    return out


@pytest.mark.parametrize("k", [1, 2, 3])
def test_topk_frequencies_match_plackett_luce(k):
    """Gumbel-Top-k keeps k inputs with the probabilities of drawing k without replacement (ROME Eq. 7-8)."""
    g = torch.Generator().manual_seed(2 + k)
    beta = torch.tensor([0.0, 0.0, 1.0, -1.0, 0.5] + [0.0, 1.5, -0.5, 0.2] + [0.3, -0.3, 0.8] + [0.0, 0.0])
    node = INDEX.node_edges[3]  # the node with 5 predecessors: edges 9..13
    expected = _plackett_luce_subsets(torch.softmax(beta[node], 0), k)
    n = 12000
    counts = dict.fromkeys(expected, 0)
    for _ in range(n):
        on, _ = gumbel_topk_edges_st(beta, INDEX, k, 1.0, g)
        counts[tuple(i for i, e in enumerate(node) if on[e])] += 1
    for subset, p in expected.items():
        tolerance = 4.5 * (p * (1 - p) / n) ** 0.5 + 1e-3
        assert abs(counts[subset] / n - p) < tolerance, (subset, counts[subset] / n, p)


def test_pair_sampler_turns_on_one_pair_per_node():
    g = torch.Generator().manual_seed(3)
    pairs = GumbelPairs(cell_edges(2, 4), 2)
    assert pairs.num_params == 1 + 3 + 6 + 10
    logits = torch.randn(pairs.num_params, generator=g, requires_grad=True)
    on, weights = pairs.sample(logits, 1.0, g)
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


def test_topk_takes_one_count_per_node_and_never_more_than_the_predecessors():
    g = torch.Generator().manual_seed(5)
    beta = torch.randn(14, generator=g)
    for keep, expected in (((1, 2, 2, 3), [1, 2, 2, 3]), (3, [2, 3, 3, 3]), (1, [1, 1, 1, 1])):
        for _ in range(50):
            on, weights = gumbel_topk_edges_st(beta, INDEX, keep, 0.5, g)
            assert [int(on[es].sum()) for es in INDEX.node_edges] == expected
            assert torch.equal(weights.detach() > 0.5, on)


def test_topology_samplers_derive_the_mode_with_their_counts():
    from romenas.topology import get_topology_sampler

    edges = cell_edges(2, 4)
    beta = torch.tensor([0.0, 1.0] + [3.0, 2.0, 1.0] + [0.0, 1.0, 2.0, 3.0] + [5.0, 4.0, 3.0, 2.0, 1.0])
    assert get_topology_sampler("top2", edges, (1, 2, 2, 3)).kept(beta) == [[1], [2, 3], [7, 8], [9, 10, 11]]
    subsets = get_topology_sampler("subset", cell_edges(1, 3), None)
    assert subsets.num_params == 1 + 3 + 7
    with pytest.raises(RomenasError, match="keeps every edge"):
        get_topology_sampler("top2", cell_edges(1, 3), None)
