"""The run folder: everything one search or training writes, and all a resume reads.

    config.json      resolved config, with the run kind
    status.json      running / finished / failed, pid, host, times, error
    metrics.jsonl    one JSON object per epoch
    genotype.json    the derived genotype (search) or the trained one (train)
    checkpoint.pt    latest checkpoint (checkpoint.pt.prev: the one before)
    tb/              TensorBoard scalars
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import socket
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from .arguments import shown
from .errors import RomenasError


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):  # a read-only folder refuses the cleanup too
            tmp.unlink(missing_ok=True)
        raise RomenasError(f"could not write {path}: {exc.strerror or exc}; free space or fix permissions") from None


def default_run_path(kind: str, *parts: str, root: str | Path = "runs") -> Path:
    """runs/KIND-PARTS-TIMESTAMP, with a -N suffix if that name is taken."""
    base = Path(root) / "-".join([kind, *parts, datetime.now().strftime("%Y%m%d-%H%M%S")])
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


def _is_file(path: Path) -> bool:
    """Whether ``path`` is a file; text that cannot name one at all (a 400-character genotype
    string is too long a name, a NUL byte is invalid) names none."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


class RunDir:
    def __init__(self, path: str | Path):
        self.path = Path(path)

    def is_run(self) -> bool:
        """Whether the folder holds a run (its config.json)."""
        return _is_file(self.config_file)

    config_file = property(lambda self: self.path / "config.json")
    checkpoint = property(lambda self: self.path / "checkpoint.pt")
    metrics_file = property(lambda self: self.path / "metrics.jsonl")
    genotype_file = property(lambda self: self.path / "genotype.json")
    status_file = property(lambda self: self.path / "status.json")
    weights_file = property(lambda self: self.path / "model.safetensors")
    model_card = property(lambda self: self.path / "MODEL_CARD.md")
    budget_file = property(lambda self: self.path / "budget.json")  # a search's cost table and verdict

    @staticmethod
    def check_new(path: str | Path) -> None:
        """Refuse a folder that already holds files: a new run never overwrites an old one."""
        path = Path(path)
        if str(path) in ("", "."):
            raise RomenasError("--out needs the name of a new folder for the run")
        if path.exists() and not path.is_dir():
            raise RomenasError(f"--out {path} is a file; pass the name of a new folder for the run")
        if path.exists() and any(path.iterdir()):
            if (path / "config.json").exists():
                raise RomenasError(f"run folder {path} already holds a run; continue it with --resume {path} "
                                   "or pass another --out")
            raise RomenasError(f"--out {path} already holds other files; pass a new or empty folder for the run")

    @classmethod
    def create(cls, path: str | Path, kind: str, config: dict[str, Any], sources: dict[str, str] | None = None,
               preset: str | None = None) -> "RunDir":
        run = cls(path)
        cls.check_new(run.path)
        try:
            run.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RomenasError(f"cannot create run folder {run.path}: {exc.strerror or exc}") from None
        run.write_json(run.config_file, {"kind": kind, "config": config, "preset": preset,
                                         **({"sources": sources} if sources else {})})
        return run

    @staticmethod
    def check_resume_arguments(resume: str | Path, kind: str, **given: Any) -> None:
        """``--resume`` continues a run with its own genotype, folder and settings: an argument that
        would name others (a genotype, ``--out``, ``--preset``) is refused, not silently ignored."""
        named = [name for name, value in given.items() if value is not None
                 and not (name == "out" and Path(value).resolve() == Path(resume).resolve())]
        if named:
            what = {"genotype": "a genotype", "out": "--out", "preset": "--preset"}
            raise RomenasError(f"--resume {resume} continues that run with its own genotype, folder and settings; "
                               f"drop {', '.join(what.get(n, n) for n in named)}, or start a new {kind} run without "
                               "--resume")

    @contextlib.contextmanager
    def lock(self):
        """Hold the run folder for this process (an advisory lock on ``.lock``): a second romenas
        resuming the same run at the same time is refused instead of writing over it."""
        try:
            import fcntl
        except ImportError:  # no fcntl (Windows): no lock
            yield
            return
        try:
            handle = open(self.path / ".lock", "a+")
        except OSError as exc:
            raise RomenasError(f"cannot write in run folder {self.path} ({exc.strerror or exc}); a run needs a writable "
                               "folder: copy it somewhere writable and resume there") from None
        with handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                owner = handle.read().strip() or "?"
                raise RomenasError(f"{self.path} is in use by another romenas process (pid {owner}); wait for it "
                                   "to end, or stop it, then resume") from None
            handle.seek(0)
            handle.truncate()
            handle.write(str(os.getpid()))
            handle.flush()
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    @classmethod
    def open(cls, path: str | Path, kind: str, purpose: str | None = None) -> "RunDir":
        """The run folder at ``path``, checked to hold a ``kind`` run; ``purpose`` says what the caller
        needs where it holds another kind (default: resume it with its own command)."""
        run = cls(path)
        if not run.is_run():
            raise RomenasError(f"{str(run.path)[:80]} is not a romenas run folder (no config.json); pass the folder a "
                               f"{kind} run wrote")
        found, _ = run.info()
        if found != kind:
            raise RomenasError(f"{run.path} is a {found} run; {purpose or f'use romenas {found} --resume {run.path}'}")
        return run

    # -- files ------------------------------------------------------------------------------
    def read_json(self, path: Path) -> Any:
        """A run file's JSON; unreadable, malformed or pathological JSON (numbers of thousands of
        digits, nesting deeper than Python's recursion) is a one-line RomenasError."""
        try:
            return json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise RomenasError(f"cannot read {path}: {exc}") from None
        except (ValueError, RecursionError):
            raise RomenasError(f"cannot read {path}: it holds numbers too long or nesting too deep to be a run's "
                               "file; restore it or delete it") from None

    def write_json(self, path: Path, data: Any) -> None:
        _write_atomic(path, json.dumps(data, indent=2) + "\n")

    def _saved(self) -> dict[str, Any]:
        """config.json, checked to have the shape a run writes."""
        data = self.read_json(self.config_file)
        if not (isinstance(data, dict) and data.get("kind") in ("search", "train")
                and isinstance(data.get("config"), dict)):
            raise RomenasError(f"{self.config_file} is damaged (expected {{'kind': 'search'|'train', 'config': {{...}}}}); "
                               "restore it from a backup or start the run anew in another folder")
        return data

    def info(self) -> tuple[str, dict[str, Any]]:
        """(kind, config) from config.json."""
        data = self._saved()
        return data["kind"], data["config"]

    def config(self) -> dict[str, Any]:
        return self.info()[1]

    def preset(self) -> str | None:
        """The preset the run started from (None: none). Runs written before config.json had the
        field name it only in 'sources' ('preset NAME' beside each setting it gave)."""
        data = self._saved()
        if "preset" in data:
            return data["preset"] if isinstance(data["preset"], str) else None
        sources = data.get("sources")
        named = [v[len("preset "):] for v in (sources.values() if isinstance(sources, dict) else ())
                 if isinstance(v, str) and v.startswith("preset ")]
        return named[0] if named else None

    def record_change(self, changes: dict[str, Any], **when: Any) -> None:
        """Settings changed on resume: the config takes the new values, ``history`` says when."""
        data = self.read_json(self.config_file)
        data["config"].update(changes)
        data.setdefault("history", []).append({**when, "changed": changes})
        self.write_json(self.config_file, data)

    def metrics(self) -> list[dict[str, Any]]:
        if not self.metrics_file.exists():
            return []
        rows = []
        for line in self.metrics_file.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                break  # a line cut by a crash: the checkpoint rewrites it on resume
        return rows

    def write_metrics(self, rows: list[dict[str, Any]]) -> None:
        _write_atomic(self.metrics_file, "".join(json.dumps(r) + "\n" for r in rows))

    def has_checkpoint(self) -> bool:
        return self.checkpoint.exists() or self.checkpoint.with_name(self.checkpoint.name + ".prev").exists()

    def status(self) -> dict[str, Any]:
        status = self.read_json(self.status_file) if self.status_file.exists() else {}
        return status if isinstance(status, dict) else {}

    def set_status(self, state: str, **info: Any) -> None:
        """status.json in ``state``; an error belongs to the state that carries it (a run resumed
        after a Ctrl-C is running, then finished, without the interrupt's error beside it)."""
        status = {k: v for k, v in self.status().items() if k != "error"}
        status.update(state=state, pid=os.getpid(), host=socket.gethostname(), updated=time.time(), **info)
        status.setdefault("started", time.time())
        self.write_json(self.status_file, status)


