"""Fidelity to the published methods: Algorithm 1, clipping, GDAS' estimator, recipes, op sets, DARTS 2nd order."""
import copy
import json

import pytest
import torch

from romenas import search
from romenas.config import SearchConfig, build_config
from romenas.report import summary
from romenas.errors import RomenasError
from romenas.search import create_algorithm
from romenas.search.base import convergence
from romenas.search.darts import unrolled_arch_step
from romenas.search.loop import Searcher, epoch_line
from romenas.spaces import get_space

from conftest import TINY_SEARCH


def _searcher(**overrides) -> Searcher:
    settings = {**TINY_SEARCH, **overrides}
    if settings.get("algorithm", "rome") != "rome" and "samples" not in overrides:
        settings["samples"] = None  # K is ROME's
    return Searcher(build_config(SearchConfig, settings), run=None)


def test_algorithm_1_samples_k_gumbel_subnets_in_both_steps():
    algo = create_algorithm("rome", get_space("darts"), torch.Generator().manual_seed(0), samples=5,
                              weight_sampling="gumbel")
    weight_plans, arch_plans = algo.weight_plans(1.0), algo.arch_plans(1.0)
    assert len(weight_plans) == len(arch_plans) == 5
    for plan in weight_plans + arch_plans:  # Gumbel-Top2: two input edges per node, one op each
        on = [len(edge) for edge in plan["normal"]]
        assert sum(on) == 8 and set(on) <= {0, 1}
    ops_taken = [[edge[0][0] for edge in plan["normal"] if edge] for plan in weight_plans]
    assert len({tuple(o) for o in ops_taken}) > 1  # fresh ops per subnet


def test_default_weight_step_is_fair_every_op_once_per_edge():
    """ROME's default (arXiv 2020): |ops| subnets for the weights, each op once per edge; K for alpha."""
    algo = create_algorithm("rome", get_space("nb201"), torch.Generator().manual_seed(0), samples=2)
    plans = algo.weight_plans(1.0)
    assert len(plans) == 5 and len(algo.arch_plans(1.0)) == 2  # |ops| for w, K for alpha
    for e in range(6):
        assert sorted(plan["cell"][e][0][0] for plan in plans) == list(range(5))
    assert SearchConfig(recipe="none").validate().options["weight_sampling"] == "fair"
    for algorithm, space in (("rome", "darts"), ("rome", "nb201"), ("rome", "s2")):
        assert build_config(SearchConfig, {"algorithm": algorithm, "space": space}).options["weight_sampling"] == "fair"


def test_fair_edges_trains_every_edge_while_beta_turns_edges_off_for_alpha():
    """--weight-sampling fair-edges with the subset sampler: each weight subnet has every edge on and
    every op once per edge; the architecture's subnets still take beta's input sets."""
    algo = create_algorithm("rome", get_space("nb201"), torch.Generator().manual_seed(0), samples=8,
                              edge_sampler="subset", weight_sampling="fair-edges")
    plans = algo.weight_plans(1.0)
    assert len(plans) == 4  # 'none' is beta's: 4 ops left
    for e in range(6):
        assert sorted(plan["cell"][e][0][0] for plan in plans) == list(range(4))
    assert all(len(edge) == 1 for plan in plans for edge in plan["cell"])
    assert any(len(edge) == 0 for plan in algo.arch_plans(1.0) for edge in plan["cell"])
    fair = create_algorithm("rome", get_space("nb201"), torch.Generator().manual_seed(0), samples=8, edge_sampler="subset")
    assert any(len(edge) == 0 for plan in fair.weight_plans(1.0) for edge in plan["cell"])  # the paper's: sampled


