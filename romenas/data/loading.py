"""Batches: an order fixed by (seed, epoch), augmentation fixed by (seed, epoch, image).

The batch sampler runs in the main process and hands each loader worker keys
``(epoch, index)``; the worker seeds the augmentation of that one image from
(seed, epoch, index). So a batch is the same whatever the number of workers, and a run
resumed in the middle of an epoch sees exactly the crops an uninterrupted run sees.
"""
from __future__ import annotations

import os
import shutil
from typing import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """A well-mixed 63-bit seed for one image of one epoch (numpy's SeedSequence hash)."""
    low, high = np.random.SeedSequence((seed, epoch, index)).generate_state(2, np.uint32)
    return (int(high) << 31) ^ int(low)


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """The generator of one epoch's order (batches, or shards)."""
    return torch.Generator().manual_seed(seed * 100_003 + epoch)


def seeded(transform, image: torch.Tensor, seed: int, epoch: int, index: int) -> torch.Tensor:
    """``transform(image)`` with its randomness drawn from (seed, epoch, index); the global RNG is left as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(sample_seed(seed, epoch, index))
        return transform(image)


class AugmentedImages(Dataset):
    """The images ``indices`` of a source through ``transform``, indexed by ``(epoch, i)``."""

    def __init__(self, source, transform, seed: int, indices: Sequence[int] | None = None, random: bool = True):
        self.source, self.transform, self.seed, self.random = source, transform, seed, random
        self.indices = list(range(len(source))) if indices is None else list(indices)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, key: tuple[int, int]):
        epoch, i = key
        j = self.indices[i]
        image = self.source.read(j)
        x = seeded(self.transform, image, self.seed, epoch, j) if self.random else self.transform(image)
        return x, self.source.labels[j]


class EpochBatchSampler(Sampler[list[tuple[int, int]]]):
    """Batches of ``(epoch, index)`` keys in an order fixed by (seed, epoch); ``start`` skips batches done.

    With ``world`` > 1 each rank takes every world-th batch of the same order.
    """

    def __init__(self, size: int, batch_size: int, seed: int, shuffle: bool = True, drop_last: bool = True,
                 rank: int = 0, world: int = 1):
        self.size, self.batch_size, self.seed = size, batch_size, seed
        self.shuffle, self.drop_last, self.rank, self.world = shuffle, drop_last, rank, world
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = epoch, start

    def _batches(self) -> list[list[int]]:
        if self.shuffle:
            order = torch.randperm(self.size, generator=epoch_generator(self.seed, self.epoch)).tolist()
        else:
            order = list(range(self.size))
        bs = self.batch_size
        batches = [order[i:i + bs] for i in range(0, self.size, bs)]
        if self.drop_last and batches and len(batches[-1]) < bs:
            batches.pop()
        return batches[self.rank::self.world]

    def __len__(self) -> int:
        return len(self._batches())

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for batch in self._batches()[self.start:]:
            yield [(self.epoch, i) for i in batch]


def one_line_errors(batches):
    """Iterate ``batches``; an error raised in a loader worker comes back as the one line that says it,
    and loader processes that run out of shared memory (a small /dev/shm, as in a default Docker
    container) as a RomenasError naming the fix."""
    from ..errors import RomenasError

    try:
        yield from batches
    except RomenasError as exc:  # the DataLoader wraps it with the worker's traceback
        raise RomenasError(str(exc).strip().splitlines()[-1].split("RomenasError: ", 1)[-1]) from None
    except RuntimeError as exc:  # torch: "unable to allocate shared memory(shm) ...", "... out of shared memory"
        if "shared memory" not in str(exc):
            raise
        raise RomenasError(f"the data loader processes ran out of shared memory ({_shm_free()}); use --workers 0, "
                           "or give the machine more (docker run --shm-size 2g)") from None


def _shm_free() -> str:
    try:
        return f"/dev/shm has {shutil.disk_usage('/dev/shm').free / 2 ** 20:.1f} MiB free"
    except OSError:
        return "no /dev/shm"


def default_workers(streamed: bool) -> int:
    """Loader processes when --workers is not given: none for images already in memory (nothing to
    decode) or on fewer than 4 cores (a worker then only takes a core from the training step; measured
    in benchmarks/data_throughput.py), otherwise half the cores, at most 8."""
    cpus = os.cpu_count() or 1
    return min(8, cpus // 2) if streamed and cpus >= 4 else 0


def make_loader(dataset: Dataset, sampler: Sampler, workers: int, device: torch.device) -> DataLoader:
    """A DataLoader over ``sampler``'s batches: worker processes kept across epochs, pinned memory on CUDA."""
    return DataLoader(dataset, batch_sampler=sampler, num_workers=workers, persistent_workers=workers > 0,
                      pin_memory=device.type == "cuda",
                      generator=torch.Generator())  # its seed draw must not consume the global RNG
