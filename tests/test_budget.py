"""Budgets: exact cost tables, the expected cost of the architecture distribution, the penalty, the verdict."""
import json
from itertools import permutations

import pytest
import torch

from romenas import search
from romenas.cli import main
from romenas.config import SearchConfig, build_config
from romenas.errors import RomenasError
from romenas.genotype import parse_darts_string
from romenas.published import PUBLISHED
from romenas.report import run_rows, summary
from romenas.sampling import plackett_luce_inclusion
from romenas.search import create_algorithm
from romenas.search.loop import Searcher
from romenas.spaces import build_network, count_flops, count_parameters, get_space
from romenas.spaces.cost import CostTable, cost_table

from conftest import TINY_SEARCH, TINY_TRAIN


@pytest.fixture(scope="module")
def darts_table():
    return cost_table(get_space("darts"), 36, 20, 10, 3, 32)


@pytest.mark.parametrize("name", ["DARTS_V2", "DARTS_V1"])
def test_darts_table_prices_published_cells_exactly(darts_table, name):
    """DARTS_V2 at C=36, 20 cells: 3.349342 M parameters (the figure romenas and the DARTS paper's 3.3 M
    report); the table's sum (cells + stated constant) equals the built network's counts exactly."""
    genotype = PUBLISHED[name]
    net = build_network(genotype, 36, 20, 10, 3)
    cost = darts_table.genotype_cost(genotype)
    assert cost["mparams"] == pytest.approx(count_parameters(net) / 1e6, abs=1e-9)
    assert cost["mflops"] == pytest.approx(count_flops(net, 3, 32) / 1e6, abs=1e-6)
    if name == "DARTS_V2":
        assert count_parameters(net) == 3_349_342


@pytest.mark.parametrize("name, mparams", [("NB201_OPTIMUM", 1.0735), ("NB201_ALL_SKIP", 0.0733)])
def test_nb201_table_prices_cells_exactly(name, mparams):
    """NAS-Bench-201's published sizes (C=16, N=5, 10 classes): the table gives the counted figures."""
    table = cost_table(get_space("nb201"), 16, 5, 10, 3, 32)
    genotype = PUBLISHED[name]
    net = build_network(genotype, 16, 5, 10, 3)
    cost = table.genotype_cost(genotype)
    assert cost["mparams"] == pytest.approx(count_parameters(net) / 1e6, abs=1e-9)
    assert cost["mparams"] == pytest.approx(mparams, rel=1e-3)
    assert cost["mflops"] == pytest.approx(count_flops(net, 3, 32) / 1e6, abs=1e-6)
    if name == "NB201_ALL_SKIP":  # skips, pools and 'none' cost no FLOPs: the cheapest cell
        assert table.smallest(None)["mflops"] == pytest.approx(cost["mflops"])


def test_expected_cost_of_a_decided_distribution_is_the_genotype_cost(darts_table):
    """With one-hot op and edge probabilities, E[cost] is exactly the derived cell's table cost."""
    genotype = PUBLISHED["DARTS_V2"]
    ops, edges = {}, {}
    for kind, nodes in genotype.cells.items():
        names = darts_table.ops[kind]
        ops[kind] = torch.zeros(len(names), len(names[0]), dtype=torch.float64)
        edges[kind] = torch.zeros(len(names), dtype=torch.float64)
        for j, node in enumerate(nodes):
            for op, inp in node:
                e = sum(2 + i for i in range(j)) + inp
                ops[kind][e, names[e].index(op)] = 1.0
                edges[kind][e] = 1.0
    expected = darts_table.expected(ops, edges)
    cost = darts_table.genotype_cost(genotype)
    for metric in cost:
        assert float(expected[metric]) == pytest.approx(cost[metric], rel=1e-12)


def _subset_probabilities(p, k):
    """P(item in the k drawn without replacement), by enumerating ordered draws (independent of romenas)."""
    out = [0.0] * len(p)
    for order in permutations(range(len(p)), k):
        prob, left = 1.0, 1.0
        for i in order:
            prob *= p[i] / left
            left -= p[i]
        for i in order:
            out[i] += prob
    return out


