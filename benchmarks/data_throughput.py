"""Data loading side by side: images/s for 0, 1, 2 and N loader workers, streamed vs in memory,
and a search's peak RSS over 1,000 vs 8,000 generated images of 128x128.

    python benchmarks/data_throughput.py                 # CIFAR-10 folder in ../shared/data, ~6 min on 2 cores
    python benchmarks/data_throughput.py --skip-rss      # throughput only, ~1 min

Throughput: the training transform (pad-crop, flip, normalise) over the same batches, the
worker start-up included (persistent workers start once per run). "in memory" decodes the
folder first into one uint8 tensor (romenas before streaming) and reads from it.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "cifar10"


def generate_folder(root: Path, count: int, size: int = 128, classes: int = 10) -> Path:
    """``count`` distinct PNGs of size x size in ``classes`` class folders (made once, then reused)."""
    from PIL import Image

    done = root / f"done-{count}"
    if done.exists():
        return root
    rng = np.random.default_rng(count)
    for i in range(count):
        folder = root / "train" / f"c{i % classes}"
        folder.mkdir(parents=True, exist_ok=True)
        a = np.zeros((size, size, 3), np.uint8)
        a[..., 0] = (i % classes) * 25
        a[::4, :, 1] = rng.integers(0, 256)
        a[:, ::3, 2] = i % 251
        Image.fromarray(a).save(folder / f"{i:05d}.png")
    done.touch()
    return root


def images_per_second(bundle, workers: int, batches: int, batch_size: int) -> float:
    from romenas.data import epoch_loader, make_transform

    transform = make_transform(bundle, train=True)
    started = time.perf_counter()
    loader = epoch_loader(bundle, "train", transform, batch_size, seed=0, workers=workers)
    seen = 0
    for i, (x, _) in enumerate(loader):
        seen += len(x)
        if i + 1 >= batches:
            break
    return seen / (time.perf_counter() - started)


def in_memory(bundle):
    """The same bundle with every training image decoded up front."""
    import dataclasses

    from romenas.data import MemoryImages

    images = torch.stack([bundle.train.read(j) for j in range(len(bundle.train))])
    return dataclasses.replace(bundle, train=MemoryImages(images, bundle.train.labels))


SEARCH_RSS = """
import resource, sys
from romenas import search
search(out=sys.argv[2], dataset=sys.argv[1], space="nb201", channels=4, layers=1, samples=1, epochs=1,
       batch_size=32, workers=int(sys.argv[3]), progress=False, device="cpu")
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def search_peak_rss(folder: Path, out: Path, workers: int) -> float:
    """Peak RSS (MB) of a whole one-epoch search in a fresh process (loader workers not counted)."""
    done = subprocess.run([sys.executable, "-c", SEARCH_RSS, str(folder), str(out), str(workers)],
                          capture_output=True, text=True, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="image folder for the throughput rows")
    parser.add_argument("--workers", type=int, nargs="+", default=None, help="default: 0 1 2 and the CPU count")
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--skip-rss", action="store_true", help="skip the two searches over generated images")
    parser.add_argument("--scratch", default=None, help="folder for the generated images (default: a temp folder)")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    args = parser.parse_args()
    from romenas.data import load_data

    if not Path(args.data).is_dir():
        sys.exit(f"data folder {args.data} not found; pass --data FOLDER (an image folder)")
    workers = args.workers or sorted({0, 1, 2, os.cpu_count() or 2})
    bundle = load_data(args.data, limit_train=args.batches * args.batch_size)
    rows = [{"source": "streamed", "workers": w,
             "images_per_s": images_per_second(bundle, w, args.batches, args.batch_size)} for w in workers]
    rows.append({"source": "in memory", "workers": 0,
                 "images_per_s": images_per_second(in_memory(bundle), 0, args.batches, args.batch_size)})
    for r in rows:
        print(f"{r['source']:9s} workers {r['workers']:2d}: {r['images_per_s']:8.0f} images/s", flush=True)
    rss = {}
    if not args.skip_rss:
        scratch = Path(args.scratch or tempfile.mkdtemp(prefix="romenas-rss-"))
        for count in (1000, 8000):
            folder = generate_folder(scratch / f"images-{count}", count)
            rss[count] = search_peak_rss(folder, scratch / f"run-{count}-{time.time_ns()}", workers=0)
            print(f"search over {count} images of 128x128: peak RSS {rss[count]:.0f} MB", flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result = {"date": str(date.today()), "torch": torch.__version__, "cpus": os.cpu_count(), "data": args.data,
              "batch_size": args.batch_size, "batches": args.batches, "throughput": rows,
              "search_peak_rss_mb": rss}
    (out / "data_throughput.json").write_text(json.dumps(result, indent=2))
    base = next(r["images_per_s"] for r in rows if r["source"] == "streamed" and r["workers"] == 0)
    lines = [f"Data throughput, {date.today()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
             f"batch {args.batch_size}, {args.batches} batches of {args.data}", "",
             "| source | workers | images/s | vs streamed, 0 workers |", "|---|---|---|---|"]
    lines += [f"| {r['source']} | {r['workers']} | {r['images_per_s']:.0f} | {r['images_per_s'] / base:.2f} |"
              for r in rows]
    if rss:
        lines += ["", f"Search peak RSS (one epoch, NB201 C=4 N=1, batch 32, 128x128 images): 1,000 images "
                      f"{rss[1000]:.0f} MB, 8,000 images {rss[8000]:.0f} MB, difference {rss[8000] - rss[1000]:.0f} MB "
                      f"(limit 150 MB; 8,000 decoded images alone would take 393 MB)"]
    (out / "data_throughput.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
