"""NAS-Bench-1Shot1's search spaces: ops on nodes, per-node input counts, and every algorithm's topology there."""
import json

import pytest
import torch

from romenas import search
from romenas.bench.collapse import collapse_metrics
from romenas.cli import main
from romenas.errors import RomenasError
from romenas.genotype import Genotype, GenotypeError
from romenas.published import parse_genotype
from romenas.search import create_algorithm
from romenas.spaces import build_network, count_parameters, get_space
from romenas.spaces.nb101 import ONESHOT1_KEEP
from romenas.topology import get_topology_sampler

from conftest import TINY_SEARCH

C3, C1, MP, SKIP = "conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3", "skip_connect"
WITH_SKIP = [MP, C3, C1, SKIP]
SPACES = list(ONESHOT1_KEEP)


def _algorithm(name, space, seed=0):
    return create_algorithm(name, space, torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name, blocks, keep", [("1shot1-s1", 4, (1, 2, 2, 2, 2)), ("1shot1-s2", 4, (1, 1, 2, 2, 3)),
                                                ("1shot1-s3", 5, (1, 1, 1, 2, 2, 2))])
def test_spaces_have_the_benchmarks_blocks_parents_and_ops(name, blocks, keep):
    """nasbench-1shot1 search_space_{1,2,3}.py: num_parents_per_node, 9 in-edges in all; PRIMITIVES' order."""
    space = get_space(name)
    assert space.op_site == "node" and space.inputs_per_node == keep and sum(keep) == 9
    assert space.site_ops["cell"] == ((MP, C3, C1),) * blocks
    assert len(space.edges) == sum(range(1, blocks + 2))  # block j and the output take any earlier node
    assert space.restricted(WITH_SKIP).site_ops["cell"] == (tuple(WITH_SKIP),) * blocks
    with pytest.raises(RomenasError, match=r"not in space 1shot1-s\d; its ops are .*skip_connect"):
        space.restricted([C3, "sep_conv_3x3"])
    with pytest.raises(RomenasError, match="op\\(s\\) \\['sep_conv_3x3'\\] are not in space nb201"):
        get_space("nb201").restricted(["nor_conv_3x3", "sep_conv_3x3"])  # only a space's extra_ops are added


def test_supernet_weights_match_the_1shot1_supernet():
    """C=16, 3 stacks of 3 cells, 10 classes: 1,101,402 weights for 4 blocks, 1,509,594 for 5 (computed by
    following 1Shot1's model_search.py: projections per block, affine BN, output projection; alphas excluded)."""
    counts = {n: count_parameters(get_space(n).build_supernet(16, 3, 10, 3)) for n in SPACES}
    assert counts == {"1shot1-s1": 1_101_402, "1shot1-s2": 1_101_402, "1shot1-s3": 1_509_594}


def test_genotypes_read_and_write_the_nas_bench_101_form():
    spec = {"matrix": [[0, 1, 1, 1, 0, 1, 0], [0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 1, 0, 0],
                       [0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 1], [0] * 7],
            "ops": ["input", C1, C3, C3, C3, MP, "output"]}
    g = parse_genotype(json.dumps(spec))
    assert g.family == "nb101" and g.to_nb101() == spec and parse_genotype(g.to_string()) == g
    assert Genotype.from_json(g.to_json()) == g
    assert count_parameters(build_network(g, None, None, 10, 3)) == 2_694_282  # NASBench.ipynb's published count
    assert collapse_metrics(g) == {"param_free/cell": 1, "skip/cell": 0, "depth/cell": 2}
    # collapse metrics count the cell the network computes: a maxpool off every path is pruned
    dead = Genotype.build("nb101", {"cell": [[(C3, 0)], [(MP, 1)]]}, {"cell": [1]})
    assert collapse_metrics(dead) == {"param_free/cell": 0, "skip/cell": 0, "depth/cell": 1}
    with pytest.raises(GenotypeError, match="exactly the keys 'matrix' and 'ops'"):
        parse_genotype(json.dumps({**spec, "extra": 1}))
    # an unpruned spec is read as the benchmark reads it: vertex 2 feeds nothing and goes
    loose = {"matrix": [[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0], [0, 0, 0, 0]], "ops": ["input", C3, MP, "output"]}
    assert parse_genotype(json.dumps(loose)).to_nb101() == {"matrix": [[0, 1, 0], [0, 0, 1], [0, 0, 0]],
                                                            "ops": ["input", C3, "output"]}


@pytest.mark.parametrize("cells, concat, message", [
    ([[[C3, 0], [MP, 0]]], [1], "lists the ops"),
    ([[[C3, 0], [C3, 0]]], [1], "takes input 0 twice"),
    ([[]], [1], "has no inputs"),
    ([[[C3, 1]]], [1], "not an earlier node"),
    ([[[C3, 0]]], [], "is empty"),
    ([[[C3, 0]]], [1, 1], "twice"),
    ([[["sep_conv_3x3", 0]]], [1], "not in the space"),
])
def test_bad_nb101_genotypes_are_one_line(cells, concat, message):
    with pytest.raises(GenotypeError, match=message):
        Genotype.build("nb101", {"cell": cells}, {"cell": concat})
    with pytest.raises(GenotypeError, match="does not connect"):
        parse_genotype(json.dumps({"matrix": [[0, 1, 0], [0, 0, 0], [0, 0, 0]], "ops": ["input", C3, "output"]}))


