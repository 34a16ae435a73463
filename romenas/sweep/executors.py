"""Where a sweep's runs execute: processes on this machine, Ray tasks, or SLURM jobs (submitit).

Each executor takes a run's spec (romenas/sweep/worker.py) and reports, run by run, when it
ended and with which error (None: it finished). Retrying, the manifest and the table are the
sweep's (romenas/sweep/core.py), the same for every executor.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ..errors import RomenasError
from .worker import LOGS

EXECUTORS = ("local", "ray", "slurm")


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no output"


class LocalExecutor:
    """Up to ``jobs`` runs at once, each its own process with ``threads`` torch threads and, where
    ``devices`` are given, one of them (round-robin, as CUDA_VISIBLE_DEVICES)."""

    def __init__(self, sweep: Path, jobs: int, threads: int, devices: list[str] | None = None):
        self.sweep, self.slots, self.threads, self.devices = sweep, jobs, threads, devices or []
        self.active: dict[str, tuple[subprocess.Popen, Path, int]] = {}
        self.started = 0

    def submit(self, spec: dict[str, Any]) -> None:
        logs = self.sweep / LOGS
        logs.mkdir(exist_ok=True)
        name = spec["name"]
        spec_file, log = logs / f"{name}.spec.json", logs / f"{name}.log"
        spec_file.write_text(json.dumps(spec) + "\n")
        env = {**os.environ, "OMP_NUM_THREADS": str(self.threads), "MKL_NUM_THREADS": str(self.threads)}
        if self.devices:
            env["CUDA_VISIBLE_DEVICES"] = self.devices[self.started % len(self.devices)]
        self.started += 1
        offset = log.stat().st_size if log.exists() else 0
        with open(log, "a") as out:
            process = subprocess.Popen([sys.executable, "-m", "romenas.sweep.worker", str(spec_file)], env=env,
                                       stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        self.active[name] = (process, log, offset)

    def poll(self, timeout: float) -> list[tuple[str, str | None]]:
        deadline = time.monotonic() + timeout
        while True:
            done = [(n, p, log, off) for n, (p, log, off) in self.active.items() if p.poll() is not None]
            if done or not self.active or time.monotonic() >= deadline:
                break
            time.sleep(0.2)
        ended = []
        for name, process, log, offset in done:
            del self.active[name]
            if process.returncode == 0:
                ended.append((name, None))
            else:
                with open(log, errors="replace") as f:
                    f.seek(offset)
                    tail = _last_line(f.read())
                ended.append((name, f"exit {process.returncode}: {tail}"))
        return ended

    def close(self) -> None:
        """Stop what still runs (an interrupted sweep): SIGTERM, which a search answers with a checkpoint."""
        for process, _, _ in self.active.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process, _, _ in self.active.values():
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        self.active.clear()


def _ray_run(spec: dict[str, Any]) -> dict[str, Any]:
    os.environ["OMP_NUM_THREADS"] = str(spec.get("threads") or 1)
    from .worker import run_one

    return run_one(spec)


class RayExecutor:
    """One Ray task per run with ``num_cpus``/``num_gpus`` (fractions share a GPU), on the cluster at
    ``address`` ('auto': the one this machine belongs to) or a local Ray started for the sweep. The
    sweep folder must be on a file system every node sees."""

    def __init__(self, sweep: Path, jobs: int | None, cpus: float, gpus: float, address: str | None):
        try:
            import ray
        except ImportError:
            raise RomenasError("--executor ray needs Ray: pip install 'romenas[ray]'") from None
        self.ray, self.sweep, self.slots = ray, sweep, jobs
        self.started = not ray.is_initialized()  # a local Ray started for this sweep ends with it
        if self.started:
            try:
                ray.init(address=address, include_dashboard=False, log_to_driver=False,
                         **({} if address else {"num_cpus": os.cpu_count()}))
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise RomenasError(f"cannot reach a Ray cluster at {address or 'a new local instance'}: "
                                   f"{_last_line(str(exc))}; start one with 'ray start --head' or drop --ray-address"
                                   ) from None
        self.task = ray.remote(_ray_run).options(num_cpus=cpus, num_gpus=gpus, max_retries=0)
        self.active: dict[Any, str] = {}

    def submit(self, spec: dict[str, Any]) -> None:
        self.active[self.task.remote(spec)] = spec["name"]

    def poll(self, timeout: float) -> list[tuple[str, str | None]]:
        if not self.active:
            return []
        ready, _ = self.ray.wait(list(self.active), num_returns=1, timeout=timeout)
        ended = []
        for ref in ready:
            name = self.active.pop(ref)
            try:
                self.ray.get(ref)
                ended.append((name, None))
            except Exception as exc:  # a task's error or a lost worker: the run resumes on its retry
                cause = getattr(exc, "cause", None) or exc
                ended.append((name, f"{type(cause).__name__}: {_last_line(str(cause))}"))
        return ended

    def close(self) -> None:
        for ref in self.active:
            self.ray.cancel(ref)
        self.active.clear()
        if self.started:
            self.ray.shutdown()


class SlurmExecutor:
    """One SLURM job per run through submitit (requeued, and so resumed, when preempted or out of
    time). Where there is no SLURM, submitit runs the jobs as local processes (its local executor)."""

    def __init__(self, sweep: Path, jobs: int | None, partition: str | None, time_min: int, gpus: int, cpus: int,
                 cluster: str | None = None):
        try:
            import submitit
        except ImportError:
            raise RomenasError("--executor slurm needs submitit: pip install 'romenas[slurm]'") from None
        self.submitit, self.sweep, self.slots = submitit, sweep, jobs
        self.executor = submitit.AutoExecutor(folder=sweep / LOGS / "slurm", cluster=cluster)
        params = {"timeout_min": time_min, "gpus_per_node": gpus, "cpus_per_task": cpus, "name": "romenas-sweep"}
        if partition:
            params["slurm_partition"] = partition
        self.executor.update_parameters(**params)
        self.cluster = self.executor.cluster
        self.active: dict[str, Any] = {}

    def submit(self, spec: dict[str, Any]) -> str:
        from .slurm_job import SlurmRun

        job = self.executor.submit(SlurmRun(), spec)
        self.active[spec["name"]] = job
        return str(job.job_id)

    def poll(self, timeout: float) -> list[tuple[str, str | None]]:
        deadline = time.monotonic() + timeout
        while True:
            done = [n for n, job in self.active.items() if job.done()]
            if done or not self.active or time.monotonic() >= deadline:
                break
            time.sleep(0.5)
        ended = []
        for name in done:
            job = self.active.pop(name)
            exc = job.exception()
            ended.append((name, None if exc is None else f"{type(exc).__name__}: {_last_line(str(exc))}"))
        return ended

    def in_flight(self, job_id: str) -> bool:
        """Whether a job a previous ``--no-wait`` sweep submitted is still queued or running."""
        if self.cluster != "slurm":
            return False
        state = self.submitit.SlurmJob(folder=self.sweep / LOGS / "slurm", job_id=job_id).state
        return state in ("PENDING", "RUNNING", "REQUEUED", "CONFIGURING", "COMPLETING", "SUSPENDED")

    def close(self) -> None:
        for job in self.active.values():
            job.cancel(check=False)
        self.active.clear()
