"""Published cells by name (facts from the papers), and resolving any genotype spec to a
Genotype: a published name, a JSON/DARTS/NAS-Bench-201 string, a file or a run folder."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

from .arguments import shown
from .genotype import MAX_SPEC_BYTES, Genotype, GenotypeError, parse_darts_string, parse_nb201_string
from .registry import FAMILIES

_DARTS_STRINGS = {
    "DARTS_V1": "Genotype(normal=[('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 0), ('sep_conv_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 0), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('avg_pool_3x3', 0)], reduce_concat=[2, 3, 4, 5])",
    "DARTS_V2": "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])",
    "GDAS": "Genotype(normal=[('skip_connect', 0), ('skip_connect', 1), ('skip_connect', 0), ('sep_conv_5x5', 2), ('sep_conv_3x3', 3), ('skip_connect', 0), ('sep_conv_5x5', 4), ('sep_conv_3x3', 3)], normal_concat=[2, 3, 4, 5], reduce=[('sep_conv_5x5', 0), ('sep_conv_3x3', 1), ('sep_conv_5x5', 2), ('sep_conv_5x5', 1), ('dil_conv_5x5', 2), ('sep_conv_3x3', 1), ('sep_conv_5x5', 0), ('sep_conv_5x5', 1)], reduce_concat=[2, 3, 4, 5])",
    "PC_DARTS": "Genotype(normal=[('sep_conv_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 0), ('dil_conv_3x3', 1), ('sep_conv_5x5', 0), ('sep_conv_3x3', 1), ('avg_pool_3x3', 0), ('dil_conv_3x3', 1)], normal_concat=[2, 3, 4, 5], reduce=[('sep_conv_5x5', 1), ('max_pool_3x3', 0), ('sep_conv_5x5', 1), ('sep_conv_5x5', 2), ('sep_conv_3x3', 0), ('sep_conv_3x3', 3), ('sep_conv_3x3', 1), ('sep_conv_3x3', 2)], reduce_concat=[2, 3, 4, 5])",
    "P_DARTS": "Genotype(normal=[('skip_connect', 0), ('dil_conv_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('sep_conv_3x3', 3), ('sep_conv_3x3', 0), ('dil_conv_5x5', 4)], normal_concat=[2, 3, 4, 5], reduce=[('avg_pool_3x3', 0), ('sep_conv_5x5', 1), ('sep_conv_3x3', 0), ('dil_conv_5x5', 2), ('max_pool_3x3', 0), ('dil_conv_3x3', 1), ('dil_conv_3x3', 1), ('dil_conv_5x5', 3)], reduce_concat=[2, 3, 4, 5])",
}
_NB201_STRINGS = {
    "NB201_OPTIMUM": "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|",
    "NB201_ALL_SKIP": "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|",
}

PUBLISHED: dict[str, Genotype] = {
    **{name: parse_darts_string(s) for name, s in _DARTS_STRINGS.items()},
    **{name: parse_nb201_string(s) for name, s in _NB201_STRINGS.items()},
}


def lookup_published(name: str) -> Genotype | None:
    """Case- and dash-insensitive: 'pc-darts' finds PC_DARTS."""
    return PUBLISHED.get(name.strip().upper().replace("-", "_"))


_WHAT_TO_GIVE = ("give a run folder, a genotype JSON file, a DARTS 'Genotype(...)' or NAS-Bench-201 "
                 "'|op~0|+...' string, a NAS-Bench-101 spec {\"matrix\": [[...]], \"ops\": [...]}, "
                 f"or one of {sorted(PUBLISHED)}")


def parse_genotype(text: str) -> Genotype:
    """Parse any text form (JSON, DARTS string, NAS-Bench-201 string) or a published name."""
    if not isinstance(text, str):
        raise GenotypeError(f"a genotype spec is text, got {shown(text)}; {_WHAT_TO_GIVE}")
    text = text.strip()
    if not text:
        raise GenotypeError(f"the genotype spec is empty; {_WHAT_TO_GIVE}")
    if lookup_published(text) is not None:
        return lookup_published(text)
    if text.startswith("{"):  # the JSON form, every family's
        return Genotype.from_json(text)
    for family in FAMILIES.values():  # each family's own form (registry.CellFamily.text)
        form = family.text_form()
        if text.startswith(form.prefix):
            return form.parse(text)
    raise GenotypeError(f"not a genotype: {text[:60]!r}; {_WHAT_TO_GIVE}")


def load_genotype(spec: "str | Path | Genotype | Mapping") -> Genotype:
    """A genotype from a Genotype, its dict (JSON form), a run folder, a file (JSON or text), a
    string or a published name. A Path is a file or folder, never a spec."""
    if isinstance(spec, Genotype):
        return spec
    if isinstance(spec, Mapping):
        return Genotype.from_dict(spec)
    if not isinstance(spec, (str, os.PathLike)):
        raise GenotypeError(f"a genotype spec is text, a path, a Genotype or its dict, got {shown(spec)}; "
                            f"{_WHAT_TO_GIVE}")
    text = os.fspath(spec)
    if not isinstance(text, str) or not text.strip():
        raise GenotypeError(f"the genotype spec is empty; {_WHAT_TO_GIVE}")
    path = _existing_path(text)
    if path is None and isinstance(spec, os.PathLike):
        raise GenotypeError(f"genotype file {text[:200]} does not exist; give an existing file or run folder")
    return parse_genotype(_read_spec_file(path) if path is not None else text)


def _existing_path(text: str) -> Path | None:
    """The genotype file ``text`` names (a run folder's genotype.json), or None when it names
    nothing. A genotype string is no path: testing it as one raises (a 400-character DARTS
    line is too long a file name, a NUL byte is invalid), which means "not a path"."""
    path = Path(text)
    try:
        if not path.exists():
            return None
        if path.is_dir():
            path = path / "genotype.json"
            if not path.exists():
                raise GenotypeError(f"{text} has no genotype.json yet; finish or resume its search first")
    except (OSError, ValueError):
        return None
    return path


def _read_spec_file(path: Path) -> str:
    """At most MAX_SPEC_BYTES: a wrong path (/dev/zero, a dataset archive) must not fill memory."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_SPEC_BYTES + 1)
    except OSError as exc:
        raise GenotypeError(f"cannot read genotype file {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_SPEC_BYTES:
        raise GenotypeError(f"{path} is larger than {MAX_SPEC_BYTES:,} bytes, not a genotype file; "
                            f"{_WHAT_TO_GIVE}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise GenotypeError(f"{path} is not UTF-8 text, not a genotype file; {_WHAT_TO_GIVE}") from None
    if not text.strip():
        raise GenotypeError(f"genotype file {path} is empty; write the genotype's JSON or string into it")
    return text
