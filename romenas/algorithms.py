"""What search algorithms exist and the settings each owns: plain records, readable without torch.

An algorithm is registered as an :class:`AlgorithmEntry`: its name, its implementation (a
``'module:Class'`` path, imported when a search builds it, or the class itself) and its
:class:`Option` declarations: each option's one default, help, choices and the phrase the run
summary prints. The CLI's flags, the config's validation, recipes, ``config.json``, ``show``,
the model card and the refusal of another algorithm's option all read these records; nothing
else names an algorithm. Adding one: its module (romenas/search/base.py has the interface)
and one ``register_algorithm`` call (docs/architecture.md has a worked example).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from .arguments import coerce
from .errors import RomenasError

__all__ = ["Option", "AlgorithmEntry", "ALGORITHM_ENTRIES", "register_algorithm", "algorithm_entry",
           "option_owners", "refuse_foreign_options", "resolve_options", "method_summary"]


@dataclass(frozen=True)
class Option:
    """One setting an algorithm owns. Its type is its default's (bool, int, float or str)."""

    name: str
    default: Any
    help: str
    choices: tuple = ()
    #: Smallest value allowed (numbers), inclusive unless ``above`` (then strictly greater).
    minimum: float | None = None
    above: bool = False
    #: The run summary's words for a value, given all the run's options (None: '<name> <value>').
    phrase: Callable[[Any, Mapping[str, Any]], str] | None = None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def kind(self) -> type:
        return type(self.default)

    def check(self, value: Any) -> Any:
        """``value`` as this option's type, or a one-line RomenasError naming the setting."""
        value = coerce(value, self.kind, self.name)
        if self.choices and value not in self.choices:
            raise RomenasError(f"unknown {self.name} {value!r}; use one of {list(self.choices)}")
        if self.minimum is not None and (value <= self.minimum if self.above else value < self.minimum):
            bound = f"above {self.minimum:g}" if self.above else f"at least {self.minimum:g}"
            raise RomenasError(f"{self.name} must be {bound}, got {value}")
        return value

    def describe(self, value: Any, options: Mapping[str, Any]) -> str:
        return self.phrase(value, options) if self.phrase else f"{self.name} {value}"


@dataclass(frozen=True)
class AlgorithmEntry:
    """A registered search algorithm: its name, implementation and the options it owns."""

    name: str
    factory: str | type              # 'module:Class' (imported when used) or the class
    about: str                       # one line: what it is and where it comes from
    options: tuple[Option, ...] = ()
    #: Checks across options (e.g. a range's ends in order); raises RomenasError.
    check: Callable[[Mapping[str, Any]], None] | None = None
    #: Options the run summary leaves out (said by others, or internal).
    quiet: tuple[str, ...] = field(default=())

    def option(self, name: str) -> Option:
        return next(o for o in self.options if o.name == name)

    @property
    def option_names(self) -> tuple[str, ...]:
        return tuple(o.name for o in self.options)

    def implementation(self) -> type:
        """The algorithm's class (its module imported on first use)."""
        if isinstance(self.factory, str):
            module, _, attr = self.factory.partition(":")
            return getattr(importlib.import_module(module), attr)
        return self.factory


ALGORITHM_ENTRIES: dict[str, AlgorithmEntry] = {}
#: The algorithm a search runs when none is named: the one this library exists for.
DEFAULT_ALGORITHM = "rome"


def register_algorithm(entry: AlgorithmEntry) -> AlgorithmEntry:
    """Add ``entry``; a second registration under a name already taken is refused."""
    if entry.name in ALGORITHM_ENTRIES:
        raise ValueError(f"an algorithm named {entry.name!r} is registered already")
    ALGORITHM_ENTRIES[entry.name] = entry
    return entry


def algorithm_entry(name: str) -> AlgorithmEntry:
    try:
        return ALGORITHM_ENTRIES[name]
    except (KeyError, TypeError):
        raise RomenasError(f"unknown algorithm {name!r}; use one of {sorted(ALGORITHM_ENTRIES)}") from None


def option_owners() -> dict[str, list[str]]:
    """Every registered option's name -> the algorithms that own it (sorted)."""
    owners: dict[str, list[str]] = {}
    for entry in ALGORITHM_ENTRIES.values():
        for name in entry.option_names:
            owners.setdefault(name, []).append(entry.name)
    return {k: sorted(v) for k, v in owners.items()}


def refuse_foreign_options(algorithm: str, given: Mapping[str, Any]) -> None:
    """Another algorithm's option given explicitly (a flag, an API argument) would do nothing: a
    one-line RomenasError naming its owners. One from a preset or a recipe simply does not apply."""
    entry, owners = algorithm_entry(algorithm), option_owners()
    foreign = sorted(k for k, v in given.items() if v is not None and k in owners and k not in entry.option_names)
    if foreign:
        flags = ", ".join(f"--{k.replace('_', '-')} ({'/'.join(owners[k])} only)" for k in foreign)
        raise RomenasError(f"{algorithm} does not use {flags}; drop the flag(s) or search with that algorithm")