def test_single_weight_step_and_k1_is_one_subnet_per_step():
    algo = create_algorithm("rome", get_space("darts"), torch.Generator().manual_seed(0), samples=1,
                              weight_sampling="single")
    assert len(algo.weight_plans(1.0)) == len(algo.arch_plans(1.0)) == 1
    algo = create_algorithm("rome", get_space("darts"), torch.Generator().manual_seed(0), samples=3,
                              weight_sampling="single")
    assert (len(algo.weight_plans(1.0)), len(algo.arch_plans(1.0))) == (1, 3)


def test_legacy_fair_flag_maps_to_weight_sampling():
    """Runs saved before weight_sampling existed said fair: false for Algorithm 1; they resume as such."""
    assert build_config(SearchConfig, {"fair": False}).options["weight_sampling"] == "gumbel"
    assert build_config(SearchConfig, {"fair": True}).options["weight_sampling"] == "fair"
    with pytest.raises(RomenasError, match="unknown weight_sampling"):
        build_config(SearchConfig, {"weight_sampling": "random"})


def test_step_order_follows_each_source_and_is_recorded():
    """xautodl's NB201 baselines update w before alpha; DARTS' paper and ROME alpha first."""
    order = {(a, s): build_config(SearchConfig, {"algorithm": a, "space": s}).step_order
             for a in ("rome", "gdas", "darts") for s in ("darts", "nb201", "s3")}
    assert order == {("rome", "darts"): "arch-first", ("rome", "nb201"): "arch-first", ("rome", "s3"): "arch-first",
                     ("gdas", "darts"): "weights-first", ("gdas", "nb201"): "weights-first",
                     ("gdas", "s3"): "weights-first", ("darts", "darts"): "arch-first",
                     ("darts", "nb201"): "weights-first", ("darts", "s3"): "arch-first"}
    plain = _searcher(algorithm="darts", recipe="none")  # no recipe: the algorithm's own order, recorded
    assert (plain.cfg.step_order, plain.arch_first) == ("arch-first", True)


def test_clipping_scales_with_the_accumulated_subnets():
    """Clipped at one subnet's threshold, the sum of K gradients would step like one subnet."""
    steps = {}
    for k in (1, 4):
        s = _searcher(samples=k, weight_sampling="gumbel", grad_clip=1e-3, w_weight_decay=0.0, w_lr=0.1)
        (xw, yw), _ = next(iter(zip(*s.loaders)))
        before = [p.detach().clone() for p in s.net.parameters()]
        s._weight_step(xw, yw, tau=1.0)
        steps[k] = torch.cat([(p.detach() - b).flatten() for p, b in zip(s.net.parameters(), before)]).norm()
    # Every subnet's gradient is far above 1e-3, so each sum is clipped to exactly K x 1e-3 (SGD's first step: lr x grad).
    assert steps[1].item() == pytest.approx(0.1 * 1e-3, rel=1e-3)
    assert steps[4].item() == pytest.approx(0.1 * 4e-3, rel=1e-3)


def test_gdas_unselected_op_terms_add_to_the_architecture_gradient():
    """xautodl's term: an edge whose sampled op is 'none' gets no gradient through that op, but
    through the other ops' zero-valued weights it does."""
    s = _searcher(algorithm="gdas", space="nb201", layers=1)
    x, y = next(iter(s.loaders[1]))
    s.net.eval()
    plan = s.algo.arch_plans(1.0)[0]
    bare = {"cell": [tuple(entry for entry in edge if entry[0] is not None) for edge in plan["cell"]]}
    alpha = s.algo.alphas["cell"]
    with_terms, = torch.autograd.grad(torch.nn.functional.cross_entropy(s.net(x, [plan]), y), alpha,
                                      retain_graph=True)
    without, = torch.autograd.grad(torch.nn.functional.cross_entropy(s.net(x, [bare]), y), alpha)
    assert all(len(edge) == 2 for edge in plan["cell"])
    assert not torch.allclose(with_terms, without)
    last_edge_op = plan["cell"][5][0][0]  # edge 3<-2 feeds the cell output directly: its term always counts
    assert not torch.allclose(with_terms[5], without[5]), last_edge_op


