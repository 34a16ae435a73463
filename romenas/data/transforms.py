"""Preprocessing and augmentation, the same in search, training and prediction.

``pad-crop`` is the CIFAR recipe (pad by size/8, random crop, horizontal flip),
``resized-crop`` the ImageNet one (RandomResizedCrop, flip; evaluation resizes to
size/0.875 and centre-crops), ``none`` only normalises. Normalisation uses the training
images' per-channel mean and std, recorded with each run so that prediction repeats it.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torchvision.transforms import v2


class Cutout(torch.nn.Module):
    """DARTS' cutout: zero one square of side ``length`` centred at a random pixel."""

    def __init__(self, length: int):
        super().__init__()
        self.length = length

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        cy, cx = int(torch.randint(h, ())), int(torch.randint(w, ()))
        half = self.length // 2
        x = x.clone()
        x[..., max(0, cy - half):min(h, cy + half), max(0, cx - half):min(w, cx + half)] = 0
        return x


def build_transform(augment: str, size: int, mean: Sequence[float], std: Sequence[float], train: bool,
                    cutout: int = 0) -> v2.Compose:
    """uint8 ``[C, H, W]`` -> normalised float ``[C, size, size]``."""
    steps: list = []
    if augment == "resized-crop":
        steps += ([v2.RandomResizedCrop(size, antialias=True), v2.RandomHorizontalFlip()] if train else
                  [v2.Resize(round(size / 0.875), antialias=True), v2.CenterCrop(size)])
    elif augment == "pad-crop" and train:
        steps += [v2.RandomCrop(size, padding=max(1, size // 8)), v2.RandomHorizontalFlip()]
    steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(mean), list(std))]
    if train and cutout > 0:
        steps.append(Cutout(cutout))
    return v2.Compose(steps)


def make_transform(bundle, train: bool, cutout: int = 0, stats=None) -> v2.Compose:
    """The transform of a :class:`DataBundle`'s images (``stats``: precomputed (mean, std))."""
    mean, std = stats or bundle.stats()
    return build_transform(bundle.augment, bundle.image_size, mean, std, train, cutout)
