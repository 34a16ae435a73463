"""Where images come from: built-in datasets held in memory, image folders read per sample.

Sources: ``digits`` (built in: the UCI handwritten digits that ship with scikit-learn,
8x8 grayscale, no download), ``cifar10``/``cifar100``/``svhn`` through torchvision (their
arrays are in memory anyway), any image folder (``ROOT/train/<class>/*`` plus optional
``ROOT/test/<class>/*`` or ``ROOT/val/<class>/*``, or ``ROOT/<class>/*``), and WebDataset tar shards (see
:mod:`romenas.data.shards`). A folder is never decoded up front: only its file list is held
and each image is decoded when a batch needs it, so memory does not grow with the folder.
Every source answers ``len``, ``labels`` and ``read(j)`` (uint8 ``[C, H, W]``).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Sequence

import torch

from ..arguments import expand
from ..errors import RomenasError

BUILTIN = ("digits", "cifar10", "cifar100", "svhn")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
AUGMENTS = ("pad-crop", "resized-crop", "none")


class ImageSource(Protocol):
    labels: list[int]

    def __len__(self) -> int: ...

    def read(self, j: int) -> torch.Tensor: ...

    def fingerprint(self, h) -> None: ...


def balanced_order(labels: Sequence[int], limit: int | None) -> list[int]:
    """The first ``limit`` indices taken class by class in turn (all, in order, when None)."""
    if not limit or limit >= len(labels):
        return list(range(len(labels)))
    per_class: dict[int, list[int]] = {}
    for j, c in enumerate(labels):
        per_class.setdefault(int(c), []).append(j)
    queues, keep, i = list(per_class.values()), [], 0
    while len(keep) < limit:
        keep += [q[i] for q in queues if i < len(q)][:limit - len(keep)]
        i += 1
    return sorted(keep)


class MemoryImages:
    """Images held as one uint8 tensor (the built-in datasets)."""

    def __init__(self, images: torch.Tensor, labels: Sequence[int]):
        self.images, self.labels = images, [int(c) for c in labels]

    def __len__(self) -> int:
        return len(self.labels)

    def read(self, j: int) -> torch.Tensor:
        return self.images[j]

    def fingerprint(self, h) -> None:
        """Feed the images and labels into the hash ``h``."""
        h.update(self.images.contiguous().numpy())  # the buffer itself: no copy of the dataset
        h.update(str(self.labels).encode())

    def subset(self, limit: int | None) -> "MemoryImages":
        keep = balanced_order(self.labels, limit)
        return self if len(keep) == len(self) else MemoryImages(self.images[keep], [self.labels[j] for j in keep])

    def resized(self, size: int | None) -> "MemoryImages":
        if not size or size == self.images.shape[-1]:
            return self
        from torchvision.transforms.v2.functional import resize
        return MemoryImages(resize(self.images, [size, size], antialias=True), self.labels)


#: Pillow modes whose values are not 8-bit, with the range their data is scaled from (None: read from the image).
_WIDE_MODES = {"I;16": 65535.0, "I;16L": 65535.0, "I;16B": 65535.0, "I;16N": 65535.0, "I": 65535.0, "F": None}


def decode_image(path) -> torch.Tensor:
    """One image file (a path or a file object) as uint8 RGB ``[3, H, W]``, as a viewer shows it.

    EXIF orientation is applied. Modes Pillow converts to RGB itself (1, L, LA, P, PA, RGBA,
    CMYK, YCbCr, ...) go through ``convert('RGB')`` (alpha dropped); 16-bit images are scaled
    from 0..65535, float images from 0..1 (or 0..255 when a value exceeds 1). What cannot be
    converted faithfully (32-bit integers beyond 16 bits, floats outside 0..255, NaN, colour
    spaces Pillow cannot convert) and damaged files are a one-line error naming the file.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError
    from torchvision.transforms.v2.functional import pil_to_tensor

    try:
        with Image.open(path) as pil:
            pil = ImageOps.exif_transpose(pil)
            if pil.mode in _WIDE_MODES:
                return _wide_to_rgb(pil, path)
            return pil_to_tensor(pil.convert("RGB"))
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError, SyntaxError) as exc:
        if isinstance(exc, ValueError) and "conversion" in str(exc):
            raise RomenasError(f"image {path} is in mode {pil.mode!r}, which cannot be converted to RGB faithfully; "
                               "save it as RGB or grayscale") from None
        raise RomenasError(f"cannot read image {path} ({exc}); remove or replace the file") from None


