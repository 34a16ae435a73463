"""A trained network's weights as safetensors: loadable without pickle, by any framework.

``model.safetensors`` sits beside the checkpoint of every training run. Its metadata
(JSON strings) carries what inference needs: the genotype, the network settings and the
data spec (classes, input size and channels, augmentation, normalisation).
"""
from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

import torch

from .errors import RomenasError

WEIGHTS_FILE = "model.safetensors"


def save_weights(state: dict[str, torch.Tensor], path: str | Path, metadata: dict[str, Any]) -> None:
    """Write atomically (temp file, rename); ``metadata`` values are stored as JSON."""
    from safetensors import SafetensorError
    from safetensors.torch import save_file

    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tensors = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    try:
        save_file(tensors, str(tmp), metadata={k: json.dumps(v) for k, v in metadata.items()})
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # safetensors writes 0600; the run's other files follow the umask
        os.replace(tmp, path)
    except (OSError, SafetensorError) as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise RomenasError(f"could not write weights {path}: {getattr(exc, 'strerror', None) or exc}; "
                           "free space and rerun") from None


def load_weights(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(state dict, metadata) of a safetensors file, read in one pass; a damaged file is a one-line error."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            state = {k: f.get_tensor(k) for k in f.keys()}
            metadata = {k: json.loads(v) for k, v in (f.metadata() or {}).items()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise RomenasError(f"weights {path} are damaged or not safetensors ({str(exc).splitlines()[0]}); "
                           "retrain, or delete the file to fall back to the checkpoint") from None
    return state, metadata


def trained_weights(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(state dict, metadata) of a training run: its model.safetensors, else its checkpoint."""
    from .checkpoint import load_checkpoint
    from .runs import RunDir

    run = RunDir(path)
    if not run.is_run():
        raise RomenasError(f"{str(run.path)[:80]} is not a romenas run folder (no config.json); pass a training run's folder")
    if run.info()[0] != "train":
        raise RomenasError(f"{run.path} is a search run; train its genotype first (romenas train {run.path}) "
                           "and pass that training run")
    if run.weights_file.exists():
        state, metadata = load_weights(run.weights_file)
    elif run.has_checkpoint():
        saved = load_checkpoint(run.checkpoint, "train")
        state, metadata = saved["net"], {"genotype": saved.get("genotype"), "config": saved.get("config"),
                                         "data": saved.get("data")}
    else:
        raise RomenasError(f"{run.path} has no trained weights yet (no checkpoint); let its training finish "
                           f"an epoch, or continue it with romenas train --resume {run.path}")
    if not all(isinstance(metadata.get(k), dict) for k in ("genotype", "config", "data")):
        raise RomenasError(f"{run.path} was trained before romenas recorded its preprocessing (or its weights "
                           "are damaged); train it again to use it for inference or fine-tuning")
    return state, metadata
