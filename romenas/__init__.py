"""romenas: ROME (robust, memory-efficient differentiable NAS) with GDAS and DARTS baselines.

Pipeline: data -> search space (supernet + genotype) -> sampler -> search algorithm ->
derive -> train from scratch -> evaluate / benchmark. The torch-backed parts of the API
(search, train, describe, TrainedModel) are imported on first use, so reading configs,
genotypes and run folders (``romenas show``, ``derive``, ``--help``) starts fast.
"""
import sys
import types
from importlib import import_module
from typing import Any

from .config import SearchConfig, TrainConfig
from .errors import RomenasError
from .genotype import Genotype
from .published import load_genotype, parse_genotype
from .version import __version__

__all__ = ["search", "SearchResult", "train", "TrainResult", "describe", "SearchConfig", "TrainConfig", "Genotype",
           "load_genotype", "parse_genotype", "TrainedModel", "RomenasError", "sweep", "SweepResult", "__version__"]

_LAZY = {"search": "romenas.api", "SearchResult": "romenas.search.loop", "train": "romenas.api",
         "TrainResult": "romenas.train", "describe": "romenas.api", "TrainedModel": "romenas.inference",
         "sweep": "romenas.sweep", "SweepResult": "romenas.sweep"}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'romenas' has no attribute {name!r}")
    value = getattr(import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


class _Package(types.ModuleType):
    """``romenas.search`` is the API function; importing the ``romenas.search`` subpackage (which
    Python records as an attribute of its parent) must not replace it."""

    def __setattr__(self, name: str, value: Any) -> None:
        if not (name in _LAZY and isinstance(value, types.ModuleType)):
            super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
