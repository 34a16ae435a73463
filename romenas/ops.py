"""Candidate operations of the DARTS, RobustDARTS, NAS-Bench-201 and NAS-Bench-101 cells.

Every op maps ``C`` channels to ``C`` channels; ``stride`` 2 halves the resolution.
``affine`` is False inside supernets (as DARTS/GDAS search) and True in derived networks.
NAS-Bench-101's ops keep their benchmark names (``conv3x3-bn-relu``, ...) and their order
(conv, BN, ReLU), and act on a node's summed inputs at stride 1.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from .registry import OP_NAMES

__all__ = ["OPS", "build_op", "ReLUConvBN", "FactorizedReduce", "conv_bn_relu"]


class ReLUConvBN(nn.Sequential):
    def __init__(self, C_in: int, C_out: int, kernel: int, stride: int, padding: int,
                 dilation: int = 1, affine: bool = True):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_out, kernel, stride, padding, dilation=dilation, bias=False),
            nn.BatchNorm2d(C_out, affine=affine),
        )


def conv_bn_relu(C_in: int, C_out: int, kernel: int, affine: bool = True, **bn) -> nn.Sequential:
    """NAS-Bench-101's conv_bn_relu: a 'same' conv without bias, BN (``bn``: its momentum and eps), ReLU."""
    return nn.Sequential(nn.Conv2d(C_in, C_out, kernel, padding=kernel // 2, bias=False),
                         nn.BatchNorm2d(C_out, affine=affine, **bn), nn.ReLU(inplace=False))


class DilConv(nn.Sequential):
    """ReLU, depthwise (dilated) conv, pointwise conv, BN."""

    def __init__(self, C_in, C_out, kernel, stride, padding, dilation, affine=True):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_in, kernel, stride, padding, dilation=dilation, groups=C_in, bias=False),
            nn.Conv2d(C_in, C_out, 1, bias=False),
            nn.BatchNorm2d(C_out, affine=affine),
        )


class SepConv(nn.Sequential):
    """Two stacked DilConv blocks with dilation 1 (the DARTS separable conv)."""

    def __init__(self, C_in, C_out, kernel, stride, padding, affine=True):
        super().__init__(
            DilConv(C_in, C_in, kernel, stride, padding, 1, affine),
            DilConv(C_in, C_out, kernel, 1, padding, 1, affine),
        )


class FactorizedReduce(nn.Module):
    """Halve the resolution with two offset 1x1 stride-2 convs (DARTS' strided skip)."""

    def __init__(self, C_in: int, C_out: int, affine: bool = True):
        super().__init__()
        if C_out % 2:
            raise ValueError(f"FactorizedReduce needs an even channel count, got {C_out}")
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(C_in, C_out // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(C_in, C_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(C_out, affine=affine)

    def forward(self, x):
        x = self.relu(x)
        # The second path samples the odd pixels; padding keeps odd sizes aligned.
        shifted = nn.functional.pad(x[:, :, 1:, 1:], (0, 1, 0, 1))
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(shifted)], dim=1))


class Zero(nn.Module):
    """The 'none' op: zeros of the (strided) output shape."""

    def __init__(self, stride: int):
        super().__init__()
        self.stride = stride

    def forward(self, x):
        return x[:, :, ::self.stride, ::self.stride].mul(0.0)


class Noise(nn.Module):
    """RobustDARTS S4's 'noise' op: N(0, 1) of the (strided) output shape."""

    def __init__(self, stride: int):
        super().__init__()
        self.stride = stride

    def forward(self, x):
        return torch.randn_like(x[:, :, ::self.stride, ::self.stride])


def _skip(C: int, stride: int, affine: bool) -> nn.Module:
    return nn.Identity() if stride == 1 else FactorizedReduce(C, C, affine)


OPS: dict[str, Callable[[int, int, bool], nn.Module]] = {
    "none": lambda C, stride, affine: Zero(stride),
    "noise": lambda C, stride, affine: Noise(stride),
    "skip_connect": _skip,
    "max_pool_3x3": lambda C, stride, affine: nn.MaxPool2d(3, stride, 1),
    "avg_pool_3x3": lambda C, stride, affine: nn.AvgPool2d(3, stride, 1, count_include_pad=False),
    "sep_conv_3x3": lambda C, stride, affine: SepConv(C, C, 3, stride, 1, affine),
    "sep_conv_5x5": lambda C, stride, affine: SepConv(C, C, 5, stride, 2, affine),
    "dil_conv_3x3": lambda C, stride, affine: DilConv(C, C, 3, stride, 2, 2, affine),
    "dil_conv_5x5": lambda C, stride, affine: DilConv(C, C, 5, stride, 4, 2, affine),
    "nor_conv_1x1": lambda C, stride, affine: ReLUConvBN(C, C, 1, stride, 0, 1, affine),
    "nor_conv_3x3": lambda C, stride, affine: ReLUConvBN(C, C, 3, stride, 1, 1, affine),
    "conv3x3-bn-relu": lambda C, stride, affine: conv_bn_relu(C, C, 3, affine),
    "conv1x1-bn-relu": lambda C, stride, affine: conv_bn_relu(C, C, 1, affine),
    "maxpool3x3": lambda C, stride, affine: nn.MaxPool2d(3, 1, 1),
}
if tuple(OPS) != OP_NAMES:  # the torch-free list genotypes are checked against
    raise RuntimeError("romenas.registry.OP_NAMES and romenas.ops.OPS disagree")


def build_op(name: str, C: int, stride: int, affine: bool) -> nn.Module:
    return OPS[name](C, stride, affine)
