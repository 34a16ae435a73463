"""NAS-Bench-101 lookups from the benchmark's data file, read without TensorFlow.

The file (``nasbench_only108.tfrecord`` or ``nasbench_full.tfrecord``, google-research/nasbench)
is a TFRecord file: records framed as a little-endian uint64 length, a uint32 masked CRC of
it, the payload and a uint32 masked CRC of the payload (the CRCs, CRC32C, are not checked).
Each payload is one training run as JSON: ``[module_hash, epochs, adjacency as a string of
0/1, ops joined by ',', base64 of a serialized ModelMetrics protobuf]``, whose fields this
module decodes by their numbers (``lib/model_metrics.proto``: 1 evaluation_data, 2
trainable_parameters, 3 total_time; each EvaluationData: 1 current_epoch, 2 training_time, 3
train_accuracy, 4 validation_accuracy, 5 test_accuracy, 6 checkpoint_path). A cell is found by
the benchmark's hash of its pruned spec (:meth:`romenas.nb101_spec.NB101Spec.hash`), as the
benchmark's ``api.NASBench.query`` does; the last evaluation of a run is its final one.

Verified here: the hash (a published check value) and this reader on files written in this
format by the tests. Not verified: the real data file, which cannot be had on these machines
(docs/notes/nasbench-1shot1.md, section 6).
"""
from __future__ import annotations

import base64
import binascii
import json
import statistics
import struct
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterator

from ..errors import RomenasError
from ..genotype import Genotype
from ..nb101_spec import NB101Spec

__all__ = ["NB101Table", "read_records", "decode_metrics"]

#: A record larger than this is not a NAS-Bench-101 record (they are a few hundred bytes).
_MAX_RECORD = 1 << 20
_EVALUATION_FIELDS = {1: "current_epoch", 2: "training_time", 3: "train_accuracy", 4: "validation_accuracy",
                      5: "test_accuracy"}


def read_records(path: str | Path) -> Iterator[bytes]:
    """The payloads of a TFRecord file, in file order; a file that is not one is a RomenasError."""
    try:
        f = open(path, "rb")
    except OSError as exc:
        raise RomenasError(f"cannot read NAS-Bench-101 file {path}: {exc.strerror or exc}") from None
    with f:
        while True:
            head = f.read(12)
            if not head:
                return
            if len(head) < 12:
                raise RomenasError(f"{path} ends inside a record; the NAS-Bench-101 file is truncated")
            (length,) = struct.unpack("<Q", head[:8])
            if length > _MAX_RECORD:
                raise RomenasError(f"{path} is not a NAS-Bench-101 TFRecord file (a record claims {length} bytes); "
                                   "pass nasbench_only108.tfrecord or nasbench_full.tfrecord")
            data = f.read(length)
            if len(data) < length or len(f.read(4)) < 4:
                raise RomenasError(f"{path} ends inside a record; the NAS-Bench-101 file is truncated")
            yield data


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise ValueError("bad varint")
        byte = buf[pos]
        value |= (byte & 0x7F) << shift
        pos += 1
        if not byte & 0x80:
            return value, pos
        shift += 7


def _fields(buf: bytes) -> Iterator[tuple[int, Any]]:
    """(field number, value) of a serialized protobuf message: ints, doubles (wire type 1) or bytes."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            if pos + 8 > len(buf):
                raise ValueError("truncated double")
            (value,) = struct.unpack_from("<d", buf, pos)
            pos += 8
        elif wire == 2:
            size, pos = _varint(buf, pos)
            if pos + size > len(buf):
                raise ValueError("truncated bytes")
            value, pos = buf[pos:pos + size], pos + size
        elif wire == 5:
            if pos + 4 > len(buf):
                raise ValueError("truncated float")
            value, pos = struct.unpack_from("<f", buf, pos)[0], pos + 4
        else:
            raise ValueError(f"wire type {wire}")
        yield number, value


def decode_metrics(raw: bytes) -> dict[str, Any]:
    """A serialized ``ModelMetrics``: trainable_parameters, total_time and the evaluations (dicts of
    the EvaluationData fields, in order: start, halfway, final)."""
    out: dict[str, Any] = {"evaluations": []}
    for number, value in _fields(raw):
        if number == 1 and isinstance(value, bytes):
            out["evaluations"].append({_EVALUATION_FIELDS[n]: v for n, v in _fields(value) if n in _EVALUATION_FIELDS})
        elif number == 2 and isinstance(value, int):
            out["trainable_parameters"] = value
        elif number == 3 and isinstance(value, float):
            out["total_time"] = value
    return out


def _accuracies(final: dict[str, Any]) -> bool:
    """Whether a run's final evaluation holds the three accuracies, each a fraction in [0, 1]."""
    values = [final.get(k) for k in ("train_accuracy", "validation_accuracy", "test_accuracy")]
    return all(isinstance(v, float) and 0.0 <= v <= 1.0 for v in values)