@pytest.mark.parametrize("k", [1, 2, 3])
def test_plackett_luce_inclusion_is_exact_and_differentiable(k):
    logits = torch.tensor([0.3, -1.0, 1.2, 0.0, 0.5], dtype=torch.float64, requires_grad=True)
    probs = torch.softmax(logits, 0)
    inclusion = plackett_luce_inclusion(probs, k)
    assert inclusion.tolist() == pytest.approx(_subset_probabilities(probs.tolist(), k), abs=1e-6)
    assert float(inclusion.detach().sum()) == pytest.approx(k, abs=1e-9)  # k distinct items are drawn
    inclusion[2].backward()
    assert logits.grad is not None and float(logits.grad[2]) > 0  # more weight, more often kept


def test_rome_edge_inclusion_matches_sampled_frequencies():
    """The expected cost reads p(edge kept) from beta; Gumbel-Top2 samples keep edges that often."""
    algo = create_algorithm("rome", get_space("darts"), torch.Generator().manual_seed(0), samples=1)
    with torch.no_grad():
        algo.betas["normal"].copy_(torch.randn(14, generator=torch.Generator().manual_seed(4)))
    p = algo.edge_inclusion("normal").detach()
    counts, n = torch.zeros(14), 4000
    for _ in range(n):
        on, _ = algo.sampler.sample(algo.betas["normal"].detach(), 1.0, algo.generator)
        counts += on.float()
    assert torch.allclose(counts / n, p, atol=0.035)
    assert torch.allclose(create_algorithm("gdas", get_space("darts"), torch.Generator()).edge_inclusion("normal"),
                          torch.tensor([1.0, 1.0, 2 / 3, 2 / 3, 2 / 3, 0.5, 0.5, 0.5, 0.5, 0.4, 0.4, 0.4, 0.4, 0.4]))


@pytest.mark.parametrize("algorithm", ["rome", "gdas", "darts"])
def test_a_tight_flops_target_lowers_expected_and_derived_flops(algorithm, tmp_path):
    """The same search (seed, data) with and without a tight MFLOPs target: the budget's penalty
    moves the architecture toward cheaper ops, for every algorithm alike."""
    common = dict(TINY_SEARCH, space="nb201", algorithm=algorithm, epochs=3, a_lr=0.05, a_weight_decay=0.0, seed=1)
    if algorithm != "rome":
        common.pop("samples")
    free = search(**common, target_mflops=1e6, out=tmp_path / "free")  # a budget that never binds
    tight = search(**common, target_mflops=1.0, budget_weight=5.0, out=tmp_path / "tight")
    free_row, tight_row = free.metrics[-1]["budget"]["mflops"], tight.metrics[-1]["budget"]["mflops"]
    assert tight_row["expected"] < free_row["expected"]
    assert tight.budget["mflops"]["measured"] < free.budget["mflops"]["measured"]
    assert tight.budget["mflops"]["measured"] == pytest.approx(tight_row["derived"], rel=1e-9)  # table = measured


def test_budget_is_recorded_shown_and_reaches_the_model_card(tmp_path, capsys):
    run, trained = tmp_path / "run", tmp_path / "trained"
    result = search(**{**TINY_SEARCH, "epochs": 1}, target_mflops=50.0, target_params=1.0, budget_channels=4, budget_layers=3,
                    out=run)
    saved = json.loads((run / "budget.json").read_text())
    assert saved["targets"] == {"mflops": 50.0, "mparams": 1.0}
    assert saved["derived"] == result.budget and result.budget["mflops"]["met"]
    config = json.loads((run / "config.json").read_text())["config"]
    assert config["budget_channels"] == 4 and config["target_params"] == 1.0
    assert "MFLOPs <= 50 MFLOPs met" in summary(run)
    assert main(["list", str(tmp_path), "--csv"]) == 0
    assert "run,search,rome,darts,digits,1/1," in capsys.readouterr().out.replace("\r", "") and \
        run_rows(tmp_path)[0]["budget"] == "met"
    assert main(["train", str(run), *_train_flags(), "--channels", "4", "--layers", "3", "--out", str(trained)]) == 0
    card = (trained / "MODEL_CARD.md").read_text()
    assert "## Budget" in card and "<= 50 MFLOPs met" in card


