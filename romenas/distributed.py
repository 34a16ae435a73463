"""torch.distributed glue: torchrun's environment, sample-parallel search, exact gradient sums.

Under ``torchrun`` every rank draws the same subnets from identically seeded generators;
in sample-parallel mode each rank evaluates its share of them on the same batch and the
gradients are summed across ranks, so the update equals the single-process one. Every
parameter takes part in every all-reduce (a missing gradient travels as zeros plus a flag), so
unsampled ops can neither deadlock nor desynchronise the ranks.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable, Sequence, TypeVar

import torch
import torch.distributed as tdist

T = TypeVar("T")


@dataclass(frozen=True)
class Context:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


@lru_cache(maxsize=None)
def context() -> Context:
    """Single process, or the torchrun process group (NCCL on GPUs, gloo on CPUs), joined once."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Context()
    if not tdist.is_initialized():
        tdist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return Context(tdist.get_rank(), tdist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def device_for(ctx: Context, device: torch.device) -> torch.device:
    if device.type == "cuda" and ctx.world > 1:
        torch.cuda.set_device(ctx.local_rank)
        return torch.device("cuda", ctx.local_rank)
    return device


def my_share(items: Sequence[T], ctx: Context, mode: str) -> Sequence[T]:
    """This rank's subnets: a strided share in sample-parallel mode, all of them otherwise."""
    return items[ctx.rank::ctx.world] if ctx.world > 1 and mode == "samples" else items


def all_reduce_grads(params: Iterable[torch.nn.Parameter], ctx: Context, average: bool = False) -> None:
    """Sum (or average) every parameter's gradient over ranks in one flat buffer.

    A parameter no rank computed a gradient for keeps ``grad = None``, exactly as in a single
    process, so the optimiser applies no momentum or weight decay to unsampled ops.
    """
    if ctx.world <= 1:
        return
    params = [p for p in params if p.requires_grad]
    ref = params[0]
    has_grad = torch.tensor([p.grad is not None for p in params], dtype=ref.dtype, device=ref.device)
    grads = [p.grad.reshape(-1) if p.grad is not None else torch.zeros(p.numel(), dtype=p.dtype, device=p.device)
             for p in params]
    flat = torch.cat([*grads, has_grad])
    tdist.all_reduce(flat)
    if average:
        flat[:-len(params)] /= ctx.world
    offset = 0
    for p, used in zip(params, flat[-len(params):].tolist()):
        n = p.numel()
        p.grad = flat[offset:offset + n].view_as(p).clone() if used else None
        offset += n


def all_reduce_sum(values: list[float], ctx: Context) -> list[float]:
    """Each value summed over ranks (metrics: losses, counts), in one all-reduce."""
    if ctx.world <= 1:
        return list(values)
    flat = torch.tensor(values, dtype=torch.float64)
    if tdist.get_backend() == "nccl":
        flat = flat.cuda()
    tdist.all_reduce(flat)
    return flat.tolist()


def fewest(count: int, ctx: Context) -> int:
    """The smallest of the ranks' ``count`` (batches in an epoch): the steps every rank takes.
    A rank with a batch more than another would wait in a collective the other never joins."""
    if ctx.world <= 1:
        return count
    flat = torch.tensor([count], dtype=torch.int64)
    if tdist.get_backend() == "nccl":
        flat = flat.cuda()
    tdist.all_reduce(flat, op=tdist.ReduceOp.MIN)
    return int(flat.item())


def barrier(ctx: Context) -> None:
    if ctx.world > 1:
        tdist.barrier()


def shared_path(path, ctx: Context) -> str:
    """Rank 0's choice of a path (e.g. a timestamped run folder), given to every rank."""
    if ctx.world <= 1:
        return str(path)
    box = [str(path)]
    tdist.broadcast_object_list(box, src=0)
    return box[0]


def parameter_checksums(module: torch.nn.Module, ctx: Context) -> list[str]:
    """Every rank's SHA-256 of its parameters (rank order): equal entries mean the ranks are in sync."""
    import hashlib

    h = hashlib.sha256()
    for p in module.parameters():
        h.update(p.detach().cpu().contiguous().numpy().tobytes())
    digest = h.hexdigest()
    if ctx.world <= 1:
        return [digest]
    out = [None] * ctx.world
    tdist.all_gather_object(out, digest)
    return out