class Stopped(KeyboardInterrupt):
    """A SIGTERM (``kill``, a job scheduler's stop): the run stops as on Ctrl-C, recorded and resumable."""

    signum = signal.SIGTERM


def _stop(signum, frame):
    raise Stopped(f"stopped by {signal.Signals(signum).name}")


class RunLifecycle:
    """One search's or training's life in its run folder, the same for both kinds: open a run to
    resume it or create a new one, hold it (the lock) until the end, keep status.json saying
    where it stands, record a stop (an error, Ctrl-C, SIGTERM) before it goes on, apply the
    learning rates a resume changes. Under torchrun rank 0 owns the folder; the others wait
    for it. Use as a context manager: the lock and the SIGTERM handler last as long as it."""

    def __init__(self, kind: str):
        from . import distributed as dist  # torch: run folders are read (show, list) without it

        self.kind, self.ctx = kind, dist.context()
        self.run: RunDir | None = None
        self.saved: dict[str, Any] = {}
        self.out: str | Path | None = None
        self._hold = contextlib.ExitStack()

    def __enter__(self) -> "RunLifecycle":
        if threading.current_thread() is threading.main_thread():  # signals reach the main thread only
            previous = signal.signal(signal.SIGTERM, _stop)
            self._hold.callback(signal.signal, signal.SIGTERM, signal.SIG_DFL if previous is None else previous)
        return self

    def __exit__(self, *exc) -> None:
        self._hold.close()

    def _take(self, run: RunDir) -> None:
        self.run = run
        if self.ctx.is_main:
            self._hold.enter_context(run.lock())

    # -- resume ---------------------------------------------------------------------------
    def resume(self, path: str | Path, **given: Any) -> dict[str, Any]:
        """Open the ``kind`` run at ``path`` to continue it, held by this process; its saved settings.
        ``given``: the arguments a resume cannot take (:meth:`RunDir.check_resume_arguments`)."""
        RunDir.check_resume_arguments(path, self.kind, **given)
        self._take(RunDir.open(path, self.kind))
        if self.ctx.is_main:
            self._repair_status()
        self.saved = self.run.config()
        return self.saved

    def _repair_status(self) -> None:
        """A damaged status.json says nothing a resume needs (the checkpoint holds the run): it is
        written anew, not a reason to refuse."""
        try:
            self.run.status()
        except RomenasError as exc:
            print(f"romenas: warning: {exc}; the resume goes on from the checkpoint and writes it anew",
                  file=sys.stderr)
            with contextlib.suppress(OSError):
                self.run.status_file.unlink()

    def settings(self, cls, saved: dict[str, Any], overrides: dict[str, Any]):
        """The resumed run's config (:func:`romenas.config.resumed_config`: the saved settings, a
        flag that would change them refused). config.json is untrusted input: a value there that
        a flag would be refused for (epochs 10^30, a word for a number) is one line naming it."""
        from .config import RESUMABLE, from_dict, resumed_config

        how = {k: v for k, v in overrides.items() if k in RESUMABLE and v is not None}  # --device and the like
        try:
            from_dict(cls, {**saved, **how}).validate()
        except RomenasError as exc:
            raise RomenasError(f"{self.run.config_file} was edited or is damaged: {exc}; restore the value the run "
                               "started with, or start the run anew in another folder") from None
        return resumed_config(cls, saved, overrides)

    def restore(self, loop: "CheckpointedLoop", space: str) -> None:
        """Load the run's checkpoint into ``loop`` (a run stopped before its first checkpoint
        starts from its beginning), then apply the learning rates the resume changes."""
        from .checkpoint import load_checkpoint
        from .config import retuned

        loop.run = self.run
        if self.run.has_checkpoint():
            state = load_checkpoint(self.run.checkpoint, self.kind, space)
            self._check_agrees(state.get("config"))
            loop.load_state_dict(state)
        self._retune(loop, retuned(self.saved, loop.cfg))

    def _check_agrees(self, ran: Any) -> None:
        """config.json against the settings the checkpoint was written with: an edited config.json
        (epochs 2 -> 3) would change a run that ``--resume`` refuses to change by flag. How it runs
        and the learning rates (which a resume may change) may differ."""
        from .config import RESUMABLE, RETUNABLE, upgrade_settings

        if not isinstance(ran, dict):
            raise RomenasError(f"{self.run.checkpoint} holds no settings; it is damaged or not from this run")
        saved, ran = upgrade_settings(self.saved), upgrade_settings(ran)
        free = {*RESUMABLE, *RETUNABLE, "genotype", "genotype_source"}
        differ = sorted(k for k in saved.keys() | ran.keys() if k not in free and saved.get(k) != ran.get(k))
        if differ:
            what = ", ".join(f"{k} {shown(saved.get(k))} (checkpoint: {shown(ran.get(k))})" for k in differ[:3])
            raise RomenasError(f"{self.run.config_file} says {what}, unlike the run's checkpoint: config.json was "
                               "edited; put the checkpoint's values back (a resume keeps a run's settings; another "
                               "run is a new one with --out)")

    def _retune(self, loop: "CheckpointedLoop", changes: dict[str, float]) -> None:
        """Learning rates changed on resume (``loop.learning_rates`` maps each setting to its
        optimizer and cosine scheduler or None): a scheduled lr continues the cosine from the new
        base at the current epoch; config.json takes the value and its ``history`` says when."""
        for key, value in changes.items():
            opt, sched = loop.learning_rates[key]
            for group in opt.param_groups:
                group["initial_lr"] = value
                if sched is None:
                    group["lr"] = value
                    continue
                progress = (1 + math.cos(math.pi * sched.last_epoch / sched.T_max)) / 2
                group["lr"] = sched.eta_min + (value - sched.eta_min) * progress
            if sched is not None:
                sched.base_lrs = [value] * len(opt.param_groups)
                sched._last_lr = [group["lr"] for group in opt.param_groups]  # what get_last_lr() reports
        if changes and self.ctx.is_main:
            self.run.record_change(changes, epoch=loop.epoch, step=loop.step)

    # -- create ---------------------------------------------------------------------------
    def new(self, out: str | Path | None) -> None:
        """A new run into ``out`` (None: a timestamped folder under runs/): refused at once where
        ``out`` holds files."""
        if out is not None:
            RunDir.check_new(out)
        self.out = out

    def create(self, loop: "CheckpointedLoop", name: tuple[str, ...], record: dict[str, Any],
               sources: dict[str, str] | None = None, preset: str | None = None) -> None:
        """The new run's folder, once ``loop`` is built (bad input leaves no folder behind)."""
        from . import distributed as dist

        path = dist.shared_path(self.out or default_run_path(self.kind, *name), self.ctx)
        self._take(RunDir.create(path, self.kind, record, sources, preset) if self.ctx.is_main else RunDir(path))
        dist.barrier(self.ctx)
        loop.run = self.run

    # -- run ------------------------------------------------------------------------------
    def fit(self, loop: "CheckpointedLoop", **status: Any):
        """``loop.fit()``, status.json saying the run is running; a stop is recorded (interrupted
        for Ctrl-C and SIGTERM, failed otherwise, with the epoch reached) before it goes on."""
        if self.ctx.is_main:
            self.run.set_status("running", epoch=loop.epoch, **status)
        try:
            return loop.fit()
        except BaseException as exc:
            exc.run_dir = self.run.path  # so an interrupt can name the folder to resume
            if self.ctx.is_main:
                state = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
                self.run.set_status(state, error=str(exc) or type(exc).__name__, epoch=loop.epoch)
            raise

    def finish(self, **status: Any) -> None:
        if self.ctx.is_main:
            self.run.set_status("finished", **status)


