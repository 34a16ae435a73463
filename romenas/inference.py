"""A trained network, used: predict images, evaluate on a labelled folder.

:class:`TrainedModel` loads a training run (its safetensors weights and the preprocessing
recorded with them) and sees every new image as training saw its test images: same channels,
size, crop and normalisation.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from .config import TrainConfig, from_dict
from .data import DataBundle, FileImages, build_transform, decode_image, epoch_loader
from .data.sources import fit_size, labelled_files
from .errors import RomenasError
from .genotype import Genotype
from .spaces import network_for
from .weights import trained_weights


@dataclass
class TrainedModel:
    net: nn.Module
    genotype: Genotype
    config: TrainConfig
    spec: dict[str, Any]     # classes, image_size, in_channels, augment, mean, std
    path: Path

    @classmethod
    def load(cls, run: str | Path) -> "TrainedModel":
        state, metadata = trained_weights(run)
        genotype = Genotype.from_dict(metadata["genotype"])
        config = from_dict(TrainConfig, metadata["config"])
        spec = metadata["data"]
        net = network_for(genotype, config, len(spec["classes"]), spec["in_channels"])
        try:
            net.load_state_dict(state)
        except RuntimeError as exc:
            raise RomenasError(f"weights of {run} do not fit its genotype and settings "
                               f"({str(exc).splitlines()[0]}); they are damaged, train again") from None
        return cls(net.eval(), genotype, config, spec, Path(run))

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
        """The ``topk`` classes and probabilities of each image file."""
        if topk < 1:
            raise RomenasError(f"--topk must be at least 1, got {topk}")
        k = min(topk, len(self.classes))
        transform, results = self.transform(), []
        for start in range(0, len(images), 256):  # bounded memory for any number of files
            chunk = images[start:start + 256]
            probs, idx = self.probabilities(torch.stack([transform(decode_image(p)) for p in chunk])).topk(k, dim=1)
            results += [{"image": str(p), "top": [{"class": self.classes[i], "probability": float(q)}
                                                  for q, i in zip(pr.tolist(), ix.tolist())]}
                        for p, pr, ix in zip(chunk, probs, idx)]
        return results

    def evaluate(self, folder: str | Path, batch_size: int = 256, workers: int | None = None) -> dict[str, Any]:
        """Top-1/top-5, per-class accuracy and the confusion matrix on a labelled folder.

        The folder's test/ (or val/) split is used when it has one, else all of its class folders;
        its classes must be among the trained ones (matched by name)."""
        root = Path(folder).expanduser()
        split = next((root / s for s in ("test", "val", "train") if (root / s).is_dir()), root)
        names, files = labelled_files(split)
        unknown = sorted(set(names) - set(self.classes))
        if unknown:
            raise RomenasError(f"{split} has class folder(s) {unknown} the network was not trained on; its classes "
                               f"are {self.classes}; evaluate on a folder with those class folders")
        index = {name: self.classes.index(name) for name in names}
        resize = self.spec["augment"] != "resized-crop"
        source = FileImages([f for f, _ in files], [index[names[c]] for _, c in files],
                            self.spec["image_size"] if resize else None)
        bundle = DataBundle(root.name, source, None, self.classes, self.spec["augment"], self.spec["image_size"], 3)
        loader = epoch_loader(bundle, "train", self.transform(), batch_size, seed=0, train=False, workers=workers)
        n = len(self.classes)
        confusion = torch.zeros(n, n, dtype=torch.long)
        top5_hits, k = 0, min(5, n)
        for x, y in loader:
            probs = self.probabilities(x)
            top = probs.topk(k, dim=1).indices
            top5_hits += int((top == y[:, None]).any(1).sum())
            confusion += torch.bincount(y * n + top[:, 0], minlength=n * n).view(n, n)
        seen = int(confusion.sum())
        per_class = {self.classes[c]: {"images": int(confusion[c].sum()),
                                       "accuracy": 100.0 * int(confusion[c, c]) / int(confusion[c].sum())}
                     for c in range(n) if confusion[c].sum() > 0}
        return {"folder": str(split), "images": seen, "top1": 100.0 * int(confusion.diag().sum()) / seen,
                "top5": 100.0 * top5_hits / seen, "top5_k": k, "per_class": per_class, "classes": self.classes,
                "confusion": confusion.tolist()}


def evaluate_run(run: str | Path, folder: str | Path, batch_size: int = 256) -> tuple[dict[str, Any], list[Path]]:
    """Evaluate a training run on ``folder``; the report (JSON) and confusion matrix (PNG) go to
    RUN/evaluations/. Returns the report and the files written."""
    from .runs import RunDir
    from .viz import plot_confusion

    if batch_size < 1:
        raise RomenasError(f"--batch-size must be at least 1, got {batch_size}")
    model = TrainedModel.load(run)
    report = model.evaluate(folder, batch_size)
    out = Path(run) / "evaluations"
    try:
        out.mkdir(exist_ok=True)
    except OSError as exc:
        raise RomenasError(f"cannot write the evaluation into {out} ({exc.strerror or exc}); "
                           "check the run folder's permissions") from None
    name = Path(folder).expanduser().resolve().name or "folder"
    json_path = out / f"{name}.json"
    RunDir(run).write_json(json_path, report)
    return report, [json_path, plot_confusion(report["confusion"], report["classes"], out / f"{name}-confusion.png")]