def test_a_node_cannot_keep_more_inputs_than_it_has():
    edges = get_space("1shot1-s1").edges
    with pytest.raises(RomenasError, match="a node with 1 possible inputs cannot keep 2"):
        get_topology_sampler("top2", edges, (2, 2, 2, 2, 2))


@pytest.mark.parametrize("name", ["softmax", "gumbel-softmax"])
def test_soft_input_weights_sum_to_one_per_choosing_node(name):
    """DARTS' and GDAS' input weights (1Shot1's alphas_inputs/alphas_output): a distribution over a node's
    predecessors where it chooses, 1 on each input where it has no choice (node 1; node 2 of space 1)."""
    space = get_space("1shot1-s1")
    sampler = get_topology_sampler(name, space.edges, space.inputs_per_node)
    beta = torch.randn(sampler.num_params, generator=torch.Generator().manual_seed(1))
    on, w = sampler.sample(beta, 1.0, torch.Generator().manual_seed(2))
    assert on.all()
    for es, k in zip(sampler.index.node_edges, space.inputs_per_node):
        if len(es) <= k:
            assert w[es].tolist() == [1.0] * len(es)
        else:
            assert float(w[es].sum()) == pytest.approx(1.0, abs=1e-6) and (w[es] > 0).all()


@pytest.mark.parametrize("space_name", SPACES)
@pytest.mark.parametrize("algorithm", ["darts", "gdas", "rome"])
def test_every_algorithm_searches_the_topology_with_its_own_sampler(space_name, algorithm):
    """DARTS weighs inputs by softmax(beta), GDAS by a Gumbel-softmax, ROME keeps k by Gumbel-Top-k; all
    derive each node's top-k inputs by beta and its argmax op, with the space's input counts."""
    space = get_space(space_name).restricted(WITH_SKIP)
    algo = _algorithm(algorithm, space)
    assert algo.sampler.name == {"darts": "softmax", "gdas": "gumbel-softmax", "rome": "top2"}[algorithm]
    net = space.build_supernet(4, 1, 10, 3)
    x, y = torch.randn(4, 3, 16, 16), torch.tensor([0, 1, 2, 3])
    plans = algo.arch_plans(1.0)
    loss = torch.nn.functional.cross_entropy(net(x, plans), y.repeat(len(plans)))
    loss.backward()
    for p in algo.parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0
    if algorithm == "rome":
        for plan in plans:
            on = [on for on, _ in plan["cell"].edges]
            for es, k in zip(algo.sampler.index.node_edges, space.inputs_per_node):
                assert sum(on[e] for e in es) == k
    with torch.no_grad():
        algo.betas["cell"].copy_(torch.arange(algo.betas["cell"].numel(), dtype=torch.float))  # later inputs win
        algo.alphas["cell"].zero_()
        algo.alphas["cell"][:, 3] = 1.0  # skip_connect everywhere
    g = algo.derive()
    keep = space.inputs_per_node
    for j, node in enumerate(g.cells["cell"], start=1):
        assert sorted(i for _, i in node) == list(range(j - keep[j - 1], j)) and {op for op, _ in node} == {SKIP}
    blocks = len(g.cells["cell"])
    assert list(g.concat["cell"]) == list(range(blocks + 1 - keep[-1], blocks + 1))
    assert collapse_metrics(g)["skip/cell"] == blocks


def test_search_train_resume_and_draw_a_1shot1_cell(tmp_path, monkeypatch):
    from romenas.search.loop import Searcher

    run = tmp_path / "run"
    settings = {**TINY_SEARCH, "space": "1shot1-s2", "ops": WITH_SKIP, "layers": 1, "limit_train": 128}
    result = search(out=run, **settings)
    g = result.genotype
    assert g.family == "nb101" and [len(node) for node in g.cells["cell"]] == [1, 1, 2, 2]
    assert len(g.concat["cell"]) == 3 and json.loads(result.metrics[-1]["genotype"]) == g.to_nb101()
    # stopped in its second epoch and resumed, the search ends as the uninterrupted one
    original, rows = Searcher._epoch_row, []

    def stop_in_the_second_epoch(self, tau):
        rows.append(tau)
        if len(rows) == 2:
            raise KeyboardInterrupt
        return original(self, tau)

    monkeypatch.setattr(Searcher, "_epoch_row", stop_in_the_second_epoch)
    with pytest.raises(KeyboardInterrupt):
        search(out=tmp_path / "stopped", **settings)
    monkeypatch.undo()
    resumed = search(resume=tmp_path / "stopped")
    assert resumed.genotype == g and resumed.metrics[-1]["op_probs"] == result.metrics[-1]["op_probs"]
    assert main(["train", str(run), "--dataset", "digits", "--channels", "4", "--layers", "1", "--epochs", "1",
                 "--limit-train", "64", "--limit-test", "64", "--out", str(tmp_path / "train")]) == 0
    assert main(["draw", str(run), "--out", str(tmp_path / "cells")]) == 0
    dot = (tmp_path / "cells" / "cell.dot").read_text()
    assert "out [label" in dot and all(f": {op}" in dot for op in g.ops())
    assert main(["derive", str(run), "--target-mflops", "5"]) == 2  # no cost table where ops sit on nodes
