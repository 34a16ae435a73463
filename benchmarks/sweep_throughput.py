"""Sweep throughput: the same small searches one after another, then as a sweep of parallel jobs.

Both halves run through ``romenas sweep`` on the local executor (each search its own process),
side by side in one run: ``--searches`` searches with ``--jobs 1`` and all the cores per search,
then the same searches with ``--jobs N`` and the cores split between them. Prints the ratio of
wall times (parallel / sequential; below 1: the sweep is faster) and writes
``sweep_throughput.csv`` (mode, jobs, threads, searches, wall_s, ratio) to ``--out``. With
``--device cuda`` the searches share one GPU (the parallel half runs ``--jobs`` on it at once).

    python benchmarks/sweep_throughput.py                    # 4 searches, 2 cores: jobs 1 x 2 threads vs jobs 2 x 1
    python benchmarks/sweep_throughput.py --device cuda --jobs 4
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from _runs import REPO, write_csv

#: Four small searches (NB201 space on the built-in digits, about 8 s each on 2 cores).
SEARCH = dict(dataset="digits", space="nb201", channels=8, layers=1, epochs=3, batch_size=64, limit_train=1024)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--searches", type=int, default=4, help="searches in each half (default 4)")
    p.add_argument("--jobs", type=int, default=2, help="searches at once in the parallel half (default 2)")
    p.add_argument("--device", default="cpu", help="cpu, or cuda: every search on the one GPU")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "sweep_throughput"))
    args = p.parse_args()
    import romenas

    cores = os.cpu_count() or 1
    seeds = list(range(args.searches))
    halves = [("sequential", 1, cores), ("parallel", args.jobs, max(1, cores // args.jobs))]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for mode, jobs, threads in halves:
            folder = Path(tmp) / mode
            started = time.perf_counter()
            done = romenas.sweep(["gdas"], seeds, out=folder, jobs=jobs, threads=threads, progress=False,
                                 device=args.device, **SEARCH)
            wall = time.perf_counter() - started
            if any(r["status"] != "finished" for r in done.rows):
                raise SystemExit(f"{mode}: not every search finished:\n{done.table}")
            rows.append({"mode": mode, "jobs": jobs, "threads": threads, "searches": args.searches,
                         "wall_s": round(wall, 1)})
            print(f"{mode:10s} jobs {jobs} x {threads} thread(s): {args.searches} searches in {wall:6.1f} s", flush=True)
            shutil.rmtree(folder)
    ratio = rows[1]["wall_s"] / rows[0]["wall_s"]
    for row in rows:
        row["ratio"] = round(ratio, 3)
    print(f"parallel / sequential wall time: {ratio:.2f} (device {args.device}, {cores} cores)")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / "sweep_throughput.csv", rows)


if __name__ == "__main__":
    main()
