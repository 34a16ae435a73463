"""A trained network, used: predict images, evaluate on a labelled folder.

:class:`TrainedModel` loads a training run (its safetensors weights and the preprocessing
recorded with them) and sees every new image as training saw its test images: same channels,
size, crop and normalisation.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from .arguments import at_least, coerce, expand, optional_path, path, paths
from .config import MAX_CLASSES, MAX_IMAGE_SIZE, TrainConfig, from_dict
from .data import DataBundle, FileImages, build_transform, decode_image, epoch_loader
from .data.sources import fit_size, labelled_files
from .errors import RomenasError
from .genotype import Genotype
from .registry import get_family
from .spaces import network_for
from .weights import trained_weights


def check_spec(spec: Any, where: str) -> dict[str, Any]:
    """The preprocessing stored with trained weights, checked field by field (weights files are
    untrusted input): class names, image size, channels, augmentation, mean and std."""
    from .data import AUGMENTS

    def number_list(value, n):
        return (isinstance(value, list) and len(value) == n
                and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value))

    problem = None
    if not isinstance(spec, dict):
        problem = "it is not an object"
    elif not (isinstance(spec.get("classes"), list) and 2 <= len(spec["classes"]) <= MAX_CLASSES
              and all(isinstance(c, str) for c in spec["classes"])):
        problem = f"'classes' must be a list of 2 to {MAX_CLASSES:,} names"
    elif len(set(spec["classes"])) < len(spec["classes"]):
        twice = next(c for i, c in enumerate(spec["classes"]) if c in spec["classes"][:i])
        problem = f"'classes' names {twice!r} twice"
    elif not (isinstance(spec.get("image_size"), int) and not isinstance(spec["image_size"], bool)
              and 0 < spec["image_size"] <= MAX_IMAGE_SIZE):
        problem = "'image_size' must be a side in pixels"
    elif spec.get("in_channels") not in (1, 3) or isinstance(spec.get("in_channels"), bool):
        problem = "'in_channels' must be 1 or 3"
    elif spec.get("augment") not in AUGMENTS:
        problem = f"'augment' must be one of {list(AUGMENTS)}"
    elif not number_list(spec.get("mean"), spec["in_channels"]):
        problem = f"'mean' must be {spec['in_channels']} finite number(s)"
    elif not (number_list(spec.get("std"), spec["in_channels"]) and all(v > 0 for v in spec["std"])):
        problem = f"'std' must be {spec['in_channels']} positive number(s)"
    if problem:
        raise RomenasError(f"the preprocessing stored with the weights of {where} is damaged ({problem}); "
                           "train the network again")
    return spec


def _network_fitting(state: Any, genotype: Genotype, config: TrainConfig, spec: dict[str, Any], run: str) -> nn.Module:
    """The network the weights' metadata describes, loaded with them. The metadata is untrusted:
    it could claim thousands of channels, so the network is laid out on the meta device (no
    memory) and its shapes compared with the tensors before the real one is built."""
    def damaged(reason: str) -> RomenasError:
        return RomenasError(f"the weights of {run} do not fit its genotype and settings ({reason}); the file is "
                            f"damaged: delete model.safetensors (a checkpoint rewrites it: romenas train --resume "
                            f"{run}) or train again")

    if not (isinstance(state, dict) and all(isinstance(v, torch.Tensor) for v in state.values())):
        raise damaged("not a dict of tensors")
    # Every family's network has at least ``layers`` cells (cells.<i>) and a tensor C wide: bounds
    # from the file itself, so even the layout's time stays within the file's own scale.
    family = get_family(genotype.family)
    channels, layers = config.channels or family.channels, config.layers or family.layers
    cells = {k.split(".")[1] for k in state if k.startswith("cells.")}
    widest = max((max(v.shape, default=0) for v in state.values()), default=0)
    if layers > len(cells) or channels > widest:
        raise damaged(f"the settings claim C={channels} and {layers} layers, the file holds {len(cells)} cells and "
                      f"no tensor wider than {widest}")
    shape = (genotype, config, len(spec["classes"]), spec["in_channels"])
    try:
        with torch.device("meta"):
            layout = {k: tuple(v.shape) for k, v in network_for(*shape).state_dict().items()}
    except RomenasError as exc:  # a size beyond the flags' bounds
        raise damaged(str(exc).split(";")[0]) from None
    held = {k: tuple(v.shape) for k, v in state.items()}
    if layout != held:
        key = next(k for k in sorted(layout.keys() | held.keys()) if layout.get(k) != held.get(k))
        raise damaged(f"{key}: the settings need {layout.get(key, 'no such tensor')}, the file holds "
                      f"{held.get(key, 'none')}")
    net = network_for(*shape)
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:  # shapes fit, values do not (a dtype that cannot be copied)
        raise damaged(str(exc).splitlines()[0]) from None
    return net


@dataclass
class TrainedModel:
    net: nn.Module
    genotype: Genotype
    config: TrainConfig
    spec: dict[str, Any]     # classes, image_size, in_channels, augment, mean, std
    path: Path

    @classmethod
    def load(cls, run: str | Path) -> "TrainedModel":
        run = path(run, "run")
        state, metadata = trained_weights(run)
        genotype = Genotype.from_dict(metadata["genotype"])
        try:
            config = from_dict(TrainConfig, metadata["config"]).validate()
        except (TypeError, ValueError, AttributeError, RomenasError) as exc:
            reason = exc if isinstance(exc, RomenasError) else type(exc).__name__
            raise RomenasError(f"the settings stored with the weights of {run} are damaged ({reason}); "
                               "train the network again") from None
        spec = check_spec(metadata["data"], str(run))
        if config.image_size is not None and config.image_size != spec["image_size"]:
            raise RomenasError(f"the weights of {run} claim images of {spec['image_size']} pixels, their settings "
                               f"{config.image_size}; the file is damaged: train the network again")
        return cls(_network_fitting(state, genotype, config, spec, run).eval(), genotype, config, spec, Path(run))

    @property
    def classes(self) -> list[str]:
        return self.spec["classes"]

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return self.spec["in_channels"], self.spec["image_size"], self.spec["image_size"]

    def transform(self):
        """uint8 ``[1 or 3, H, W]`` (any size) -> the network's normalised input ``[C, S, S]``."""
        channels, size, _ = self.input_shape
        evaluation = build_transform(self.spec["augment"], size, self.spec["mean"], self.spec["std"], train=False)
        resize = self.spec["augment"] != "resized-crop"  # resized-crop resizes and centre-crops itself

        def apply(image: torch.Tensor) -> torch.Tensor:
            from torchvision.transforms.v2.functional import rgb_to_grayscale

            if channels == 1 and image.shape[0] == 3:
                image = rgb_to_grayscale(image)
            elif channels == 3 and image.shape[0] == 1:
                image = image.expand(3, -1, -1)
            return evaluation(fit_size(image, size if resize else None))

        return apply

    @torch.no_grad()
    def probabilities(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.net(x).float(), dim=1)

    def predict(self, images: Sequence[str | Path], topk: int = 5) -> list[dict[str, Any]]:
        """The ``topk`` classes and probabilities of each image file (one path: that one image)."""
        images, k = paths(images, "images"), min(at_least(topk, 1, "topk"), len(self.classes))
        odd = [p for p in images if not Path(p).is_file()]
        if odd:  # a pipe or a device would block the read; a folder is not an image
            raise RomenasError(f"{odd[0]} is not an image file (missing, a folder or not a regular file); pass image files")
        transform, results = self.transform(), []
        for start in range(0, len(images), 256):  # bounded memory for any number of files
            chunk = images[start:start + 256]
            probs, idx = self.probabilities(torch.stack([transform(decode_image(p)) for p in chunk])).topk(k, dim=1)
            results += [{"image": str(p), "top": [{"class": self.classes[i], "probability": float(q)}
                                                  for q, i in zip(pr.tolist(), ix.tolist())]}
                        for p, pr, ix in zip(chunk, probs, idx)]
        return results

    def evaluate(self, dataset: str | Path, batch_size: int = 256, workers: int | None = None,
                 data_dir: str | None = None, download: bool = False, progress: bool = False) -> dict[str, Any]:
        """Top-1/top-5, per-class accuracy and the confusion matrix on labelled images.

        ``dataset`` is a folder (its test/ or val/ split when it has one, else its train/ split
        or its own class folders, which the report's ``note`` says) or a built-in dataset's test
        split ('digits', 'cifar10', ...). Its classes must be among the trained ones (matched by name)."""
        dataset, batch_size = path(dataset, "dataset"), at_least(batch_size, 1, "batch_size")
        workers = None if workers is None else at_least(workers, 0, "workers")
        data_dir, download = optional_path(data_dir, "data_dir"), coerce(download, bool, "download")
        progress = coerce(progress, bool, "progress")
        source, names, where, note = self._labelled(dataset, data_dir, download)
        unknown = sorted(set(names) - set(self.classes))
        if unknown:
            raise RomenasError(f"{where} has class folder(s) {unknown} the network was not trained on; its classes "
                               f"are {self.classes}; evaluate on a folder with those class folders")
        source.labels = [self.classes.index(names[c]) for c in source.labels]
        bundle = DataBundle(where, source, None, self.classes, self.spec["augment"], self.spec["image_size"], 3)
        loader = epoch_loader(bundle, "train", self.transform(), batch_size, seed=0, train=False, workers=workers)
        n = len(self.classes)
        confusion = torch.zeros(n, n, dtype=torch.long)
        top5_hits, k = 0, min(5, n)
        from tqdm.auto import tqdm

        for x, y in tqdm(loader, desc="evaluate", leave=False, disable=not progress):
            probs = self.probabilities(x)
            top = probs.topk(k, dim=1).indices
            top5_hits += int((top == y[:, None]).any(1).sum())
            confusion += torch.bincount(y * n + top[:, 0], minlength=n * n).view(n, n)
        seen = int(confusion.sum())
        per_class = {self.classes[c]: {"images": int(confusion[c].sum()),
                                       "accuracy": 100.0 * int(confusion[c, c]) / int(confusion[c].sum())}
                     for c in range(n) if confusion[c].sum() > 0}
        return {"folder": where, "images": seen, "top1": 100.0 * int(confusion.diag().sum()) / seen,
                "top5": 100.0 * top5_hits / seen, "top5_k": k, "per_class": per_class, "classes": self.classes,
                "confusion": confusion.tolist(), **({"note": note} if note else {})}

    def _labelled(self, dataset: str | Path, data_dir: str | None, download: bool):
        """(source with labels indexing ``names``, names, what it is, a note or None)."""
        from .data import BUILTIN, load_data

        root = expand(dataset)
        if str(dataset).lower() in BUILTIN and not root.exists():
            data = load_data(str(dataset).lower(), data_dir, download, None, None, None, self.spec["augment"])
            size = self.spec["image_size"] if self.spec["augment"] != "resized-crop" else None
            return data.test.resized(size), list(data.classes), f"{str(dataset).lower()} (test split)", None
        split = next((root / s for s in ("test", "val") if (root / s).is_dir()), None)
        note = None
        if split is None:
            split = root / "train" if (root / "train").is_dir() else root
            note = (f"{root} has no test/ or val/ split: these are its {'train/ ' if split != root else ''}images, "
                    "which a network trained on them has seen")
        names, files = labelled_files(split)
        resize = self.spec["augment"] != "resized-crop"
        source = FileImages([f for f, _ in files], [c for _, c in files], self.spec["image_size"] if resize else None)
        return source, names, str(split), note