def test_a_run_without_budget_records_no_budget_settings():
    config = Searcher(build_config(SearchConfig, {**TINY_SEARCH, "budget_channels": None}), None).record()
    assert not {"budget_weight", "budget_channels", "budget_layers"} & set(config)
    with_budget = Searcher(build_config(SearchConfig, {**TINY_SEARCH, "target_params": 9.0}), None).record()
    assert {"budget_weight", "budget_channels", "budget_layers", "target_params"} <= set(with_budget)


def test_resume_reads_the_saved_table_and_refuses_a_damaged_one(tmp_path):
    run = tmp_path / "run"
    search(**{**TINY_SEARCH, "epochs": 1}, target_mflops=50.0, out=run)
    saved = json.loads((run / "budget.json").read_text())
    saved["table"]["costs"]["mflops"]["normal"][0] = "x"
    (run / "budget.json").write_text(json.dumps(saved))
    with pytest.raises(RomenasError, match="budget.json is damaged"):
        search(resume=run)
    saved["derived"] = {"mflops": "met"}
    (run / "budget.json").write_text(json.dumps(saved))
    assert "budget.json is damaged" in summary(run)
    with pytest.raises(RomenasError, match="damaged"):
        CostTable.from_dict({"ops": 3}, "x")


def _train_flags():
    out = []
    for key in ("limit_train", "limit_test", "epochs", "batch_size"):
        out += ["--" + key.replace("_", "-"), str(TINY_TRAIN[key])]
    return out + ["--no-progress"]


# -- the most probable cell within a budget ------------------------------------------------------
def _random_algorithm(name, space, seed=3, **kwargs):
    algo = create_algorithm(name, space, torch.Generator().manual_seed(0), **kwargs)
    with torch.no_grad():
        g = torch.Generator().manual_seed(seed)
        for p in algo.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
    return algo


def _log_p(algo, genotype):
    """log p(genotype) under the algorithm's factorised distribution, by brute force."""
    total = 0.0
    for kind, nodes in genotype.cells.items():
        probs = algo.op_probs()[kind]
        sets = algo.input_sets(kind)
        for j, node in enumerate(nodes):
            edges = {i: e for e, (n, i) in enumerate(algo.space.edges) if n == algo.space.num_inputs + j}
            kept = tuple(sorted(edges[i] for op, i in node if op != "none" or algo.space.inputs_per_node is None
                                and "none" in algo.space.site_ops[kind][edges[i]]))
            total += dict(sets[j])[kept]
            for op, i in node:
                if edges[i] in kept:
                    total += float(torch.log(probs[edges[i], algo.space.site_ops[kind][edges[i]].index(op)]))
    return total


def _every_nb201_genotype(space, with_none):
    from itertools import product

    from romenas.genotype import Genotype

    choices = [list(space.site_ops["cell"][e]) + (["none"] if with_none else []) for e in range(6)]
    for ops in product(*choices):
        nodes = [[(ops[0], 0)], [(ops[1], 0), (ops[2], 1)], [(ops[3], 0), (ops[4], 1), (ops[5], 2)]]
        if with_none and any(all(op == "none" for op, _ in node) for node in nodes):
            continue  # the subset sampler keeps at least one input per node
        yield Genotype.build("nb201", {"cell": nodes})


