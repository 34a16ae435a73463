"""Genotypes: exact round trips, safe parsing, clear errors."""
import json

import pytest

from romenas.genotype import Genotype, GenotypeError
from romenas.published import load_genotype, parse_genotype
from romenas.published import PUBLISHED


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_round_trips(name):
    g = PUBLISHED[name]
    assert parse_genotype(g.to_string()) == g
    assert parse_genotype(g.to_json()) == g
    assert Genotype.from_dict(json.loads(json.dumps(g.to_dict()))) == g
    assert parse_genotype(g.to_string()).to_string() == g.to_string()


def test_darts_string_with_range_concat_and_names():
    text = PUBLISHED["DARTS_V2"].to_string().replace("normal_concat=[2, 3, 4, 5]", "normal_concat=range(2, 6)")
    assert parse_genotype(text) == PUBLISHED["DARTS_V2"]
    assert load_genotype("pc-darts") == PUBLISHED["PC_DARTS"]


def test_genotype_file_and_run_folder(tmp_path):
    (tmp_path / "genotype.json").write_text(PUBLISHED["GDAS"].to_json())
    assert load_genotype(tmp_path) == PUBLISHED["GDAS"]
    assert load_genotype(tmp_path / "genotype.json") == PUBLISHED["GDAS"]


@pytest.mark.parametrize("text, message", [
    ("Genotype(normal=[('sep_conv_3x3', 0)", "cannot parse"),
    ("Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1)])", "lacks"),
    ("|nor_conv_3x3~0|+|nor_conv_3x3~0|", "needs 2"),
    ("|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|", "not an earlier node"),
    ("|conv_9x9~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|", "not in the space"),
    ("|nor_conv_3x3-0|", "op~input"),
    ("{\"family\": \"darts\"}", "needs the keys"),
    ("{not json", "malformed"),
    ("hello", "not a genotype"),
])
def test_malformed_genotypes_raise_clear_errors(text, message):
    with pytest.raises(GenotypeError, match=message):
        parse_genotype(text)


def test_parsing_never_executes_code(tmp_path):
    marker = tmp_path / "pwned"
    text = f"Genotype(normal=__import__('os').system('touch {marker}'), reduce=[])"
    with pytest.raises(GenotypeError):
        parse_genotype(text)
    assert not marker.exists()


def test_darts_node_inputs_must_be_earlier_nodes():
    text = PUBLISHED["DARTS_V2"].to_string().replace("('dil_conv_3x3', 2)", "('dil_conv_3x3', 5)")
    with pytest.raises(GenotypeError, match="not an earlier node"):
        parse_genotype(text)


@pytest.mark.parametrize("family", sorted(__import__("romenas.registry", fromlist=["FAMILIES"]).FAMILIES))
def test_every_familys_text_form_reads_back_what_it_writes_and_labels_every_node(family):
    """The family record owns its text (registry.CellFamily.text): to_string, parse_genotype and the
    drawing's labels all go through it, for every registered family."""
    from romenas.registry import FAMILIES, SPACES
    from romenas.spaces import get_space
    from romenas.spaces.cost import reference_genotype

    record = FAMILIES[family]
    if record.op_site == "node":  # a two-op NAS-Bench-101 cell
        genotype = Genotype.from_nb101([[0, 1, 1, 0], [0, 0, 1, 1], [0, 0, 0, 1], [0, 0, 0, 0]],
                                       ["input", record.ops[0], record.ops[1], "output"])
    else:
        genotype = reference_genotype(get_space(next(n for n, e in SPACES.items() if e.family == family)))
    text = genotype.to_string()
    assert text.startswith(record.text_form().prefix) and parse_genotype(text) == genotype
    for kind, nodes in genotype.cells.items():
        assert len(genotype.node_labels(kind)) == genotype.num_inputs + len(nodes)
