"""The rules every argument follows, from the CLI, the Python API, a preset or a run's config.json.

A value is taken when its meaning is unambiguous (a ``pathlib.Path`` is a path, ``2.0`` epochs
are 2, ``"3"`` is 3 as on the command line, one string where a list is expected is one item)
and refused otherwise with a one-line RomenasError naming the argument: a bool is no number,
1.5 epochs are no whole number, None is no value where one is required.
"""
from __future__ import annotations

import errno
import math
import numbers
import os
from pathlib import Path
from typing import Any, Iterable

from .errors import RomenasError

_WORDS = {bool: "True or False", int: "a whole number", float: "a number", str: "a string"}


def shown(value: Any) -> str:
    """``value`` for a one-line message: its repr (newlines escaped), cut to 60 characters."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def printable(text: str) -> str:
    """``text`` safe to print: control characters (newlines, terminal escapes, bidi overrides) as
    their escapes, so a class name from a file cannot forge or hide an output line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def coerce(value: Any, kind: type, name: str) -> Any:
    """``value`` as a ``kind`` (bool, int, float or str), or a RomenasError naming ``name``."""
    if value is None:
        raise RomenasError(f"{name} needs {_WORDS[kind]}, got None")
    if kind is bool:
        if isinstance(value, bool) or type(value).__name__ == "bool_":  # numpy's bool too
            return bool(value)
    elif isinstance(value, bool) or type(value).__name__ == "bool_":
        pass  # True is no number of epochs
    elif kind is int:
        if isinstance(value, numbers.Integral):
            return int(value)
        if isinstance(value, numbers.Real) and math.isfinite(value) and float(value).is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
    elif kind is float:
        number = value
        if isinstance(value, str):
            try:
                number = float(value.strip())
            except ValueError:
                number = None
        if isinstance(number, numbers.Real):
            if not math.isfinite(number):
                raise RomenasError(f"{name} must be a finite number, got {shown(value)}")
            return float(number)
    elif kind is str and isinstance(value, str):
        return value
    raise RomenasError(f"{name} takes {_WORDS[kind]}, got {shown(value)}")


def at_least(value: Any, minimum: int, name: str) -> int:
    """A whole number no smaller than ``minimum``."""
    value = coerce(value, int, name)
    if value < minimum:
        raise RomenasError(f"{name} must be at least {minimum}, got {value}")
    return value


def path(value: Any, name: str) -> str:
    """A path as text: a str or any os.PathLike (pathlib.Path); not bytes, not empty, no NUL."""
    text = os.fspath(value) if isinstance(value, os.PathLike) else value
    if not isinstance(text, str):
        raise RomenasError(f"{name} takes a path (a str or pathlib.Path), got {shown(value)}")
    if not text:
        raise RomenasError(f"{name} is an empty path; give a file or folder")
    if "\0" in text:
        raise RomenasError(f"{name} holds a NUL character, which no path can; give a file or folder")
    return text


def optional_path(value: Any, name: str) -> str | None:
    return None if value is None else path(value, name)


def paths(value: Any, name: str) -> list[str]:
    """Several paths: a list or tuple of them, or one path (a single string is one path, never
    its characters)."""
    if isinstance(value, (str, os.PathLike)):
        return [path(value, name)]
    if not isinstance(value, (list, tuple)):
        raise RomenasError(f"{name} takes a list of paths, got {shown(value)}")
    if not value:
        raise RomenasError(f"{name} is empty; give at least one file")
    return [path(v, name) for v in value]


def strings(value: Any, name: str) -> tuple[str, ...]:
    """Several names: a list or tuple of strings, or one string (one item, never its characters)."""
    items: Iterable[Any] = (value,) if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not items:
        raise RomenasError(f"{name} takes a non-empty list of names, got {shown(value)}")
    return tuple(coerce(v, str, name) for v in items)


def expand(value: str | os.PathLike) -> Path:
    """``value`` with a leading ``~`` or ``~user`` expanded; an unknown user is a RomenasError."""
    try:
        return Path(value).expanduser()
    except RuntimeError:  # pathlib: "Could not determine home directory"
        user = str(value).split("/", 1)[0]
        raise RomenasError(f"{user} names no user (or no home folder) on this machine; write the path out in "
                           "full") from None


#: What to do about the errors the system gives for a path.
_OS_FIXES = {errno.ENAMETOOLONG: "use a shorter path", errno.EACCES: "check its permissions or use another path",
             errno.EPERM: "check its permissions or use another path", errno.ENOSPC: "free space or use another disk",
             errno.EROFS: "the disk is read-only: use another path", errno.ENOENT: "check the path",
             errno.ENOTDIR: "a part of the path is a file, not a folder: check the path",
             errno.EISDIR: "that is a folder: give a file"}


def os_error_line(exc: OSError) -> str:
    """A one-line message for an OSError the system raised on a path: what failed, where, the fix."""
    where = exc.filename if exc.filename is not None else exc.filename2
    place = ""
    if where is not None:
        text = os.fsdecode(where) if isinstance(where, bytes) else str(where)
        place = f" {text if len(text) <= 80 else text[:60] + f'... ({len(text)} characters)'}"
    reason = exc.strerror or str(exc) or type(exc).__name__
    return f"cannot use{place}: {reason}; {_OS_FIXES.get(exc.errno, 'check the path and its permissions')}"