@pytest.mark.parametrize("algorithm, ops, kwargs", [
    ("darts", ["skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"], {}),
    ("rome", None, {"edge_sampler": "subset", "samples": 1}),  # beta turns edges off ('none')
])
def test_the_derivation_within_a_budget_is_the_most_probable_cell_that_fits(algorithm, ops, kwargs):
    """Against brute force over every NAS-Bench-201 cell: with two targets at once, the derivation
    returns the cell of highest log p(z) among those whose table cost fits both."""
    from romenas.derive import most_probable_within

    space = get_space("nb201")
    space = space.restricted(ops) if ops else space
    algo = _random_algorithm(algorithm, space, **kwargs)
    table = cost_table(algo.space, 16, 5, 10, 3, 32)
    cells = list(_every_nb201_genotype(algo.space, with_none=algorithm == "rome"))
    costs = [table.genotype_cost(g) for g in cells]
    targets = {"mflops": 120.0, "mparams": 0.45}
    best = max(_log_p(algo, g) for g, c in zip(cells, costs) if all(c[m] <= t for m, t in targets.items()))
    sets = {k: algo.input_sets(k) for k in algo.space.cell_types}
    found = most_probable_within(algo.space, algo.op_probs(), sets, table, targets)
    assert all(table.genotype_cost(found)[m] <= t for m, t in targets.items())
    assert _log_p(algo, found) == pytest.approx(best, abs=1e-9)
    unbounded = most_probable_within(algo.space, algo.op_probs(), sets, table, {"mflops": 1e9})
    assert _log_p(algo, unbounded) == pytest.approx(max(_log_p(algo, g) for g in cells), abs=1e-9)
    assert _log_p(algo, unbounded) >= _log_p(algo, algo.derive()) - 1e-9  # ROME's rule: topology first, then ops
    assert most_probable_within(algo.space, algo.op_probs(), sets, table, {"mflops": 1.0}) is None  # below any cell


@pytest.mark.parametrize("algorithm", ["rome", "gdas", "darts"])
def test_a_budget_derivation_in_the_darts_space(algorithm):
    """DARTS space (nodes keep 2 of their inputs): unbounded, the DARTS rule (strongest ops, no
    topology parameters) is the most probable cell; under a budget the cell fits and, for ROME,
    the budget only ever costs probability (Budget.derive keeps the algorithm's own cell where it fits)."""
    from romenas.derive import most_probable_within
    from romenas.search.budget import Budget

    algo = _random_algorithm(algorithm, get_space("darts"), seed=5)
    table = cost_table(algo.space, 8, 5, 10, 3, 32)
    sets = {k: algo.input_sets(k) for k in algo.space.cell_types}
    unbounded = most_probable_within(algo.space, algo.op_probs(), sets, table, {"mflops": 1e9})
    if algorithm != "rome":
        assert unbounded == algo.derive()
    assert _log_p(algo, unbounded) >= _log_p(algo, algo.derive()) - 1e-9
    mode = table.genotype_cost(algo.derive())["mflops"]
    within, own = Budget(table, {"mflops": 0.8 * mode}, 1.0, 2).derive(algo)
    assert own == algo.derive() and table.genotype_cost(within)["mflops"] <= 0.8 * mode
    assert Budget(table, {"mflops": mode}, 1.0, 2).derive(algo) == (own, own)


def test_plackett_luce_sets_are_a_distribution_with_the_inclusion_marginals():
    from romenas.sampling import plackett_luce_sets

    probs = torch.softmax(torch.tensor([0.3, -1.0, 1.2, 0.0, 0.5], dtype=torch.float64), 0)
    for k in (1, 2, 3):
        sets = plackett_luce_sets(probs, k)
        assert float(sum(p for _, p in sets)) == pytest.approx(1.0, abs=1e-12)
        marginal = [float(sum(p for members, p in sets if i in members)) for i in range(5)]
        assert marginal == pytest.approx(plackett_luce_inclusion(probs, k).tolist(), abs=1e-12)
    assert plackett_luce_sets(probs, 5) == [((0, 1, 2, 3, 4), 1.0)]


@pytest.fixture(scope="module")
def weak_budget(tmp_path_factory):
    """A search whose penalty is too weak to pull its most probable cell under the target."""
    from romenas.data import dataset_shape

    classes, channels, side = dataset_shape("digits")
    table = cost_table(get_space("darts"), 4, 3, classes, channels, side)
    target = 1.05 * table.smallest(2)["mflops"]
    run = tmp_path_factory.mktemp("weak") / "run"
    result = search(**{**TINY_SEARCH, "epochs": 1}, target_mflops=target, budget_weight=1e-6, budget_channels=4,
                    budget_layers=3, out=run)
    return run, result, table, target


