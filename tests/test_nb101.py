"""NAS-Bench-101 cells: pruning, the benchmark's hash and parameter counts, and its data file read without TF."""
import base64
import json
import struct

import pytest
import torch

from romenas.bench.nb101 import NB101Table, decode_metrics
from romenas.cli import main
from romenas.errors import RomenasError
from romenas.nb101_spec import NB101Spec, vertex_channels
from romenas.spaces.nb101 import NB101Network

C3, C1, MP = "conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3"
#: The spec of the benchmark's README/example.py and an isomorphic copy its data file stores for it.
INCEPTION = NB101Spec.build([[0, 1, 1, 1, 0, 1, 0], [0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 1],
                             [0, 0, 0, 0, 1, 0, 0], [0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 1], [0] * 7],
                            ["input", C1, C3, C3, C3, MP, "output"])
INCEPTION_STORED = NB101Spec.build([[0, 1, 1, 1, 1, 0, 0], [0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 1],
                                    [0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 1, 0], [0, 0, 0, 0, 0, 0, 1], [0] * 7],
                                   ["input", C3, C1, MP, C3, C3, "output"])


def _params(spec):
    return sum(p.numel() for p in NB101Network(spec, 10).parameters())


def _chain(n):
    matrix = [[int(j == i + 1) for j in range(n)] for i in range(n)]
    return NB101Spec.build(matrix, ["input"] + [C3] * (n - 2) + ["output"])


def test_published_parameter_count_and_hash():
    """NASBench.ipynb: 2,694,282 trainable parameters; unified_functional_hashing's evaluator_test: the hash.
    The stored isomorphic copy has the same count and hash (the hash ignores vertex order)."""
    for spec in (INCEPTION, INCEPTION_STORED):
        assert _params(spec) == 2_694_282
        assert spec.hash() == "28cfc7874f6d200472e1a9dcd8650aa0"


def test_parameter_counts_follow_the_benchmarks_builder():
    """Computed with the benchmark's rules (docs/notes/nasbench-1shot1.md, 24): one conv3x3 vertex, the
    same with input -> output added (a projection), and a chain of five conv3x3 vertices."""
    assert _params(_chain(3)) == 10_177_674
    with_input = NB101Spec.build([[0, 1, 1], [0, 0, 1], [0, 0, 0]], ["input", C3, "output"])
    assert _params(with_input) == 11_051_402
    assert _params(_chain(7)) == 47_358_090


def test_vertex_channels_split_the_output_as_the_benchmark_does():
    """nasbench/tests/model_builder_test.py's cases."""
    diamond = [[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]]
    assert vertex_channels(8, 8, diamond) == [8, 4, 4, 8]
    assert vertex_channels(8, 15, diamond) == [8, 8, 7, 15]
    branches = [[0, 1, 1, 1, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 1], [0, 0, 0, 0, 1], [0] * 5]
    assert vertex_channels(8, 8, branches) == [8, 3, 3, 2, 8]


def test_pruning_drops_vertices_off_every_input_output_path():
    dangling = NB101Spec.build([[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0], [0, 0, 0, 0]],
                               ["input", C3, MP, "output"])  # vertex 2 feeds nothing
    assert dangling.pruned() == NB101Spec.build([[0, 1, 0], [0, 0, 1], [0, 0, 0]], ["input", C3, "output"])
    assert dangling.hash() == _chain(3).hash()
    cut = NB101Spec.build([[0, 1, 0], [0, 0, 0], [0, 0, 0]], ["input", C3, "output"])
    assert cut.pruned() is None
    with pytest.raises(RomenasError, match="does not connect its input to its output"):
        cut.hash()
    out = NB101Network(INCEPTION, 10)(torch.zeros(2, 3, 28, 28))  # odd sides after pooling: 28 -> 14 -> 7
    assert out.shape == (2, 10)


@pytest.mark.parametrize("matrix, ops, message", [
    ([[0, 1], [1, 0]], ["input", "output"], "strictly upper triangular"),
    ([[0, 2], [0, 0]], ["input", "output"], "0 or 1"),
    ([[0, 0.5], [0, 0]], ["input", "output"], "0 or 1"),
    ([[0, 1], [0, 0]], ["output", "input"], "starts with 'input'"),
    ([[0, 1, 0], [0, 0, 1], [0, 0, 0]], ["input", "sep_conv_3x3", "output"], "is not one of"),
    ([[0, 1], [0, 0]], ["input"], "one op per vertex"),
    ("nope", [], "a NAS-Bench-101 spec is"),
])
def test_bad_specs_are_one_line(matrix, ops, message):
    with pytest.raises(RomenasError, match=message):
        NB101Spec.build(matrix, ops)


