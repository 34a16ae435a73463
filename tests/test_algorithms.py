"""Algorithms: gradient accumulation, derivation rules, tiny end-to-end searches."""
import copy
import json

import pytest
import torch

from romenas import search
from romenas.algorithms import ALGORITHM_ENTRIES
from romenas.config import SearchConfig, build_config
from romenas.derive import darts_rule, topology_rule
from romenas.errors import RomenasError
from romenas.registry import SPACES, get_family
from romenas.search import create_algorithm
from romenas.search.loop import Searcher
from romenas.spaces import get_space

from conftest import TINY_SEARCH


@pytest.mark.parametrize("edge_sampler", ["top2", "pair"])
def test_accumulated_gradient_is_mean_of_separate_gradients(edge_sampler):
    cfg = build_config(SearchConfig, {**TINY_SEARCH, "samples": 4, "edge_sampler": edge_sampler})
    s = Searcher(cfg, run=None)
    (xa, ya), = [next(iter(s.loaders[1]))]
    algo_state = copy.deepcopy(s.algo.state_dict())
    gen_state = s.generator.get_state()
    s._arch_step(xa, ya, tau=1.0)  # the loop's own accumulation (then an Adam step)
    accumulated = [p.grad.clone() for p in s.algo.parameters()]

    s.algo.load_state_dict(algo_state)
    s.generator.set_state(gen_state)
    separate = []
    for plan in s.algo.arch_plans(1.0):
        loss = torch.nn.functional.cross_entropy(s.net(xa, [plan]), ya)
        separate.append(torch.autograd.grad(loss, list(s.algo.parameters())))
    for acc, *grads in zip(accumulated, *separate):
        assert torch.allclose(acc, torch.stack(grads).mean(0), atol=1e-6)


def test_darts_rule_on_handmade_alpha():
    space = get_space("darts")
    ops = list(space.site_ops["normal"][0])
    alpha = torch.zeros(14, len(ops))
    # node 2: edge 0 strongest 'none' (ignored) but weak conv; edge 1 strong sep_conv_5x5
    alpha[0, ops.index("none")] = 9.0
    alpha[0, ops.index("dil_conv_3x3")] = 1.0
    alpha[1, ops.index("sep_conv_5x5")] = 5.0
    # node 3 (edges 2,3,4): keep edges 2 and 4
    alpha[2, ops.index("skip_connect")] = 4.0
    alpha[4, ops.index("max_pool_3x3")] = 3.0
    alpha[3, ops.index("sep_conv_3x3")] = 0.5
    probs = {"normal": alpha, "reduce": alpha}
    g = darts_rule(space, probs)
    assert g.cells["normal"][0] == (("dil_conv_3x3", 0), ("sep_conv_5x5", 1))
    assert g.cells["normal"][1] == (("skip_connect", 0), ("max_pool_3x3", 2))


def test_topology_rule_takes_edges_from_beta_and_ops_from_alpha():
    space = get_space("darts").without_op("none")
    algo = create_algorithm("rome", get_space("darts"), torch.Generator().manual_seed(0))
    with torch.no_grad():
        for kind in space.cell_types:
            algo.betas[kind].zero_()
            algo.betas[kind][[0, 1, 3, 4, 5, 8, 9, 13]] = 2.0  # node 2: 0,1; node 3: 1,2; node 4: 0,3; node 5: 0,4
            algo.alphas[kind].zero_()
            algo.alphas[kind][:, 3] = 1.0  # sep_conv_3x3
    g = algo.derive()
    assert [[i for _, i in node] for node in g.cells["normal"]] == [[0, 1], [1, 2], [0, 3], [0, 4]]
    assert set(g.ops("normal")) == {"sep_conv_3x3"}
    assert g == topology_rule(space, algo.op_probs(), {k: algo.sampler.kept(algo.betas[k]) for k in space.cell_types})


def test_rome_v1_derivation_takes_the_best_pair():
    algo = create_algorithm("rome", get_space("darts"), torch.Generator().manual_seed(0), edge_sampler="pair")
    with torch.no_grad():
        for kind in algo.space.cell_types:
            algo.betas[kind].zero_()
            # pairs of node 5 start at 1 + 3 + 6 = 10; its pair (1, 4) is 4th: (0,1)(0,2)(0,3)(0,4)(1,2)(1,3)(1,4)
            algo.betas[kind][10 + 6] = 3.0
    kept = algo.derive().cells["normal"][3]
    assert sorted(i for _, i in kept) == [1, 4]


