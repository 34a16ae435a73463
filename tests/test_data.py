"""Data at scale: streamed folders, worker-independent batches, shards, precision and memory format."""
import io
import json
import shutil
import subprocess
import sys
import tarfile

import numpy as np
import pytest
import torch
from PIL import Image

from romenas.config import SearchConfig, build_config
from romenas.data import FileImages, epoch_loader, load_data, make_transform
from romenas.errors import RomenasError
from romenas.search.loop import Searcher, search

from conftest import make_folder

TINY = dict(space="nb201", channels=4, layers=1, samples=2, epochs=1, batch_size=8, progress=False, device="cpu")


def make_shards(root, shards, per_shard, size=12, classes=3, names=True):
    rng = np.random.default_rng(1)
    root.mkdir(parents=True, exist_ok=True)
    for s in range(shards):
        with tarfile.open(root / f"{s:04d}.tar", "w") as tar:
            for i in range(per_shard):
                key, label = f"s{s}_{i:04d}", (s * per_shard + i) % classes
                png = io.BytesIO()
                Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(png, format="PNG")
                for ext, payload in (("png", png.getvalue()), ("cls", str(label).encode())):
                    info = tarfile.TarInfo(f"{key}.{ext}")
                    info.size = len(payload)
                    tar.addfile(info, io.BytesIO(payload))
    if names:
        (root / "classes.txt").write_text("\n".join(f"class-{c}" for c in range(classes)))
    return str(root / f"{{0000..{shards - 1:04d}}}.tar")


def _batches(bundle, workers, start=0, epoch=1):
    loader = epoch_loader(bundle, "train", make_transform(bundle, True), 8, seed=3, workers=workers)
    loader.set_epoch(epoch, start)
    return [(x.clone(), y.clone()) for x, y in loader]


def test_folder_is_streamed_not_decoded(tmp_path):
    bundle = load_data(str(make_folder(tmp_path / "f", 30)))
    assert isinstance(bundle.train, FileImages) and not hasattr(bundle.train, "images")
    assert bundle.train.read(0).dtype == torch.uint8 and bundle.image_size == 12


@pytest.mark.parametrize("workers", [1, 2])
def test_batches_do_not_depend_on_workers_and_resume_exactly(tmp_path, workers):
    """Augmentation is seeded per (seed, epoch, image): any worker count, and a restart at batch 2,
    give the same tensors as one process reading from the start."""
    bundle = load_data(str(make_folder(tmp_path / "f", 40)))
    reference = _batches(bundle, 0)
    other = _batches(bundle, workers)
    resumed = _batches(bundle, workers, start=2)
    assert len(reference) == 5
    for (x0, y0), (x1, y1) in zip(reference, other):
        assert torch.equal(x0, x1) and torch.equal(y0, y1)
    for (x0, _), (x1, _) in zip(reference[2:], resumed):
        assert torch.equal(x0, x1)
    assert not torch.equal(reference[0][0], _batches(bundle, 0, epoch=2)[0][0])  # a new epoch, new order and crops


def test_search_results_do_not_depend_on_workers(tmp_path):
    """A whole search (unequal halves, so one loader stops mid-epoch) ends bit for bit the same
    with 0 and 2 persistent loader workers."""
    folder = str(make_folder(tmp_path / "f", 120))
    runs = [search(out=tmp_path / f"w{w}", dataset=folder, workers=w, train_portion=0.4,
                   **{**TINY, "epochs": 2}).metrics[-1] for w in (0, 2)]
    for key in ("train_loss", "val_loss", "genotype", "op_probs"):
        assert runs[0][key] == runs[1][key], key


