"""Export a trained network to ONNX or TorchScript, checked against PyTorch on real images.

ONNX uses PyTorch's torch.export-based exporter at opset 18 with a dynamic batch axis. The
file is checked with ``onnx.checker``, run in onnxruntime, and its outputs compared with
PyTorch's on a batch of the run's own test images (random inputs when that dataset is not at
hand). The largest absolute difference must stay within 1e-4. TorchScript is traced, saved,
reloaded and compared the same way. ONNX needs the optional extra ``pip install -e ".[export]"``.
"""
from __future__ import annotations

import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch

from .errors import RomenasError
from .inference import TrainedModel

OPSET = 18
TOLERANCE = 1e-4
FORMATS = ("onnx", "torchscript")


def probe_batch(model: TrainedModel, count: int = 8) -> tuple[torch.Tensor, str]:
    """Up to ``count`` of the run's test images, preprocessed; random inputs if its data is not at hand."""
    from .data import load_data

    cfg = model.config
    try:
        data = load_data(cfg.dataset, cfg.data_dir, False, None, count, cfg.image_size, cfg.augment)
        source = data.test or data.train
        transform = model.transform()
        images = [transform(source.read(j)) for j in range(min(count, len(source)))]
        return torch.stack(images), f"{len(images)} test images of {cfg.dataset}"
    except RomenasError:
        g = torch.Generator().manual_seed(0)
        return torch.randn(count, *model.input_shape, generator=g), f"{count} random inputs ({cfg.dataset} not found)"


def _require_onnx():
    try:
        import onnx
        import onnxruntime
        import onnxscript  # noqa: F401  (the torch.export-based exporter needs it)
    except ImportError as exc:
        raise RomenasError(f"ONNX export needs the export extra ({exc.name} is missing); "
                           "pip install -e \".[export]\"") from None
    return onnx, onnxruntime


def metadata(model: TrainedModel) -> dict[str, str]:
    """What a deployment needs beside the weights, as text (ONNX metadata_props, TorchScript extra
    files): classes, input shape, the normalisation the network expects, the genotype."""
    from .version import __version__

    return {"romenas_version": __version__, "classes": json.dumps(model.classes),
            "input_shape": json.dumps(list(model.input_shape)), "mean": json.dumps(model.spec["mean"]),
            "std": json.dumps(model.spec["std"]), "genotype": model.genotype.to_string(),
            "preprocessing": f"pixels scaled to [0, 1], resized to {model.input_shape[1]}x{model.input_shape[2]}, "
                             "then (x - mean) / std per channel; the output is logits (softmax for probabilities)"}


def export_onnx(model: TrainedModel, out: Path, probe: torch.Tensor) -> float:
    """Write ``out`` with :func:`metadata` in its metadata_props; returns the largest
    |ONNX - PyTorch| output difference on ``probe``."""
    onnx, ort = _require_onnx()
    batch = torch.export.Dim("batch", min=1, max=4096)
    try:
        program = torch.onnx.export(model.net, (probe,), dynamo=True, opset_version=OPSET, input_names=["images"],
                                    output_names=["logits"], dynamic_shapes=({0: batch},), verbose=False)
        program.save(str(out))
    except Exception as exc:  # the exporter's errors are long; the first line says what failed
        raise RomenasError(f"ONNX export failed ({type(exc).__name__}: {str(exc).splitlines()[0]})") from None
    proto = onnx.load(str(out))
    for key, value in metadata(model).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(out))
    try:
        onnx.checker.check_model(onnx.load(str(out)), full_check=True)
    except onnx.checker.ValidationError as exc:
        raise RomenasError(f"the exported ONNX file fails onnx.checker ({str(exc).splitlines()[0]}); not kept. "
                           "Please report this with the run folder") from None
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = torch.from_numpy(session.run(None, {"images": probe.numpy()})[0])
    with torch.no_grad():
        return float((got - model.net(probe)).abs().max())


def export_torchscript(model: TrainedModel, out: Path, probe: torch.Tensor) -> float:
    """A traced TorchScript file (deprecated upstream in favour of torch.export; kept for C++ and mobile users)."""
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore", FutureWarning)
        traced = torch.jit.trace(model.net, probe)
        torch.jit.save(traced, str(out), _extra_files={f"romenas/{k}": v for k, v in metadata(model).items()})
        reloaded = torch.jit.load(str(out))
    with torch.no_grad():
        return float((reloaded(probe) - model.net(probe)).abs().max())


def export(run: str | Path, fmt: str = "onnx", out: str | Path | None = None) -> dict[str, Any]:
    """Export a training run's network. The file is written beside its target and moves into place only
    once it agrees with PyTorch, with the mode the run's other files have; an existing file (``out``
    or the default) is never overwritten."""
    from .arguments import optional_path

    if fmt not in FORMATS:
        raise RomenasError(f"unknown export format {fmt!r}; use one of {list(FORMATS)}")
    model, out = TrainedModel.load(run), optional_path(out, "out")  # load checks run is a path
    path = Path(out) if out else Path(run) / ("model.onnx" if fmt == "onnx" else "model.torchscript.pt")
    if path.parent and not path.parent.is_dir():
        raise RomenasError(f"folder {path.parent} for --out does not exist; create it or pass another --out")
    if path.exists():
        raise RomenasError(f"{'--out ' if out else ''}{path} already exists; remove it or pass another --out")
    probe, described = probe_batch(model)
    # Written under a name of its own (never a user's file), checked, then moved into place.
    try:
        handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise RomenasError(f"cannot write into {path.parent} ({exc.strerror or exc}); pass another --out") from None
    os.close(handle)
    tmp = Path(tmp)
    try:
        difference = (export_onnx if fmt == "onnx" else export_torchscript)(model, tmp, probe)
        if not difference <= TOLERANCE:
            raise RomenasError(f"the {fmt} export differs from PyTorch by {difference:.2e} (> {TOLERANCE:g}) on "
                               f"{described}; not kept. Please report this with the run folder")
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; the run's other files follow the umask
        os.replace(tmp, path)
    except (OSError, RuntimeError) as exc:  # a full disk: torch.jit.save reports it as RuntimeError
        reason = getattr(exc, "strerror", None) or str(exc).splitlines()[0]
        raise RomenasError(f"could not write {path} ({reason}); nothing was kept: free space or pass another "
                           "--out") from None
    finally:
        tmp.unlink(missing_ok=True)
    return {"file": str(path), "format": fmt, "opset": OPSET if fmt == "onnx" else None,
            "max_abs_difference": difference, "checked_on": described, "input": ["batch", *model.input_shape],
            "classes": model.classes, "metadata": metadata(model)}
