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

from typing import Any

import torch

from ..errors import RomenasError
from ..genotype import Genotype
from ..registry import get_family
from ..runs import RunDir
from ..spaces import SearchSpace, build_network
from ..config import TARGETS, format_cost
from ..derive import most_probable_within
from ..spaces.cost import CostTable, cost_table, network_cost

#: Settings that only matter with a target; a run without one records none of them.
BUDGET_OPTIONS = ("budget_weight", "budget_channels", "budget_layers")


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
        saved = run.budget() if run is not None else None
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
