"""Untrusted input by kind (issue 35): the Python API's argument types, paths the system refuses,
weights metadata that claims huge sizes, text from files printed to a terminal, and smaller
kinds. Each is read as meant or refused in one line (RomenasError; exit 2 on the CLI)."""
import json
import shutil
import time
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import romenas
from romenas.cli import main
from romenas.config import SearchConfig, TrainConfig, build_config
from romenas.errors import RomenasError
from romenas.inference import TrainedModel, evaluate_run
from romenas.published import PUBLISHED, load_genotype
from romenas.weights import load_weights

from test_deploy import TINY, digit_folder

MISSING = "/nonexistent/romenas-untrusted"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("untrusted")
    folder = digit_folder(root / "digits")
    romenas.train("NB201_OPTIMUM", out=root / "run", dataset=str(folder), **TINY)
    return root / "run", folder


def _refusal(call) -> str:
    with pytest.raises(RomenasError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message and len(message) < 400, message
    return message


def _cli(argv, capsys) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err.strip()


def _rewrite_metadata(run: Path, copy: Path, **changes) -> Path:
    """A copy of the run whose weights' metadata sections are updated with ``changes``."""
    from safetensors.torch import save_file

    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("checkpoint.pt*", "evaluations"))
    state, metadata = load_weights(copy / "model.safetensors")
    for section, values in changes.items():
        metadata[section] = {**metadata[section], **values}
    save_file(state, str(copy / "model.safetensors"), metadata={k: json.dumps(v) for k, v in metadata.items()})
    return copy


# ---- 2. the Python API's arguments: coerced where unambiguous ---------------------------------
@pytest.mark.parametrize("settings, expected", [
    ({"dataset": Path("digits")}, {"dataset": "digits"}),
    ({"ops": "skip_connect"}, {"ops": ("skip_connect",)}),  # one op, never its characters
    ({"ops": ["skip_connect", "none"]}, {"ops": ("skip_connect", "none")}),
    ({"epochs": "3"}, {"epochs": 3}),  # as the command line reads it
    ({"epochs": 2.0}, {"epochs": 2}),
    ({"w_lr": 1}, {"w_lr": 1.0}),
    ({"a_betas": [0.5, 0.9]}, {"a_betas": (0.5, 0.9)}),
    ({"samples": "3"}, {"options": {"samples": 3}}),
])
def test_api_settings_are_coerced_where_unambiguous(settings, expected):
    cfg = build_config(SearchConfig, settings, "quickstart")
    for name, value in expected.items():
        got = getattr(cfg, name)
        assert (got == value if name != "options" else value.items() <= got.items()), (name, got)


