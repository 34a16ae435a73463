"""Running K subnets in one forward pass: the batch is replicated K times, replica k takes plan k.

Convolutions and pooling treat samples independently, so grouping the replicas that take
the same op on an edge changes nothing. Batch normalisation does not: it would mix the
statistics of different subnets. :class:`ReplicaBatchNorm2d` normalises every replica with
its own statistics and updates the running statistics once per replica, in replica order,
so a batched step equals K sequential ones (up to floating-point summation order).
"""
from __future__ import annotations

import contextlib
from contextvars import ContextVar
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn

_REPLICA_BATCH: ContextVar[int | None] = ContextVar("replica_batch", default=None)


@contextlib.contextmanager
def replica_batch(size: int) -> Iterator[None]:
    """Within this block, tensors are stacks of replicas of ``size`` samples each."""
    token = _REPLICA_BATCH.set(size)
    try:
        yield
    finally:
        _REPLICA_BATCH.reset(token)


class ReplicaBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d with per-replica statistics inside :func:`replica_batch`; plain BN outside."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = _REPLICA_BATCH.get()
        if size is None or not self.training or x.shape[0] == size:
            return super().forward(x)
        r, (_, C, H, W) = x.shape[0] // size, x.shape
        # (r*B, C, H, W) -> (B, r*C, H, W): one BN call with a channel per (replica, channel).
        folded = x.view(r, size, C, H, W).transpose(0, 1).reshape(size, r * C, H, W)
        weight = self.weight.repeat(r) if self.affine else None
        bias = self.bias.repeat(r) if self.affine else None
        out = F.batch_norm(folded, None, None, weight, bias, True, 0.0, self.eps)
        if self.track_running_stats:
            self._update_running_stats(folded.detach(), r)
        return out.view(size, r, C, H, W).transpose(0, 1).reshape(x.shape)

    @torch.no_grad()
    def _update_running_stats(self, folded: torch.Tensor, r: int) -> None:
        folded = folded.to(self.running_mean.dtype)  # autocast (bf16/fp16) activations, fp32 statistics
        n = folded.numel() // folded.shape[1]
        mean = folded.mean((0, 2, 3)).view(r, -1)
        var = folded.var((0, 2, 3), unbiased=False).view(r, -1) * (n / max(1, n - 1))
        for k in range(r):
            self.num_batches_tracked += 1
            m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
            self.running_mean.lerp_(mean[k], m)
            self.running_var.lerp_(var[k], m)


def convert_batchnorm(module: nn.Module) -> nn.Module:
    """Swap every BatchNorm2d of ``module`` for a ReplicaBatchNorm2d with the same state."""
    for name, child in module.named_children():
        if type(child) is nn.BatchNorm2d:
            new = ReplicaBatchNorm2d(child.num_features, child.eps, child.momentum, child.affine,
                                     child.track_running_stats)
            new.load_state_dict(child.state_dict())
            setattr(module, name, new)
        else:
            convert_batchnorm(child)
    return module


def per_replica_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of each replica: shape (K,) for logits of K stacked replicas of y."""
    replicas = logits.shape[0] // y.shape[0]
    return F.cross_entropy(logits, y.repeat(replicas), reduction="none").view(replicas, -1).mean(1)
