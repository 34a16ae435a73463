"""Bad input by kind: genotype specs that are not paths, NAS-Bench-201 edge orders, concat
lists, tiny temperatures and untrusted specs. Each is read correctly or refused in one line
(a RomenasError naming the problem and the fix); none crashes, hangs or is misread."""
import contextlib
import itertools
import json
import signal

import pytest
import torch
import torch.nn.functional as F

from romenas.bench import NB201Table
from romenas.cli import main
from romenas.errors import RomenasError
from romenas.genotype import MAX_NODES, MAX_SPEC_BYTES, Genotype
from romenas.published import PUBLISHED, load_genotype, parse_genotype
from romenas.sampling import EdgeIndex, gumbel_max_st, gumbel_topk_edges_st
from romenas.topology import GumbelPairs
from romenas.spaces.base import cell_edges

#: DARTS_V2 as DARTS' train logs print it: 416 characters, too long a name for a path test.
DARTS_V2_LINE = (
    "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
    "('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], "
    "normal_concat=range(2, 6), reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), "
    "('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], "
    "reduce_concat=range(2, 6))")
DARTS = PUBLISHED["DARTS_V2"].to_string()
NB = PUBLISHED["NB201_OPTIMUM"].to_string()
PAIR = "('sep_conv_3x3', 0), ('sep_conv_3x3', 1)"


def _refusal(call, *args) -> str:
    """The message of the RomenasError ``call(*args)`` raises: one short line."""
    with pytest.raises(RomenasError) as info:
        call(*args)
    message = str(info.value)
    assert "\n" not in message and len(message) < 400, message
    return message


