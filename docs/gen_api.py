"""Generate docs/api.md, the Python API reference, from the package's docstrings and signatures.

    python docs/gen_api.py          # rewrite docs/api.md
    python docs/gen_api.py --check  # exit 1 when docs/api.md is out of date (a test runs this)
"""
from __future__ import annotations

import dataclasses
import importlib
import inspect
import sys
from pathlib import Path

API_MD = Path(__file__).with_name("api.md")

# (module, public names) in pipeline order: what a user scripts against.
SECTIONS = [
    ("romenas", ["search", "SearchResult", "train", "TrainResult", "describe", "TrainedModel", "RomenasError"]),
    ("romenas.config", ["SearchConfig", "TrainConfig", "build_config", "load_preset", "preset_names"]),
    ("romenas.recipes", ["RECIPES", "Recipe", "recipe_name"]),
    ("romenas.data", ["load_data", "DataBundle", "epoch_loader", "make_transform"]),
    ("romenas.genotype", ["Genotype"]),
    ("romenas.published", ["lookup_published", "parse_genotype", "load_genotype"]),
    ("romenas.spaces", ["get_space", "SearchSpace"]),
    ("romenas.sampling", ["gumbel_max_st", "gumbel_topk_edges_st", "plackett_luce_inclusion", "fair_op_indices",
                          "EdgeIndex"]),
    ("romenas.topology", ["TopologySampler", "GumbelTopK", "GumbelPairs", "GumbelSubsets", "get_topology_sampler"]),
    ("romenas.registry", ["CellFamily", "SpaceEntry", "register_family", "register_space"]),
    ("romenas.algorithms", ["AlgorithmEntry", "Option", "register_algorithm", "resolve_options"]),
    ("romenas.search", ["ALGORITHMS", "SearchAlgorithm", "create_algorithm"]),
    ("romenas.search.base", ["Capabilities", "StepContext", "convergence"]),
    ("romenas.search.single_path", ["SinglePath"]),
    ("romenas.search.rome", ["ROME"]),
    ("romenas.search.gdas", ["GDAS"]),
    ("romenas.search.darts", ["DARTS", "unrolled_arch_step"]),
    ("romenas.search.budget", ["Budget"]),
    ("romenas.derive", ["darts_rule", "topology_rule"]),
    ("romenas.spaces", ["build_network", "network_for", "count_parameters", "count_flops"]),
    ("romenas.spaces.cost", ["CostTable", "cost_table"]),
    ("romenas.train", ["initialise_from"]),
    ("romenas.runtime", ["Runtime"]),
    ("romenas.weights", ["save_weights", "load_weights", "trained_weights"]),
    ("romenas.inference", ["TrainedModel", "evaluate_run"]),
    ("romenas.export", ["export"]),
    ("romenas.sweep", ["sweep", "SweepResult", "format_table", "group_stats"]),
    ("romenas.model_card", ["model_card", "write_model_card"]),
    ("romenas.bench", ["NB201Table", "collapse_metrics"]),
    ("romenas.checkpoint", ["save_checkpoint", "load_checkpoint"]),
    ("romenas.report", ["summary", "list_runs"]),
    ("romenas.viz", ["plot_runs", "draw_genotype", "plot_confusion"]),
]


def _doc(obj) -> str:
    doc = inspect.cleandoc(obj.__doc__ or "").strip()
    return "" if doc.startswith(f"{getattr(obj, '__name__', '')}(") else doc  # dataclasses' generated doc


def _signature(name: str, obj) -> str:
    if dataclasses.is_dataclass(obj) and name.endswith("Config"):
        return name  # the field table below says it better
    try:
        return f"{name}{inspect.signature(obj)}"
    except (TypeError, ValueError):
        return name


def _config_fields(cls) -> list[str]:
    """A field table; the comment after each field in the source is its description."""
    from romenas.config import field_help

    comments = field_help(cls)
    rows = ["| field | default | meaning |", "|---|---|---|"]
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        meaning = comments.get(f.name, "").replace("|", "\\|")
        rows.append(f"| `{f.name}` | `{default!r}` | {meaning} |")
    return rows


def _public_methods(cls) -> list[tuple[str, object]]:
    own = [(n, m) for n, m in vars(cls).items() if not n.startswith("_") and callable(m) and m.__doc__]
    return [(n, m.__func__ if isinstance(m, (classmethod, staticmethod)) else m) for n, m in own]


def render() -> str:
    out = ["# Python API reference", "",
           "Generated from the docstrings by `python docs/gen_api.py`; a test fails when it is out of date.",
           "The CLI (`romenas --help`) is a thin layer over these functions.", ""]
    for module_name, names in SECTIONS:
        module = importlib.import_module(module_name)
        out += [f"## `{module_name}`", ""]
        if _doc(module):
            out += [_doc(module), ""]
        for name in names:
            obj = getattr(module, name)
            if inspect.isclass(obj) or inspect.isfunction(obj):
                kind = "class" if inspect.isclass(obj) else "def"
                out += [f"### {kind} `{_signature(name, obj)}`", ""]
                if _doc(obj):
                    out += [_doc(obj), ""]
                if dataclasses.is_dataclass(obj) and name.endswith("Config"):
                    out += _config_fields(obj) + [""]
                elif inspect.isclass(obj):
                    methods = _public_methods(obj)
                    out += [f"- `{_signature(n, m)}`: {_doc(m).splitlines()[0]}" for n, m in methods]
                    out += [""] if methods else []
            else:
                out += [f"### `{name}`", "", f"`{type(obj).__name__}` with keys {sorted(obj)}.", ""]
    return "\n".join(out).rstrip() + "\n"


def main() -> int:
    text = render()
    if "--check" in sys.argv:
        if not API_MD.exists() or API_MD.read_text() != text:
            print(f"{API_MD} is out of date; run: python docs/gen_api.py", file=sys.stderr)
            return 1
        return 0
    API_MD.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
