"""NAS-Bench-201 lookups from the accuracy table (CSV) or, when installed, the NATS-Bench API.

A cell answers with its own row's accuracies, as xautodl's ``query_by_arch`` and the
papers report them. Cells that compute the same function (same isomorphism key) were
trained separately by the benchmark and differ slightly, so the class's canonical row
(the first of the class in table order) is returned beside it (``canonical``, ``class``).
"""
from __future__ import annotations

import csv
from functools import lru_cache
from pathlib import Path

from ..errors import RomenasError
from ..genotype import Genotype
from ..published import load_genotype

COLUMNS = {"cifar10": "CIFAR10TestAccuracy200Epochs", "cifar100": "CIFAR100TestAccuracy200Epochs",
           "imagenet16-120": "ImageNetTestAccuracy200Epochs"}


class NB201Table:
    def __init__(self, path: str | Path):
        path = Path(path)
        if path.suffix.lower() != ".csv":
            self._nats = _nats_api(path)
            return
        self._nats = None
        try:  # as spreadsheets save it too: a UTF-8 BOM, CRLF lines, ';' or tab between fields
            with open(path, newline="", encoding="utf-8-sig") as f:
                header = f.readline()
                f.seek(0)
                delimiter = max(",;\t", key=header.count)
                rows = list(csv.DictReader(f, delimiter=delimiter))
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise RomenasError(f"cannot read NAS-Bench-201 table {path}: {getattr(exc, 'strerror', None) or exc}; "
                               "pass the CSV exported from NATS-Bench") from None
        needed = {"ArchitectureString", *COLUMNS.values()}
        found = {str(k).strip() for k in rows[0]} if rows else set()
        if not rows or not needed <= found:
            missing = sorted(needed - found) if rows else sorted(needed)
            raise RomenasError(f"{path} is not a NAS-Bench-201 table: it lacks the column(s) {missing} (it has "
                               f"{sorted(found)[:8]}); export the table with the columns {sorted(needed)}")
        self.acc, self.key, first = {}, {}, {}
        for line, row in enumerate(rows, start=2):
            row = {str(k).strip(): v for k, v in row.items()}
            accuracies = _accuracies(row, path, line)
            arch = str(row.get("ArchitectureString") or "").strip()
            if not arch:
                raise RomenasError(f"{path} line {line} has no ArchitectureString; the table is damaged, export it again")
            if arch in self.acc and self.acc[arch] != accuracies:  # which row would a lookup mean?
                raise RomenasError(f"{path} lists {arch} twice with other accuracies (lines {first[arch]} and {line}); "
                                   "the table is damaged or merged from two: keep one row per architecture")
            first.setdefault(arch, line)
            self.acc[arch] = accuracies
            self.key[arch] = row.get("UniqueString") or arch  # without an isomorphism key, a cell is its own class
        self.canonical: dict[str, str] = {}
        for arch, key in self.key.items():
            self.canonical.setdefault(key, arch)

    #: The key of a search's per-epoch lookup in metrics.jsonl.
    name = "nb201"

    @classmethod
    @lru_cache(maxsize=4)
    def load(cls, path: str) -> "NB201Table":
        return cls(path)

    def search_row(self, genotype: Genotype) -> dict[str, float]:
        """What a search logs each epoch for its derived cell: the test accuracy (%) per dataset."""
        found = self.lookup(genotype)
        return {k: found[k] for k in ("cifar10", "cifar100", "imagenet16-120")}

    def __len__(self) -> int:
        return len(self.acc)

    def lookup(self, arch: "str | Genotype") -> dict:
        """{'arch', 'cifar10', 'cifar100', 'imagenet16-120' (the cell's own row, %), 'canonical' (its
        isomorphism class's first row), 'class' ({dataset: accuracy} of that row)} for a cell."""
        genotype = _benchmark_cell(load_genotype(arch))
        text = genotype.to_string()  # canonical: each node's edges sorted by input, as the table writes them
        if self._nats is not None:
            found = _nats_lookup(self._nats, text)
            return {"arch": text, "canonical": text, **found, "class": found}
        if text not in self.acc:
            raise RomenasError(f"{text} is not in the NAS-Bench-201 table ({len(self):,} cells of the "
                               f"benchmark's 15,625); export the whole table from NATS-Bench")
        canonical = self.canonical[self.key[text]]
        return {"arch": text, **self.acc[text], "canonical": canonical, "class": self.acc[canonical]}


def _benchmark_cell(genotype: Genotype) -> Genotype:
    """The genotype if the benchmark holds cells like it (its nodes and ops); otherwise an
    error naming what differs, rather than a failed lookup."""
    from ..spaces.nb201 import NB201_OPS, NUM_NODES  # the benchmark's cell is the space's (imported when used)

    if genotype.family != "nb201":
        raise RomenasError("NAS-Bench-201 lookups need a NAS-Bench-201 cell (|op~0|+|op~0|op~1|+...)")
    nodes = len(genotype.cells["cell"])
    if nodes != NUM_NODES:
        raise RomenasError(f"NAS-Bench-201 cells have {NUM_NODES} nodes after the input "
                           f"(|op~0|+|op~0|op~1|+|op~0|op~1|op~2|); this one has {nodes}")
    genotype.validate(allowed_ops=NB201_OPS)
    return genotype


def _accuracies(row: dict, path: Path, line: int) -> dict[str, float]:
    """A row's three accuracies, each a number in [0, 100]; a short or damaged row is a one-line error."""
    try:  # a spreadsheet in a comma-decimal locale writes 93,5
        values = {k: float(str(row[c]).strip().replace(",", ".")) for k, c in COLUMNS.items()}
    except (TypeError, ValueError):
        raise RomenasError(f"{path} line {line}: the accuracies {[row.get(c) for c in COLUMNS.values()]} are not "
                           "all numbers; the table is damaged, export it again") from None
    if not all(0.0 <= v <= 100.0 for v in values.values()):
        raise RomenasError(f"{path} line {line}: accuracies {list(values.values())} lie outside 0-100")
    return values


def _nats_api(path: Path):
    try:
        from nats_bench import create
    except ImportError:
        raise RomenasError(f"{path} is not a .csv table, and reading NATS-Bench files needs "
                           "'pip install nats_bench'") from None
    return create(str(path), "tss", fast_mode=True, verbose=False)


def _nats_lookup(api, text: str) -> dict:
    index = api.query_index_by_arch(text)
    names = {"cifar10": "cifar10", "cifar100": "cifar100", "imagenet16-120": "ImageNet16-120"}
    return {k: float(api.get_more_info(index, d, hp="200", is_random=False)["test-accuracy"])
            for k, d in names.items()}