@pytest.mark.parametrize("call, needle", [
    (lambda: romenas.search(epochs=True, dataset=MISSING), "epochs takes a whole number, got True"),
    (lambda: romenas.search(epochs=1.5, dataset=MISSING), "epochs takes a whole number, got 1.5"),
    (lambda: romenas.search(samples=True, dataset=MISSING), "samples takes a whole number"),
    (lambda: romenas.search(progress="no", dataset=MISSING), "progress takes True or False"),
    (lambda: romenas.search(a_betas=0.5, dataset=MISSING), "a_betas takes 2 numbers"),
    (lambda: romenas.search(w_lr=float("nan"), dataset=MISSING), "w_lr must be a finite number"),
    (lambda: romenas.search(device=0, dataset=MISSING), "device takes a string"),
    (lambda: romenas.search(ops=[1, 2], dataset=MISSING), "ops takes a string"),
    (lambda: romenas.search(out=3, dataset=MISSING), "out takes a path"),
    (lambda: romenas.search(resume=b"run"), "resume takes a path"),
    (lambda: romenas.search(preset=["quickstart"]), "preset takes a string"),
    (lambda: romenas.search({"epochs": 1}), "config takes a SearchConfig"),
    (lambda: romenas.search(SearchConfig(), epochs=2), "['epochs'] would be ignored"),
    (lambda: romenas.search(SearchConfig(epochs=None, dataset=MISSING)), "epochs needs a whole number, got None"),
    (lambda: romenas.search(SearchConfig(options="K=3", dataset=MISSING)), "options takes a dict"),
    (lambda: romenas.train("NB201_OPTIMUM", TrainConfig(channels=True)), "channels takes a whole number"),
    (lambda: romenas.train("NB201_OPTIMUM", init=3, dataset=MISSING), "init takes a path"),
    (lambda: romenas.train(3, dataset=MISSING), "a genotype spec is text, a path"),
    (lambda: romenas.describe(["NB201_OPTIMUM"]), "a genotype spec is text, a path"),
    (lambda: romenas.train(Path(MISSING), dataset=MISSING), "does not exist"),  # a Path is a file, not a spec
    (lambda: load_genotype({"family": "nb201"}), "needs the keys 'family' and 'cells'"),  # not "malformed JSON"
    (lambda: romenas.parse_genotype(3), "a genotype spec is text"),
    (lambda: TrainedModel.load(None), "run takes a path"),
])
def test_api_refuses_wrong_types_in_one_line(call, needle, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert needle in _refusal(call)
    assert list(tmp_path.iterdir()) == []  # refused before any run folder


def test_a_genotype_dict_is_a_genotype():
    assert load_genotype(PUBLISHED["GDAS"].to_dict()) == PUBLISHED["GDAS"]


def test_trained_model_arguments(trained, tmp_path):
    run, folder = trained
    model = TrainedModel.load(run)
    image = sorted((folder / "test").rglob("*.png"))[0]
    assert [r["image"] for r in model.predict(str(image), 1)] == [str(image)]  # one path, not its characters
    assert len(model.predict([image, str(image)], 2)) == 2
    cases = [
        (lambda: model.predict([image], topk=True), "topk takes a whole number"),
        (lambda: model.predict([image], topk=0), "topk must be at least 1"),
        (lambda: model.predict([], 1), "images is empty"),
        (lambda: model.predict(42, 1), "images takes a list of paths"),
        (lambda: model.evaluate(folder, batch_size=0), "batch_size must be at least 1"),
        (lambda: model.evaluate(folder, batch_size=2.5), "batch_size takes a whole number"),
        (lambda: model.evaluate(folder, workers=-1), "workers must be at least 0"),
        (lambda: model.evaluate(folder, download="yes"), "download takes True or False"),
        (lambda: model.evaluate(None), "dataset takes a path"),
        (lambda: evaluate_run(run, folder, batch_size=0), "batch_size must be at least 1"),
    ]
    for call, needle in cases:
        assert needle in _refusal(call), needle


WRONG = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.floats(allow_nan=True, allow_infinity=True),
                  st.text(st.characters(whitelist_categories=("Ll", "Nd"), whitelist_characters="\0\n"),
                          max_size=3),
                  st.binary(max_size=2), st.lists(st.integers(0, 2), max_size=2),
                  st.dictionaries(st.sampled_from("ab"), st.integers(0, 1), max_size=1), st.just(object()),
                  st.builds(Path, st.sampled_from(["x", "nowhere/y"])))
#: (API call, the argument it takes the fuzzed value as); every other argument points at missing
#: data, so whatever value passes its check, the call stops before any training.
TARGETS = [("search", name) for name in ("epochs", "samples", "ops", "a_betas", "w_lr", "progress", "space",
                                         "algorithm", "out", "resume", "preset", "config", "dataset", "seed")]
TARGETS += [("train", name) for name in ("genotype", "epochs", "channels", "init", "out", "config", "lr")]
TARGETS += [("predict", name) for name in ("images", "topk")] + [("evaluate", name) for name in
                                                                   ("dataset", "batch_size", "workers", "download")]


@pytest.fixture(scope="module")
def untrained_model(tmp_path_factory):
    """A model of the right shape without training: predict and evaluate need no learnt weights."""
    from romenas.spaces import network_for

    genotype, cfg = PUBLISHED["NB201_OPTIMUM"], TrainConfig(channels=4, layers=1).validate()
    spec = {"classes": ["a", "b"], "image_size": 8, "in_channels": 3, "augment": "none", "mean": [0.5] * 3,
            "std": [0.5] * 3}
    return TrainedModel(network_for(genotype, cfg, 2, 3).eval(), genotype, cfg, spec,
                        tmp_path_factory.mktemp("model"))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(target=st.sampled_from(TARGETS), value=WRONG)
