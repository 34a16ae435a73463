"""Search under a budget: MFLOPs, parameters and latency of the trained network as a penalty.

The expected cost of the architecture distribution is exact and differentiable, because the
distribution factorises over edges and ops and the cost is additive over them
(:mod:`romenas.spaces.cost`): E[c] = const + sum_edges p(edge) sum_ops p(op | edge) c(edge, op),
ProxylessNAS' expected latency (Cai et al., ICLR 2019) with ROME's edge probabilities.
The architecture step adds, once per update and for every algorithm alike,

    L_budget = lambda * sum_c max(0, E[c] / T_c - 1),

a hinge on the relative excess over each target T_c: zero inside the budget, so it never
pulls a search that fits toward the smallest network (ProxylessNAS' and FBNet's penalties
act at every cost), and in units of the target, so one lambda serves every metric.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from ..checkpoint import load_checkpoint
from ..config import (METRICS, TARGETS, SearchConfig, format_cost, load_preset, network_size_fits, resolve_device,
                      resumed_config)
from ..data import load_data
from ..derive import most_probable_within
from ..errors import RomenasError
from ..genotype import Genotype
from ..registry import get_family
from ..runs import RunDir
from ..spaces import SearchSpace, build_network
from ..spaces.cost import CostTable, cost_table, network_cost
from .base import build_algorithm

#: Settings that only matter with a target; a run without one records none of them.
BUDGET_OPTIONS = ("budget_weight", "budget_channels", "budget_layers")


def saved_budget(run: RunDir) -> dict[str, Any] | None:
    """A search's budget.json, checked (None where the run has no budget): ``targets`` (metric ->
    target), ``table`` (the cost table's JSON form; ``table['network']`` the size it priced), and
    once the search has ended ``genotype`` and ``derived`` (metric -> target, measured, met),
    plus ``mode`` where the most probable cell exceeded the budget. Anything else is a one-line
    RomenasError."""
    if not run.budget_file.is_file():
        return None
    saved = run.read_json(run.budget_file)
    try:
        network = saved["table"]["network"]
        number = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        targets = saved["targets"]
        ok = (isinstance(targets, dict) and targets
              and all(m in METRICS and number(t) and t > 0 for m, t in targets.items())
              and network_size_fits(network))
        derived = saved.get("derived")
        if derived is not None:  # the verdict: one row per target, met exactly when measured <= target
            ok = ok and isinstance(derived, dict) and set(derived) == set(targets) and isinstance(
                saved.get("genotype", ""), str) and all(
                isinstance(r, dict) and number(r["measured"]) and r["target"] == targets[m]
                and r["met"] is (r["measured"] <= r["target"]) for m, r in derived.items())
        mode = saved.get("mode")
        if mode is not None:
            ok = ok and isinstance(mode, dict) and isinstance(mode.get("cost"), dict) and all(
                number(mode["cost"].get(m)) for m in targets)
    except (KeyError, TypeError, AttributeError):
        ok = False
    if not ok:
        raise RomenasError(f"{run.budget_file} is damaged; delete it to measure the costs again "
                           "(a finished search's verdict is then left out)")
    return saved


def targets_of(cfg) -> dict[str, float]:
    """metric -> target of the config's budget (empty: no budget)."""
    return {metric: getattr(cfg, name) for name, metric in TARGETS.items() if getattr(cfg, name) is not None}


def check_budget_flags(cfg, given: dict[str, Any]) -> None:
    """A budget setting given without any target would do nothing: refuse it (as check_options does)."""
    idle = [k for k in BUDGET_OPTIONS if given.get(k) is not None]
    if idle and not targets_of(cfg):
        flags = ", ".join("--" + k.replace("_", "-") for k in idle)
        raise RomenasError(f"{flags} shape(s) a budget, but no budget is set; add --target-mflops, --target-params "
                           "or --target-latency-ms, or drop the flag(s)")


class Budget:
    """The budget of one search: the cost table of the trained network, the targets and lambda."""

    def __init__(self, table: CostTable, targets: dict[str, float], weight: float, inputs_per_node: int | None):
        self.table, self.targets, self.weight = table, targets, weight
        self.inputs_per_node = inputs_per_node

    @classmethod
    def for_search(cls, cfg, space: SearchSpace, num_classes: int, in_channels: int, image_size: int,
                   device: torch.device, run: RunDir | None) -> "Budget | None":
        """The search's budget (None without a target): the cost table from the run folder when
        it has one (a resumed run keeps its measured latencies), else measured now. Raises
        RomenasError where no network of the space fits a target."""
        targets = targets_of(cfg)
        if not targets:
            return None
        family = get_family(space.family)
        saved = saved_budget(run) if run is not None else None
        if saved is not None:
            table = CostTable.from_dict(saved["table"], str(run.budget_file))
        else:
            channels, layers = cfg.budget_channels or family.channels, cfg.budget_layers or family.layers
            latency = device if "latency_ms" in targets else None
            table = cost_table(space, channels, layers, num_classes, in_channels, image_size, latency_device=latency)
        budget = cls(table, targets, cfg.budget_weight, space.inputs_per_node)
        budget.check_reachable(space.name)
        return budget

    def check_reachable(self, space: str) -> None:
        least = self.table.smallest(self.inputs_per_node)
        net = self.table.network
        for metric, target in self.targets.items():
            if least[metric] > target:
                raise RomenasError(
                    f"the budget {format_cost(metric, target)} is below the smallest network space {space} can build "
                    f"at C={net['channels']}, {net['layers']} layers, {net['image_size']}px "
                    f"({format_cost(metric, least[metric])}); raise the target or budget a smaller network "
                    "(--budget-channels/--budget-layers)")

    # -- the penalty --------------------------------------------------------------------------
    def expected(self, algo) -> dict[str, torch.Tensor]:
        ops, edges = algo.architecture_distribution()
        return self.table.expected(ops, edges)

    def penalty(self, algo) -> torch.Tensor:
        """lambda * sum_c max(0, E[c] / T_c - 1), differentiable in the architecture parameters."""
        expected = self.expected(algo)
        excess = [torch.relu(expected[m] / t - 1.0) for m, t in self.targets.items()]
        return self.weight * torch.stack(excess).sum()

    # -- derivation ------------------------------------------------------------------------------
    def derive(self, algo) -> tuple[Genotype, Genotype]:
        """(the derived genotype, the algorithm's own): its own where the table prices it within
        every target, else the most probable genotype that fits (romenas/derive.py), else its own
        (no genotype fits; the verdict then says NOT met)."""
        mode = algo.derive()
        cost = self.table.genotype_cost(mode)
        if all(cost[m] <= t for m, t in self.targets.items()):
            return mode, mode
        within = most_probable_within(algo.space, algo.op_probs(),
                                      {k: algo.input_sets(k) for k in algo.space.cell_types}, self.table, self.targets)
        return within or mode, mode

    # -- what the logs and the run folder say ---------------------------------------------------
    def row(self, algo, genotype: Genotype) -> dict[str, Any]:
        """Per metric: target, expected cost under the distribution, the derived genotype's table cost."""
        with torch.no_grad():
            expected = {m: float(v) for m, v in self.expected(algo).items()}
        derived = self.table.genotype_cost(genotype)
        return {m: {"target": t, "expected": expected[m], "derived": derived[m]} for m, t in self.targets.items()}

    def mode_record(self, mode: Genotype) -> dict[str, Any]:
        """What the run folder says of a most probable genotype the budget ruled out: it and its table cost."""
        return {"genotype": mode.to_string(), "cost": self.table.genotype_cost(mode)}

    def measure(self, genotype: Genotype, latency_device: torch.device | None) -> dict[str, Any]:
        """The derived network built at the budget's size and measured (not looked up), each
        metric against its target."""
        net_size = self.table.network
        net = build_network(genotype, net_size["channels"], net_size["layers"], net_size["num_classes"],
                            net_size["in_channels"], stem=net_size["stem"]).eval()
        device = latency_device if "latency_ms" in self.targets else None
        measured = network_cost(net, net_size["in_channels"], net_size["image_size"], device)
        return {m: {"target": t, "measured": measured[m], "met": measured[m] <= t} for m, t in self.targets.items()}

    def to_dict(self) -> dict[str, Any]:
        return {"targets": self.targets, "weight": self.weight, "table": self.table.to_dict()}


def derive_within(run: str | Path, targets: dict[str, float], channels: int | None = None,
                  layers: int | None = None, image_size: int | None = None) -> tuple[Genotype, Genotype, dict, dict]:
    """Derive a finished (or checkpointed) search's cell again under ``targets`` (metric -> target,
    as :data:`romenas.config.TARGETS` names them): search once, derive for each device.

    Returns (the most probable genotype whose cost fits, the search's most probable one, the
    fitting one's table cost per metric, the priced network's size). The network priced: each of
    ``channels``, ``layers`` and ``image_size`` given, else the run's own budget size where it
    searched under one, else its preset's budget size (as a search with a target prices it), else
    the family's paper size, on the search's images. Raises RomenasError
    where no genotype of the space fits (the message names the smallest cost), where the targets
    cannot be met together, or where the run has no checkpoint or non-finite parameters.
    """
    run = RunDir.open(run, "search", "a budget derives a search run's cell again; pass a search run folder")
    cfg = resumed_config(SearchConfig, run.config(), {})
    if not run.has_checkpoint():
        raise RomenasError(f"{run.path} has no checkpoint.pt: deriving again reads the search's architecture "
                           "parameters from it (a run keeps it when it finishes); search again")
    state = load_checkpoint(run.checkpoint, "search", cfg.space)
    algo = build_algorithm(cfg, torch.Generator().manual_seed(cfg.seed))
    try:
        algo.load_state_dict(state["algo"])
    except (KeyError, RuntimeError, TypeError) as exc:
        raise RomenasError(f"{run.checkpoint} does not hold this search's architecture parameters "
                           f"({type(exc).__name__}); the checkpoint is damaged") from None
    if not all(torch.isfinite(p).all() for p in algo.parameters()):
        raise RomenasError(f"the architecture parameters in {run.checkpoint} are not finite (the search diverged); "
                           "no cell can be derived from them, search again with a lower --a-lr")
    saved = saved_budget(run)
    own = saved["table"]["network"] if saved is not None else _preset_budget_size(run)
    family = algo.space.cell_family
    size = {"channels": channels or own.get("channels") or family.channels,
            "layers": layers or own.get("layers") or family.layers,
            "image_size": image_size or own.get("image_size")}
    latency = "latency_ms" in targets
    family.check_size(size["channels"], size["layers"], "--budget-channels and --budget-layers")
    if saved is not None and size == {k: own.get(k) for k in size} and (not latency or saved["table"].get("device")):
        table = CostTable.from_dict(saved["table"], str(run.budget_file))
    else:
        try:  # the priced network has the search's classes, channels in and (by default) image size
            data = load_data(cfg.dataset, cfg.data_dir, False, cfg.limit_train, None, cfg.image_size, cfg.augment)
        except RomenasError as exc:
            raise RomenasError(f"deriving within a budget prices the network on the search's data, which cannot be "
                               f"read here: {exc}") from None
        size["image_size"] = size["image_size"] or data.image_size
        table = cost_table(algo.space, size["channels"], size["layers"], data.num_classes, data.in_channels,
                           size["image_size"], latency_device=resolve_device(cfg.device) if latency else None)
    budget = Budget(table, targets, 1.0, algo.space.inputs_per_node)
    budget.check_reachable(algo.space.name)
    genotype, mode = budget.derive(algo)
    cost = table.genotype_cost(genotype)
    if any(cost[m] > t for m, t in targets.items()):
        raise RomenasError("no cell of the space fits all the targets at once (each alone can be met); relax one of "
                           "them")
    return genotype, mode, cost, size


def _preset_budget_size(run: RunDir) -> dict[str, Any]:
    """The network a budget would have priced for a run searched without one: its preset's budget
    size, as ``romenas search --target-*`` prices it."""
    try:
        name = run.preset()
        values = load_preset(name, "search") if name else {}
    except RomenasError:
        return {}
    return {"channels": values.get("budget_channels"), "layers": values.get("budget_layers")}
