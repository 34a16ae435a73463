"""The official GDAS/DARTS networks (xautodl 1.0.0, the GDAS author's package) beside romenas'.

Helpers for tests/test_equivalence.py: build xautodl's search networks, map their state dict
onto romenas' supernet and alpha, feed them the Gumbel noise romenas drew, and run the search
loop in the order the official scripts run it (exps/NAS-Bench-201-algos/GDAS.py and
DARTS-V1.py in D-X-Y/AutoDL-Projects: the weight step, then the architecture step).

Install with ``pip install --no-deps xautodl==1.0.0`` (its other requirements are romenas' own).
"""
from __future__ import annotations

import contextlib
import re
from typing import Iterator

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from romenas.spaces.base import cell_edges

pytest.importorskip(
    "xautodl", reason="xautodl (the official GDAS/DARTS code) is not installed: pip install --no-deps xautodl==1.0.0")
from xautodl.models.cell_searchs import (NASNetworkDARTS, NASNetworkGDAS, TinyNetworkDarts,  # noqa: E402
                                         TinyNetworkGDAS)
from xautodl.models.cell_searchs import search_model_gdas, search_model_gdas_nasnet  # noqa: E402
from xautodl.procedures.optimizers import CosineAnnealingLR  # noqa: E402

#: xautodl's op names -> romenas' (the rest are spelled alike).
OP_NAMES = {"dua_sepc_3x3": "sep_conv_3x3", "dua_sepc_5x5": "sep_conv_5x5", "dil_sepc_3x3": "dil_conv_3x3",
            "dil_sepc_5x5": "dil_conv_5x5"}
TO_XAUTODL = {v: k for k, v in OP_NAMES.items()}


def build(space: str, algorithm: str, ops: list[str], C: int, N: int, num_classes: int) -> nn.Module:
    """xautodl's search network for romenas' ``space`` ('nb201' or 'darts'), ``ops`` in romenas'
    names and order; affine-free BN with running statistics in the cells, as the scripts build it
    (``affine: False``, ``track_running_stats: 1``). NASNet: ``N`` cells per stage (3N in all)."""
    names = [TO_XAUTODL.get(o, o) for o in ops]
    if space == "nb201":
        cls = TinyNetworkGDAS if algorithm == "gdas" else TinyNetworkDarts
        return cls(C, N, 4, num_classes, names, False, True)
    cls = NASNetworkGDAS if algorithm == "gdas" else NASNetworkDARTS
    return cls(C, N, 4, 4, 3, num_classes, names, False, True)


def arch_parameters(xnet: nn.Module) -> dict[str, nn.Parameter]:
    """xautodl's alpha per romenas cell type."""
    if hasattr(xnet, "arch_parameters") and isinstance(xnet.arch_parameters, nn.Parameter):
        return {"cell": xnet.arch_parameters}
    return {"normal": xnet.arch_normal_parameters, "reduce": xnet.arch_reduce_parameters}


def _edge_index(space: str, node: int, inp: int) -> int:
    """romenas' edge id of xautodl's edge 'node<-inp' (NB201 numbers nodes from the input, 0; NASNet
    from the first intermediate node, 0, which is romenas' node 2)."""
    edges = cell_edges(1, 3) if space == "nb201" else cell_edges(2, 4)
    return edges.index((node if space == "nb201" else node + 2, inp))


def state_mapping(space: str, xnet: nn.Module, rnet: nn.Module) -> tuple[dict[str, str], list[str]]:
    """(xautodl state-dict key -> romenas key, xautodl keys romenas has no counterpart for).

    The names differ by xautodl's ``.op`` wrappers, its edge keys 'i<-j' (romenas: edge ids) and its
    op order (romenas': the space's). The keys left over are the biases xautodl's convolutions get
    when ``affine`` is False (``bias=not affine``): each feeds a batch norm in training mode, which
    subtracts it again, so it changes nothing (tests/test_equivalence.py shows it) and romenas'
    convolutions have none. Alpha is mapped by :func:`arch_parameters`, not here."""
    rkeys = set(rnet.state_dict())
    x_ops = list(xnet.op_names)
    mapping, extra = {}, []
    for key in xnet.state_dict():
        if key.startswith("arch_"):
            continue
        m = re.match(r"^cells\.(\d+)\.edges\.(\d+)<-(\d+)\.(?:_ops\.)?(\d+)\.(.*)$", key)
        if m:
            cell, node, inp, op, rest = m.groups()
            rcell = rnet.cells[int(cell)]
            r_ops = rcell.dag.edges[0].op_names
            r_op = r_ops.index(OP_NAMES.get(x_ops[int(op)], x_ops[int(op)]))
            key_r = f"cells.{cell}.dag.edges.{_edge_index(space, int(node), int(inp))}.{r_op}.{rest}"
        else:
            key_r = key
        key_r = (key_r.replace("op_a.op.", "0.").replace("op_b.op.", "1.").replace(".op.", ".")
                 .replace("convs.0.", "conv_1.").replace("convs.1.", "conv_2."))
        if key_r in rkeys:
            mapping[key] = key_r
        else:
            extra.append(key)
    return mapping, extra