def test_a_cell_needs_a_channel_per_vertex_feeding_its_output():
    """vertex_channels splits the output's channels: 4 vertices feeding it cannot share 3."""
    fan = NB101Spec.build([[0, 1, 1, 1, 1, 0], [0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 1],
                           [0, 0, 0, 0, 0, 1], [0] * 6], ["input", C3, C3, C3, C3, "output"])
    assert vertex_channels(4, 4, fan.matrix) == [4, 1, 1, 1, 1, 4]
    with pytest.raises(RomenasError, match="splits its 3 output channels over the 4 vertices.*--channels 4"):
        NB101Network(fan, 10, stem_channels=3)
    with pytest.raises(RomenasError, match="0 or 1"):
        NB101Spec.build([[0, True], [0, 0]], ["input", "output"])  # a boolean is not an entry


def test_cells_outside_the_benchmark_are_named():
    with pytest.raises(RomenasError, match="at most 7 vertices and 9 edges"):
        _chain(8).hash()
    skip = NB101Spec.build([[0, 1, 0], [0, 0, 1], [0, 0, 0]], ["input", "skip_connect", "output"],
                           interior_ops=(C3, C1, MP, "skip_connect"))
    with pytest.raises(RomenasError, match="skip_connect has no entry"):
        skip.hash()


# -- the data file ---------------------------------------------------------------------------------
def _varint(value):
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _metrics(params, finals):
    """A serialized ModelMetrics with three evaluations (start, halfway, final), as the benchmark writes it."""
    body = b""
    for epoch, (train, valid, test) in zip((0.0, 54.0, 108.0), [(0.1, 0.1, 0.1), (0.5, 0.5, 0.5), finals]):
        evaluation = b"".join(_varint(k << 3 | 1) + struct.pack("<d", v)
                              for k, v in zip(range(1, 6), (epoch, 100.0 * epoch, train, valid, test)))
        evaluation += _varint(6 << 3 | 2) + _varint(4) + b"ckpt"
        body += _varint(1 << 3 | 2) + _varint(len(evaluation)) + evaluation
    return body + _varint(2 << 3) + _varint(params) + _varint(3 << 3 | 1) + struct.pack("<d", 1234.5)


def _record(payload: bytes) -> bytes:
    return struct.pack("<Q", len(payload)) + b"\0" * 4 + payload + b"\0" * 4  # CRCs are not checked


def _write_table(path, cells):
    with open(path, "wb") as f:
        for spec, epochs, finals in cells:
            for final in finals:
                raw = base64.b64encode(_metrics(2_694_282, final)).decode()
                payload = [spec.hash(), epochs, "".join(str(v) for r in spec.matrix for v in r), ",".join(spec.ops),
                           raw]
                f.write(_record(json.dumps(payload).encode()))


def test_the_data_file_is_read_without_tensorflow(tmp_path):
    """A file in the benchmark's format (TFRecord framing, JSON payload, ModelMetrics protobuf): the
    lookup finds the stored isomorphic copy by hash and averages the repeats' final evaluations."""
    table = tmp_path / "nb101.tfrecord"
    repeats = [(1.0, 0.93, 0.92), (1.0, 0.94, 0.93), (1.0, 0.95, 0.94)]
    _write_table(table, [(INCEPTION_STORED, 108, repeats), (_chain(3), 108, [(0.9, 0.8, 0.7)]),
                         (_chain(3), 36, [(0.8, 0.7, 0.6)])])
    found = NB101Table(table).lookup(INCEPTION)
    assert found["hash"] == "28cfc7874f6d200472e1a9dcd8650aa0" and found["repeats"] == 3
    assert found["test_accuracy"] == pytest.approx(93.0) and found["validation_accuracy"] == pytest.approx(94.0)
    assert found["trainable_parameters"] == 2_694_282 and found["stored"] == INCEPTION_STORED.to_dict()
    assert NB101Table(table).lookup(_chain(3), 36)["test_accuracy"] == pytest.approx(60.0)
    with pytest.raises(RomenasError, match="no 12-epoch runs"):
        NB101Table(table).lookup(_chain(3), 12)
    with pytest.raises(RomenasError, match="is not in"):
        NB101Table(table).lookup(_chain(4))
    metrics = decode_metrics(_metrics(7, (1.0, 0.5, 0.25)))
    assert metrics["trainable_parameters"] == 7 and metrics["total_time"] == 1234.5
    assert [e["current_epoch"] for e in metrics["evaluations"]] == [0.0, 54.0, 108.0]


