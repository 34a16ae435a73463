"""Cost tables: what each candidate op costs at each edge of the network that will be trained.

A derived network's cost is a constant (stem, cell preprocessing, reduction blocks,
classifier) plus, for every cell type, the cost of each chosen (edge, op) pair summed over
the cells of that type. The tables price every op of the space at every edge, at the
shapes of the *trained* network (its channels, cells and image size, not the search
supernet's), so the cost of any genotype, and the expected cost of an architecture
distribution, is a sum over the table. This is the lookup table of FBNet (Wu et al., CVPR
2019) and ProxylessNAS (Cai et al., ICLR 2019), built by building the network once and
reading every cell's shapes.

FLOPs (PyTorch's FlopCounterMode, as :func:`count_flops`) and parameters are exact this way:
node sums and batch norm count no FLOPs. Latency (batch 1, each op timed alone, the fastest
of its timed runs: the one least disturbed by other load) is an estimate; its constant is
fitted so the reference cell's sum equals its measured network, and is never negative.
"""
from __future__ import annotations

import math
import platform
from dataclasses import dataclass, field
from typing import Any, Mapping

import torch
from torch import nn

from ..config import METRICS, network_size_fits
from ..errors import RomenasError
from ..genotype import MAX_NODES, Genotype
from ..ops import build_op
from .base import GenotypeDAG, SearchSpace, cell_edges
from .network import build_network, count_parameters, flops_of, timings_ms

__all__ = ["CostTable", "cost_table", "network_cost", "reference_genotype"]



@dataclass
class CostTable:
    """Per metric and cell type, an [edges x ops] table (columns: ``ops``) and the network's constant.

    ``network`` records the size the table prices (channels, layers, image size, channels in,
    classes, stem); ``device`` where latency was measured (None: no latency column)."""

    ops: dict[str, list[list[str]]]
    costs: dict[str, dict[str, list[list[float]]]]
    constant: dict[str, float]
    network: dict[str, Any]
    family: str
    num_inputs: int
    num_nodes: int
    device: str | None = None
    _tensors: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def metrics(self) -> tuple[str, ...]:
        return tuple(self.costs)

    def table(self, metric: str, kind: str) -> torch.Tensor:
        """[edges, ops] float tensor of one metric and cell type."""
        key = (metric, kind)
        if key not in self._tensors:
            self._tensors[key] = torch.tensor(self.costs[metric][kind], dtype=torch.float64)
        return self._tensors[key]

    def _edge_of(self, kind: str) -> dict[tuple[int, int], int]:
        return {edge: e for e, edge in enumerate(cell_edges(self.num_inputs, self.num_nodes))}

    def genotype_cost(self, genotype: Genotype) -> dict[str, float]:
        """The table's cost of ``genotype``'s network (constant included). 'none' costs nothing
        where the table has no column for it; any other op outside the table is an error."""
        if genotype.family != self.family:
            raise RomenasError(f"a {genotype.family} genotype cannot be priced by a {self.family} cost table")
        total = dict(self.constant)
        for kind, nodes in genotype.cells.items():
            edge_of = self._edge_of(kind)
            for j, node in enumerate(nodes):
                for op, inp in node:
                    e = edge_of.get((self.num_inputs + j, inp))
                    if e is None or (op not in self.ops[kind][e] and op != "none"):
                        raise RomenasError(f"the cost table has no price for {op} on input {inp} of node "
                                           f"{self.num_inputs + j} ({kind} cell); the genotype is not from this space")
                    if op in self.ops[kind][e]:
                        o = self.ops[kind][e].index(op)
                        for m in self.metrics:
                            total[m] += self.costs[m][kind][e][o]
        return total

    def expected(self, op_probs: Mapping[str, torch.Tensor], edge_probs: Mapping[str, torch.Tensor]
                 ) -> dict[str, torch.Tensor]:
        """E[cost] under the factorised distribution p(z) = prod p(edge kept) p(op | edge):
        ``op_probs[kind]`` [edges, ops], ``edge_probs[kind]`` [edges]; differentiable in both."""
        out = {}
        for m in self.metrics:
            total = None
            for kind, probs in op_probs.items():
                table = self.table(m, kind).to(probs.device, probs.dtype)
                term = (edge_probs[kind] * (probs * table).sum(-1)).sum()
                total = term if total is None else total + term
            out[m] = total + self.constant[m]
        return out

    def smallest(self, inputs_per_node: int | None) -> dict[str, float]:
        """Per metric, the least any derivable genotype costs (each node keeps its
        ``inputs_per_node`` cheapest inputs, or all; 'none' is not derivable where nodes keep k)."""
        out = {}
        for m in self.metrics:
            total = self.constant[m]
            for kind, per_edge in self.ops.items():
                edge_of = self._edge_of(kind)
                nodes: dict[int, list[float]] = {}
                for (node, _), e in edge_of.items():
                    prices = [c for op, c in zip(per_edge[e], self.costs[m][kind][e])
                              if op != "none" or inputs_per_node is None]
                    nodes.setdefault(node, []).append(min(prices))
                for prices in nodes.values():
                    total += sum(sorted(prices)[:inputs_per_node or len(prices)])
            out[m] = total
        return out

    # -- the JSON form (run folders cache it: latency is measured once) -----------------
    def to_dict(self) -> dict[str, Any]:
        return {"family": self.family, "num_inputs": self.num_inputs, "num_nodes": self.num_nodes,
                "network": self.network, "device": self.device,
                "constant": self.constant, "ops": self.ops, "costs": self.costs}

    @classmethod
    def from_dict(cls, data: Any, where: str) -> "CostTable":
        """Read a saved table; anything malformed is a one-line RomenasError naming ``where``."""
        try:
            table = cls(ops={k: [list(map(str, e)) for e in v] for k, v in data["ops"].items()},
                        costs={m: {k: [[_price(c) for c in e] for e in v] for k, v in per.items()}
                               for m, per in data["costs"].items()},
                        constant={m: _price(v) for m, v in data["constant"].items()},
                        network=dict(data["network"]), family=str(data["family"]),
                        num_inputs=int(data["num_inputs"]), num_nodes=int(data.get("num_nodes") or _nodes_of(data)),
                        device=data.get("device"))
            if not (0 < table.num_nodes <= MAX_NODES and 0 < table.num_inputs <= MAX_NODES):  # before lists are built
                raise ValueError
            edges = len(cell_edges(table.num_inputs, table.num_nodes))
            shapes_fit = all(len(table.costs[m][k]) == len(table.ops[k]) == edges and
                             all(len(c) == len(o) for c, o in zip(table.costs[m][k], table.ops[k]))
                             for m in table.costs for k in table.ops)
            if not (shapes_fit and set(table.costs) <= set(METRICS) and set(table.constant) == set(table.costs)
                    and network_size_fits(table.network)):
                raise ValueError
        except (KeyError, TypeError, ValueError, AttributeError):
            raise RomenasError(f"{where} is damaged (not a cost table); delete it to measure the costs again") from None
        return table