def test_mixed_sizes_are_resized_to_one(tmp_path):
    root = make_folder(tmp_path / "f", 12, mixed=True)
    bundle = load_data(str(root))
    assert bundle.image_size == 12
    for x, _ in _batches(bundle, 0):
        assert x.shape[-2:] == (12, 12)
    resized = load_data(str(root), image_size=10, augment="resized-crop")
    loader = epoch_loader(resized, "train", make_transform(resized, True), 4, seed=0, workers=0)
    assert next(iter(loader))[0].shape == (4, 3, 10, 10)
    evaluation = make_transform(resized, False)
    assert evaluation(resized.train.read(5)).shape == (3, 10, 10)  # resize to size/0.875, centre crop


def test_shards_feed_a_search_and_split_across_ranks(tmp_path):
    pytest.importorskip("webdataset", reason="tar shards need the webdataset extra (pip install -e '.[shards]')")
    pattern = make_shards(tmp_path / "shards", shards=4, per_shard=20)
    bundle = load_data(pattern)
    assert bundle.classes == ["class-0", "class-1", "class-2"] and len(bundle.train) == 80
    transform = make_transform(bundle, True)
    halves = [epoch_loader(bundle, "train", transform, 8, 5 + i, part=part, part_seed=5, workers=0)
              for i, part in enumerate(((0.0, 0.5), (0.5, 1.0)))]
    assert 3 <= len(halves[0]) <= 6 and 3 <= len(halves[1]) <= 6
    ranks = [epoch_loader(bundle, "train", transform, 8, 5, workers=0, rank=r, world=2) for r in range(2)]
    assert len(ranks[0]) == len(ranks[1]) == 5  # 40 samples each: shards 0, 2 and 1, 3
    firsts = [next(iter(r))[0] for r in ranks]
    assert not torch.equal(firsts[0], firsts[1])
    two_workers = epoch_loader(bundle, "train", transform, 8, 5, workers=2)
    assert sum(len(y) for _, y in two_workers) == 80  # each worker reads its own two shards
    result = search(out=tmp_path / "run", dataset=pattern, **TINY)
    assert result.metrics and result.metrics[0]["train_acc"] >= 0


def test_shards_resume_mid_epoch_exactly(tmp_path):
    pytest.importorskip("webdataset", reason="tar shards need the webdataset extra (pip install -e '.[shards]')")
    pattern = make_shards(tmp_path / "shards", shards=2, per_shard=24, names=False)
    bundle = load_data(pattern)
    assert bundle.classes == ["0", "1", "2"]  # no classes.txt: the labels' indices
    loader = epoch_loader(bundle, "train", make_transform(bundle, True), 8, 2, workers=0)
    loader.set_epoch(3)
    full = [x for x, _ in loader]
    loader.set_epoch(3, start=2)
    assert all(torch.equal(a, b) for a, b in zip(full[2:], [x for x, _ in loader]))


def test_training_on_shards_with_held_out_shards(tmp_path):
    """Shards have no test split: --test-dataset gives one, read whole (the last partial batch kept)."""
    pytest.importorskip("webdataset", reason="tar shards need the webdataset extra (pip install -e '.[shards]')")
    from romenas.train import train

    train_shards = make_shards(tmp_path / "train", shards=2, per_shard=24)
    test_shards = make_shards(tmp_path / "test", shards=1, per_shard=10)
    tiny = dict(channels=4, layers=1, epochs=1, batch_size=16, progress=False, device="cpu")
    result = train("NB201_OPTIMUM", out=tmp_path / "run", dataset=train_shards, test_dataset=test_shards, **tiny)
    assert len(result.metrics) == 1 and 0 <= result.test_acc <= 100
    assert result.test_acc * 10 / 100 == pytest.approx(round(result.test_acc * 10 / 100))  # out of 10 images
    other = make_shards(tmp_path / "other", shards=1, per_shard=10, classes=4)
    with pytest.raises(RomenasError, match="make them match"):
        train("NB201_OPTIMUM", dataset=train_shards, test_dataset=other, **tiny)


