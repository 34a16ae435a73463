"""The derived (discrete) network of a genotype, and what it costs: parameters, FLOPs and latency.

Training, inference, export and the model card build networks here, from the genotype's
cell family (romenas/registry.py), so using a trained model does not import the trainer.
"""
from __future__ import annotations

import statistics
import time
from typing import Callable

import torch
from torch import nn

from ..config import TrainConfig
from ..genotype import Genotype
from ..registry import get_family

__all__ = ["build_network", "network_for", "count_parameters", "count_flops", "flops_of", "median_ms", "timings_ms"]


def build_network(genotype: Genotype, channels: int | None, layers: int | None, num_classes: int, in_channels: int,
                  auxiliary: bool = False, stem: str = "cifar") -> nn.Module:
    """``genotype``'s network with C=``channels`` and ``layers`` cells (None: the family's paper
    size, e.g. DARTS 36 and 20). Raises RomenasError where the family's size rule is broken."""
    family = get_family(genotype.family)
    C, layers = channels or family.channels, layers or family.layers
    family.check_size(C, layers)
    return family.build_network(genotype, C, layers, num_classes, in_channels, auxiliary=auxiliary, stem=stem)


def network_for(genotype: Genotype, cfg: TrainConfig, num_classes: int, in_channels: int) -> nn.Module:
    """The network a training config trains (and a trained run's weights fit)."""
    return build_network(genotype, cfg.channels, cfg.layers, num_classes, in_channels,
                         auxiliary=cfg.auxiliary_weight > 0, stem=cfg.stem)


def count_parameters(net: nn.Module) -> int:
    """Trainable parameters, the auxiliary head excluded (as the papers count them)."""
    return sum(p.numel() for name, p in net.named_parameters() if not name.startswith("aux_head"))


def count_flops(net: nn.Module, in_channels: int, size: int) -> int:
    """FLOPs of one image's forward pass (PyTorch's FlopCounterMode; MACs are half of this)."""
    return flops_of(net, torch.zeros(1, in_channels, size, size, device=_device_of(net)))


def flops_of(module: nn.Module, x: torch.Tensor) -> int:
    """FLOPs of ``module(x)`` in eval mode, as PyTorch's FlopCounterMode counts them (convolutions
    and matrix products; element-wise sums and batch norm count 0)."""
    from torch.utils.flop_counter import FlopCounterMode

    was_training = module.training
    module.eval()
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        module(x)
    module.train(was_training)
    return int(counter.get_total_flops())


def timings_ms(fn: Callable[[], object], repeats: int, device: torch.device | None = None,
               warmup: int = 2) -> list[float]:
    """Wall times of ``repeats`` calls of ``fn()`` in milliseconds, after ``warmup`` calls (CUDA
    work is synchronised before each clock read)."""
    sync = torch.cuda.synchronize if device is not None and device.type == "cuda" else (lambda: None)
    times = []
    with torch.no_grad():
        for i in range(warmup + repeats):
            sync()
            started = time.perf_counter()
            fn()
            sync()
            if i >= warmup:
                times.append(1000 * (time.perf_counter() - started))
    return times


def median_ms(fn: Callable[[], object], repeats: int, device: torch.device | None = None) -> float:
    """Median of :func:`timings_ms`."""
    return statistics.median(timings_ms(fn, repeats, device))


def _device_of(net: nn.Module) -> torch.device:
    return next(iter(net.parameters()), torch.zeros(())).device