def _wide_to_rgb(pil, path) -> torch.Tensor:
    import numpy as np

    values = np.asarray(pil, dtype=np.float64)
    if not np.isfinite(values).all():
        raise RomenasError(f"image {path} holds NaN or infinite pixel values; replace the file")
    top = _WIDE_MODES[pil.mode] or (1.0 if values.max(initial=0.0) <= 1.0 else 255.0)
    if values.min(initial=0.0) < 0 or values.max(initial=0.0) > top:
        raise RomenasError(f"image {path} ({pil.mode}) has values in [{values.min():g}, {values.max():g}], outside "
                           f"the 0..{top:g} this mode is read from; save it as 8- or 16-bit RGB or grayscale")
    gray = torch.from_numpy(np.rint(values * (255.0 / top)).astype(np.uint8))
    return gray.unsqueeze(0).expand(3, -1, -1).contiguous()


def fit_size(image: torch.Tensor, size: int | None) -> torch.Tensor:
    """``image`` resized to size x size unless it is already (None: left as it is)."""
    if not size or tuple(image.shape[-2:]) == (size, size):
        return image
    from torchvision.transforms.v2.functional import resize
    return resize(image, [size, size], antialias=True)


class FileImages:
    """An image folder's file list, decoded one image per ``read``.

    ``size`` resizes every image to size x size (None: keep each image's own size, for
    transforms that crop to a fixed size themselves)."""

    def __init__(self, files: Sequence[Path], labels: Sequence[int], size: int | None):
        self.files, self.labels, self.size = list(files), [int(c) for c in labels], size

    def __len__(self) -> int:
        return len(self.labels)

    def read(self, j: int) -> torch.Tensor:
        return fit_size(decode_image(self.files[j]), self.size)

    def fingerprint(self, h) -> None:
        """Feed each file's class folder, name and size into the hash ``h`` (not its full path: a moved
        copy of the folder is the same data)."""
        for path, label in zip(self.files, self.labels):
            try:
                size = path.stat().st_size
            except OSError:
                size = -1
            h.update(f"{label}/{path.parent.name}/{path.name}:{size}\n".encode("utf-8", "surrogateescape"))


@dataclass
class DataBundle:
    """A dataset's splits and what a network needs to know about it."""

    name: str
    train: ImageSource
    test: ImageSource | None
    classes: list[str]
    augment: str             # 'pad-crop' (CIFAR style), 'resized-crop' (ImageNet style) or 'none'
    image_size: int          # the side of the images the network sees
    in_channels: int

    def fingerprint(self) -> str:
        """A short hash of what the splits hold; a resumed run compares it (changed data cannot resume exactly)."""
        import hashlib

        h = hashlib.sha256()
        for split in (self.train, self.test):
            if split is not None:
                split.fingerprint(h)
        return h.hexdigest()[:16]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def spec(self, stats: tuple[list[float], list[float]]) -> dict:
        """What preprocessing a trained network needs to see new images as it saw these."""
        return {"classes": list(self.classes), "image_size": self.image_size, "in_channels": self.in_channels,
                "augment": self.augment, "mean": list(stats[0]), "std": list(stats[1])}

    def stats(self, count: int = 1024) -> tuple[list[float], list[float]]:
        """Per-channel mean and std of up to ``count`` evenly spread training images (for normalisation)."""
        picks = torch.linspace(0, len(self.train) - 1, min(count, len(self.train))).round().long().unique()
        sums = torch.zeros(self.in_channels, dtype=torch.float64)
        squares, pixels = torch.zeros_like(sums), 0
        for j in picks.tolist():
            x = self.train.read(j).double().div_(255)
            sums += x.sum((1, 2))
            squares += x.square().sum((1, 2))
            pixels += x[0].numel()
        mean = sums / pixels
        std = (squares / pixels - mean.square()).clamp_min(0).sqrt().clamp_min(1e-3)
        return mean.tolist(), std.tolist()


