"""``romenas.search``, ``romenas.train`` and ``romenas.describe``: the run functions with every
argument checked first by the rules the CLI's flags follow (romenas/arguments.py), so a
wrong type is one RomenasError naming the argument before any data is read or network built."""
from __future__ import annotations

import dataclasses
import functools
from importlib import import_module
from typing import Any

from .arguments import coerce, optional_path, shown
from .config import SearchConfig, TrainConfig, coerce_fields, coerce_settings
from .errors import RomenasError
from .search import loop

training = import_module("romenas.train")  # not ``from . import train``: romenas.train is this module's train


def _checked(cls, call: str, config: Any, out: Any, resume: Any, preset: Any,
             overrides: dict[str, Any]) -> tuple[Any, str | None, str | None, str | None, dict[str, Any]]:
    """(config, out, resume, preset, settings) as the run function takes them, or a RomenasError."""
    if config is not None:
        if not isinstance(config, cls):
            raise RomenasError(f"config takes a {cls.__name__}, got {shown(config)}; or pass the settings as "
                               f"keyword arguments: romenas.{call}(epochs=2, ...)")
        given = sorted(k for k, v in overrides.items() if v is not None)
        if given or preset is not None or resume is not None:
            extra = given + (["preset"] if preset is not None else []) + (["resume"] if resume is not None else [])
            raise RomenasError(f"config holds every setting, so {extra} would be ignored; set them in the "
                               f"{cls.__name__}, or drop config")
        config = coerce_fields(dataclasses.replace(config))  # a copy: the caller's config stays as given
    preset = None if preset is None else coerce(preset, str, "preset")
    return (config, optional_path(out, "out"), optional_path(resume, "resume"), preset,
            coerce_settings(cls, overrides))


@functools.wraps(loop.search)
def search(config: SearchConfig | None = None, *, out=None, resume=None, preset=None, **overrides: Any):
    config, out, resume, preset, overrides = _checked(SearchConfig, "search", config, out, resume, preset, overrides)
    return loop.search(config, out=out, resume=resume, preset=preset, **overrides)


@functools.wraps(training.train)
def train(genotype=None, config: TrainConfig | None = None, *, out=None, resume=None, preset=None,
          **overrides: Any):
    config, out, resume, preset, overrides = _checked(TrainConfig, "train", config, out, resume, preset, overrides)
    return training.train(genotype, config, out=out, resume=resume, preset=preset, **overrides)


@functools.wraps(training.describe)
def describe(genotype, config: TrainConfig | None = None, *, preset=None, **overrides: Any):
    config, _, _, preset, overrides = _checked(TrainConfig, "describe", config, None, None, preset, overrides)
    return training.describe(genotype, config, preset=preset, **overrides)
