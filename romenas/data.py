"""Datasets for search and training, held in memory as uint8 tensors.

Sources: ``digits`` (built in: the UCI handwritten digits that ship with scikit-learn,
8x8 grayscale, no download), ``cifar10``/``cifar100``/``svhn`` through torchvision, and
any image folder (``ROOT/train/<class>/*`` plus optional ``ROOT/test/<class>/*``, or
``ROOT/<class>/*``). Augmentation uses torchvision transforms on the global torch RNG,
which checkpoints save, so a resumed run sees the same crops as an uninterrupted one.
Batches come from :class:`EpochBatchSampler`: its order depends only on (seed, epoch),
so a run can restart in the middle of an epoch.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import torch
from torch.utils.data import Dataset, Sampler
from torchvision.transforms import v2

from .errors import RomenasError

BUILTIN = ("digits", "cifar10", "cifar100", "svhn")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


@dataclass
class ImageSet:
    images: torch.Tensor  # uint8 [N, C, H, W]
    labels: torch.Tensor  # int64 [N]

    def __len__(self):
        return len(self.labels)

    def subset(self, limit: int | None) -> "ImageSet":
        """The first ``limit`` images in a class-balanced round-robin order (all when None)."""
        if not limit or limit >= len(self):
            return self
        order = torch.argsort(self.labels, stable=True)
        rank = torch.empty_like(order)
        for c in self.labels.unique():
            members = order[self.labels[order] == c]
            rank[members] = torch.arange(len(members))
        keep = torch.argsort(rank * (int(self.labels.max()) + 1) + self.labels, stable=True)[:limit]
        keep = keep.sort().values
        return ImageSet(self.images[keep], self.labels[keep])


@dataclass
class DataBundle:
    name: str
    train: ImageSet
    test: ImageSet | None
    classes: list[str]
    augment: bool

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def in_channels(self) -> int:
        return self.train.images.shape[1]

    @property
    def image_size(self) -> int:
        return self.train.images.shape[-1]

    def stats(self) -> tuple[list[float], list[float]]:
        """Per-channel mean and std of the training images (for normalisation)."""
        x = self.train.images.float().div_(255)
        return x.mean((0, 2, 3)).tolist(), x.std((0, 2, 3)).clamp_min(1e-3).tolist()


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


def make_transform(bundle: DataBundle, train: bool, cutout: int = 0) -> v2.Compose:
    mean, std = bundle.stats()
    steps: list = []
    if train and bundle.augment:
        size = bundle.image_size
        steps += [v2.RandomCrop(size, padding=max(1, size // 8)), v2.RandomHorizontalFlip()]
    steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)]
    if train and cutout > 0:
        steps.append(Cutout(cutout))
    return v2.Compose(steps)


class TransformedImages(Dataset):
    def __init__(self, images: ImageSet, transform, indices: Sequence[int] | None = None):
        self.images, self.transform = images, transform
        self.indices = list(range(len(images))) if indices is None else list(indices)

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, i):
        j = self.indices[i]
        return self.transform(self.images.images[j]), self.images.labels[j]


class EpochBatchSampler(Sampler[list[int]]):
    """Batches in an order fixed by (seed, epoch); ``start`` skips batches already done.

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
            g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
            order = torch.randperm(self.size, generator=g).tolist()
        else:
            order = list(range(self.size))
        bs = self.batch_size
        batches = [order[i:i + bs] for i in range(0, self.size, bs)]
        if self.drop_last and batches and len(batches[-1]) < bs:
            batches.pop()
        return batches[self.rank::self.world]

    def __len__(self) -> int:
        return len(self._batches())

    def __iter__(self) -> Iterator[list[int]]:
        yield from self._batches()[self.start:]


# ---- loading ---------------------------------------------------------------------------
def _digits() -> DataBundle:
    from sklearn.datasets import load_digits

    d = load_digits()
    images = torch.from_numpy(d.images).mul(255 / 16).round().to(torch.uint8).unsqueeze(1)
    labels = torch.from_numpy(d.target).long()
    n_test = len(labels) // 5  # the last fifth, a fixed split
    return DataBundle("digits", ImageSet(images[:-n_test], labels[:-n_test]),
                      ImageSet(images[-n_test:], labels[-n_test:]), [str(i) for i in range(10)], augment=False)


def _torchvision(name: str, data_dir: str | None, download: bool) -> DataBundle:
    from torchvision import datasets

    root = Path(data_dir or "~/.cache/romenas/data").expanduser()
    try:
        if name == "svhn":
            train = datasets.SVHN(str(root), split="train", download=download)
            test = datasets.SVHN(str(root), split="test", download=download)
            sets = [ImageSet(torch.from_numpy(s.data), torch.from_numpy(s.labels).long()) for s in (train, test)]
            classes = [str(i) for i in range(10)]
        else:
            cls = datasets.CIFAR10 if name == "cifar10" else datasets.CIFAR100
            train, test = cls(str(root), train=True, download=download), cls(str(root), train=False, download=download)
            sets = [ImageSet(torch.from_numpy(s.data).permute(0, 3, 1, 2).contiguous(), torch.tensor(s.targets))
                    for s in (train, test)]
            classes = list(train.classes)
    except RuntimeError as exc:
        raise RomenasError(f"{name} not found under {root} ({exc}); pass --download, or --data-dir pointing at it") from None
    return DataBundle(name, sets[0], sets[1], classes, augment=True)