@pytest.mark.parametrize("precision", ["bf16-mixed", "16-mixed"])
def test_mixed_precision_search_and_train_on_cpu(tmp_path, precision):
    from romenas.train import train

    cfg = build_config(SearchConfig, {**TINY, "dataset": "digits", "limit_train": 64, "precision": precision,
                                      "channels_last": True})
    s = Searcher(cfg, run=None)
    before = [p.detach().clone() for p in s.net.parameters()]
    for (xw, yw), (xa, ya) in zip(*s.loaders):  # 16-mixed skips steps while its scale finds a size
        with s.runtime.autocast():
            assert s.net(xw, s.algo.weight_plans(1.0)[:1]).dtype == s.runtime.dtype
        s._arch_step(xa, ya, 1.0)
        s._weight_step(xw, yw, 1.0)
    moved = [not torch.equal(b, p) for b, p in zip(before, s.net.parameters())]
    assert any(moved) and all(torch.isfinite(p).all() for p in s.net.parameters())
    if precision == "16-mixed":
        assert s.runtime.state_dict()["weights"]["scale"] > 0  # a scaler per optimiser, checkpointed
    result = train("NB201_OPTIMUM", out=tmp_path / "t", dataset="digits", limit_train=64, limit_test=32, epochs=1,
                   channels=4, layers=1, batch_size=16, precision=precision, channels_last=True, progress=False)
    assert json.loads((tmp_path / "t" / "config.json").read_text())["config"]["precision"] == precision
    assert 0 <= result.test_acc <= 100


@pytest.mark.slow
def test_peak_memory_is_flat_in_the_dataset_size(tmp_path):
    """One epoch of a search's data (both halves) over 8,000 images of 128x128 uses at most
    150 MB more than over 1,000 (all decoded, 8,000 would take 393 MB)."""
    script = ("import resource, sys\n"
              "from romenas.config import SearchConfig, build_config\n"
              "from romenas.search.loop import Searcher\n"
              "cfg = build_config(SearchConfig, dict(dataset=sys.argv[1], space='nb201', channels=4, layers=1,"
              " batch_size=64, workers=0, progress=False, device='cpu'))\n"
              "s = Searcher(cfg, run=None)\n"
              "n = sum(len(y) for loader in s.loaders for _, y in loader)\n"
              "print(n, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)\n")
    peaks = {}
    for count in (1000, 8000):
        root = make_folder(tmp_path / str(count), count, size=(128, 128), classes=10)
        out = subprocess.run([sys.executable, "-c", script, str(root)], capture_output=True, text=True, check=True)
        seen, peaks[count] = out.stdout.split()
        assert int(seen) >= count - 128
    assert float(peaks[8000]) - float(peaks[1000]) <= 150, peaks


@pytest.mark.slow
@pytest.mark.skipif(not (shutil.which("g++") or shutil.which("c++")), reason="torch.compile on CPU needs a C++ compiler")
def test_compiled_training_matches_eager_loss(tmp_path):
    """--compile trains the same network: the first epoch's loss agrees with eager mode."""
    from romenas.train import train

    settings = dict(dataset="digits", limit_train=64, limit_test=32, epochs=1, channels=4, layers=1,
                    batch_size=32, progress=False, device="cpu")
    eager = train("NB201_OPTIMUM", out=tmp_path / "eager", **settings)
    compiled = train("NB201_OPTIMUM", out=tmp_path / "compiled", compile=True, **settings)
    assert compiled.metrics[0]["train_loss"] == pytest.approx(eager.metrics[0]["train_loss"], rel=1e-3)


# ---- decoding: every Pillow mode as a viewer shows it, or refused ------------------------------
def _rgb(array):
    return torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1)


_PIXELS = np.random.default_rng(0).integers(0, 256, (6, 5, 4), dtype=np.uint8)
_WIDE = np.random.default_rng(1).integers(0, 65536, (6, 5)).astype(np.uint16)