def test_a_budget_the_most_probable_cell_exceeds_derives_within_it_and_derive_again(weak_budget, capsys):
    """The search still ends within its target: the most probable cell that fits, with the one it
    ruled out recorded; ``romenas derive RUN --target-mflops X`` derives the search again under
    another budget, at the run's own budget size unless a size flag changes it."""
    run, result, table, target = weak_budget
    saved = json.loads((run / "budget.json").read_text())
    assert saved["mode"]["cost"]["mflops"] > target >= table.genotype_cost(result.genotype)["mflops"]
    assert result.budget["mflops"]["met"] and "derived the most probable one within it" in summary(run)
    looser = 0.5 * (target + saved["mode"]["cost"]["mflops"])
    capsys.readouterr()
    assert main(["derive", str(run), "--target-mflops", str(looser)]) == 0
    out = capsys.readouterr()
    assert "the most probable cell within the budget" in out.err and "(C=4, 3 layers, 8px)" in out.err
    assert table.genotype_cost(parse_darts_string(out.out.strip()))["mflops"] <= looser
    assert main(["derive", str(run), "--target-mflops", "1e3", "--budget-channels", "6"]) == 0
    assert "(C=6, 3 layers, 8px)" in capsys.readouterr().err  # the other sizes stay the run's
    assert main(["derive", str(run), "--target-mflops", "1e-6"]) == 2
    assert "below the smallest network" in capsys.readouterr().err
    assert main(["derive", str(run), "--budget-layers", "3"]) == 2
    assert "add --target-mflops" in capsys.readouterr().err


def test_derive_refuses_what_is_no_searched_cell(weak_budget, tmp_path, capsys):
    """A genotype string (too long a name for a path), a training run and a checkpoint whose
    architecture parameters are NaN are each one line, exit 2."""
    from romenas.checkpoint import load_checkpoint, save_checkpoint

    run, result, _, _ = weak_budget
    assert main(["derive", result.genotype.to_string(), "--target-mflops", "1"]) == 2
    assert "not a romenas run folder" in capsys.readouterr().err
    trained = tmp_path / "trained"
    assert main(["train", result.genotype.to_string(), *_train_flags(), "--channels", "4", "--layers", "3",
                 "--out", str(trained)]) == 0  # the string, not a path, reaches the model card
    assert (trained / "MODEL_CARD.md").exists()
    assert main(["derive", str(trained), "--target-mflops", "1"]) == 2
    assert "is a train run; a budget derives a search run's cell again" in capsys.readouterr().err
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("config.json", "budget.json"):
        (broken / name).write_text((run / name).read_text())
    state = load_checkpoint(run / "checkpoint.pt", "search")
    state["algo"] = {k: torch.full_like(v, float("nan")) for k, v in state["algo"].items()}
    save_checkpoint({k: v for k, v in state.items() if k != "format"}, broken / "checkpoint.pt")
    assert main(["derive", str(broken), "--target-mflops", "1"]) == 2
    assert "are not finite" in capsys.readouterr().err
    for name in ("checkpoint.pt", "checkpoint.pt.prev"):
        (broken / name).unlink(missing_ok=True)
    assert main(["derive", str(broken), "--target-mflops", "1"]) == 2
    assert "has no checkpoint.pt: deriving again reads" in capsys.readouterr().err
    assert main(["derive", str(run), "--target-mflops", "1", "--budget-channels", "100000"]) == 2
    assert "check --budget-channels and --budget-layers" in capsys.readouterr().err


def test_targets_that_cannot_be_met_together_derive_no_cell():
    """Each target alone is reachable, both at once are not (cheap FLOPs only from ops with many
    parameters): no cell, not an internal error."""
    from romenas.derive import most_probable_within

    space = get_space("nb201").restricted(["skip_connect", "nor_conv_3x3"])
    algo = _random_algorithm("darts", space)
    data = cost_table(algo.space, 16, 5, 10, 3, 32).to_dict()
    data["costs"]["mparams"]["cell"] = [[1.0, 0.0] for _ in range(6)]  # skips priced heavy in parameters
    table = CostTable.from_dict(data, "table")
    targets = {"mflops": table.constant["mflops"] + 1.0, "mparams": table.constant["mparams"] + 1.0}
    sets = {k: algo.input_sets(k) for k in algo.space.cell_types}
    assert most_probable_within(algo.space, algo.op_probs(), sets, table, targets) is None
    assert most_probable_within(algo.space, algo.op_probs(), sets, table, {"mflops": targets["mflops"]}) is not None