def test_unselected_op_terms_leave_the_forward_value_unchanged():
    s = _searcher(algorithm="gdas", space="nb201", layers=1)
    gen = s.generator.get_state()
    plan = s.algo.arch_plans(1.0)[0]
    s.generator.set_state(gen)
    bare = {"cell": [tuple(entry for entry in edge if entry[0] is not None) for edge in plan["cell"]]}
    x = next(iter(s.loaders[1]))[0]
    s.net.eval()
    assert torch.allclose(s.net(x, [plan]), s.net(x, [bare]), atol=1e-5)


def test_recipes_resolve_per_algorithm_and_space_and_yield_to_flags():
    gdas = build_config(SearchConfig, {"algorithm": "gdas", "space": "nb201"})
    assert (gdas.recipe, gdas.epochs, gdas.w_nesterov, gdas.w_weight_decay) == ("gdas-nb201", 250, True, 5e-4)
    darts = build_config(SearchConfig, {"algorithm": "darts", "space": "s3"})
    assert (darts.recipe, darts.epochs, darts.w_lr, darts.w_weight_decay) == ("darts-robust", 50, 0.025, 3e-4)
    rome = build_config(SearchConfig, {"algorithm": "rome"}, preset="darts-cifar10")
    assert (rome.recipe, rome.options["samples"], rome.w_lr, rome.options["weight_sampling"]) == ("rome-darts", 7, 0.05, "fair")
    mine = build_config(SearchConfig, {"algorithm": "gdas", "space": "nb201", "epochs": 3, "w_lr": 0.1})
    assert (mine.epochs, mine.w_lr, mine.w_nesterov) == (3, 0.1, True)
    plain = build_config(SearchConfig, {"algorithm": "gdas", "space": "nb201", "recipe": "none"})
    assert plain.epochs == SearchConfig.epochs
    with pytest.raises(RomenasError, match="unknown recipe"):
        build_config(SearchConfig, {"recipe": "gdas-imagenet"})


@pytest.mark.parametrize("algorithm", ["rome", "gdas", "darts"])
def test_ops_flag_restricts_every_algorithm(algorithm):
    ops = ("skip_connect", "nor_conv_3x3", "avg_pool_3x3")
    s = _searcher(algorithm=algorithm, space="nb201", layers=1, ops=ops)
    assert s.algo.space.ops == sorted(ops)
    assert s.algo.alphas["cell"].shape == (6, 3)
    assert set(s.algo.derive().ops()) <= set(ops)


def test_rome_keeps_none_where_no_topology_parameters_replace_it():
    nb201 = create_algorithm("rome", get_space("nb201"), torch.Generator())
    darts = create_algorithm("rome", get_space("darts"), torch.Generator())
    assert "none" in nb201.space.ops and nb201.betas is None
    assert "none" not in darts.space.ops and darts.betas is not None


@pytest.mark.parametrize("space, ops, message", [("darts", ["conv_9x9"], "not in space"),
                                                 ("s1", ["max_pool_3x3"], "without ops"),
                                                 ("s1", ["avg_pool_3x3", "dil_conv_3x3", "max_pool_3x3", "sep_conv_3x3", "skip_connect"],
                                                  "different op counts")])
def test_bad_op_sets_are_refused(space, ops, message):
    with pytest.raises(RomenasError, match=message):
        get_space(space).restricted(ops)