@pytest.mark.parametrize("mode, make, expected", [
    ("L", lambda: Image.fromarray(_PIXELS[..., 0], "L"), lambda: np.repeat(_PIXELS[..., :1], 3, 2)),
    ("LA", lambda: Image.fromarray(_PIXELS[..., :2], "LA"), lambda: np.repeat(_PIXELS[..., :1], 3, 2)),
    ("RGBA", lambda: Image.fromarray(_PIXELS, "RGBA"), lambda: _PIXELS[..., :3]),  # alpha dropped, not composited
    ("P", lambda: Image.fromarray(_PIXELS[..., :3], "RGB").quantize(16),
     lambda: np.asarray(Image.fromarray(_PIXELS[..., :3], "RGB").quantize(16).getpalette(), np.uint8
                        ).reshape(-1, 3)[np.asarray(Image.fromarray(_PIXELS[..., :3], "RGB").quantize(16))]),
    ("1", lambda: Image.fromarray(_PIXELS[..., 0] > 127), lambda: np.repeat((_PIXELS[..., :1] > 127) * 255, 3, 2)),
    ("I;16", lambda: Image.fromarray(_WIDE), lambda: np.repeat(np.rint(_WIDE / 257.0)[..., None], 3, 2)),
    ("F 0..1", lambda: Image.fromarray((_PIXELS[..., 0] / 255).astype(np.float32), "F"),
     lambda: np.repeat(_PIXELS[..., :1], 3, 2)),
    ("F 0..255", lambda: Image.fromarray(_PIXELS[..., 0].astype(np.float32), "F"),
     lambda: np.repeat(_PIXELS[..., :1], 3, 2)),
])
def test_every_image_mode_decodes_to_the_pixels_a_viewer_shows(tmp_path, mode, make, expected):
    """Checked against an independent numpy conversion; float TIFFs once decoded 0.5 as 0."""
    from romenas.data import decode_image

    path = tmp_path / ("x.tif" if mode.startswith(("I", "F")) else "x.png")
    make().save(path)
    assert torch.equal(decode_image(path), _rgb(expected().astype(np.uint8)))


@pytest.mark.parametrize("values, needle", [
    (np.full((4, 4), 300.0, np.float32), "outside"), (np.full((4, 4), -0.5, np.float32), "outside"),
    (np.full((4, 4), np.nan, np.float32), "NaN"), (np.full((4, 4), 70000, np.int32), "outside"),
])
def test_pixels_that_cannot_be_converted_faithfully_are_refused(tmp_path, values, needle):
    from romenas.data import decode_image

    Image.fromarray(values).save(tmp_path / "x.tif")
    with pytest.raises(RomenasError, match=needle):
        decode_image(tmp_path / "x.tif")


def test_exif_orientation_is_applied(tmp_path):
    from romenas.data import decode_image

    image = Image.fromarray(np.zeros((32, 48, 3), np.uint8))  # 48 wide, 32 high as stored
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90 degrees for display
    image.save(tmp_path / "x.jpg", exif=exif)
    assert tuple(decode_image(tmp_path / "x.jpg").shape) == (3, 48, 32)  # as a viewer shows it


def test_folders_are_read_as_they_are_meant(tmp_path):
    """A pipe named like an image is skipped (reading it would block), '.tar' in a folder's path does not
    make it shards, one large image sorting first does not set everyone's size, and a class folder
    whose name is not UTF-8 is refused in one line."""
    import os

    root = make_folder(tmp_path / "my.tar.d", 12, size=(8, 8))
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(root / "train" / "c0" / "00000.png")  # sorts first
    os.mkfifo(root / "train" / "c1" / "pipe.png")
    data = load_data(str(root), None, False, None, None, None, "none")
    assert data.image_size == 8 and len(data.train) == 12
    os.mkdir(os.fsencode(root / "train") + b"/caf\xe9")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(os.fsencode(root / "train") + b"/caf\xe9/x.png")
    with pytest.raises(RomenasError, match="not valid UTF-8; rename it"):
        load_data(str(root), None, False, None, None, None, "none")