def test_api_with_wrong_types_raises_only_romenas_errors(target, value, untrained_model, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    call, name = target
    assume(not (call in ("search", "train") and name == "dataset" and value is None))  # None: the default data
    if call in ("search", "train"):
        kwargs = {"dataset": MISSING, "progress": False, name: value}
        args = (kwargs.pop("genotype", "NB201_OPTIMUM"),) if call == "train" else ()
        run = lambda: getattr(romenas, call)(*args, **kwargs)  # noqa: E731
    elif call == "predict":
        kwargs = {"images": [MISSING], "topk": 1, name: value}
        run = lambda: untrained_model.predict(kwargs["images"], kwargs["topk"])  # noqa: E731
    else:
        kwargs = {"dataset": MISSING, name: value}
        run = lambda: untrained_model.evaluate(**kwargs)  # noqa: E731
    with pytest.raises(RomenasError) as info:
        run()
    assert "\n" not in str(info.value)
    assert not any(tmp_path.iterdir())


# ---- 3. paths the system refuses: one line, exit 2, from every path argument ------------------
LONG_NAME = "/tmp/" + "n" * 300            # one name beyond 255 bytes
LONG_PATH = "/tmp/" + "/".join(["p" * 200] * 25)  # a path beyond 4096 bytes
NO_USER = "~romenas-no-such-user/x"


def _path_commands(bad: str, run: Path, folder: Path, image: Path) -> list[list]:
    return [["show", bad], ["list", bad], ["derive", bad], ["card", bad], ["plot", bad], ["plot", run, "--compare", bad],
            ["draw", "DARTS_V2", "--out", bad], ["predict", bad, image], ["predict", run, bad],
            ["evaluate", bad, "--dataset", folder], ["evaluate", run, "--dataset", bad], ["export", run, "--out", bad],
            ["bench", "nb201", bad, "--table", bad], ["bench", "collapse", bad], ["train", bad, "--dry-run"],
            ["train", "NB201_OPTIMUM", "--dry-run", "--dataset", bad], ["train", "--resume", bad],
            ["search", "--dataset", bad, "--no-progress"], ["search", "--resume", bad],
            ["search", "--out", bad, "--dataset", MISSING]]


@pytest.mark.parametrize("kind", [LONG_NAME, LONG_PATH, NO_USER], ids=["long-name", "long-path", "unknown-user"])
def test_refused_paths_are_one_line_exit_2_for_every_command(kind, trained, tmp_path, monkeypatch, capsys):
    import tempfile

    run, folder = trained
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where an internal error's traceback would go
    image = sorted((folder / "test").rglob("*.png"))[0]
    for argv in _path_commands(kind, run, folder, image):
        code, _, err = _cli(argv, capsys)
        if argv[0] in ("draw", "plot") and kind == NO_USER and "--compare" not in argv:
            continue  # a literal folder named ~... is a folder the user may mean
        assert code == 2 and len(err.splitlines()) == 1 and err.startswith("romenas: error: "), (argv[:2], err)
    assert not list(tmp_path.glob("romenas-traceback-*"))


def test_the_last_resort_handler_survives_an_unusable_temporary_folder(tmp_path, monkeypatch, capsys):
    """An internal error while no temporary folder is usable: one line with the error, exit 1, no
    second traceback."""
    import tempfile

    from romenas import cli

    def broken(args):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(cli, "cmd_config", broken)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "gone"))
    code, _, err = _cli(["config"], capsys)
    assert code == 1 and len(err.splitlines()) == 1, err
    assert "ZeroDivisionError" in err and "could not be saved" in err and "a bug" in err


# ---- 5. weights metadata claiming huge sizes: checked against the tensors first ----------------
@pytest.mark.parametrize("changes, needle", [
    ({"config": {"channels": 4096, "layers": 1000}}, "claim C=4096 and 1000 layers, the file holds 5 cells"),
    ({"config": {"channels": 2048}}, "claim C=2048 and 1 layers, the file holds 5 cells and no tensor wider than 16"),
    ({"config": {"layers": 400}}, "claim C=4 and 400 layers"),
    ({"config": {"channels": 8}}, "the settings need (8, 8, 3, 3), the file holds (4, 4, 3, 3)"),
    ({"config": {"image_size": 4000}}, "claim images of 16 pixels, their settings 4000"),
    ({"data": {"image_size": 100_000}}, "'image_size' must be a side in pixels"),
    ({"data": {"classes": ["0", "1", "0"]}}, "'classes' names '0' twice"),
    ({"data": {"classes": ["0", "1", "2", "3"]}}, "classifier."),
], ids=["4096-channels-1000-cells", "2048-channels", "400-cells", "other-channels", "image-size-disagrees",
        "huge-image", "duplicate-classes", "more-classes-than-tensors"])
def test_weights_claiming_huge_sizes_are_refused_before_building(changes, needle, trained, tmp_path, capsys):
    run, folder = trained
    copy = _rewrite_metadata(run, tmp_path / "run", **changes)
    started = time.perf_counter()
    code, _, err = _cli(["predict", copy, sorted((folder / "test").rglob("*.png"))[0]], capsys)
    assert code == 2 and len(err.splitlines()) == 1 and needle in err, err
    assert time.perf_counter() - started < 30  # laid out on the meta device, never allocated


# ---- 6. text from files is escaped where it is printed -----------------------------------------
FORGED = ["0\nFAKE.jpg: dog 0.999", "1\x1b[2J\x1b[31m", "2\u202e"]