def test_files_that_are_not_the_benchmarks_are_one_line(tmp_path):
    bad = tmp_path / "bad.tfrecord"
    bad.write_bytes(b"\xff" * 64)
    with pytest.raises(RomenasError, match="not a NAS-Bench-101 TFRecord file"):
        NB101Table(bad)
    good = tmp_path / "good.tfrecord"
    _write_table(good, [(_chain(3), 108, [(0.9, 0.8, 0.7)])])
    truncated = tmp_path / "truncated.tfrecord"
    truncated.write_bytes(good.read_bytes()[:-7])
    with pytest.raises(RomenasError, match="truncated"):
        NB101Table(truncated)
    spec = _chain(3)
    matrix = "".join(str(v) for r in spec.matrix for v in r)

    def run(epochs, finals):
        return json.dumps([spec.hash(), epochs, matrix, ",".join(spec.ops),
                           base64.b64encode(_metrics(1, finals)).decode()]).encode()

    for payload in (b"not json", json.dumps(["h", 108, "0110", "input,output", "%%%"]).encode(),
                    json.dumps(["h", 108, "0120", "input,output", ""]).encode(), json.dumps([1, 2]).encode(),
                    b"[" * 100_000 + b"]" * 100_000,  # nesting too deep for the JSON reader
                    run(True, (0.9, 0.8, 0.7)),  # epochs must be an integer, not a boolean
                    run(108, (0.9, float("nan"), 0.7)), run(108, (0.9, 0.8, -5.0)), run(108, (0.9, 0.8, float("inf"))),
                    json.dumps([spec.hash(), 108, matrix, ",".join(spec.ops),  # a final evaluation without accuracies
                                base64.b64encode(_varint(1 << 3 | 2) + _varint(0) + _varint(2 << 3) + _varint(1))
                                .decode()]).encode()):
        junk = tmp_path / "junk.tfrecord"
        junk.write_bytes(_record(payload))
        with pytest.raises(RomenasError, match="record 0 of .* is not a NAS-Bench-101 run"):
            NB101Table(junk)
    empty = tmp_path / "empty.tfrecord"
    empty.write_bytes(b"")
    with pytest.raises(RomenasError, match="holds no NAS-Bench-101 runs"):
        NB101Table(empty)


def test_bench_nb101_command(tmp_path, capsys):
    table = tmp_path / "nb101.tfrecord"
    _write_table(table, [(INCEPTION_STORED, 108, [(1.0, 0.94, 0.93)])])
    spec = json.dumps(INCEPTION.to_dict())
    assert main(["bench", "nb101", spec, "--table", str(table)]) == 0
    out = capsys.readouterr().out
    assert "28cfc7874f6d200472e1a9dcd8650aa0" in out and "2,694,282" in out and "test 93.00%" in out
    (tmp_path / "spec.json").write_text(spec)
    assert main(["bench", "nb101", str(tmp_path / "spec.json")]) == 0
    for bad in ('{"matrix": [[0, 1], [0, 0]]}', "missing.json", '{"matrix": [[0, 1], [1, 0]], "ops": ["input", "output"]}'):
        assert main(["bench", "nb101", bad]) == 2
    assert main(["bench", "nb101", spec, "--table", str(tmp_path / "none.tfrecord")]) == 2
    assert "cannot read NAS-Bench-101 file" in capsys.readouterr().err


def test_a_1shot1_search_looks_its_cell_up_each_epoch(tmp_path, capsys):
    """--nb101-table: each epoch's derived cell is found by its pruned spec's hash; a cell the benchmark
    cannot hold (a skip_connect block) is logged as missing, with the reason, not a failed search."""
    from romenas import search
    from romenas.bench.nb101 import NB101Table
    from romenas.genotype import Genotype

    from conftest import TINY_SEARCH

    settings = {**TINY_SEARCH, "space": "1shot1-s1", "layers": 1, "epochs": 1, "limit_train": 64}
    first = search(out=tmp_path / "first", **settings)
    spec = NB101Spec.build(**first.genotype.to_nb101()).pruned()
    table = tmp_path / "nb101.tfrecord"
    _write_table(table, [(spec, 108, [(1.0, 0.91, 0.90), (1.0, 0.93, 0.92)])])
    again = search(out=tmp_path / "again", nb101_table=str(table), **settings)
    assert again.genotype == first.genotype
    found = again.metrics[-1]["nb101"]
    assert found["test_accuracy"] == pytest.approx(91.0) and found["hash"] == spec.hash()
    assert main(["show", str(tmp_path / "again")]) == 0 and "NB101:    test 91.00" in capsys.readouterr().out
    skip = Genotype.build("nb101", {"cell": [[("skip_connect", 0)]]}, {"cell": [1]})
    assert "skip_connect has no entry" in NB101Table(table).search_row(skip)["missing"]
    with pytest.raises(RomenasError, match="--nb101-table looks NAS-Bench-101 cells up, but the space is nb201"):
        search(out=tmp_path / "wrong", nb101_table=str(table), **{**settings, "space": "nb201"})
