"""The house's rules (docs/architecture.md): layers import downwards only, no import circles, and
an algorithm or a space is added in one place (the worked examples of the docs, run here)."""
import ast
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from romenas import search
from romenas.errors import RomenasError
from romenas.registry import SPACES, SpaceEntry, register_space
from romenas.sampling import gumbel
from romenas.algorithms import ALGORITHM_ENTRIES, AlgorithmEntry, Option, register_algorithm
from romenas.cli import main
from romenas.report import summary
from romenas.search.base import Capabilities, SearchAlgorithm
from romenas.spaces import SearchSpace, get_space

from conftest import TINY_SEARCH

PACKAGE = Path(__file__).resolve().parents[1] / "romenas"
#: The pipeline, lowest first; a module may import its own group and the ones before it.
GROUPS = [
    ("core", ["version", "errors", "arguments", "registry", "algorithms", "nb101_spec", "genotype", "ops", "runtime", "distributed", "checkpoint", "runs", "recipes",
              "config", "published", "presets"]),
    ("data", ["data"]),
    ("spaces", ["spaces"]),
    ("sampler", ["sampling", "topology"]),
    ("derive", ["derive", "bench"]),
    ("search", ["search"]),
    ("use", ["train", "weights", "inference", "export", "model_card", "viz", "report"]),
    ("sweep", ["sweep"]),
    ("cli", ["api", "cli", "__main__", "__init__"]),
]


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """romenas modules ``path`` imports (at any depth, type-checking-only imports included: a
    circle through a type hint is a circle all the same)."""
    tree, package = ast.parse(path.read_text()), _module_name(path)
    if path.name != "__init__.py":
        package = package.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")[:len(package.split(".")) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            for alias in node.names:
                candidate = f"{target}.{alias.name}"
                as_path = PACKAGE.parent / candidate.replace(".", "/")
                found.add(candidate if as_path.with_suffix(".py").exists() or as_path.is_dir() else target)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return {m for m in found if m.startswith("romenas")} - {_module_name(path)}


def _group(module: str) -> int:
    top = module.split(".")[1] if "." in module else "__init__"
    return next(i for i, (_, names) in enumerate(GROUPS) if top in names)


def test_layers_import_downwards_only_and_without_circles():
    graph = {_module_name(p): _imports(p) for p in PACKAGE.rglob("*.py")}
    upward = [f"{m} -> {d}" for m, deps in graph.items() for d in deps if _group(d) > _group(m)]
    assert not upward
    state: dict[str, int] = {}

    def visit(module, trail):
        if state.get(module) == 1:
            raise AssertionError("import circle: " + " -> ".join(trail[trail.index(module):] + [module]))
        if state.get(module) == 2:
            return
        state[module] = 1
        for dep in sorted(graph.get(module, ())):
            visit(dep, trail + [module])
        state[module] = 2

    for module in sorted(graph):
        visit(module, [])


# ---- docs/architecture.md: adding an algorithm -----------------------------------------------
class SoftGumbel(SearchAlgorithm):
    """SNAS-style (Xie et al., ICLR 2019): every op, weighted by a Gumbel-softmax sample of alpha
    at SNAS' temperature, an option of its own."""

    name = "soft-gumbel"
    capabilities = Capabilities(tau=True)

    def __init__(self, space, generator, *, snas_temperature):
        super().__init__(space, generator)
        self.snas_temperature = snas_temperature

    def temperature(self, epoch, epochs):
        return self.snas_temperature

    def _plan(self, tau, detach):
        plan = {}
        for kind, alpha in self.alphas.items():
            logits = F.log_softmax(alpha.detach() if detach else alpha, -1)
            weights = F.softmax((logits + gumbel(logits.shape, self.generator)) / tau, -1)
            terms = [tuple((o, weights[s, o]) for o in range(weights.shape[1])) for s in range(weights.shape[0])]
            plan[kind] = self.space.compose(terms, None, None)  # every edge on, at weight 1
        return plan

    def weight_plans(self, tau):
        return [self._plan(tau, detach=True)]

    def arch_plans(self, tau):
        return [self._plan(tau, detach=False)]


