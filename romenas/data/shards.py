"""WebDataset tar shards: data read in order, one shard at a time, split across ranks and workers.

``--dataset 'shards/{0000..0099}.tar'`` names the shards (brace ranges expanded). Each
sample is ``KEY.jpg|png|...`` plus ``KEY.cls`` (the class index as text); class names come
from ``classes.txt`` beside the shards when present. The shards are scanned once (tar
headers and the small ``.cls`` members) to count samples and classes. Rank r reads shards
r, r+world, ...; within a rank the loader workers split its shards; the shard order is
shuffled by (seed, epoch). Every rank runs the same number of batches per epoch (the
smallest rank's), so distributed steps stay in lockstep. Unlike image folders, a batch's
composition depends on the worker count (each worker fills batches from its own shards).
Needs the optional extra: ``pip install -e ".[shards]"``.
"""
from __future__ import annotations

import io
import itertools
import tarfile
import zlib
from pathlib import Path

import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from ..config import MAX_CLASSES
from ..arguments import expand
from ..errors import RomenasError
from .loading import epoch_generator, one_line_errors, seeded
from .sources import DataBundle, decode_image, fit_size

IMAGE_EXTS = ("jpg", "jpeg", "png", "webp", "bmp", "ppm")


#: Bounds on what a pattern or a label may make romenas allocate (ImageNet-21k has 21,841 classes).
MAX_SHARDS = 100_000


def is_shard_pattern(dataset: str) -> bool:
    """Tar shards (``shards/{0000..0009}.tar``), not an image folder whose path happens to hold '.tar'."""
    if ".tar" not in dataset.lower():
        return False
    try:
        return not expand(dataset).is_dir()
    except (OSError, ValueError, RomenasError):  # too long or invalid as a path: a pattern
        return True


def _expand(pattern: str) -> list[str]:
    try:
        from braceexpand import braceexpand
    except ImportError:
        raise RomenasError("tar shards need the webdataset extra; pip install -e \".[shards]\"") from None
    try:
        urls = list(itertools.islice(braceexpand(pattern), MAX_SHARDS + 1))
    except Exception as exc:  # braceexpand's UnbalancedBracesError and kin
        raise RomenasError(f"shard pattern {pattern} is malformed ({type(exc).__name__}); write shards like "
                           "path/{0000..0009}.tar") from None
    if len(urls) > MAX_SHARDS:
        raise RomenasError(f"shard pattern {pattern} names more than {MAX_SHARDS:,} shards; check the braces")
    missing = [u for u in urls if not Path(u).is_file()]
    if missing:
        raise RomenasError(f"{len(missing)} of {len(urls)} shard(s) of {pattern} do not exist (first: {missing[0]}); "
                           "check the pattern")
    return urls


def _split_key(name: str) -> tuple[str, str]:
    """WebDataset's convention: the key is the path up to the first dot of the file name."""
    folder, _, base = name.rpartition("/")
    stem, _, ext = base.partition(".")
    return (f"{folder}/{stem}" if folder else stem), ext.lower()