class NB101Table:
    """Every run of a NAS-Bench-101 data file, by the cell's hash and training epochs."""

    #: The key of a search's per-epoch lookup in metrics.jsonl.
    name = "nb101"

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.runs: dict[str, dict[int, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
        self.specs: dict[str, NB101Spec] = {}
        for n, payload in enumerate(read_records(self.path)):
            try:
                module_hash, epochs, adjacency, ops, metrics = json.loads(payload)
                side = int(len(adjacency) ** 0.5)
                if side * side != len(adjacency) or isinstance(epochs, bool) or not isinstance(epochs, int):
                    raise ValueError("adjacency")
                run = decode_metrics(base64.b64decode(metrics, validate=True))
                if "trainable_parameters" not in run or not run["evaluations"] or not _accuracies(run["evaluations"][-1]):
                    raise ValueError("metrics")
                if module_hash not in self.specs:
                    matrix = [[int(adjacency[i * side + j]) for j in range(side)] for i in range(side)]
                    self.specs[module_hash] = NB101Spec.build(matrix, ops.split(","))
            except (ValueError, TypeError, AttributeError, UnicodeDecodeError, binascii.Error, KeyError, struct.error,
                    RecursionError, RomenasError):
                raise RomenasError(f"record {n} of {self.path} is not a NAS-Bench-101 run; pass the benchmark's own "
                                   "nasbench_only108.tfrecord or nasbench_full.tfrecord") from None
            self.runs[module_hash][epochs].append(run)
        if not self.runs:
            raise RomenasError(f"{self.path} holds no NAS-Bench-101 runs")

    def lookup(self, spec: NB101Spec, epochs: int = 108) -> dict[str, Any]:
        """The cell's runs at ``epochs``: accuracies in % (the mean over the benchmark's repeats, each
        run's final evaluation), parameters, training seconds, the hash and the stored spec (any
        isomorphic copy). RomenasError where the cell or the epoch budget is not in the file."""
        key = spec.hash()
        if key not in self.runs:
            raise RomenasError(f"cell {key} is not in {self.path.name} (NAS-Bench-101 holds every cell of at most 7 "
                               "vertices and 9 edges; a file built for a subset may lack it)")
        runs = self.runs[key].get(epochs)
        if not runs:
            raise RomenasError(f"{self.path.name} has no {epochs}-epoch runs of cell {key}; it has "
                               f"{sorted(self.runs[key])} epochs")
        finals = [r["evaluations"][-1] for r in runs]
        out: dict[str, Any] = {"hash": key, "epochs": epochs, "repeats": len(runs),
                               "trainable_parameters": runs[0]["trainable_parameters"],
                               "stored": self.specs[key].to_dict()}
        for name in ("train_accuracy", "validation_accuracy", "test_accuracy", "training_time"):
            values = [f[name] for f in finals if name in f]
            if values:
                scale = 1.0 if name == "training_time" else 100.0
                out[name] = scale * statistics.mean(values)
        return out

    def search_row(self, genotype: Genotype, epochs: int = 108) -> dict[str, Any]:
        """What a search logs each epoch for its derived cell: the 108-epoch test and validation
        accuracy (%) and hash, or ``missing`` with the reason (a skip_connect block, more than 9 edges:
        cells the benchmark does not hold, which a 1Shot1 search with skip_connect can derive)."""
        try:
            spec = genotype.nb101_spec()
            found = self.lookup(spec, epochs)
        except RomenasError as exc:
            return {"missing": str(exc)}
        return {k: found[k] for k in ("test_accuracy", "validation_accuracy", "hash") if k in found}