def test_second_order_darts_reduces_to_first_order_at_zero_lr_and_restores_weights():
    s = _searcher(algorithm="darts", space="nb201", layers=1, darts_order=2)
    (xw, yw), (xa, ya) = next(iter(zip(*s.loaders)))
    s.net.eval()  # fixed BN statistics: the same function in every pass
    weights = copy.deepcopy(s.net.state_dict())
    grads = {}
    for lr in (0.0, 0.5):
        s.w_opt.param_groups[0]["lr"] = lr
        unrolled_arch_step(s.step_context, s.algo, (xa, ya), (xw, yw))
        grads[lr] = s.algo.alphas["cell"].grad.clone()
        for key, value in s.net.state_dict().items():
            assert torch.equal(value, weights[key]), key
    first = torch.autograd.grad(torch.nn.functional.cross_entropy(s.net(xa, s.algo.arch_plans(1.0)), ya),
                                s.algo.alphas["cell"])[0]
    assert torch.allclose(grads[0.0], first, atol=1e-6)
    assert not torch.allclose(grads[0.5], first, atol=1e-4)


@pytest.mark.parametrize("algorithm, given, flag", [("gdas", {"samples": 3}, "--samples"),
                                                    ("darts", {"weight_sampling": "gumbel"}, "--weight-sampling"),
                                                    ("darts", {"fair": True}, "--weight-sampling"),
                                                    ("gdas", {"topology": False}, "--topology"),
                                                    ("darts", {"edge_sampler": "pair"}, "--edge-sampler"),
                                                    ("darts", {"tau_min": 0.5}, "--tau-min"),
                                                    ("rome", {"darts_order": 1}, "--darts-order")])
def test_an_option_the_algorithm_does_not_read_is_refused(algorithm, given, flag, tmp_path):
    with pytest.raises(RomenasError, match=f"{algorithm} does not use {flag}"):
        search(out=tmp_path / "run", **{**TINY_SEARCH, "samples": None, "algorithm": algorithm, **given})
    assert not (tmp_path / "run").exists()


def test_the_run_records_only_the_settings_its_algorithm_used(tmp_path):
    """The quickstart preset's K=4 does not apply to GDAS, and its record does not claim it."""
    result = search(out=tmp_path / "gdas", preset="quickstart", **{**TINY_SEARCH, "samples": None, "epochs": 1,
                                                                    "algorithm": "gdas"})
    saved = json.loads((tmp_path / "gdas" / "config.json").read_text())["config"]
    assert "samples" not in saved and "weight_sampling" not in saved and saved["tau_max"] == 10.0
    assert "K=" not in summary(result.run_dir)
    rome = json.loads((search(out=tmp_path / "rome", **{**TINY_SEARCH, "epochs": 1}).run_dir / "config.json")
                      .read_text())["config"]
    assert (rome["samples"], rome["weight_sampling"], "darts_order" in rome) == (2, "fair", False)
    assert "K=2, fair weight step" in summary(tmp_path / "rome")


def test_darts_order_2_is_refused_for_other_algorithms():
    with pytest.raises(RomenasError, match="rome does not use --darts-order"):
        build_config(SearchConfig, {"algorithm": "rome", "darts_order": 2})


def test_convergence_measures():
    assert convergence([torch.full((4,), 0.25)]) == pytest.approx((1.0, 0.0))
    assert convergence([torch.tensor([1.0, 0.0, 0.0])]) == pytest.approx((0.0, 1.0), abs=1e-9)
    # top-2 of 3, as kept-probabilities / 2: two inputs kept surely is decided (entropy 0, margin 1);
    # kept with 0.9, 0.9, 0.2 leaves a margin of 0.7 in the probability of being kept
    assert convergence([torch.tensor([0.5, 0.5, 0.0])], chosen=2) == pytest.approx((0.0, 1.0), abs=1e-6)
    entropy, margin = convergence([torch.tensor([0.45, 0.45, 0.10])], chosen=2)
    assert margin == pytest.approx(0.7) and 0 < entropy < 1
    assert convergence([torch.tensor([1 / 3] * 3)], chosen=2) == pytest.approx((1.0, 0.0))
    assert convergence([torch.tensor([0.5, 0.5])], chosen=2) == (0.0, 1.0)  # nothing to decide: skipped


