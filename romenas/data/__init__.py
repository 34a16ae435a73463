"""Data: sources (built-in, image folders, tar shards) -> transforms -> epoch-ordered batches.

:func:`load_data` gives a :class:`DataBundle`; :func:`epoch_loader` turns a part of one of
its splits into batches whose order and augmentation depend only on (seed, epoch, image),
whatever the number of loader workers.
"""
from __future__ import annotations

import torch

from .loading import AugmentedImages, EpochBatchSampler, default_workers, make_loader, one_line_errors, sample_seed
from .shards import ShardImages, ShardLoader, is_shard_pattern, shard_bundle
from .sources import (AUGMENTS, BUILTIN, KNOWN_SHAPES, DataBundle, FileImages, MemoryImages, decode_image,
                      load_source, resolve_augment, source_shape)
from .transforms import build_transform, make_transform

__all__ = ["AUGMENTS", "BUILTIN", "KNOWN_SHAPES", "DataBundle", "EpochLoader", "FileImages", "MemoryImages",
           "build_transform", "dataset_shape", "decode_image", "epoch_loader", "load_data", "make_transform",
           "sample_seed"]


def load_data(dataset: str, data_dir: str | None = None, download: bool = False, limit_train: int | None = None,
              limit_test: int | None = None, image_size: int | None = None, augment: str = "auto") -> DataBundle:
    """A dataset by name ('digits', 'cifar10', 'cifar100', 'svhn'), image-folder path or tar-shard pattern."""
    if is_shard_pattern(dataset):
        return shard_bundle(dataset, limit_train, image_size, resolve_augment(augment, None))
    return load_source(dataset, data_dir, download, limit_train, limit_test, image_size, augment)


def dataset_shape(dataset: str, image_size: int | None = None) -> tuple[int, int, int]:
    """(classes, channels, size) of a dataset, reading one image (or the shards' headers) at most."""
    if is_shard_pattern(dataset) and dataset.lower() not in KNOWN_SHAPES:
        bundle = shard_bundle(dataset, None, image_size, "pad-crop")
        return bundle.num_classes, 3, bundle.image_size
    return source_shape(dataset, image_size)


class EpochLoader:
    """Batches of one epoch of an indexable source; ``set_epoch(e, start)`` skips the first ``start``."""

    def __init__(self, dataset: AugmentedImages, sampler: EpochBatchSampler, workers: int, device: torch.device):
        self.sampler, self.loader = sampler, make_loader(dataset, sampler, workers, device)

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.sampler.set_epoch(epoch, start)

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self):
        return one_line_errors(self.loader)


def epoch_loader(bundle: DataBundle, split: str, transform, batch_size: int, seed: int, *,
                 part: tuple[float, float] = (0.0, 1.0), part_seed: int = 0, train: bool = True,
                 workers: int | None = None, device: torch.device = torch.device("cpu"), rank: int = 0, world: int = 1):
    """Batches of the fraction ``part`` of a split ('train' or 'test'), in an order drawn by ``seed``.

    The parts are drawn by ``part_seed``: parts of one seed never overlap (search's two halves).
    ``train``: shuffled, last partial batch dropped, augmentation random; otherwise in order, all
    images. With ``world`` > 1 each rank takes its share (every world-th batch, or its shards).
    """
    source = bundle.train if split == "train" else bundle.test
    streamed = not isinstance(source, MemoryImages)
    if isinstance(source, ShardImages):
        if workers is None:  # by default no more workers than this rank has shards
            workers = min(default_workers(streamed), len(source.shards_of(rank, world)))
        size = None if bundle.augment == "resized-crop" else bundle.image_size
        return ShardLoader(source, transform, batch_size, seed, part, part_seed, size, workers, device, rank, world,
                           drop_last=train)
    workers = default_workers(streamed) if workers is None else workers
    indices = None
    if part != (0.0, 1.0):  # a fixed random part of the images, the same in every epoch
        order = torch.randperm(len(source), generator=torch.Generator().manual_seed(part_seed)).tolist()
        indices = order[int(len(order) * part[0]):int(len(order) * part[1])]
    dataset = AugmentedImages(source, transform, seed, indices, random=train)
    sampler = EpochBatchSampler(len(dataset), batch_size, seed, shuffle=train, drop_last=train, rank=rank,
                                world=world)
    return EpochLoader(dataset, sampler, workers, device)