def _price(value: Any) -> float:
    """A saved cost: a finite number >= 0 (op costs and the constant are never negative)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < math.inf:
        raise ValueError
    return float(value)


def _nodes_of(data: Mapping) -> int:
    """The node count of a table saved before tables recorded it: the count whose edges fill its rows."""
    edges, inputs = len(next(iter(data["ops"].values()))), int(data["num_inputs"])
    nodes = next((n for n in range(1, MAX_NODES + 1) if len(cell_edges(inputs, n)) >= edges), 0)
    if len(cell_edges(inputs, nodes)) != edges:
        raise ValueError
    return nodes


def reference_genotype(space: SearchSpace) -> Genotype:
    """A valid genotype of ``space``: each node keeps its first inputs, each edge its first real op."""
    keep = space.inputs_per_node
    cells = {}
    for kind in space.cell_types:
        nodes, e = [], 0
        for j in range(space.num_nodes):
            n = space.num_inputs + j
            pairs = []
            for i in range(n):
                real = [o for o in space.site_ops[kind][e] if o != "none"] or list(space.site_ops[kind][e])
                if keep is None or i < keep:
                    pairs.append((real[0], i))
                e += 1
            nodes.append(pairs)
        cells[kind] = nodes
    return Genotype.build(space.family, cells)


def network_cost(net: nn.Module, in_channels: int, image_size: int, latency_device: torch.device | None = None,
                 repeats: int = 20) -> dict[str, float]:
    """A built network's MFLOPs, M params (auxiliary head excluded) and, with a device, its batch-1
    latency in ms there (the fastest of ``repeats`` timed runs)."""
    x = torch.zeros(1, in_channels, image_size, image_size)
    out = {"mflops": flops_of(net.cpu(), x) / 1e6, "mparams": count_parameters(net) / 1e6}
    if latency_device is not None:
        net, x = net.to(latency_device).eval(), x.to(latency_device)
        out["latency_ms"] = min(timings_ms(lambda: net(x), repeats, latency_device))
        net.cpu()
    return out


def _op_cost(name: str, C: int, stride: int, shape: tuple[int, ...], latency_device, repeats: int) -> dict[str, float]:
    op = build_op(name, C, stride, affine=True).eval()
    x = torch.zeros(1, *shape)
    out = {"mflops": flops_of(op, x) / 1e6, "mparams": sum(p.numel() for p in op.parameters()) / 1e6}
    if latency_device is not None:
        op, x = op.to(latency_device), x.to(latency_device)
        out["latency_ms"] = min(timings_ms(lambda: op(x), repeats, latency_device))
    return out


def device_name(device: torch.device) -> str:
    """What latency was measured on, in words (recorded beside the table)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def cost_table(space: SearchSpace, channels: int, layers: int, num_classes: int, in_channels: int, image_size: int,
               stem: str = "cifar", latency_device: torch.device | None = None, repeats: int = 20) -> CostTable:
    """Price every op of ``space`` at every edge of its ``channels`` x ``layers`` network on
    ``image_size`` images; with ``latency_device``, also time each op there (batch 1, the fastest
    of ``repeats``). Raises RomenasError where the family's size rule is broken, or its ops sit on
    nodes (NAS-Bench-101: a node's channels, so its price, depend on the whole cell's topology)."""
    if space.op_site == "node":
        raise RomenasError(f"budgets (--target-*) price each op at its edge; the {space.name} space puts its ops on "
                           "nodes, whose channels (so costs) depend on the whole cell, and has no cost table yet; "
                           "search it without --target-* and read the derived network's cost from `romenas train`")
    reference = reference_genotype(space)
    net = build_network(reference, channels, layers, num_classes, in_channels, stem=stem).eval()
    seen: list[tuple[GenotypeDAG, list[tuple[int, ...]]]] = []
    hooks = [m.register_forward_hook(lambda m, _, states: seen.append((m, [tuple(s.shape[1:]) for s in states])))
             for m in net.modules() if isinstance(m, GenotypeDAG)]
    with torch.no_grad():
        net(torch.zeros(1, in_channels, image_size, image_size))
    for hook in hooks:
        hook.remove()
    metrics = ("mflops", "mparams") + (("latency_ms",) if latency_device is not None else ())
    ops = {k: [list(e) for e in space.site_ops[k]] for k in space.cell_types}
    costs = {m: {k: [[0.0] * len(e) for e in ops[k]] for k in ops} for m in metrics}
    priced: dict[tuple, dict[str, float]] = {}
    for dag, shapes in seen:
        for e, (_, inp) in enumerate(space.edges):
            for o, name in enumerate(ops[dag.kind][e]):
                key = (name, dag.C, dag.strides[inp], shapes[inp])
                if key not in priced:
                    priced[key] = _op_cost(name, dag.C, dag.strides[inp], shapes[inp], latency_device, repeats)
                for m in metrics:
                    costs[m][dag.kind][e][o] += priced[key][m]
    table = CostTable(ops, costs, dict.fromkeys(metrics, 0.0),
                      {"channels": channels, "layers": layers, "image_size": image_size, "in_channels": in_channels,
                       "num_classes": num_classes, "stem": stem},
                      space.family, space.num_inputs, space.num_nodes,
                      device_name(latency_device) if latency_device is not None else None)
    whole = network_cost(net, in_channels, image_size, latency_device, repeats)
    cells = table.genotype_cost(reference)
    # FLOPs and parameters: exact, the constant is what the cells do not hold. Latency: ops timed one
    # by one add per-call overheads a network pays once, so their sum can exceed the network's own
    # time; the constant is then 0 and the table overestimates (a budget stays on the safe side).
    table.constant = {m: max(0.0, whole[m] - cells[m]) if m == "latency_ms" else whole[m] - cells[m] for m in metrics}
    return table