def test_a_node_that_keeps_every_input_has_nothing_to_learn():
    """DARTS' first node has exactly two predecessors: Gumbel-Top2 keeps both with weight 1 and gives
    their betas no gradient; the plots show them kept with probability 1."""
    algo = create_algorithm("rome", get_space("darts"), torch.Generator().manual_seed(0), samples=1)
    on, weights = algo.sampler.sample(algo.betas["normal"], 1.0, algo.generator)
    weights.sum().backward()
    assert on[:2].all() and torch.equal(weights[:2].detach(), torch.ones(2))
    assert torch.equal(algo.betas["normal"].grad[:2], torch.zeros(2)) and algo.betas["normal"].grad[2:].abs().sum() > 0
    assert torch.equal(algo.edge_probs()["normal"][:2], torch.ones(2))


def test_epoch_line_reports_losses_accuracies_tau_and_convergence():
    s = _searcher(epochs=1)
    result = s.fit()
    line = epoch_line(result.metrics[-1], 1)
    for part in ("train loss", "val loss", "acc", "tau", "op entropy", "edge entropy", "margin"):
        assert part in line
    assert 0.0 <= result.metrics[-1]["op_entropy"] <= 1.0


def test_warmup_epochs_train_only_the_weights():
    s = _searcher(epochs=2, warmup_epochs=1)
    alphas = copy.deepcopy(s.algo.state_dict())
    s.cfg.epochs = 1  # stop after the warm-up epoch
    s.fit()
    for key, value in s.algo.state_dict().items():
        assert torch.equal(value, alphas[key]), key
    with pytest.raises(RomenasError, match="warmup_epochs"):
        build_config(SearchConfig, {"epochs": 3, "warmup_epochs": 3})


def test_a_config_built_by_hand_runs_as_given_without_a_recipe(tmp_path):
    from romenas import search

    cfg = build_config(SearchConfig, {**TINY_SEARCH, "epochs": 1, "recipe": "none"})
    by_hand = SearchConfig(**{**vars(cfg), "recipe": "auto"})
    result = search(by_hand, out=tmp_path / "run")
    assert result.config.recipe == "none" and result.config.w_lr == SearchConfig.w_lr


def test_recipe_movement_rule_scales_each_recipes_lr_to_its_total_movement(tmp_path):
    """docs/method.md, CPU proxies: a_lr = a_lr_recipe x recipe steps / run steps, the rule recorded."""
    from romenas.recipes import recipe_steps

    assert recipe_steps("rome-nb201") == 50 * 391 and recipe_steps("gdas-nb201") == 250 * 391
    assert recipe_steps("gdas-darts") == 250 * 98  # batch 256
    settings = dict(TINY_SEARCH, space="nb201", layers=1, epochs=3, warmup_epochs=1, a_lr_rule="recipe-movement")
    for algorithm, recipe_steps_ in (("gdas", 250 * 391), ("darts", 50 * 391)):
        result = search(out=tmp_path / algorithm, algorithm=algorithm, recipe=f"{algorithm}-nb201",
                        **{k: v for k, v in settings.items() if k != "samples"})
        steps = 4 * (3 - 1)  # 128 images per half / batch 32, two epochs past the warm-up
        saved = json.loads((tmp_path / algorithm / "config.json").read_text())["config"]
        assert saved["a_lr"] == pytest.approx(3e-4 * recipe_steps_ / steps) == result.config.a_lr
        assert saved["a_lr_rule"] == "recipe-movement"
        resumed = search(resume=tmp_path / algorithm, progress=False)  # the same lr again, not rescaled
        assert resumed.config.a_lr == result.config.a_lr
    with pytest.raises(RomenasError, match="recipe-movement scales a recipe's a_lr.*recipe 'none'"):
        search(out=tmp_path / "none", recipe="none", **settings)
    with pytest.raises(RomenasError, match="a_lr_rule"):
        build_config(SearchConfig, {"a_lr_rule": "fast"}, None)
