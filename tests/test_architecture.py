"""The house's rules (docs/architecture.md): layers import downwards only, no import circles, and
an algorithm or a space is added in one place (the worked examples of the docs, run here)."""
import ast
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from romenas import search
from romenas.errors import RomenasError
from romenas.registry import SPACES, SpaceEntry, register_space
from romenas.sampling import gumbel
from romenas.search.base import ALGORITHMS, SearchAlgorithm, register
from romenas.spaces import SearchSpace, get_space

from conftest import TINY_SEARCH

PACKAGE = Path(__file__).resolve().parents[1] / "romenas"
#: The pipeline, lowest first; a module may import its own group and the ones before it.
GROUPS = [
    ("core", ["version", "errors", "registry", "nb101_spec", "genotype", "ops", "runtime", "distributed", "checkpoint", "runs", "recipes",
              "config", "published", "presets"]),
    ("data", ["data"]),
    ("spaces", ["spaces"]),
    ("sampler", ["sampling", "topology"]),
    ("derive", ["derive", "bench"]),
    ("search", ["search"]),
    ("use", ["train", "weights", "inference", "export", "model_card", "viz", "report"]),
    ("cli", ["cli", "__main__", "__init__"]),
]


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """romenas modules ``path`` imports (at any depth, type-checking-only imports excluded)."""
    tree, package = ast.parse(path.read_text()), _module_name(path)
    if path.name != "__init__.py":
        package = package.rsplit(".", 1)[0]
    skipped = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
               and getattr(node.test, "id", "") == "TYPE_CHECKING" for n in ast.walk(node)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
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
    """SNAS-style (Xie et al., ICLR 2019): every op, weighted by a Gumbel-softmax sample of alpha."""

    name = "soft-gumbel"
    gumbel = True  # tau_max / tau_min apply

    def _plan(self, tau: float, detach: bool):
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


# ---- docs/architecture.md: adding a space ----------------------------------------------------
def pools_and_convs() -> SearchSpace:
    """NAS-Bench-201's cell with three ops on every edge."""
    ops = ("nor_conv_3x3", "avg_pool_3x3", "skip_connect")
    return SearchSpace("tiny201", "nb201", 3, {"cell": (ops,) * 6}, "NB201 cell, 3 ops")


@pytest.fixture
def registered():
    register(SoftGumbel)
    register_space(SpaceEntry("tiny201", "nb201", "nb201", f"{__name__}:pools_and_convs"))
    yield
    ALGORITHMS.pop("soft-gumbel")
    SPACES.pop("tiny201")


def test_an_algorithm_and_a_space_are_added_in_one_place_each(registered, tmp_path):
    assert get_space("tiny201").ops == ["avg_pool_3x3", "nor_conv_3x3", "skip_connect"]
    result = search(out=tmp_path / "run", **{**TINY_SEARCH, "samples": None, "algorithm": "soft-gumbel",
                                             "space": "tiny201", "layers": 1, "epochs": 2, "a_lr": 0.05})
    assert result.genotype.family == "nb201" and len(result.metrics) == 2
    assert result.config.recipe == "none" and result.config.step_order == "weights-first"
    alpha = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)["algo"]["alphas.cell"]
    assert alpha.shape == (6, 3) and alpha.abs().max() > 1e-2  # the architecture was trained
    with pytest.raises(RomenasError, match="soft-gumbel does not use --samples"):
        search(out=tmp_path / "other", **{**TINY_SEARCH, "algorithm": "soft-gumbel", "space": "tiny201"})