def resolve_options(algorithm: str, values: Mapping[str, Any], explicit: Mapping[str, Any] | None = None
                    ) -> dict[str, Any]:
    """The options ``algorithm`` runs with: each of its own from ``explicit``, else ``values``
    (a recipe, preset or saved config), else its default, each checked; the other algorithms'
    options in ``values`` are dropped, in ``explicit`` refused (:func:`refuse_foreign_options`)."""
    entry, explicit = algorithm_entry(algorithm), explicit or {}
    refuse_foreign_options(algorithm, explicit)
    resolved = {}
    for option in entry.options:
        value = explicit.get(option.name)
        if value is None:
            value = values.get(option.name)
        resolved[option.name] = option.check(option.default if value is None else value)
    if entry.check is not None:
        entry.check(resolved)
    return resolved


def method_summary(cfg: Mapping[str, Any]) -> str:
    """The search settings the run's algorithm used, in words, from a saved or resolved config
    (``show``, the model card): e.g. 'K=7, fair weight step (arXiv 2020: ...), topology top2, arch-first'."""
    order = cfg.get("step_order") or "auto"
    parts = []
    entry = ALGORITHM_ENTRIES.get(cfg.get("algorithm"))
    if entry is not None:
        parts = [o.describe(cfg[o.name], cfg) for o in entry.options if o.name in cfg and o.name not in entry.quiet]
    return ", ".join(p for p in parts + ([] if order == "auto" else [order]) if p)


# ---- the built-in algorithms -------------------------------------------------------------
#: Gumbel-softmax temperature, linear from tau_max (first epoch) to tau_min (last): GDAS' schedule.
TAU_MAX = Option("tau_max", 10.0, "Gumbel-softmax temperature of the first epoch, linear to tau_min", minimum=0.0,
                 above=True)
TAU_MIN = Option("tau_min", 0.1, "Gumbel-softmax temperature of the last epoch", minimum=0.0, above=True)


def _tau_in_order(options: Mapping[str, Any]) -> None:
    if options["tau_max"] < options["tau_min"]:
        raise RomenasError(f"tau range is reversed (tau_max={options['tau_max']} < tau_min={options['tau_min']}); "
                           "tau decays from --tau-max down to --tau-min")


_WEIGHT_STEP = {"fair": "fair weight step (arXiv 2020: every op of every edge once)",
                "fair-edges": "fair weight step with every edge on (romenas' extension)",
                "gumbel": "weight step over K Gumbel subnets (ICCV 2023 Algorithm 1)",
                "single": "weight step over one Gumbel subnet"}

register_algorithm(AlgorithmEntry(
    "rome", "romenas.search.rome:ROME", "ROME (Wang, Chu et al., ICCV 2023; arXiv 2011.11233): topology "
    "disentangled from ops, K-subnet gradient accumulation", check=_tau_in_order, quiet=("edge_sampler", "tau_max", "tau_min"),
    options=(
        Option("samples", 7, "K: subnets whose val-loss gradients the architecture step averages (and the weight "
                             "step sums under --weight-sampling gumbel)", minimum=1, phrase=lambda k, _: f"K={k}"),
        Option("weight_sampling", "fair", "the weight step: fair (arXiv 2020: |ops| subnets, every op of every edge "
                                          "once, edges sampled from beta), fair-edges (the same with every edge on: "
                                          "romenas' extension), gumbel (ICCV 2023 Algorithm 1: K Gumbel subnets), "
                                          "single (one Gumbel subnet, as GDAS)",
               choices=tuple(_WEIGHT_STEP), phrase=lambda w, _: _WEIGHT_STEP[w]),
        Option("topology", True, "topology parameters beta (off: the ablation)",
               phrase=lambda on, o: f"topology {o.get('edge_sampler', 'top2')}" if on else "no topology"),
        Option("edge_sampler", "top2", "topology sampler: 'top2' = ROME-v2 (Gumbel-Top-k), 'pair' = ROME-v1; "
                                       "'subset' (NAS-Bench-201): any non-empty input set, an edge off is 'none'",
               choices=("top2", "pair", "subset")),
        TAU_MAX, TAU_MIN)))

register_algorithm(AlgorithmEntry(
    "gdas", "romenas.search.gdas:GDAS", "GDAS (Dong & Yang, CVPR 2019): one Gumbel-max op per edge per step",
    check=_tau_in_order, quiet=("tau_max", "tau_min"),
    options=(
        Option("unselected_ops", True, "GDAS' estimator: every unselected op of an edge adds its straight-through "
                                       "weight (zero in value) to the node, so all its ops get an architecture "
                                       "gradient, as xautodl's NAS-Bench-201 network does (its NASNet network and "
                                       "NAS-Bench-1Shot1's GDAS do not: their recipes set False)",
               phrase=lambda on, _: "one Gumbel subnet per step" + (", unselected ops' straight-through terms"
                                                                 if on else "")),
        TAU_MAX, TAU_MIN)))

register_algorithm(AlgorithmEntry(
    "darts", "romenas.search.darts:DARTS", "DARTS (Liu et al., ICLR 2019): every op mixed by softmax(alpha)",
    options=(
        Option("darts_order", 1, "1 = first order, 2 = second order (the unrolled weight step, DARTS' Eq. 7-8)",
               choices=(1, 2), phrase=lambda n, _: f"{'second' if n == 2 else 'first'} order"),)))