def _cli_refusal(spec, capsys) -> str:
    assert main(["derive", str(spec)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("romenas: error: "), err
    return err


@contextlib.contextmanager
def _deadline(seconds: int):
    """Fail instead of hanging: SIGALRM interrupts a loop that waits forever."""
    def expire(*_):
        raise TimeoutError(f"no answer within {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _table(tmp_path, *cells: str) -> NB201Table:
    path = tmp_path / "table.csv"
    rows = "".join(f"90,70,40,{cell},k{i}\n" for i, cell in enumerate(cells))
    path.write_text("CIFAR10TestAccuracy200Epochs,CIFAR100TestAccuracy200Epochs,ImageNetTestAccuracy200Epochs,"
                    "ArchitectureString,UniqueString\n" + rows)
    return NB201Table(path)


# ---- 1. "a file or a spec": the path test never crashes ---------------------------------
@pytest.mark.parametrize("spec, name", [
    pytest.param(DARTS_V2_LINE, "DARTS_V2", id="darts-line-416-chars"),
    pytest.param(DARTS_V2_LINE.replace("), (", "),\n ("), "DARTS_V2", id="darts-line-pasted-over-lines"),
    pytest.param(PUBLISHED["GDAS"].to_json(), "GDAS", id="json-line"),
    pytest.param(" " * 300 + "pc-darts", "PC_DARTS", id="padded-name"),
    pytest.param(NB + " " * 300, "NB201_OPTIMUM", id="padded-nb201"),
])
def test_long_specs_are_specs_not_paths(spec, name, capsys):
    assert load_genotype(spec) == PUBLISHED[name]
    assert main(["derive", spec]) == 0
    assert capsys.readouterr().out.strip() == PUBLISHED[name].to_string()


@pytest.mark.parametrize("spec", [
    pytest.param("x" * 5000, id="5000-char-name"),
    pytest.param("a/" * 3000, id="longer-than-PATH_MAX"),
    pytest.param("GDAS\0", id="NUL-byte"),
])
def test_unusable_paths_are_not_a_genotype(spec, capsys):
    assert "not a genotype" in _refusal(load_genotype, spec)
    assert "not a genotype" in _cli_refusal(spec, capsys)


# ---- 2. NAS-Bench-201: one parser, one canonical form -------------------------------------
CANONICAL = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
_NODE2 = ["nor_conv_3x3~0", "avg_pool_3x3~1"]
_NODE3 = ["skip_connect~0", "nor_conv_3x3~1", "nor_conv_1x1~2"]
ORDERS = [f"|nor_conv_3x3~0|+|{'|'.join(a)}|+|{'|'.join(b)}|"
          for a, b in itertools.product(itertools.permutations(_NODE2), itertools.permutations(_NODE3))]


@pytest.mark.parametrize("text", ORDERS)
def test_nb201_edge_orders_parse_to_one_canonical_form(text, tmp_path):
    genotype = parse_genotype(text)
    assert genotype.to_string() == CANONICAL
    assert genotype == parse_genotype(CANONICAL)
    edges = [[[op, int(i)] for op, i in (e.split("~") for e in node.strip("|").split("|"))] for node in text.split("+")]
    assert Genotype.from_dict({"family": "nb201", "cells": {"cell": edges}}) == genotype  # JSON too
    found = _table(tmp_path, CANONICAL).lookup(text)
    assert found["arch"] == CANONICAL and found["cifar10"] == 90.0


BROKEN_NB201 = [
    pytest.param("|nor_conv_3x3~0|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|", "a node before it is missing",
                 id="missing-node"),
    pytest.param("|nor_conv_3x3~0|++|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|", "node 2 is empty",
                 id="empty-node"),
    pytest.param(CANONICAL + "+", "node 4 is empty", id="trailing-plus"),
    pytest.param("|nor_conv_3x3~0|+|nor_conv_3x3~1|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|",
                 "takes input 1 twice", id="duplicated-input"),
    pytest.param("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~2|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|",
                 "takes input 2, which is not an earlier node", id="input-not-earlier"),
    pytest.param("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~2|",
                 "lacks [1]", id="input-left-out"),
]


@pytest.mark.parametrize("text, message", BROKEN_NB201)
def test_broken_nb201_cells_are_refused_naming_the_problem(text, message, tmp_path):
    assert message in _refusal(parse_genotype, text)
    lookup = _refusal(_table(tmp_path, CANONICAL).lookup, text)
    assert message in lookup and "not in the NAS-Bench-201 table" not in lookup


@pytest.mark.parametrize("arch, message", [
    pytest.param("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|", "this one has 2",
                 id="two-node-cell"),
    pytest.param(CANONICAL.replace("avg_pool_3x3", "sep_conv_3x3"), "op 'sep_conv_3x3' is not in the space",
                 id="darts-op"),
    pytest.param("DARTS_V2", "need a NAS-Bench-201 cell", id="darts-cell"),
    pytest.param(NB, "not in the NAS-Bench-201 table (1 cells", id="valid-but-absent"),
])
def test_nb201_lookup_says_why_a_cell_is_not_found(arch, message, tmp_path):
    assert message in _refusal(_table(tmp_path, CANONICAL).lookup, arch)


# ---- 3. concat lists: only what the network can build -------------------------------------
BAD_CONCATS = [
    pytest.param("reduce", [0, 1, 2, 3, 4, 5], "reduce_concat includes 0, a cell input", id="cell-inputs"),
    pytest.param("normal", [1, 2], "normal_concat includes 1, a cell input", id="one-cell-input"),
    pytest.param("normal", [], "normal_concat is empty", id="empty"),
    pytest.param("normal", [2, 3, 3, 5], "normal_concat lists node 3 twice", id="duplicate"),
    pytest.param("reduce", [2, 6], "reduce_concat includes 6, not a node of the cell", id="past-the-last-node"),
    pytest.param("normal", [-1, 2], "normal_concat includes -1, not a node of the cell", id="negative"),
]


@pytest.mark.parametrize("kind, concat, message", BAD_CONCATS)
def test_unbuildable_concat_lists_are_refused(kind, concat, message):
    data = PUBLISHED["DARTS_V2"].to_dict()
    data["concat"][kind] = concat
    text = DARTS.replace(f"{kind}_concat=[2, 3, 4, 5]", f"{kind}_concat={concat}")
    for call, spec in ((Genotype.from_dict, data), (parse_genotype, text), (parse_genotype, json.dumps(data))):
        refusal = _refusal(call, spec)
        assert message in refusal and "distinct intermediate nodes 2..5, e.g. [2, 3, 4, 5]" in refusal


@pytest.mark.parametrize("concat", [[2, 5], [5, 3, 2], range(2, 6)])
def test_buildable_concat_lists_round_trip(concat):
    genotype = parse_genotype(DARTS.replace("normal_concat=[2, 3, 4, 5]", f"normal_concat={concat}"))
    assert genotype.concat["normal"] == tuple(concat)
    assert parse_genotype(genotype.to_string()) == genotype == parse_genotype(genotype.to_json())


@pytest.mark.parametrize("concat, ok", [([1, 2, 3], True), ([3], False), ([0, 1, 2, 3], False), ([], False)])
def test_nb201_concat_is_fixed(concat, ok):
    data = {**PUBLISHED["NB201_OPTIMUM"].to_dict(), "concat": {"cell": concat}}
    if ok:
        assert Genotype.from_dict(data) == PUBLISHED["NB201_OPTIMUM"]
    else:
        assert "its concat is always [1, 2, 3]" in _refusal(Genotype.from_dict, data)


# ---- 4. temperatures: no draw is retried, so none waits forever ---------------------------
INDEX = EdgeIndex(cell_edges(2, 4))
TINY_TAUS = [1e-30, 1e-45, 1e-300, 0.0]


def _logits(seed: int, shape, dtype=torch.float32) -> torch.Tensor:
    logits = torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype) * 50
    return logits.requires_grad_()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("tau", TINY_TAUS)
def test_gumbel_max_at_tiny_tau_is_prompt_one_hot_and_finite(tau, dtype):
    g = torch.Generator().manual_seed(0)
    with _deadline(20):
        for seed in range(20):
            logits = _logits(seed, (6, 8), dtype)
            index, weights = gumbel_max_st(logits, tau, g)
            assert torch.isfinite(weights).all()
            assert torch.equal(weights.detach(), F.one_hot(index, 8).to(weights.dtype))
            (weights * torch.arange(8.0)).sum().backward()
            assert torch.isfinite(logits.grad).all()


@pytest.mark.parametrize("tau", TINY_TAUS)
def test_gumbel_top2_at_tiny_tau_is_prompt_exact_and_finite(tau):
    g = torch.Generator().manual_seed(0)
    with _deadline(20):
        for seed in range(20):
            beta = _logits(seed, (INDEX.num_edges,))
            on, weights = gumbel_topk_edges_st(beta, INDEX, 2, tau, g)
            assert all(int(on[edges].sum()) == 2 for edges in INDEX.node_edges)
            assert torch.isfinite(weights).all() and torch.equal(weights.detach(), on.float())
            weights.sum().backward()
            assert torch.isfinite(beta.grad).all()
            pairs = GumbelPairs(cell_edges(2, 4), 2)
            on, weights = pairs.sample(_logits(seed, (pairs.num_params,)), tau, g)
            assert all(int(on[edges].sum()) == 2 for edges in INDEX.node_edges)
            assert torch.isfinite(weights).all()


@pytest.mark.parametrize("tau", TINY_TAUS)
def test_tau_changes_the_relaxation_not_the_sample(tau):
    logits = _logits(0, (6, 8))
    with _deadline(20):
        index, _ = gumbel_max_st(logits, 1.0, torch.Generator().manual_seed(3))
        tiny_index, _ = gumbel_max_st(logits, tau, torch.Generator().manual_seed(3))
        on, _ = gumbel_topk_edges_st(logits.flatten()[:14], INDEX, 2, 1.0, torch.Generator().manual_seed(4))
        tiny_on, _ = gumbel_topk_edges_st(logits.flatten()[:14], INDEX, 2, tau, torch.Generator().manual_seed(4))
    assert torch.equal(index, tiny_index) and torch.equal(on, tiny_on)


# ---- 5. untrusted specs: one strict reader with size limits -------------------------------
def _nested_json(depth: int) -> str:
    return '{"family": "darts", "cells": ' + "[" * depth + "]" * depth + "}"


def _nb201_of(nodes: int) -> str:
    return "+".join("|" + "|".join(f"none~{i}" for i in range(j)) + "|" for j in range(1, nodes + 1))


def _json(cells, family="nb201", **extra) -> str:
    return json.dumps({"family": family, "cells": cells, **extra})


EDGE_IS = '{"family": "nb201", "cells": {"cell": [[["none", %s]]]}}'
ASCII_ONLY = "write it as op~input with the input in ASCII digits"
UNTRUSTED_TEXT = [
    pytest.param(NB.replace("~2", "~²"), ASCII_ONLY, id="nb201-superscript"),
    pytest.param(NB.replace("~0", "~٠"), ASCII_ONLY, id="nb201-arabic-zero"),
    pytest.param(NB.replace("~2", "~" + "1" * 5000), "a 5,000-digit number", id="nb201-5000-digits"),
    pytest.param(DARTS.replace("('dil_conv_3x3', 2)", "('dil_conv_3x3', " + "7" * 5000 + ")"),
                 "a 5,000-digit number", id="darts-5000-digits"),
    pytest.param(EDGE_IS % ("1" * 5000), "a 5,000-digit number", id="json-5000-digits"),
    pytest.param(DARTS.replace("('dil_conv_3x3', 2)", "('dil_conv_3x3', 0x" + "f" * 5000 + ")"),
                 "input is a number of more than 9 digits", id="darts-huge-hex"),
    pytest.param(DARTS.replace("('dil_conv_3x3', 2)", "('dil_conv_3x3', 1e999)"), "got inf", id="darts-1e999"),
    pytest.param(EDGE_IS % "1e999", "got inf", id="json-1e999"),
    pytest.param(EDGE_IS % "Infinity", "got inf", id="json-Infinity"),
    pytest.param(EDGE_IS % "-Infinity", "got -inf", id="json-minus-Infinity"),
    pytest.param(EDGE_IS % "NaN", "got nan", id="json-NaN"),
    pytest.param(DARTS.replace("('dil_conv_3x3', 2)", "('dil_conv_3x3', 0.9)"), "got 0.9", id="darts-float"),
    pytest.param(DARTS.replace("('dil_conv_3x3', 2)", "('dil_conv_3x3', 2.0)"), "got 2.0", id="darts-whole-float"),
    pytest.param(DARTS.replace("('sep_conv_3x3', 1)", "('sep_conv_3x3', True)"), "got True", id="darts-bool"),
    pytest.param(EDGE_IS % "0.9", "got 0.9", id="json-float"),
    pytest.param(EDGE_IS % "true", "got True", id="json-bool"),
    pytest.param(EDGE_IS % '"0"', "got '0'", id="json-string-index"),
    pytest.param(EDGE_IS % '"٠"', "got '٠'", id="json-arabic-zero"),
    pytest.param('{"family": "nb201", "cells": {"cell": [[[0, 0]]]}}', "an op is a name", id="json-number-op"),
    pytest.param(DARTS.replace("normal_concat=[2, 3, 4, 5]", "normal_concat='2'"), "normal_concat is '2'",
                 id="darts-concat-string"),
    pytest.param(DARTS.replace("normal_concat=[2, 3, 4, 5]", "normal_concat=''"), "normal_concat is ''",
                 id="darts-concat-empty-string"),
    pytest.param(DARTS.replace("normal_concat=[2, 3, 4, 5]", "normal_concat=range(2, 6, 0)"), "cannot parse",
                 id="darts-range-step"),
    pytest.param(_json({"cell": [[["none", 0]]]}, concat={"cell": "1"}), "cell_concat is '1'", id="json-concat-string"),
    pytest.param(_json({"cell": [[["none", 0]]]}, concat=[1]), "concat must map", id="json-concat-list"),
    pytest.param("", "the genotype spec is empty", id="empty"),
    pytest.param(" \t ", "the genotype spec is empty", id="blank"),
    pytest.param(_nested_json(100_000), "genotype JSON is nested too deeply", id="json-100000-deep"),
    pytest.param("Genotype(normal=" + "[" * 100_000 + "]" * 100_000 + ", reduce=[])", "too many nested",
                 id="darts-100000-deep"),
    pytest.param("Genotype(normal=" + "-" * 100_000 + "1, reduce=[])", "nested too deeply", id="darts-deep-minus"),
    pytest.param(_json([1]), "a nb201 genotype needs cells ['cell']", id="json-cells-list"),
    pytest.param(_json("cell"), "a nb201 genotype needs cells ['cell']", id="json-cells-string"),
    pytest.param(_json(None), "a nb201 genotype needs cells ['cell']", id="json-cells-null"),
    pytest.param(_json({"cell": "|none~0|"}), "cell must be a list of nodes", id="json-cell-string"),
    pytest.param(_json({"cell": [{"none": 0}]}), "cell node 1 must be a list", id="json-node-object"),
    pytest.param(_json({"cell": [[["none", 0, 1]]]}), "each input is an [op, input] pair", id="json-triple"),
    pytest.param(_json({"cell": [[["none", 0]]]}, family=["nb201"]), "unknown genotype family ['nb201']",
                 id="json-family-list"),
    pytest.param(_json({"cell": [[["none", 0]]]}, family={"a": 1}), "unknown genotype family", id="json-family-object"),
    pytest.param(_json({"cell": [[["none", 0]]]}, family=None), "unknown genotype family None", id="json-family-null"),
    pytest.param(_json({"cell": [[["none", 0]]]}, name="x"), "not ['name']", id="json-unknown-key"),
    pytest.param("Genotype(normal=" + str([("none", 0), ("none", 1)] * 100_000) + ", reduce=[])",
                 "characters long; a genotype takes at most 1,048,576", id="darts-100000-nodes"),
    pytest.param("Genotype(normal=" + str([("none", 0), ("none", 1)] * 20_000) + ", reduce=[])",
                 "more nodes than a cell can have", id="darts-20000-nodes"),
    pytest.param("Genotype(normal=" + str([("none", 0), ("none", 1)] * (MAX_NODES + 1)) + ", reduce=[" + PAIR + "])",
                 "normal cell has 65 intermediate nodes; romenas builds cells of at most 64", id="darts-65-nodes"),
    pytest.param(_nb201_of(1499), "characters long; a genotype takes at most", id="nb201-1499-nodes"),
    pytest.param(_nb201_of(MAX_NODES + 1), "cell has 65 intermediate nodes", id="nb201-65-nodes"),
    pytest.param("Genotype(normal=[" + PAIR + "], reduce=[" + PAIR + "], normal=[])", "normal is given twice",
                 id="darts-field-twice"),
    pytest.param("Genotype(normal=[" + PAIR + "], reduce=[" + PAIR + "], extra=1)", "extra is not a field",
                 id="darts-unknown-field"),
]


@pytest.mark.parametrize("spec, message", UNTRUSTED_TEXT)
def test_untrusted_specs_are_refused_in_one_line(spec, message, capsys):
    with _deadline(30):
        assert message in _refusal(load_genotype, spec)
        assert message in _cli_refusal(spec, capsys)


def _deep_list(depth: int) -> list:
    nested: list = []
    for _ in range(depth):
        nested = [nested]
    return nested


UNTRUSTED_METADATA = [
    pytest.param(None, "needs the keys 'family' and 'cells'", id="null"),
    pytest.param([1, 2], "needs the keys 'family' and 'cells'", id="list"),
    pytest.param("darts", "needs the keys 'family' and 'cells'", id="string"),
    pytest.param({"family": "darts", "cells": {"normal": _deep_list(100_000), "reduce": _deep_list(100_000)}},
                 "normal cell node 2: each input is an [op, input] pair", id="100000-deep"),
    pytest.param({"family": "darts", "cells": {"normal": [[["none", 0], ["none", 1]]] * 100_000, "reduce": []}},
                 "normal cell has 100,000 intermediate nodes; romenas builds cells of at most 64",
                 id="darts-100000-nodes"),
    pytest.param({"family": "nb201", "cells": {"cell": [[["none", i] for i in range(j)] for j in range(1, 1500)]}},
                 "cell has 1,499 intermediate nodes; romenas builds cells of at most 64", id="nb201-1499-nodes"),
    pytest.param({"family": "nb201", "cells": {"cell": [[["none", 10 ** 5000]]]}}, "more than 9 digits",
                 id="huge-int"),
    pytest.param({"family": "nb201", "cells": {"cell": [[["none", True]]]}}, "got True", id="bool"),
    pytest.param({"family": "nb201", "cells": {"cell": [[["none", 0.0]]]}}, "got 0.0", id="float"),
    pytest.param({"family": "nb201", "cells": {"cell": [[["none", 0]]]}, "concat": {"cell": "1"}}, "is '1'",
                 id="concat-string"),
    pytest.param({"family": "nb201", "cells": {"cell": [[["x" * 10 ** 6, 0]]]}}, "is not in the space",
                 id="megabyte-op-name"),
]


@pytest.mark.parametrize("data, message", UNTRUSTED_METADATA)
def test_untrusted_genotype_metadata_is_refused_in_one_line(data, message):
    assert message in _refusal(Genotype.from_dict, data)


def test_metadata_cells_in_any_key_order_are_read_in_the_familys_order():
    data = PUBLISHED["GDAS"].to_dict()
    data["cells"] = dict(reversed(data["cells"].items()))
    assert Genotype.from_dict(data) == PUBLISHED["GDAS"]
    assert list(Genotype.from_dict(data).cells) == ["normal", "reduce"]


@pytest.mark.parametrize("content, message", [
    pytest.param(b" " * (MAX_SPEC_BYTES + 1), "is larger than 1,048,576 bytes", id="huge-file"),
    pytest.param(b"", "is empty", id="empty-file"),
    pytest.param(b"\xff\xfe GDAS", "is not UTF-8 text", id="not-utf8"),
    pytest.param(_nested_json(100_000).encode(), "nested too deeply", id="deep-json-file"),
    pytest.param(EDGE_IS.encode() % b"Infinity", "got inf", id="json-Infinity-file"),
])
def test_bad_genotype_files_are_refused_in_one_line(content, message, tmp_path, capsys):
    path = tmp_path / "genotype.json"
    path.write_bytes(content)
    for spec in (path, tmp_path):  # the file, and the run folder holding it
        assert message in _refusal(load_genotype, spec)
        assert message in _cli_refusal(spec, capsys)


def test_dev_zero_is_read_only_up_to_the_limit(capsys):
    with _deadline(30):
        assert "/dev/zero is larger than 1,048,576 bytes" in _refusal(load_genotype, "/dev/zero")
        assert "is larger than" in _cli_refusal("/dev/zero", capsys)


def test_genotype_files_up_to_the_limit_are_read(tmp_path):
    path = tmp_path / "padded.json"
    text = PUBLISHED["GDAS"].to_json()
    path.write_text(text + " " * (MAX_SPEC_BYTES - len(text)))
    assert load_genotype(path) == PUBLISHED["GDAS"]


@pytest.mark.parametrize("spec, needle", [
    ("|sep_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|",
     "op 'sep_conv_3x3' is not in the space"),
    (PUBLISHED["DARTS_V2"].to_string().replace("'dil_conv_3x3'", "'nor_conv_3x3'"),
     "op 'nor_conv_3x3' is not in the space"),
])
def test_ops_of_another_family_are_refused(spec, needle, capsys):
    """train built NAS-Bench-201 cells holding DARTS ops (and the reverse) that bench nb201 refused."""
    assert main(["train", spec, "--dry-run"]) == 2
    assert needle in capsys.readouterr().err


def test_an_nb201_table_listing_a_cell_twice_with_other_accuracies_is_refused(tmp_path):
    path = tmp_path / "table.csv"
    header = ("CIFAR10TestAccuracy200Epochs,CIFAR100TestAccuracy200Epochs,ImageNetTestAccuracy200Epochs,"
              "ArchitectureString,UniqueString\n")
    path.write_text(header + f"90,70,40,{CANONICAL},k\n91,70,40,{CANONICAL},k\n")
    with pytest.raises(RomenasError, match=r"twice with other accuracies \(lines 2 and 3\)"):
        NB201Table(path)
    path.write_text(header + f"90,70,40,{CANONICAL},k\n90,70,40,{CANONICAL},k\n")  # the same row twice: one cell
    assert NB201Table(path).lookup(parse_genotype(CANONICAL))["cifar10"] == 90