def load_from_romenas(xnet: nn.Module, rnet: nn.Module, alphas: dict[str, torch.Tensor], space: str) -> None:
    """Give xautodl's network romenas' weights, buffers and alpha (its leftover biases: zero)."""
    mapping, extra = state_mapping(space, xnet, rnet)
    rstate, xstate = rnet.state_dict(), xnet.state_dict()
    with torch.no_grad():
        for xk, rk in mapping.items():
            xstate[xk].copy_(rstate[rk])
        for xk in extra:
            xstate[xk].zero_()
        for kind, a in arch_parameters(xnet).items():
            a.copy_(alphas[kind])


class _Exponential:
    def __init__(self, value: torch.Tensor):
        self.value = value

    def exponential_(self) -> torch.Tensor:
        return self.value


class _TorchWithNoise:
    """Stands in for the ``torch`` module of xautodl's GDAS networks: ``torch.empty_like(x).exponential_()``
    (their Gumbel draw, g = -log E) returns exp(-g) of the next queued draw g; all else is torch."""

    def __init__(self, queue: list[torch.Tensor]):
        self.queue = queue

    def __getattr__(self, name):
        return getattr(torch, name)

    def empty_like(self, x, *args, **kwargs):
        g = self.queue.pop(0)
        if g.shape != x.shape:
            raise AssertionError(f"queued Gumbel draw {tuple(g.shape)} does not fit xautodl's {tuple(x.shape)}")
        return _Exponential(torch.exp(-g.to(x)))


@contextlib.contextmanager
def recorded_gumbel(monkeypatch) -> Iterator[list[torch.Tensor]]:
    """Every Gumbel draw romenas makes in the block, in order (romenas.sampling.gumbel)."""
    import romenas.sampling as sampling

    draws, original = [], sampling.gumbel

    def spy(shape, generator, device=None):
        g = original(shape, generator, device)
        draws.append(g.detach().clone())
        return g

    monkeypatch.setattr(sampling, "gumbel", spy)
    yield draws
    monkeypatch.setattr(sampling, "gumbel", original)


@contextlib.contextmanager
def injected_gumbel(monkeypatch, draws: list[torch.Tensor]) -> Iterator[None]:
    """xautodl's GDAS networks draw exactly ``draws`` (one tensor per forward and cell type)."""
    queue = list(draws)
    for module in (search_model_gdas, search_model_gdas_nasnet):
        monkeypatch.setattr(module, "torch", _TorchWithNoise(queue))
    yield
    for module in (search_model_gdas, search_model_gdas_nasnet):
        monkeypatch.setattr(module, "torch", torch)
    if queue:
        raise AssertionError(f"{len(queue)} Gumbel draws were not used")


def official_search(xnet: nn.Module, batches: list[list[tuple]], *, lr: float, eta_min: float, momentum: float,
                    decay: float, nesterov: bool, clip: float, a_lr: float, a_betas: tuple[float, float],
                    a_decay: float, tau_max: float | None = None, tau_min: float | None = None) -> None:
    """The search loop of exps/NAS-Bench-201-algos/GDAS.py and DARTS-V1.py (``search_func`` and
    ``main``), on ``batches[epoch]`` = [(base x, base y, arch x, arch y), ...]:

    - once per epoch: xautodl's cosine schedule at the epoch (``w_scheduler.update(epoch, 0.0)``,
      T_max = epochs) and, for GDAS, tau = tau_max - (tau_max - tau_min) * epoch / (epochs - 1);
    - per iteration: zero the weights' gradients, the training loss of one forward (a fresh Gumbel
      subnet for GDAS), backward, clip the norm of ``network.parameters()`` (alpha's gradient
      included, which still holds the last architecture step's and now this loss's), SGD step;
      then zero alpha's gradients, the validation loss of another forward, backward, Adam step.
    """
    get_weights = getattr(xnet, "get_weights")
    w_opt = torch.optim.SGD(get_weights(), lr, momentum=momentum, weight_decay=decay, nesterov=nesterov)
    sched = CosineAnnealingLR(w_opt, 0, len(batches), len(batches), eta_min)
    a_opt = torch.optim.Adam(xnet.get_alphas(), lr=a_lr, betas=a_betas, weight_decay=a_decay)
    xnet.train()
    for epoch, epoch_batches in enumerate(batches):
        sched.update(epoch, 0.0)
        if tau_max is not None:
            xnet.set_tau(tau_max - (tau_max - tau_min) * epoch / (len(batches) - 1))
        for step, (xb, yb, xa, ya) in enumerate(epoch_batches):
            sched.update(None, 1.0 * step / len(epoch_batches))
            w_opt.zero_grad()
            F.cross_entropy(xnet(xb)[1], yb).backward()
            if clip > 0:
                nn.utils.clip_grad_norm_(xnet.parameters(), clip)
            w_opt.step()
            a_opt.zero_grad()
            F.cross_entropy(xnet(xa)[1], ya).backward()
            a_opt.step()