# ---- the built-in and torchvision datasets ---------------------------------------------
def _digits() -> tuple[MemoryImages, MemoryImages, list[str]]:
    from sklearn.datasets import load_digits

    d = load_digits()
    images = torch.from_numpy(d.images).mul(255 / 16).round().to(torch.uint8).unsqueeze(1)
    labels = d.target.tolist()
    n_test = len(labels) // 5  # the last fifth, a fixed split
    return (MemoryImages(images[:-n_test], labels[:-n_test]), MemoryImages(images[-n_test:], labels[-n_test:]),
            [str(i) for i in range(10)])


def _torchvision(name: str, data_dir: str | None, download: bool) -> tuple[MemoryImages, MemoryImages, list[str]]:
    from torchvision import datasets

    root = expand(data_dir or "~/.cache/romenas/data")
    try:
        if name == "svhn":
            parts = [datasets.SVHN(str(root), split=s, download=download) for s in ("train", "test")]
            sets = [MemoryImages(torch.from_numpy(s.data), s.labels.tolist()) for s in parts]
            classes = [str(i) for i in range(10)]
        else:
            cls = datasets.CIFAR10 if name == "cifar10" else datasets.CIFAR100
            parts = [cls(str(root), train=t, download=download) for t in (True, False)]
            sets = [MemoryImages(torch.from_numpy(s.data).permute(0, 3, 1, 2).contiguous(), s.targets) for s in parts]
            classes = list(parts[0].classes)
    except RuntimeError as exc:
        raise RomenasError(f"{name} not found under {root} ({exc}); pass --download, or --data-dir pointing at it") from None
    except OSError as exc:  # a download without a network (URLError), a full disk, a read-only folder
        raise RomenasError(f"could not get {name} into {root} ({getattr(exc, 'reason', None) or exc}); check the "
                           "network, or download it elsewhere and pass --data-dir") from None
    return sets[0], sets[1], classes


# ---- image folders -----------------------------------------------------------------------
def _scan(folder: Path) -> tuple[list[str], list[tuple[Path, int]]]:
    """Class folders (sorted) and their image files: regular files with an image suffix (a pipe or
    device named like an image would block reading it)."""
    try:
        classes = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
        for name in classes:  # class names go into UTF-8 files (metadata, cards, reports)
            try:
                name.encode("utf-8")
            except UnicodeEncodeError:
                raise RomenasError(f"class folder {os.fsencode(folder / name)!r} has a name that is not valid "
                                   "UTF-8; rename it") from None
        files = [(f, c) for c, name in enumerate(classes) for f in sorted((folder / name).iterdir())
                 if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file()]
    except OSError as exc:
        raise RomenasError(f"cannot read data folder {folder} ({exc}); check its permissions") from None
    return classes, files