SOFT_GUMBEL = AlgorithmEntry("soft-gumbel", SoftGumbel, "SNAS-style soft Gumbel (Xie et al., ICLR 2019)", options=(
    Option("snas_temperature", 1.0, "SNAS' Gumbel-softmax temperature", minimum=0.0, above=True,
           phrase=lambda t, _: f"soft Gumbel at tau {t:g}"),))


# ---- docs/architecture.md: adding a space ----------------------------------------------------
def pools_and_convs() -> SearchSpace:
    """NAS-Bench-201's cell with three ops on every edge."""
    ops = ("nor_conv_3x3", "avg_pool_3x3", "skip_connect")
    return SearchSpace("tiny201", "nb201", 3, {"cell": (ops,) * 6}, "NB201 cell, 3 ops")


def test_the_shared_config_and_loop_name_no_registered_algorithm():
    """config.py and the search loop hold no algorithm's name as a string: what they must know of an
    algorithm comes from its entry (options, capabilities), so adding one touches neither."""
    for path in (PACKAGE / "config.py", PACKAGE / "search" / "loop.py"):
        names = {n.value for n in ast.walk(ast.parse(path.read_text()))
                 if isinstance(n, ast.Constant) and isinstance(n.value, str)}
        assert not names & set(ALGORITHM_ENTRIES), (path.name, names & set(ALGORITHM_ENTRIES))


@pytest.fixture
def registered():
    register_algorithm(SOFT_GUMBEL)
    register_space(SpaceEntry("tiny201", "nb201", "nb201", f"{__name__}:pools_and_convs"))
    yield
    ALGORITHM_ENTRIES.pop("soft-gumbel")
    SPACES.pop("tiny201")


def test_an_algorithm_with_an_option_and_a_space_are_added_in_one_place_each(registered, tmp_path, capsys):
    assert get_space("tiny201").ops == ["avg_pool_3x3", "nor_conv_3x3", "skip_connect"]
    settings = {**TINY_SEARCH, "samples": None, "algorithm": "soft-gumbel", "space": "tiny201", "layers": 1,
                "a_lr": 0.05}
    real = SoftGumbel.temperature

    def stop_in_epoch_2(self, epoch, epochs):
        if epoch == 1:
            raise RomenasError("stopped for the test")
        return real(self, epoch, epochs)

    SoftGumbel.temperature = stop_in_epoch_2
    try:
        with pytest.raises(RomenasError, match="stopped for the test"):
            search(out=tmp_path / "run", **{**settings, "epochs": 2, "snas_temperature": 0.5})
    finally:
        SoftGumbel.temperature = real
    result = search(resume=tmp_path / "run", progress=False)  # the option read back from config.json
    assert result.genotype.family == "nb201" and len(result.metrics) == 2
    assert result.config.options == {"snas_temperature": 0.5} and result.metrics[-1]["tau"] == 0.5
    assert result.config.recipe == "none" and result.config.step_order == "weights-first"
    alpha = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)["algo"]["alphas.cell"]
    assert alpha.shape == (6, 3) and alpha.abs().max() > 1e-2  # the architecture was trained
    saved = json.loads((tmp_path / "run" / "config.json").read_text())["config"]
    assert saved["snas_temperature"] == 0.5 and "samples" not in saved and "tau_max" not in saved
    assert "soft Gumbel at tau 0.5" in summary(tmp_path / "run")
    with pytest.raises(SystemExit):
        main(["search", "--help"])
    assert "--snas-temperature" in capsys.readouterr().out
    with pytest.raises(RomenasError, match="soft-gumbel does not use --samples"):
        search(out=tmp_path / "other", **{**TINY_SEARCH, "algorithm": "soft-gumbel", "space": "tiny201"})
    with pytest.raises(RomenasError, match=r"rome does not use --snas-temperature \(soft-gumbel only\)"):
        search(out=tmp_path / "other", **{**TINY_SEARCH, "snas_temperature": 0.5})
    with pytest.raises(RomenasError, match="snas_temperature must be above 0"):
        search(out=tmp_path / "other", **{**settings, "snas_temperature": 0.0})
    with pytest.raises(ValueError, match="registered already"):
        register_algorithm(SOFT_GUMBEL)
    with pytest.raises(ValueError, match="a space named 'tiny201' is registered already"):
        register_space(SpaceEntry("tiny201", "nb201", "nb201", f"{__name__}:pools_and_convs"))
