import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("ROMENAS_SHARED_DATA", REPO.parent / "shared" / "data"))
CIFAR_FOLDER = SHARED_DATA / "cifar10"
NB201_TABLE = SHARED_DATA / "nb201" / "nb201_test_accuracy_200ep.csv"

needs_cifar = pytest.mark.skipif(not (CIFAR_FOLDER / "train").is_dir(),
                                 reason=f"shared CIFAR-10 image folder not found at {CIFAR_FOLDER}")
needs_nb201 = pytest.mark.skipif(not NB201_TABLE.is_file(),
                                 reason=f"shared NAS-Bench-201 table not found at {NB201_TABLE}")

#: A search small enough for a few seconds on 2 CPU cores (built-in digits, 8x8).
TINY_SEARCH = dict(dataset="digits", limit_train=256, channels=4, layers=3, epochs=2, batch_size=32,
                   samples=2, progress=False)
TINY_TRAIN = dict(dataset="digits", limit_train=256, limit_test=128, channels=4, layers=1, epochs=2,
                  batch_size=32, lr=0.05, progress=False)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def make_folder(root, count, size=(12, 12), classes=3, seed=0, mixed=False):
    """``count`` PNGs in ``classes`` class folders, each image distinct (so batches can be compared)."""
    rng = np.random.default_rng(seed)
    for i in range(count):
        folder = root / "train" / f"c{i % classes}"
        folder.mkdir(parents=True, exist_ok=True)
        h, w = (size[0] + i % 5, size[1] + i % 3) if mixed else size
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(folder / f"{i:05d}.png")
    return root
