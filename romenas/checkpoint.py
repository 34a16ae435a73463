"""Checkpoints: written atomically, loaded safely, carrying every RNG state.

A save writes ``NAME.tmp``, fsyncs it, moves the current checkpoint to ``NAME.prev``
and renames the new file into place, so a crash at any instant leaves at least one
complete checkpoint. Loading uses ``torch.load(weights_only=True)``: tensors and plain
containers only, so a crafted file cannot run code.
"""
from __future__ import annotations

import contextlib
import errno
import os
import random
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import RomenasError

FORMAT_VERSION = 1


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save_checkpoint(state: dict[str, Any], path: str | Path) -> None:
    """Write atomically (temp file, fsync, rename); the previous checkpoint is kept as ``.prev``."""
    path = Path(path)
    tmp, prev = path.with_name(path.name + ".tmp"), path.with_name(path.name + ".prev")
    payload = {"format": FORMAT_VERSION, **state}
    try:
        with open(tmp, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        if path.exists():
            os.replace(path, prev)
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except (OSError, RuntimeError) as exc:  # torch.save reports a write error (EFBIG, ...) as RuntimeError
        with contextlib.suppress(OSError):  # a read-only folder refuses the cleanup too
            tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            reason = "the disk is full" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc))
        else:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise RomenasError(f"could not write checkpoint {path}: {reason}; the last good checkpoint is kept — "
                           f"free space, then continue with --resume {path.parent}") from None


def _load_one(path: Path) -> dict[str, Any]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt, truncated or crafted: all refused the same way
        raise RomenasError(f"checkpoint {path} is corrupt, truncated or not a romenas checkpoint "
                           f"({type(exc).__name__})") from None
    if not isinstance(state, dict) or not isinstance(state.get("format"), int):
        raise RomenasError(f"{path} is not a romenas checkpoint (no integer 'format' field)")
    if state["format"] > FORMAT_VERSION:
        raise RomenasError(f"checkpoint {path} has format {state['format']}, newer than this romenas reads "
                           f"({FORMAT_VERSION}); upgrade romenas")
    return state


def load_checkpoint(path: str | Path, kind: str, space: str | None = None) -> dict[str, Any]:
    """The newest readable checkpoint at ``path`` (or its ``.prev``), checked to be of this kind and space."""
    path = Path(path)
    prev = path.with_name(path.name + ".prev")
    candidates = [p for p in (path, prev) if p.exists()]
    if not candidates:
        raise RomenasError(f"no checkpoint at {path}; the run has not finished a checkpoint yet — start it anew")
    error = None
    for candidate in candidates:
        try:
            state = _load_one(candidate)
        except RomenasError as exc:
            error = exc
            continue
        if candidate is not path and path.exists():
            print(f"romenas: warning: {path} is unreadable; resuming from the previous checkpoint {candidate}",
                  file=sys.stderr)
        if state.get("kind") != kind:
            raise RomenasError(f"checkpoint {candidate} belongs to a {state.get('kind')} run, not a {kind} run")
        if space is not None and state.get("space") != space:
            raise RomenasError(f"checkpoint {candidate} is from space {state.get('space')!r}, "
                               f"not {space!r}; resume it with its own run folder")
        return state
    if len(candidates) > 1:
        raise RomenasError(f"both checkpoints of {path.parent} ({path.name}, {prev.name}) are unreadable: {error}; "
                           "the run cannot be resumed, start it anew in another folder")
    raise error


# ---- random number generators --------------------------------------------------------------
def capture_rng() -> dict[str, Any]:
    """Python, NumPy, torch CPU and CUDA generator states, as tensors and plain containers."""
    np_state = np.random.get_state()
    state = {"python": random.getstate(),
             "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                       "has_gauss": int(np_state[3]), "gauss": float(np_state[4])},
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