class CheckpointedLoop:
    """What the search loop and the trainer share: saving, restoring progress, closing an epoch.

    Subclasses provide ``run``, ``ctx``, ``cfg``, ``epoch``, ``step``, ``metrics``, ``accum``,
    ``learning_rates``, ``state_dict()``, ``load_state_dict()`` and ``fit()``.
    """

    def save(self) -> None:
        from .checkpoint import save_checkpoint

        if self.run is not None and self.ctx.is_main:
            save_checkpoint(self.state_dict(), self.run.checkpoint)

    def load_parts(self, state: dict[str, Any], parts: dict[str, Any]) -> None:
        """Load each part (module, optimiser, scheduler) from ``state[key]``; a mismatch is a one-line error."""
        missing = sorted(set(parts) - set(state))
        if missing:
            raise RomenasError(f"checkpoint lacks {missing}; it is damaged or not from this kind of run")
        import torch

        for key, part in parts.items():
            if not isinstance(part, torch.nn.Module):  # an optimiser or a schedule: plain fields, checked here
                self._check_fields(key, part.state_dict(), state[key])
        try:
            for key, part in parts.items():
                part.load_state_dict(state[key])
        except (RuntimeError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise RomenasError(f"checkpoint does not fit this run ({str(exc).splitlines()[0]}); "
                               "it belongs to a run with other settings") from None

    def _check_fields(self, key: str, fresh: Any, saved: Any, field: str = "") -> None:
        """``saved`` (an optimiser's or a schedule's state) has the kinds of value ``fresh`` (this
        run's own, before loading) has, field by field: a string where a number belongs would
        load, then crash the first step. A schedule must also span the run's epochs."""
        number = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)
        where = f"{self.run.checkpoint if self.run else 'the checkpoint'}'s {key}{field}"
        if isinstance(fresh, dict) and isinstance(saved, dict):
            for name in sorted(fresh.keys() & saved.keys() - {"state", "params"}):  # tensors, indices: torch's
                self._check_fields(key, fresh[name], saved[name], f"{field}.{name}")
            if "T_max" in fresh and saved.get("T_max") != fresh["T_max"]:
                raise RomenasError(f"{where} schedule spans {shown(saved.get('T_max'))} epochs, the run's settings "
                                   f"{fresh['T_max']}; the checkpoint or config.json was edited: restore it")
            return
        ok = (fresh is None or (isinstance(fresh, bool) and isinstance(saved, bool))
              or (number(fresh) and number(saved) and math.isfinite(saved))
              or (isinstance(fresh, str) and isinstance(saved, str))
              or (isinstance(fresh, (list, tuple)) and isinstance(saved, (list, tuple)) and len(fresh) == len(saved)))
        if not ok:
            raise RomenasError(f"{where} is {shown(saved)}, not a value of its kind ({shown(fresh)}); the checkpoint "
                               "is damaged: resume from checkpoint.pt.prev (rename it) or start the run anew")
        if isinstance(fresh, (list, tuple)):
            for i, (a, b) in enumerate(zip(fresh, saved)):
                self._check_fields(key, a, b, f"{field}[{i}]")

    def diverged(self, what: str, value: float, lower: str) -> RomenasError:
        """The error for a non-finite loss: where it happened, and what to do with or without a checkpoint."""
        became = "the weights became NaN/inf" if what == "weights" else f"the {what} loss became {value}"
        where = f"{became} at epoch {self.epoch + 1}, step {self.step + 1}"
        if self.run is not None and self.run.has_checkpoint():
            return RomenasError(f"{where}; the last good checkpoint is kept in {self.run.path} — lower {lower}, "
                                f"then --resume {self.run.path}")
        return RomenasError(f"{where}, before any checkpoint was written; lower {lower} and start again")

    def check_finite(self, module) -> None:
        """Before an epoch's checkpoint: weights that a last step made non-finite are a divergence,
        not a finished run (the previous checkpoint stays the last good one)."""
        import torch

        if not all(bool(torch.isfinite(p).all()) for p in module.parameters()):
            raise self.diverged("weights", float("nan"), self.lower_hint)

    def show_bars(self) -> bool:
        """Progress bars: only when asked for, on rank 0, and on a terminal (a log file gets
        the per-epoch lines, not carriage-return frames)."""
        return bool(self.cfg.progress and self.ctx.is_main and sys.stderr.isatty())

    def report(self, line: str) -> None:
        """One persistent line per epoch (rank 0), whatever --progress says: bars are optional, results are not."""
        if self.ctx.is_main:
            from tqdm.auto import tqdm

            tqdm.write(line)

    def progress_state(self) -> dict[str, Any]:
        """What a checkpoint records beside the model: the process count and the data it ran on."""
        return {"world": self.ctx.world, "data_fingerprint": self.data_fingerprint}

    def restore_progress(self, state: dict[str, Any]) -> None:
        """Progress (epoch, step, metrics, sums, random states) from a checkpoint, each field checked:
        a resume must continue the run exactly, or say why it cannot."""
        from .checkpoint import restore_rng

        world, data = state.get("world"), state.get("data_fingerprint")
        if world is not None and world != self.ctx.world:
            raise RomenasError(f"the checkpoint was written by {world} process(es), this resume runs {self.ctx.world}; "
                               f"batches are split by process count, so resume with {world} (torchrun "
                               f"--nproc_per_node {world}, or plain romenas for 1)")
        if data is not None and data != self.data_fingerprint:
            raise RomenasError(f"the data of {self.cfg.dataset} changed since this run's checkpoint (fingerprint {data}, "
                               f"now {self.data_fingerprint}); resume cannot be exact: restore the data, or start a new "
                               "run with --out")
        fresh = self.accum
        try:
            metrics, accum = state["metrics"], state["accum"]
            if not (isinstance(metrics, list) and all(isinstance(r, dict) and isinstance(r.get("epoch"), int)
                                                      for r in metrics)):
                raise TypeError("metric rows must be objects with an epoch")
            if not (isinstance(accum, dict) and set(accum) == set(fresh)
                    and all(isinstance(v, (int, float)) for v in accum.values())):
                raise TypeError(f"epoch sums must hold {sorted(fresh)}")
            epoch, step = state["epoch"], state["step"]
            restore_rng(state["rng"])
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise RomenasError(f"checkpoint progress is damaged ({type(exc).__name__}: {exc}); "
                               "it cannot be resumed, start the run anew in another folder") from None
        self._check_position(epoch, step, metrics)
        self.epoch, self.step = epoch, step
        self.metrics, self.accum = list(metrics), dict(accum)

    def _check_position(self, epoch: Any, step: Any, metrics: list) -> None:
        """Where the checkpoint says the run stands, against the run's own epochs and steps: a
        negative or absurd epoch would start the schedule outside itself or never end."""
        whole = lambda v: type(v) is int
        epochs, steps = self.cfg.epochs, self.steps_per_epoch
        if not (whole(epoch) and 0 <= epoch <= epochs and whole(step) and 0 <= step < steps
                and (step == 0 or epoch < epochs) and len(metrics) == epoch):
            raise RomenasError(f"{self.run.checkpoint if self.run else 'the checkpoint'} says epoch {shown(epoch)}, "
                               f"step {shown(step)} with {len(metrics)} epoch row(s), outside this run's {epochs} "
                               f"epochs of {steps} steps; it is damaged: resume from checkpoint.pt.prev (rename it) "
                               "or start the run anew in another folder")

    def close_epoch(self, row: dict[str, Any], fresh_accum: dict[str, float], logger: "ScalarLogger") -> None:
        """Record the epoch's row, move to the next epoch, checkpoint, then publish the metrics (and
        the epochs done in status.json, which a killed run leaves as its last word)."""
        self.metrics.append(row)
        self.epoch, self.step, self.accum = self.epoch + 1, 0, fresh_accum
        self.save()
        if self.run is not None and self.ctx.is_main:
            self.run.write_metrics(self.metrics)
            self.run.set_status("running", epoch=self.epoch)
            logger.log(row, row["epoch"])


class ScalarLogger:
    """TensorBoard scalars of each metrics row's numbers; a no-op if TensorBoard is missing."""

    def __init__(self, run: RunDir, enabled: bool = True):
        self.writer = None
        if enabled:
            try:
                from torch.utils.tensorboard import SummaryWriter
                self.writer = SummaryWriter(str(run.path / "tb"))
            except ImportError:
                pass

    def log(self, row: dict[str, Any], step: int) -> None:
        if self.writer is None:
            return
        for key, value in _flatten(row):
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                self.writer.add_scalar(key, value, step)
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _flatten(row: dict[str, Any], prefix: str = ""):
    for key, value in row.items():
        if isinstance(value, dict):
            yield from _flatten(value, f"{prefix}{key}/")
        else:
            yield f"{prefix}{key}", value
