"""End to end through the CLI: search, derive, train, bench, plot, draw, show, list."""
import csv
import json
import os

import matplotlib.image as mpimg
import pytest

from romenas.bench import NB201Table, collapse_metrics
from romenas.cli import main
from romenas.published import PUBLISHED, parse_genotype

from conftest import CIFAR_FOLDER, NB201_TABLE, needs_cifar, needs_nb201

TINY = ["--dataset", "digits", "--limit-train", "256", "--channels", "4", "--layers", "3", "--batch-size", "32",
        "--samples", "2", "--no-progress"]


@pytest.fixture(scope="module")
def two_epoch_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("workflow") / "rome"
    assert main(["search", *TINY, "--epochs", "2", "--out", str(run)]) == 0
    return run


def test_search_cli_prints_genotype_and_writes_run_folder(two_epoch_run, capsys):
    assert main(["derive", str(two_epoch_run)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Genotype(normal=[")
    assert {"config.json", "metrics.jsonl", "genotype.json", "checkpoint.pt", "status.json"} <= set(os.listdir(two_epoch_run))
    rows = [json.loads(line) for line in (two_epoch_run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    assert {"train_loss", "val_acc", "tau", "op_entropy/normal", "edge_entropy/normal", "op_margin", "collapse",
            "genotype"} <= set(rows[0])
    assert rows[0]["tau"] == 10.0 and rows[1]["tau"] == pytest.approx(0.1)


def test_plot_writes_nontrivial_pngs(two_epoch_run, tmp_path, capsys):
    assert main(["plot", str(two_epoch_run), "--out", str(tmp_path)]) == 0
    names = {p.name for p in tmp_path.iterdir()}
    assert {"op_probs_normal.png", "op_probs_reduce.png", "edge_probs_normal.png", "collapse.png", "curves.png"} <= names
    for name in names:
        data = (tmp_path / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
        assert mpimg.imread(tmp_path / name).std() > 0.01
    rows = [json.loads(line) for line in (two_epoch_run / "metrics.jsonl").read_text().splitlines()]
    assert rows[0]["op_probs"] != rows[1]["op_probs"]  # the plotted series moved
    assert rows[0]["edge_probs"] != rows[1]["edge_probs"]


def test_plot_of_a_training_run_draws_its_curves_beside_a_search(two_epoch_run, tmp_path, capsys):
    """A training run has no architecture to plot: its curves (train/test loss and accuracy, lr),
    and --compare overlays a search's curves, one colour per run."""
    from romenas import train

    from conftest import TINY_TRAIN

    trained = tmp_path / "trained"
    train("NB201_ALL_SKIP", out=trained, **TINY_TRAIN)
    assert main(["plot", str(trained), "--compare", str(two_epoch_run), "--out", str(tmp_path / "plots")]) == 0
    assert {p.name for p in (tmp_path / "plots").iterdir()} == {"curves.png"}
    assert mpimg.imread(tmp_path / "plots" / "curves.png").std() > 0.01
    empty = tmp_path / "empty"
    (empty / "plots").mkdir(parents=True)
    (empty / "config.json").write_text((trained / "config.json").read_text())
    assert main(["plot", str(empty)]) == 2 and "no metrics yet" in capsys.readouterr().err


def test_draw_renders_darts_v2(tmp_path, capsys):
    assert main(["draw", "DARTS_V2", "--out", str(tmp_path)]) == 0
    for kind in ("normal", "reduce"):
        assert (tmp_path / f"{kind}.png").read_bytes()[:4] == b"\x89PNG"
        dot = (tmp_path / f"{kind}.dot").read_text()
        assert dot.count("->") == 8 + 4  # eight ops, four nodes into the output
    assert main(["draw", "GDAS", "--out", str(tmp_path)]) == 0  # its own diagrams: redrawn
    assert "skip_connect" in (tmp_path / "normal.dot").read_text()
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "normal.png").write_bytes(b"a user's picture")
    assert main(["draw", "DARTS_V2", "--out", str(mine)]) == 2 and "does not overwrite" in capsys.readouterr().err
    assert (mine / "normal.png").read_bytes() == b"a user's picture"


def test_show_finished_and_crashed_runs(two_epoch_run, tmp_path, capsys):
    assert main(["show", str(two_epoch_run)]) == 0
    out = capsys.readouterr().out
    assert "status:   finished" in out and "epochs:   2 of 2 done" in out and "genotype: Genotype(" in out
    crashed = tmp_path / "crashed"
    crashed.mkdir()
    for name in ("config.json", "metrics.jsonl", "checkpoint.pt"):
        (crashed / name).write_bytes((two_epoch_run / name).read_bytes())
    (crashed / "metrics.jsonl").write_text((two_epoch_run / "metrics.jsonl").read_text().splitlines()[0] + "\n{\"epo")
    status = json.loads((two_epoch_run / "status.json").read_text())
    status.update(state="running", pid=2**22 + 12345)  # no such process
    (crashed / "status.json").write_text(json.dumps(status))
    assert main(["show", str(crashed)]) == 0
    out = capsys.readouterr().out
    assert "status:   crashed" in out and f"--resume {crashed}" in out and "epochs:   1 of 2 done" in out
    assert main(["list", str(tmp_path)]) == 0
    assert "crashed" in capsys.readouterr().out


def test_list_is_a_sortable_results_table_with_csv(two_epoch_run, tmp_path, capsys):
    import shutil

    for name, acc in (("low", 10.0), ("high", 90.0)):
        shutil.copytree(two_epoch_run, tmp_path / name)
        rows = [json.loads(line) for line in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]
        rows[-1]["val_acc"] = acc
        (tmp_path / name / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["list", str(tmp_path), "--sort", "accuracy", "--csv"]) == 0
    table = list(csv.DictReader(capsys.readouterr().out.splitlines()))
    assert [r["run"] for r in table] == ["high", "low"]  # best first
    assert table[0]["algorithm"] == "rome" and table[0]["space"] == "darts" and table[0]["epochs"] == "2/2"
    assert table[0]["param_free"] == str(rows[-1]["collapse"]["param_free/normal"]) and table[0]["status"] == "finished"
    assert main(["list", str(tmp_path), "--sort", "speed"]) == 2 and "unknown column" in capsys.readouterr().err
    assert main(["list", str(tmp_path / "high" / "tb")]) == 0 and "no runs under" in capsys.readouterr().out


@needs_nb201
@pytest.mark.parametrize("dialect", ["excel", "semicolons", "no-unique-key"])
def test_nb201_tables_as_spreadsheets_save_them(tmp_path, dialect, capsys):
    """A BOM and CRLF (Excel), ';' with decimal commas (a comma-decimal locale), or no UniqueString
    column: read, with the same accuracy."""
    lines = NB201_TABLE.read_text().splitlines()[:200]
    arch = lines[5].split(",")[3]
    if dialect == "excel":
        (tmp_path / "t.csv").write_bytes(("\r\n".join(lines) + "\r\n").encode("utf-8-sig"))
    elif dialect == "semicolons":
        rows = [lines[0].replace(",", ";")] + [";".join(f.replace(".", ",") if i < 3 else f
                                                         for i, f in enumerate(line.split(","))) for line in lines[1:]]
        (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    else:
        (tmp_path / "t.csv").write_text("\n".join(",".join(line.split(",")[:4]) for line in lines) + "\n")
    expected = NB201Table(NB201_TABLE).lookup(arch)["cifar10"]
    assert NB201Table(tmp_path / "t.csv").lookup(arch)["cifar10"] == pytest.approx(expected, abs=1e-9)
    (tmp_path / "bad.csv").write_text("arch,acc\n|x~0|,1\n")
    assert main(["bench", "nb201", arch, "--table", str(tmp_path / "bad.csv")]) == 2
    assert "lacks the column(s)" in capsys.readouterr().err


def test_collapse_metrics_of_published_cells():
    assert collapse_metrics(PUBLISHED["DARTS_V1"])["param_free/reduce"] == 8
    assert collapse_metrics(PUBLISHED["GDAS"])["skip/normal"] == 4
    assert collapse_metrics(PUBLISHED["NB201_ALL_SKIP"]) == {"param_free/cell": 6, "skip/cell": 6, "depth/cell": 3}
    # What the cell computes: node 2 is zero (both inputs 'none'), so the output (node 3 = skip of
    # node 2) does not depend on the input: depth 0, though node 1 holds a convolution.
    dead = parse_genotype("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|skip_connect~2|")
    assert collapse_metrics(dead)["depth/cell"] == 0
    # The output is the last node: a deep chain that does not reach it does not count.
    side = parse_genotype("|nor_conv_3x3~0|+|nor_conv_3x3~1|none~0|+|skip_connect~0|none~1|none~2|")
    assert collapse_metrics(side)["depth/cell"] == 1


def test_train_dry_run_prints_published_parameter_count(capsys):
    assert main(["train", "DARTS_V2", "--dry-run", "--dataset", "cifar10", "--channels", "36", "--layers", "20",
                 "--auxiliary-weight", "0.4"]) == 0
    out = capsys.readouterr().out
    assert "params: 3.349M" in out and "FLOPs:" in out


@needs_nb201
def test_nb201_lookup_headlines_the_cells_own_row():
    """As xautodl's query_by_arch: the searched cell's row, not its isomorphism class's first row."""
    table = NB201Table(NB201_TABLE)
    cell = "|skip_connect~0|+|none~0|skip_connect~1|+|none~0|none~1|skip_connect~2|"
    found = table.lookup(cell)
    assert round(found["cifar10"], 2) == 86.54
    assert found["canonical"] == "|avg_pool_3x3~0|+|skip_connect~0|none~1|+|none~0|none~1|skip_connect~2|"
    assert round(found["class"]["cifar10"], 2) == 86.62


@needs_nb201
def test_nb201_lookups():
    table = NB201Table(NB201_TABLE)
    assert round(table.lookup("NB201_ALL_SKIP")["cifar10"], 2) == 54.30
    assert round(table.lookup("NB201_OPTIMUM")["cifar10"], 2) == 94.37
    with open(NB201_TABLE) as f:
        rows = list(csv.DictReader(f))
    classes = {}
    for r in rows:
        classes.setdefault(r["UniqueString"], []).append(r["ArchitectureString"])
    tested = 0
    for members in classes.values():
        if len(members) > 1:
            canonical = table.lookup(members[0])
            for other in members[1:]:
                found = table.lookup(other)  # the cell's own row as headline, its class's first row beside it
                assert found["cifar10"] == table.acc[other]["cifar10"]
                assert found["class"]["cifar10"] == canonical["cifar10"]
                assert found["canonical"] == members[0]
            tested += 1
        if tested == 20:
            break
    assert tested == 20


@needs_cifar
@needs_nb201
@pytest.mark.slow
def test_one_epoch_nb201_rome_search_on_cifar_folder(tmp_path, capsys):
    run = tmp_path / "nb201"
    argv = ["search", "--space", "nb201", "--dataset", str(CIFAR_FOLDER), "--limit-train", "1024", "--epochs", "1",
            "--channels", "8", "--layers", "1", "--batch-size", "64", "--samples", "2",
            "--nb201-table", str(NB201_TABLE), "--out", str(run), "--no-progress"]
    assert main(argv) == 0
    genotype = json.loads((run / "genotype.json").read_text())
    assert genotype["family"] == "nb201"
    arch = PUBLISHED["NB201_OPTIMUM"].from_dict(genotype).to_string()
    with open(NB201_TABLE) as f:
        assert arch in {r["ArchitectureString"] for r in csv.DictReader(f)}
    row = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert 0 < row["nb201"]["cifar10"] < 100
    assert main(["bench", "nb201", str(run), "--table", str(NB201_TABLE)]) == 0


@needs_cifar
@pytest.mark.slow
def test_short_training_on_cifar_folder_beats_chance(tmp_path):
    run = tmp_path / "train"
    assert main(["train", "NB201_OPTIMUM", "--dataset", str(CIFAR_FOLDER), "--limit-train", "2000",
                 "--limit-test", "1000", "--channels", "8", "--layers", "1", "--epochs", "3", "--batch-size", "64",
                 "--lr", "0.05", "--out", str(run), "--no-progress"]) == 0
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 3
    assert rows[-1]["test_acc"] > 20.0  # chance is 10%
    assert rows[-1]["train_loss"] < rows[0]["train_loss"]


def test_cli_and_api_resolve_the_same_settings(tmp_path):
    """One rule: with the user's own data and no preset, the published recipe applies to everything
    not set, through the CLI and the API alike; config.json says where each value came from."""
    from conftest import make_folder
    from romenas import search

    folder = str(make_folder(tmp_path / "images", 48, size=(8, 8)))
    args = dict(dataset=folder, space="nb201", epochs=1, limit_train=32, channels=4, layers=1, batch_size=8)
    assert main(["search", "--out", str(tmp_path / "cli"), "--no-progress",
                 *[f"--{k.replace('_', '-')}={v}" for k, v in args.items()]]) == 0
    search(out=tmp_path / "api", progress=False, **args)
    cli, api = (json.loads((tmp_path / run / "config.json").read_text()) for run in ("cli", "api"))
    assert cli["config"] == api["config"] and cli["sources"] == api["sources"]
    assert (api["config"]["samples"], api["config"]["a_lr"], api["config"]["a_weight_decay"]) == (7, 3e-4, 1e-3)
    assert "options" not in api["config"]  # each option once, flat beside the shared settings
    assert api["sources"]["samples"] == "recipe rome-nb201" and api["sources"]["epochs"] == "flag"
    quick = search(out=tmp_path / "quick", **{**args, "dataset": None, "limit_train": 64, "channels": 4,
                                             "layers": 3, "space": "darts", "progress": False})
    assert quick.config.options["samples"] == 4 and quick.config.a_lr == 0.05  # no dataset: the quick start


def test_search_and_train_print_one_line_per_epoch_and_no_bars_off_a_terminal(tmp_path, capsys):
    """--no-progress silences bars, not results; off a terminal there are no carriage-return frames."""
    search_args = ["search", "--out", str(tmp_path / "s"), "--limit-train", "128", "--channels", "4", "--layers", "3",
                   "--epochs", "2", "--batch-size", "32", "--samples", "2"]
    train_args = ["train", "NB201_OPTIMUM", "--out", str(tmp_path / "t"), "--limit-train", "128", "--limit-test", "64",
                  "--channels", "4", "--layers", "1", "--epochs", "2", "--batch-size", "32"]
    for argv in (search_args, [*train_args, "--no-progress"]):
        assert main(argv) == 0
        captured = capsys.readouterr()
        text = captured.out + captured.err
        assert sum(line.startswith("epoch ") and "/2 " in line for line in text.splitlines()) == 2, text
        assert "\r" not in text


@pytest.mark.parametrize("argv, shown", [
    (["--algorithm", "gdas", "--space", "nb201"], {"recipe": "gdas-nb201", "unselected_ops": True, "tau_min": 0.1}),
    (["--algorithm", "darts", "--space", "s2", "--preset", "darts-cifar10"], {"recipe": "darts-robust",
                                                                              "darts_order": 1, "epochs": 50}),
])
def test_config_shows_an_algorithms_resolved_settings_once_each(argv, shown, capsys):
    import yaml

    assert main(["config", *argv]) == 0
    out = capsys.readouterr().out
    settings = yaml.safe_load(out)
    assert {k: settings[k] for k in shown} == shown and "options" not in settings
    assert sum(line.startswith("recipe:") for line in out.splitlines()) == 1
    assert main(["config", "--kind", "train", "--algorithm", "gdas"]) == 2
