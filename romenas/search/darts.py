"""DARTS (Liu et al., ICLR 2019): the whole supernet, ops mixed by softmax(alpha); first or second order.

Memory grows with every op of every edge; this is the baseline ROME's memory claim is against.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import RomenasError
from ..spaces import Plan, SearchSpace
from .base import SearchAlgorithm, register


@register
class DARTS(SearchAlgorithm):
    name = "darts"
    arch_first = True  # DARTS' Algorithm 1: update alpha, then w
    options = ("darts_order",)

    def __init__(self, space: SearchSpace, generator: torch.Generator, darts_order: int = 1):
        if darts_order not in (1, 2):
            raise RomenasError(f"darts_order must be 1 or 2, got {darts_order!r}")
        # Nodes that choose their inputs (NAS-Bench-1Shot1) weigh them by softmax(beta), as 1Shot1's DARTS.
        super().__init__(space, generator, "softmax" if space.op_site == "node" else None)
        self.order = darts_order

    def arch_step(self, searcher, val_batch, train_batch, tau: float) -> tuple[float, float]:
        if self.order == 1:
            return super().arch_step(searcher, val_batch, train_batch, tau)
        return unrolled_arch_step(searcher.net, self, searcher.w_opt, val_batch, train_batch)

    def _plan(self, detach: bool) -> Plan:
        plan = {}
        for kind, alpha in self.alphas.items():
            weights = torch.softmax(alpha.detach() if detach else alpha, dim=-1)
            terms = [tuple((o, weights[s, o]) for o in range(weights.shape[1])) for s in range(weights.shape[0])]
            on, edge_w = self._sample_edges(kind, 0.0)
            if edge_w is not None and detach:
                edge_w = edge_w.detach()
            plan[kind] = self.space.compose(terms, None if on is None else on.tolist(), edge_w)
        return plan

    def weight_plans(self, tau: float) -> list[Plan]:
        return [self._plan(detach=True)]

    def arch_plans(self, tau: float) -> list[Plan]:
        return [self._plan(detach=False)]


def unrolled_arch_step(net: nn.Module, algo: DARTS, w_opt: torch.optim.SGD, val_batch, train_batch,
                       r: float = 1e-2) -> tuple[float, float]:
    """Second-order DARTS: set alpha's gradient to that of L_val(w - xi * dL_train/dw, alpha).

    As DARTS' architect.py: the virtual step w' uses the weight optimiser's lr (xi), momentum
    buffer and weight decay; the second-order term is the finite difference
    (dL_train/dalpha(w + eps v) - dL_train/dalpha(w - eps v)) / 2 eps with v = dL_val/dw' and
    eps = r / |v|. The weights are restored before returning. Returns (val loss, val correct).
    """
    group = w_opt.param_groups[0]
    xi, momentum, decay = group["lr"], group["momentum"], group["weight_decay"]
    params = [p for p in net.parameters() if p.requires_grad]
    alphas = list(algo.parameters())
    (xt, yt), (xv, yv) = train_batch, val_batch

    def train_loss(plan):
        return F.cross_entropy(net(xt, [plan]), yt)

    backup = [p.detach().clone() for p in params]
    grads = torch.autograd.grad(train_loss(algo.weight_plans(0.0)[0]), params, allow_unused=True)
    with torch.no_grad():
        for p, g in zip(params, grads):
            buf = w_opt.state.get(p, {}).get("momentum_buffer")
            step = (torch.zeros_like(p) if g is None else g) + decay * p
            if buf is not None:
                step += momentum * buf
            p.sub_(xi * step)
    logits = net(xv, [algo.arch_plans(0.0)[0]])
    val_loss = F.cross_entropy(logits, yv)
    found = torch.autograd.grad(val_loss, alphas + params, allow_unused=True)
    d_alpha = found[:len(alphas)]
    v = [torch.zeros_like(p) if g is None else g for g, p in zip(found[len(alphas):], params)]
    eps = r / torch.cat([g.flatten() for g in v]).norm().clamp_min(1e-12)
    finite_diff = []
    for sign in (1.0, -1.0):
        with torch.no_grad():
            for p, b, g in zip(params, backup, v):
                p.copy_(b + sign * eps * g)
        finite_diff.append(torch.autograd.grad(train_loss(algo.arch_plans(0.0)[0]), alphas, allow_unused=True))
    with torch.no_grad():
        for p, b in zip(params, backup):
            p.copy_(b)
    for a, d, plus, minus in zip(alphas, d_alpha, *finite_diff):
        grad = torch.zeros_like(a) if d is None else d
        if plus is not None:
            grad = grad - xi * (plus - minus) / (2 * eps)
        a.grad = grad
    return val_loss.item(), (logits.argmax(1) == yv).float().mean().item()