@pytest.mark.slow
@pytest.mark.parametrize("space", sorted(SPACES))
@pytest.mark.parametrize("algorithm", sorted(ALGORITHM_ENTRIES))
def test_tiny_search_completes_with_valid_genotype(space, algorithm, tmp_path):
    """Every registered algorithm on every registered space: a new one is covered without a list."""
    owns_samples = "samples" in ALGORITHM_ENTRIES[algorithm].option_names
    result = search(out=tmp_path / "run", algorithm=algorithm, space=space,
                    **{**TINY_SEARCH, "epochs": 1, "layers": get_family(SPACES[space].family).min_layers,
                       "limit_train": 128, "samples": TINY_SEARCH["samples"] if owns_samples else None})
    g = result.genotype
    g.validate(get_space(space).ops)
    assert (tmp_path / "run" / "genotype.json").exists()
    assert len(result.metrics) == 1 and result.metrics[0]["genotype"] == g.to_string()
    if algorithm == "rome" and space != "nb201":
        assert "none" not in g.ops()


@pytest.mark.parametrize("space, algorithm, weights", [("darts", "rome", "fair"), ("nb201", "rome", "fair"),
                                                       ("s3", "rome", "gumbel"), ("darts", "gdas", None)])
def test_batched_subnets_equal_sequential_accumulation(space, algorithm, weights):
    """One pass over K stacked replicas gives the gradients, steps and BN statistics of K passes."""
    layers = 1 if space == "nb201" else 3
    runs = {}
    for mode in ("sequential", "batched"):
        own = {"weight_sampling": weights, "samples": 3} if algorithm == "rome" else {"samples": None}  # GDAS: K=1
        cfg = build_config(SearchConfig, {**TINY_SEARCH, **own, "space": space, "algorithm": algorithm,
                                          "layers": layers, "subnet_execution": mode})
        s = Searcher(cfg, run=None)
        for (xw, yw), (xa, ya) in list(zip(*s.loaders))[:2]:
            s._arch_step(xa, ya, 1.0)
            s._weight_step(xw, yw, 1.0)
        runs[mode] = (s.net.state_dict(), s.algo.state_dict(), s.accum)
    (net_s, algo_s, acc_s), (net_b, algo_b, acc_b) = runs["sequential"], runs["batched"]
    for key in net_s:
        assert torch.allclose(net_s[key].float(), net_b[key].float(), atol=1e-5, rtol=1e-4), key
    for key in algo_s:
        assert torch.allclose(algo_s[key], algo_b[key], atol=1e-6), key
    assert acc_s["w_loss"] == pytest.approx(acc_b["w_loss"], rel=1e-5)
    assert acc_s["a_correct"] == pytest.approx(acc_b["a_correct"])


def test_rome_topology_on_nb201_decides_none_with_beta(tmp_path):
    """--edge-sampler subset: beta picks each node's non-empty input set, an edge off is 'none',
    alpha chooses among the other ops (romenas' extension of ROME to spaces that keep every edge)."""
    result = search(out=tmp_path / "run", **{**TINY_SEARCH, "space": "nb201", "layers": 1, "epochs": 1,
                                             "edge_sampler": "subset", "limit_train": 128})
    assert result.genotype.family == "nb201"
    saved = json.loads((tmp_path / "run" / "config.json").read_text())["config"]
    assert saved["topology"] is True and saved["edge_sampler"] == "subset"
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)["algo"]
    assert state["betas.cell"].shape == (11,) and state["alphas.cell"].shape == (6, 4)  # 'none' left alpha
    algo = create_algorithm("rome", get_space("nb201"), torch.Generator().manual_seed(0), edge_sampler="subset")
    for plan in algo.arch_plans(1.0) + algo.weight_plans(1.0):
        on = [len(edge) > 0 for edge in plan["cell"]]
        assert on[0] and (on[1] or on[2]) and (on[3] or on[4] or on[5])  # every node keeps an input
    with pytest.raises(RomenasError, match="has no 'none'"):
        create_algorithm("rome", get_space("nb201").without_op("none"), torch.Generator(), edge_sampler="subset")


@pytest.mark.parametrize("execution", ["sequential", "batched"])
@pytest.mark.parametrize("precision", ["32", "bf16-mixed", "16-mixed"])
@pytest.mark.parametrize("channels_last", [False, True])
def test_every_runtime_combination_runs_on_cpu(execution, precision, channels_last):
    """Each documented combination runs (batched subnets under bf16 used to fail in the replicas' BN)."""
    cfg = build_config(SearchConfig, {**TINY_SEARCH, "space": "nb201", "layers": 1, "limit_train": 64,
                                      "subnet_execution": execution, "precision": precision,
                                      "channels_last": channels_last, "device": "cpu"})
    s = Searcher(cfg, run=None)
    (xw, yw), (xa, ya) = next(iter(zip(*s.loaders)))
    s._arch_step(xa, ya, 1.0)
    s._weight_step(xw, yw, 1.0)
    assert all(torch.isfinite(p).all() for p in s.net.parameters())
    assert s.accum["w_seen"] == len(yw) and s.accum["a_seen"] == len(ya)