def common_side(files: Sequence[Path], sample: int = 64) -> int:
    """The most common image width among up to ``sample`` files spread over the list (headers only):
    one odd image sorting first must not set the size of all."""
    from collections import Counter

    from PIL import Image

    step = max(1, len(files) // sample)
    sides = []
    for path in list(files)[::step][:sample]:
        try:
            with Image.open(path) as pil:
                width, height = pil.size
                sides.append(height if pil.getexif().get(0x0112) in (5, 6, 7, 8) else width)  # EXIF-rotated
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
            continue  # a damaged file is named when it is read
    if not sides:
        return int(decode_image(files[0]).shape[-1])
    return Counter(sides).most_common(1)[0][0]


def _check_folder(root: Path) -> None:
    if root.is_file():
        raise RomenasError(f"--dataset {root} is a file; pass a folder with train/<class>/ images, tar shards "
                           f"(shards/{{0000..0009}}.tar) or one of the built-in datasets {list(BUILTIN)}")
    if not root.is_dir():
        raise RomenasError(f"data folder {root} does not exist; pass a folder with train/<class>/ images "
                           f"or one of the built-in datasets {list(BUILTIN)}")


def _train_files(root: Path) -> tuple[Path, list[str], list[tuple[Path, int]]]:
    _check_folder(root)
    folder = root / "train" if (root / "train").is_dir() else root
    classes, files = labelled_files(folder)
    if len(classes) < 2:
        raise RomenasError(f"data folder {folder} has {len(classes)} class folder(s); classification needs at least 2")
    return folder, classes, files


def labelled_files(folder: Path) -> tuple[list[str], list[tuple[Path, int]]]:
    """Class names and (file, class index) of ``folder/<class>/*``; no images or an empty class is an error."""
    _check_folder(folder)
    classes, files = _scan(folder)
    if not files:
        split = next((s for s in ("test", "val") if (folder / s).is_dir()), None)
        if split is not None and folder.name != "train":  # test/ beside no train/: its class folders are not classes
            raise RomenasError(f"data folder {folder} has a {split}/ split but no train/; put the training images "
                               f"in {folder}/train/<class>/<image>.jpg")
        raise RomenasError(f"data folder {folder} holds no images; expected {folder}/<class>/<image>.jpg")
    counts = torch.bincount(torch.tensor([c for _, c in files]), minlength=len(classes)).tolist()
    empty = [name for name, n in zip(classes, counts) if n == 0]
    if empty:  # a class the network would never see
        raise RomenasError(f"class folder(s) {empty} under {folder} hold no images; add images or remove them")
    return classes, files


def _file_images(files: list[tuple[Path, int]], limit: int | None, size: int | None) -> FileImages:
    keep = balanced_order([c for _, c in files], limit)
    return FileImages([files[j][0] for j in keep], [files[j][1] for j in keep], size)


def _image_folder(root: Path, limit_train, limit_test, image_size, augment) -> DataBundle:
    train_dir, classes, files = _train_files(root)
    # Without --image-size the first image sets the size; every other image is resized to it.
    size = image_size or common_side([f for f, _ in files])
    native = augment == "resized-crop"  # the transform crops each image to the size itself
    train = _file_images(files, limit_train, None if native else size)
    test = None
    test_dir = root / "test" if (root / "test").is_dir() else root / "val"  # ImageNet calls it val/
    test_classes, test_files = _scan(test_dir) if test_dir.is_dir() else ([], [])
    if test_files:  # a test/ folder without images is no test split
        if test_classes != classes:
            raise RomenasError(f"{test_dir} has classes {test_classes}, but {train_dir} has {classes}; make them match")
        test = _file_images(test_files, limit_test, None if native else size)
    return DataBundle(root.name, train, test, classes, augment, size, 3)


def resolve_augment(augment: str, builtin: str | None) -> str:
    """The augmentation an 'auto' setting means for a source (none for the 8x8 digits)."""
    if augment == "auto":  # the 8x8 digits lose their content to a crop
        return "none" if builtin == "digits" else "pad-crop"
    if augment not in AUGMENTS:
        raise RomenasError(f"unknown augment {augment!r}; use auto or one of {list(AUGMENTS)}")
    return augment


def load_source(dataset: str, data_dir: str | None = None, download: bool = False, limit_train: int | None = None,
                limit_test: int | None = None, image_size: int | None = None, augment: str = "auto") -> DataBundle:
    """A dataset by name ('digits', 'cifar10', 'cifar100', 'svhn') or image-folder path."""
    key = dataset.lower()
    if key not in BUILTIN:
        return _image_folder(expand(dataset), limit_train, limit_test, image_size,
                             resolve_augment(augment, None))
    train, test, classes = _digits() if key == "digits" else _torchvision(key, data_dir, download)
    train, test = train.subset(limit_train).resized(image_size), test.subset(limit_test).resized(image_size)
    return DataBundle(key, train, test, classes, resolve_augment(augment, key), int(train.images.shape[-1]),
                      int(train.images.shape[1]))


#: (classes, channels, image size) of the named datasets, for building networks without loading data.
KNOWN_SHAPES = {"digits": (10, 1, 8), "cifar10": (10, 3, 32), "cifar100": (100, 3, 32), "svhn": (10, 3, 32),
                "imagenet": (1000, 3, 224)}


def source_shape(dataset: str, image_size: int | None = None) -> tuple[int, int, int]:
    """(classes, channels, size) of a named dataset or image folder, reading one image at most."""
    key = dataset.lower()
    if key in KNOWN_SHAPES:
        classes, channels, size = KNOWN_SHAPES[key]
        return classes, channels, image_size or size
    _, classes, files = _train_files(expand(dataset))
    return len(classes), 3, image_size or common_side([f for f, _ in files])