def test_class_names_from_files_are_printed_escaped(trained, tmp_path, capsys):
    run, folder = trained
    copy = _rewrite_metadata(run, tmp_path / "run", data={"classes": FORGED})
    images = sorted((folder / "test").rglob("*.png"))[:3]
    code, out, err = _cli(["predict", copy, *images, "--topk", "3"], capsys)
    assert code == 0, err
    assert len(out.splitlines()) == 3 and "\x1b" not in out and "\u202e" not in out
    assert "0\\nFAKE.jpg" in out and "\\x1b[2J" in out
    data = tmp_path / "forged"
    for name, real in zip(FORGED, ("0", "1", "2")):
        shutil.copytree(folder / "test" / real, data / "test" / name)
    code, out, err = _cli(["evaluate", copy, "--dataset", data], capsys)
    assert code == 0, err
    assert "\x1b" not in out and not any(line.startswith("FAKE") for line in out.splitlines())
    code, out, _ = _cli(["predict", copy, *images, "--json"], capsys)
    assert json.loads(out)[0]["top"][0]["class"] in FORGED  # JSON carries the names as they are


def test_error_lines_escape_what_they_quote(trained, tmp_path, capsys):
    run, _ = trained
    odd = tmp_path / "a\nromenas: fine"
    odd.mkdir()
    code, _, err = _cli(["predict", run, odd], capsys)
    assert code == 2 and len(err.splitlines()) == 1 and "a\\nromenas: fine" in err, err


# ---- 7. smaller kinds ----------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore::FutureWarning")  # torch.jit is deprecated upstream
def test_export_never_overwrites_its_default_file_and_takes_the_runs_file_mode(trained, tmp_path, capsys):
    import os

    run, _ = trained
    copy = tmp_path / "run"
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("checkpoint.pt*"))
    code, _, err = _cli(["export", copy, "--format", "torchscript"], capsys)
    assert code == 0, err
    exported = copy / "model.torchscript.pt"
    assert exported.stat().st_mode & 0o777 == (copy / "config.json").stat().st_mode & 0o777
    before = exported.read_bytes()
    code, _, err = _cli(["export", copy, "--format", "torchscript"], capsys)
    assert code == 2 and "already exists" in err and exported.read_bytes() == before, err
    assert not [p for p in os.listdir(copy) if p.endswith(".tmp")]


def test_a_folder_with_only_a_test_split_is_told_to_add_train(trained, tmp_path, capsys):
    _, folder = trained
    shutil.copytree(folder / "test", tmp_path / "data" / "test")
    code, _, err = _cli(["train", "NB201_OPTIMUM", "--dataset", tmp_path / "data", "--dry-run"], capsys)
    assert code == 2 and "has a test/ split but no train/" in err and "/train/<class>" in err, err


def test_a_plot_that_cannot_be_written_leaves_no_empty_file(tmp_path):
    """savefig writes a temporary file renamed into place: a failed write leaves neither file."""
    import matplotlib.pyplot as plt

    from romenas.viz import _save

    fig = plt.figure()
    target = tmp_path / "curves.png"
    (tmp_path / ".curves.png.tmp").mkdir()  # the temporary name cannot be written: as a full disk fails
    with pytest.raises(RomenasError, match="cannot write"):
        _save(fig, target)
    assert not target.exists()
    (tmp_path / ".curves.png.tmp").rmdir()
    assert _save(plt.figure(), target).stat().st_size > 0 and not (tmp_path / ".curves.png.tmp").exists()


class _FailingWorker(torch.utils.data.Dataset):
    """Raises in the loader process what torch raises there when /dev/shm is full."""

    def __init__(self, message: str):
        self.message = message

    def __len__(self):
        return 4

    def __getitem__(self, i):
        raise RuntimeError(self.message)


@pytest.mark.parametrize("message, refused", [
    ("unable to allocate shared memory(shm) for file </torch_58_31_0>: No space left on device (28)", True),
    ("DataLoader worker (pid 7) is killed by signal: Bus error. It is possible that dataloader's workers are out "
     "of shared memory. Please try to raise your shared memory limit.", True),
    ("some other failure in a worker", False),
])
def test_loader_processes_out_of_shared_memory_are_one_line_naming_workers_0(message, refused):
    """Seen for real with a 256 KiB /dev/shm (``unshare -m``, a tmpfs mounted over it): an internal error."""
    from torch.utils.data import BatchSampler, SequentialSampler

    from romenas.data.loading import make_loader, one_line_errors

    loader = make_loader(_FailingWorker(message), BatchSampler(SequentialSampler(range(4)), 2, False), 1,
                         torch.device("cpu"))
    with pytest.raises(RomenasError if refused else RuntimeError) as info:
        next(iter(one_line_errors(loader)))
    text = str(info.value)
    assert ("use --workers 0" in text and "shared memory" in text and "\n" not in text) == refused, text


def test_output_piped_into_a_reader_that_stops_early_ends_quietly(trained, monkeypatch, capsys):
    """``romenas show RUN | head -1``: a BrokenPipeError is an OSError, and was reported as a path error."""
    class ClosedPipe:
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self):
            pass

    run, _ = trained
    monkeypatch.setattr("sys.stdout", ClosedPipe())
    assert main(["show", str(run)]) == 0
    assert capsys.readouterr().err == ""
