"""DARTS (Liu et al., ICLR 2019): the whole supernet, ops mixed by softmax(alpha); first or second order.

Memory grows with every op of every edge; this is the baseline ROME's memory claim is against.
"""
from __future__ import annotations

import torch

from ..spaces import Plan, SearchSpace
from .base import Batch, Capabilities, SearchAlgorithm, StepContext


class DARTS(SearchAlgorithm):
    name = "darts"

    def __init__(self, space: SearchSpace, generator: torch.Generator, *, darts_order: int):
        # Nodes that choose their inputs (NAS-Bench-1Shot1) weigh them by softmax(beta), as 1Shot1's DARTS.
        super().__init__(space, generator, "softmax" if space.op_site == "node" else None)
        self.order = darts_order
        # DARTS' Algorithm 1 updates alpha, then w.
        self.capabilities = Capabilities(step_order="arch-first") if darts_order == 1 else Capabilities(
            step_order="arch-first", distributed=False, precisions=("32",),
            why="second-order DARTS takes finite differences of one process' gradients, which half precision rounds away")

    def arch_step(self, ctx: StepContext, val_batch: Batch, train_batch: Batch, tau: float) -> tuple[float, float]:
        if self.order == 1:
            return super().arch_step(ctx, val_batch, train_batch, tau)
        return unrolled_arch_step(ctx, self, val_batch, train_batch)

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


def unrolled_arch_step(ctx: StepContext, algo: DARTS, val_batch: Batch, train_batch: Batch,
                       r: float = 1e-2) -> tuple[float, float]:
    """Second-order DARTS: set alpha's gradient to that of L_val(w - xi * dL_train/dw, alpha).

    As DARTS' architect.py: the virtual step w' uses the weight optimiser's lr (xi), momentum
    buffer and weight decay; the second-order term is the finite difference
    (dL_train/dalpha(w + eps v) - dL_train/dalpha(w - eps v)) / 2 eps with v = dL_val/dw' and
    eps = r / |v|. The weights are restored before returning. Returns (val loss, val correct).
    tests/test_reductions.py compares it with the exact gradient through the virtual step.
    """
    group = ctx.weight_optimizer
    xi, momentum, decay = group["lr"], group["momentum"], group["weight_decay"]
    params = [p for p in ctx.weights if p.requires_grad]
    alphas = list(algo.parameters())

    def train_loss(plan):
        return ctx.loss(train_batch, plan)[0]

    backup = [p.detach().clone() for p in params]
    grads = torch.autograd.grad(train_loss(algo.weight_plans(0.0)[0]), params, allow_unused=True)
    with torch.no_grad():
        for p, g in zip(params, grads):
            buf = ctx.momentum(p)
            step = (torch.zeros_like(p) if g is None else g) + decay * p
            if buf is not None:
                step += momentum * buf
            p.sub_(xi * step)
    val_loss, logits = ctx.loss(val_batch, algo.arch_plans(0.0)[0])
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
    return val_loss.item(), (logits.argmax(1) == val_batch[1]).float().mean().item()
