"""One run of a sweep, as every executor runs it (a process here, a Ray task, a SLURM job):
search into its folder (or resume it, or reuse it when finished), then the optional training.

A run interrupted anywhere (a killed worker, a preempted job) is resumed by running it again:
each stage continues from its own checkpoint, so a retry never starts a finished stage anew.
"""
from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any, Mapping

#: Under the sweep folder: the trained networks (one folder per run) and the workers' logs.
TRAINED, LOGS = "trained", "logs"


def _finished(run: Path) -> bool:
    try:
        return json.loads((run / "status.json").read_text()).get("state") == "finished"
    except (OSError, ValueError, AttributeError):
        return False


def run_one(spec: Mapping[str, Any]) -> dict[str, Any]:
    """Run ``spec`` = {sweep, name, settings, preset, threads, train: {preset, epochs} | None};
    returns {'search': run folder, 'train': its folder or None, 'peak_rss_mib', 'cuda_peak_mib'}."""
    import torch

    from ..search.loop import search
    from ..train import train

    if spec.get("threads"):
        torch.set_num_threads(int(spec["threads"]))
    sweep, name = Path(spec["sweep"]), spec["name"]
    run = sweep / name
    if not _finished(run):
        if (run / "config.json").exists():
            search(resume=run, progress=False)
        else:
            search(out=run, preset=spec.get("preset"), **{**spec["settings"], "progress": False})
    trained = None
    if spec.get("train"):
        trained = sweep / TRAINED / name
        if not _finished(trained):
            if (trained / "config.json").exists():
                train(resume=trained, progress=False)
            else:
                settings = spec["settings"]
                given = {"epochs": spec["train"].get("epochs"), "seed": settings.get("seed"),
                         "dataset": settings.get("dataset"), "data_dir": settings.get("data_dir"),
                         "device": settings.get("device")}
                train(run, out=trained, preset=spec["train"].get("preset"), progress=False,
                              **{k: v for k, v in given.items() if v is not None})
    cuda = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None
    record = {"search": str(run), "train": None if trained is None else str(trained),
              "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "cuda_peak_mib": cuda,
              "ended": time.time()}
    logs = sweep / LOGS
    logs.mkdir(exist_ok=True)
    tmp = logs / f"{name}.json.tmp"
    tmp.write_text(json.dumps(record) + "\n")
    os.replace(tmp, logs / f"{name}.json")
    return record


def main() -> int:
    """``python -m romenas.sweep.worker SPEC.json``: the local executor's process. A romenas error
    is one line on stderr and exit 2, as the CLI's."""
    from ..errors import RomenasError

    spec = json.loads(Path(sys.argv[1]).read_text())
    try:
        run_one(spec)
    except RomenasError as exc:
        print(f"romenas: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
