"""The callable a SLURM job runs (importable by the job, so pickled by reference)."""
from __future__ import annotations

from typing import Any

import submitit


class SlurmRun(submitit.helpers.Checkpointable):
    """Run one sweep run; preempted or out of time, submitit requeues the same call, which resumes
    the run from its checkpoint (romenas/sweep/worker.py)."""

    def __call__(self, spec: dict[str, Any]) -> dict[str, Any]:
        from .worker import run_one

        return run_one(spec)