def _scan(url: str) -> list[tuple[str, int, int, int]]:
    """(key, label, image offset, image size) of every complete sample of one shard, in order."""
    labels, images, order = {}, {}, []
    try:
        with tarfile.open(url) as tar:
            for member in tar:
                if not member.isfile():
                    continue
                key, ext = _split_key(member.name)
                if key not in labels and key not in images:
                    order.append(key)
                if ext == "cls":
                    labels[key] = int(tar.extractfile(member).read().decode().strip())
                elif ext in IMAGE_EXTS:
                    images[key] = (member.offset_data, member.size)
    except (tarfile.TarError, OSError, ValueError, UnicodeDecodeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise RomenasError(f"shard {url} is damaged or not a WebDataset tar ({reason}); rebuild or remove it") from None
    return [(k, labels[k], *images[k]) for k in order if k in labels and k in images]


def in_part(key: str, seed: int, part: tuple[float, float]) -> bool:
    """Whether a sample falls in the fraction range ``part`` (a fixed hash of the seed and its key)."""
    if part == (0.0, 1.0):
        return True
    u = zlib.crc32(f"{seed}:{key}".encode()) / 2 ** 32
    return part[0] <= u < part[1]


class ShardImages:
    """The scanned shards of a dataset: per-shard sample keys and labels, nothing decoded."""

    def __init__(self, pattern: str, limit: int | None):
        self.urls = _expand(pattern)
        self.samples = [_scan(u) for u in self.urls]
        if limit:  # the first shards' samples up to the limit
            left, kept = limit, []
            for samples in self.samples:
                kept.append(samples[:max(0, left)])
                left -= len(kept[-1])
            self.samples = kept
        self.labels = [sample[1] for samples in self.samples for sample in samples]
        if not self.labels:
            raise RomenasError(f"shards {pattern} hold no samples with an image and a .cls label")
        if min(self.labels) < 0:
            raise RomenasError(f"shards {pattern} have a negative .cls label; labels are class indices 0..N-1")

    def __len__(self) -> int:
        return len(self.labels)

    def read(self, j: int) -> torch.Tensor:
        """The j-th image, read at its offset (for statistics and shapes; training streams the shards)."""
        for url, samples in zip(self.urls, self.samples):
            if j < len(samples):
                _, _, offset, size = samples[j]
                with open(url, "rb") as f:
                    f.seek(offset)
                    return decode_image(io.BytesIO(f.read(size)))
            j -= len(samples)
        raise IndexError(j)

    def fingerprint(self, h) -> None:
        """Feed each shard's name and its samples' keys, labels and sizes into the hash ``h``."""
        for url, samples in zip(self.urls, self.samples):
            h.update(f"{Path(url).name}:{samples}\n".encode())

    def shards_of(self, rank: int, world: int) -> list[int]:
        """The shards rank ``rank`` of ``world`` reads: rank, rank + world, ..."""
        return list(range(rank, len(self.urls), world))

    def count(self, shards: list[int], seed: int, part: tuple[float, float]) -> int:
        return sum(in_part(sample[0], seed, part) for s in shards for sample in self.samples[s])


def shard_bundle(pattern: str, limit: int | None, image_size: int | None, augment: str) -> DataBundle:
    source = ShardImages(pattern, limit)
    names_file = Path(source.urls[0]).with_name("classes.txt")
    count = max(source.labels) + 1
    if count > MAX_CLASSES:
        raise RomenasError(f"shards {pattern} have a .cls label of {count - 1:,}; labels are class indices 0..N-1 "
                           f"with N up to {MAX_CLASSES:,}; fix the labels")
    classes = names_file.read_text().split("\n") if names_file.is_file() else [str(i) for i in range(count)]
    classes = [c.strip() for c in classes if c.strip()]
    if len(classes) < max(count, 2):
        raise RomenasError(f"shards {pattern} have labels up to {count - 1} but {len(classes)} class name(s) "
                           f"{'in ' + str(names_file) if names_file.is_file() else ''}; fix classes.txt or the labels")
    size = image_size or int(source.read(0).shape[-1])
    return DataBundle(Path(pattern).parent.name or pattern, source, None, classes, augment, size, 3)


def _all_shards(src):
    yield from src


class ShardStream(IterableDataset):
    """One rank's samples of one epoch, augmented with per-sample seeds (seed, epoch, key)."""

    def __init__(self, source: ShardImages, transform, seed: int, part, part_seed: int, rank: int, world: int,
                 size: int | None):
        self.source, self.transform, self.seed, self.size = source, transform, seed, size
        self.part, self.part_seed = part, part_seed
        self.shards = source.shards_of(rank, world)
        self.epoch = 0

    def __iter__(self):
        import webdataset as wds

        g = epoch_generator(self.seed, self.epoch)
        order = [self.source.urls[self.shards[i]] for i in torch.randperm(len(self.shards), generator=g).tolist()]
        info = get_worker_info()
        if info is not None and info.num_workers > len(order):
            raise RomenasError(f"{info.num_workers} loader workers but only {len(order)} shard(s) for this process; "
                               "lower --workers or write more shards")
        for sample in wds.WebDataset(order, shardshuffle=False, nodesplitter=_all_shards, empty_check=False):
            key = sample["__key__"]
            data = next((sample[e] for e in IMAGE_EXTS if e in sample), None)
            if data is None or "cls" not in sample or not in_part(key, self.part_seed, self.part):
                continue
            image = fit_size(decode_image(io.BytesIO(data)), self.size)
            yield seeded(self.transform, image, self.seed, self.epoch, zlib.crc32(key.encode())), int(sample["cls"])


class ShardLoader:
    """Batches of a shard stream, the same number on every rank; ``set_epoch(e, start)`` skips ``start``.

    ``drop_last`` False (evaluation) keeps the last, partial batch."""

    def __init__(self, source: ShardImages, transform, batch_size: int, seed: int, part, part_seed: int,
                 size: int | None, workers: int, device: torch.device, rank: int = 0, world: int = 1,
                 drop_last: bool = True):
        self.stream = ShardStream(source, transform, seed, part, part_seed, rank, world, size)
        self.batch_size, self.workers, self.device, self.drop_last = batch_size, workers, device, drop_last
        per_rank = [source.count(source.shards_of(r, world), part_seed, part) for r in range(world)]
        self.batches = min(per_rank) // batch_size if drop_last else -(-min(per_rank) // batch_size)
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = epoch, start

    def __len__(self) -> int:
        return self.batches

    def __iter__(self):
        self.stream.epoch = self.epoch  # workers start anew each epoch and copy it
        loader = DataLoader(self.stream, batch_size=self.batch_size, num_workers=self.workers,
                            pin_memory=self.device.type == "cuda", drop_last=self.drop_last)
        for i, batch in enumerate(one_line_errors(loader)):
            if i >= self.batches:
                break
            if i >= self.start:
                yield batch