@pytest.mark.parametrize("damage", ["negative cost", "bool cost", "huge channels", "float layers", "verdict lies",
                                    "verdict target", "long number", "deep nesting"])
def test_a_damaged_budget_file_is_named_not_trusted(weak_budget, tmp_path, damage):
    from romenas.runs import RunDir
    from romenas.search.budget import saved_budget

    run, _, _, _ = weak_budget
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in ("config.json", "status.json"):
        (copy / name).write_text((run / name).read_text())
    saved = json.loads((run / "budget.json").read_text())
    table = saved["table"]
    if damage == "negative cost":
        table["costs"]["mflops"]["normal"][0][0] = -5.0
    elif damage == "bool cost":
        table["costs"]["mflops"]["normal"][0][0] = True
    elif damage == "huge channels":
        table["network"]["channels"] = 10 ** 30
    elif damage == "float layers":
        table["network"]["layers"] = 4.5
    elif damage == "verdict lies":
        saved["derived"]["mflops"]["met"] = not saved["derived"]["mflops"]["met"]
    elif damage == "verdict target":
        saved["derived"]["mflops"]["target"] = 123.0
    text = json.dumps(saved)
    if damage == "long number":
        text = text.replace('"weight": ', '"weight": ' + "9" * 5000 + ", \"x\": ", 1)
    elif damage == "deep nesting":
        text = "[" * 100_000 + "]" * 100_000
    (copy / "budget.json").write_text(text)
    with pytest.raises(RomenasError, match="budget.json|cannot read"):
        saved_back = saved_budget(RunDir(copy))
        CostTable.from_dict(saved_back["table"], "budget.json")
    if damage not in ("negative cost", "bool cost"):  # a damaged price matters to resume and derive (above) only
        assert "budget.json is damaged" in summary(copy)
        assert run_rows(tmp_path)[0]["budget"] == "?"


def test_latency_tables_never_hold_negative_times():
    """Ops timed one by one can sum above the network's own time (more on a busy machine): the
    constant is then 0, never negative, so no cell is priced below 0 ms."""
    table = cost_table(get_space("nb201").restricted(["skip_connect", "nor_conv_1x1"]), 4, 1, 10, 1, 8,
                       latency_device=torch.device("cpu"), repeats=3)
    assert table.constant["latency_ms"] >= 0.0
    assert all(c >= 0.0 for e in table.costs["latency_ms"]["cell"] for c in e)
    assert table.smallest(None)["latency_ms"] >= 0.0


def test_pathological_json_in_a_run_folder_is_one_line_and_spares_the_list(tmp_path):
    """Run files are read by one reader: a 5000-digit number or 100,000 levels of nesting is a
    one-line error for that run, and `list` still lists the others."""
    for name, text in (("long", '{"kind": "search", "config": {"seed": ' + "9" * 5000 + "}}"),
                       ("deep", "[" * 100_000 + "]" * 100_000)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text(text)
        with pytest.raises(RomenasError, match="cannot read"):
            summary(tmp_path / name)
    assert [r["status"] for r in run_rows(tmp_path)] == ["damaged", "damaged"]


def test_derive_prices_a_run_without_budget_as_its_preset_would(tmp_path, capsys):
    """A quick-start search (preset quickstart: budgets price C=16, 5 cells) derived under a target
    afterwards prices the same network a search with that target would have."""
    run = tmp_path / "run"
    assert main(["search", "--preset", "quickstart", "--limit-train", "256", "--channels", "4", "--layers", "3",
                 "--epochs", "1", "--out", str(run)]) == 0
    capsys.readouterr()
    assert main(["derive", str(run), "--target-mflops", "100"]) == 0
    assert "(C=16, 5 layers, 8px)" in capsys.readouterr().err
