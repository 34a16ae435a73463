"""Search spaces: published parameter counts, derived networks, what the supernet computes."""
import pytest
import torch

from romenas.algorithms import ALGORITHM_ENTRIES
from romenas.published import PUBLISHED
from romenas.search import create_algorithm
from romenas.spaces import build_network, count_parameters, get_space


@pytest.mark.parametrize("name, space, C, layers, expected, tolerance", [
    ("DARTS_V2", "darts", 36, 20, 3.3493e6, 0.005),
    ("GDAS", "darts", 36, 20, 3.37e6, 0.01),
    ("DARTS_V1", "darts", 36, 20, 3.1694e6, 0.005),
    ("NB201_OPTIMUM", "nb201", 16, 5, 1.0735e6, 0.0005),
    ("NB201_ALL_SKIP", "nb201", 16, 5, 0.0733e6, 0.001),
])
def test_parameter_counts_match_published(name, space, C, layers, expected, tolerance):
    net = build_network(PUBLISHED[name], C, layers, 10, 3, auxiliary=True)
    assert abs(count_parameters(net) - expected) / expected < tolerance


@pytest.mark.parametrize("name", ["DARTS_V2", "GDAS", "NB201_OPTIMUM"])
def test_derived_network_has_exactly_the_genotype(name):
    genotype = PUBLISHED[name]
    net = build_network(genotype, 8, 3 if genotype.family == "darts" else 1, 10, 3)
    cells = [c for c in net.cells if hasattr(c, "dag")]
    for cell in cells:
        dag, wanted = cell.dag, genotype.cells[cell.kind]
        assert dag.nodes == [[i for _, i in node] for node in wanted]
        for ops, node in zip(dag.ops, wanted):
            assert len(ops) == len(node)
            for module, (op, _) in zip(ops, node):
                assert module.__class__.__name__ == _op_class(op)
    assert net(torch.randn(2, 3, 16, 16)).shape == (2, 10)


def _op_class(op):
    return {"sep_conv_3x3": "SepConv", "sep_conv_5x5": "SepConv", "dil_conv_3x3": "DilConv",
            "dil_conv_5x5": "DilConv", "max_pool_3x3": "MaxPool2d", "avg_pool_3x3": "AvgPool2d",
            "nor_conv_3x3": "ReLUConvBN", "nor_conv_1x1": "ReLUConvBN", "none": "Zero"}.get(op, None) or (
        "Identity" if op == "skip_connect" else op)


@pytest.mark.parametrize("space_name", ["darts", "nb201", "s2"])
def test_supernet_computes_only_sampled_ops(space_name):
    g = torch.Generator().manual_seed(0)
    algo = create_algorithm("rome", get_space(space_name), g, samples=1)
    net = algo.space.build_supernet(4, 3 if space_name != "nb201" else 1, 10, 3)
    calls = {}
    for cell in net.cells:
        if not hasattr(cell, "dag"):
            continue
        for e, edge in enumerate(cell.dag.edges):
            for o, op in enumerate(edge):
                op.register_forward_hook(lambda m, i, out, key=(cell.kind, e, o): calls.__setitem__(key, calls.get(key, 0) + 1))
    plan = algo.arch_plans(1.0)[0]
    net(torch.randn(2, 3, 8, 8), [plan])
    cells_of = {k: sum(1 for c in net.cells if getattr(c, "kind", None) == k) for k in plan}
    expected = {(k, e, o): cells_of[k] for k, edges in plan.items() for e, choices in enumerate(edges) for o, _ in choices}
    assert calls == expected
    if space_name != "nb201":  # two inputs per node out of 14 edges
        assert all(sum(1 for ch in edges if ch) == 8 for edges in plan.values())


@pytest.mark.parametrize("algorithm", sorted(ALGORITHM_ENTRIES))
def test_gradients_reach_architecture_parameters(algorithm):
    g = torch.Generator().manual_seed(0)
    own = {"samples": 2} if "samples" in ALGORITHM_ENTRIES[algorithm].option_names else {}
    algo = create_algorithm(algorithm, get_space("darts"), g, **own)
    net = algo.space.build_supernet(4, 3, 10, 3)
    for plan in algo.arch_plans(1.0):
        torch.nn.functional.cross_entropy(net(torch.randn(4, 3, 8, 8), [plan]), torch.arange(4)).backward()
    for name, p in algo.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name
    if algorithm == "rome":
        assert set(dict(algo.named_parameters())) >= {"betas.normal", "betas.reduce"}
        assert "none" not in algo.space.ops  # topology decides the edges, so 'none' is dropped


@pytest.mark.parametrize("size", [5, 7, 9, 27, 30, 33])
@pytest.mark.parametrize("name", ["DARTS_V2", "NB201_OPTIMUM"])
def test_every_family_builds_for_any_image_side(name, size):
    """NB201's stage blocks used to fail on sides that are not multiples of 4 (xautodl's AvgPool floor)."""
    genotype = PUBLISHED[name]
    layers = 3 if genotype.family == "darts" else 1
    net = build_network(genotype, 8, layers, 10, 3).eval()
    assert net(torch.randn(2, 3, size, size)).shape == (2, 10)
    space = get_space(genotype.family)
    supernet = space.build_supernet(4, layers, 10, 3).eval()
    plan = {k: [((1, None),)] * len(space.edges) for k in space.cell_types}  # a real op on every edge
    assert supernet(torch.randn(2, 3, size, size), [plan]).shape == (2, 10)