def _scan(folder: Path) -> tuple[list[str], list[tuple[Path, int]]]:
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    files = [(f, c) for c, name in enumerate(classes) for f in sorted((folder / name).iterdir())
             if f.suffix.lower() in IMAGE_SUFFIXES]
    return classes, files


def _check_classes(folder: Path, classes: list[str], files: list[tuple[Path, int]]) -> None:
    """Every class folder must hold images: an empty one would be a class the network never sees."""
    counts = torch.bincount(torch.tensor([c for _, c in files], dtype=torch.long), minlength=len(classes))
    empty = [name for name, n in zip(classes, counts.tolist()) if n == 0]
    if empty:
        raise RomenasError(f"class folder(s) {empty} under {folder} hold no images; add images or remove them")


def _decode(files: list[tuple[Path, int]], limit: int | None, image_size: int | None) -> ImageSet:
    from PIL import Image, UnidentifiedImageError
    from torchvision.transforms.v2.functional import pil_to_tensor, resize

    if limit:
        per_class: dict[int, list] = {}
        for f, c in files:
            per_class.setdefault(c, []).append((f, c))
        files = []
        queues = list(per_class.values())
        i = 0
        while len(files) < limit and any(i < len(q) for q in queues):
            files += [q[i] for q in queues if i < len(q)][:limit - len(files)]
            i += 1
    images, first_shape = [], None
    for path, _ in files:
        try:
            with Image.open(path) as pil:
                img = pil_to_tensor(pil.convert("RGB"))
        except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError) as exc:
            raise RomenasError(f"cannot read image {path} ({exc}); remove or replace the file") from None
        if image_size:
            img = resize(img, [image_size, image_size], antialias=True)
        elif first_shape is None:
            first_shape = img.shape
        elif img.shape != first_shape:
            raise RomenasError(f"images differ in size ({tuple(first_shape[1:])} vs {tuple(img.shape[1:])} at {path}); "
                               "pass --image-size N to resize them all")
        images.append(img)
    return ImageSet(torch.stack(images), torch.tensor([c for _, c in files]))


def _check_folder(root: Path) -> None:
    if root.is_file():
        raise RomenasError(f"--dataset {root} is a file; pass a folder with train/<class>/ images "
                           f"or one of the built-in datasets {list(BUILTIN)}")
    if not root.is_dir():
        raise RomenasError(f"data folder {root} does not exist; pass a folder with train/<class>/ images "
                           f"or one of the built-in datasets {list(BUILTIN)}")


def _image_folder(root: Path, limit_train, limit_test, image_size) -> DataBundle:
    _check_folder(root)
    train_dir = root / "train" if (root / "train").is_dir() else root
    test_dir = root / "test" if (root / "test").is_dir() else None
    try:
        classes, files = _scan(train_dir)
    except OSError as exc:
        raise RomenasError(f"cannot read data folder {train_dir} ({exc}); check its permissions") from None
    if not files:
        raise RomenasError(f"data folder {train_dir} holds no images; expected {train_dir}/<class>/<image>.jpg")
    if len(classes) < 2:
        raise RomenasError(f"data folder {train_dir} has {len(classes)} class folder(s); classification needs at least 2")
    _check_classes(train_dir, classes, files)
    train = _decode(files, limit_train, image_size)
    test = None
    test_classes, test_files = _scan(test_dir) if test_dir is not None else ([], [])
    if test_files:  # a test/ folder without images is no test split
        if test_classes != classes:
            raise RomenasError(f"{test_dir} has classes {test_classes}, but {train_dir} has {classes}; make them match")
        test = _decode(test_files, limit_test, image_size or train.images.shape[-1])
    return DataBundle(root.name, train, test, classes, augment=True)


def load_data(dataset: str, data_dir: str | None = None, download: bool = False, limit_train: int | None = None,
              limit_test: int | None = None, image_size: int | None = None) -> DataBundle:
    """Load a dataset by name ('digits', 'cifar10', 'cifar100', 'svhn') or image-folder path."""
    key = dataset.lower()
    if key == "digits":
        bundle = _digits()
    elif key in BUILTIN:
        bundle = _torchvision(key, data_dir, download)
    else:
        return _image_folder(Path(dataset).expanduser(), limit_train, limit_test, image_size)
    bundle.train = bundle.train.subset(limit_train)
    if bundle.test is not None:
        bundle.test = bundle.test.subset(limit_test)
    if image_size and image_size != bundle.image_size:
        from torchvision.transforms.v2.functional import resize
        for part in (bundle.train, bundle.test):
            if part is not None:
                part.images = resize(part.images, [image_size, image_size], antialias=True)
    return bundle


#: (classes, channels, image size) of the named datasets, for building networks without loading data.
KNOWN_SHAPES = {"digits": (10, 1, 8), "cifar10": (10, 3, 32), "cifar100": (100, 3, 32), "svhn": (10, 3, 32),
                "imagenet": (1000, 3, 224)}


def dataset_shape(dataset: str, image_size: int | None = None) -> tuple[int, int, int]:
    """(classes, channels, size) of a dataset, reading one image at most."""
    key = dataset.lower()
    if key in KNOWN_SHAPES:
        classes, channels, size = KNOWN_SHAPES[key]
        return classes, channels, image_size or size
    root = Path(dataset).expanduser()
    _check_folder(root)
    folder = root / "train" if (root / "train").is_dir() else root
    classes, files = _scan(folder)
    if not files:
        raise RomenasError(f"data folder {folder} holds no images; expected {folder}/<class>/<image>.jpg")
    return len(classes), 3, image_size or _decode(files[:1], None, None).images.shape[-1]