#: Classes beyond which the confusion matrix is not drawn (the figure grows with the square of the
#: class count; ImageNet's 1,000 would need gigabytes). The JSON report always holds it.
MAX_DRAWN_CLASSES = 60


def evaluate_run(run: str | Path, dataset: str | Path, batch_size: int = 256, data_dir: str | None = None,
                 download: bool = False, progress: bool = False) -> tuple[dict[str, Any], list[Path]]:
    """Evaluate a training run on ``dataset`` (see :meth:`TrainedModel.evaluate`); the report (JSON)
    and, up to :data:`MAX_DRAWN_CLASSES` classes, the confusion matrix (PNG) go to RUN/evaluations/
    under a name of their own per dataset (two folders of one name do not replace each other's
    report). Returns the report and the files written."""
    import hashlib

    from .runs import RunDir
    from .viz import plot_confusion

    model = TrainedModel.load(run)
    report = model.evaluate(dataset, batch_size, data_dir=data_dir, download=download, progress=progress)
    out = Path(run) / "evaluations"
    try:
        out.mkdir(exist_ok=True)
    except OSError as exc:
        raise RomenasError(f"cannot write the evaluation into {out} ({exc.strerror or exc}); "
                           "check the run folder's permissions") from None
    resolved = expand(dataset).resolve()
    digest = hashlib.sha256(str(resolved).encode("utf-8", "surrogateescape")).hexdigest()[:6]
    name = f"{resolved.name or 'folder'}-{digest}" if resolved.exists() else str(dataset).lower()
    json_path = out / f"{name}.json"
    RunDir(run).write_json(json_path, report)
    written = [json_path]
    if len(report["classes"]) <= MAX_DRAWN_CLASSES:
        written.append(plot_confusion(report["confusion"], report["classes"], out / f"{name}-confusion.png"))
    return report, written
