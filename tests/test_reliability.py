"""Reliability: SIGKILL-and-resume, checkpoint faults, safe loading, the bad-input matrix."""
import errno
import hashlib
import json
import os
import pickle
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from romenas import search, train
from romenas.checkpoint import load_checkpoint, save_checkpoint
from romenas.cli import main
from romenas.errors import RomenasError
from romenas.search.single_path import SinglePath

from conftest import TINY_SEARCH, TINY_TRAIN

SEARCH_ARGS = ["search", "--dataset", "digits", "--limit-train", "384", "--channels", "4", "--layers", "3",
               "--epochs", "3", "--batch-size", "32", "--samples", "2", "--checkpoint-every", "2", "--no-progress"]
TRAIN_ARGS = ["train", "NB201_OPTIMUM", "--dataset", "digits", "--limit-train", "384", "--limit-test", "64",
              "--channels", "4", "--layers", "1", "--epochs", "3", "--batch-size", "32", "--checkpoint-every", "2",
              "--no-progress"]


def _cli(args, **kw):
    return subprocess.run([sys.executable, "-m", "romenas", *args], capture_output=True, text=True, **kw)


def _kill_after_checkpoint(args, run: Path, delay: float):
    proc = subprocess.Popen([sys.executable, "-m", "romenas", *args, "--out", str(run)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (run / "checkpoint.pt").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def _assert_same_final_state(a: Path, b: Path):
    sa = torch.load(a / "checkpoint.pt", weights_only=True)
    sb = torch.load(b / "checkpoint.pt", weights_only=True)
    assert sa["epoch"] == sb["epoch"]
    for key in ("net", "algo"):
        if key in sa:
            for name, tensor in sa[key].items():
                assert torch.allclose(tensor.float(), sb[key][name].float(), atol=1e-6, rtol=0), (key, name)
    assert (a / "genotype.json").read_text() == (b / "genotype.json").read_text()


@pytest.fixture(scope="module")
def reference_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("reference")
    for name, args in (("search", SEARCH_ARGS), ("train", TRAIN_ARGS)):
        done = _cli([*args, "--out", str(root / name)])
        assert done.returncode == 0, done.stderr
    return root


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["search", "train"])
@pytest.mark.parametrize("seed", [0, 1])
def test_resume_after_sigkill_matches_uninterrupted_run(kind, seed, reference_runs, tmp_path):
    args = SEARCH_ARGS if kind == "search" else TRAIN_ARGS
    run = tmp_path / "killed"
    _kill_after_checkpoint(args, run, delay=random.Random(seed).uniform(0.0, 1.5))
    resumed = _cli([kind, "--resume", str(run), "--no-progress"])
    assert resumed.returncode == 0, resumed.stderr
    _assert_same_final_state(reference_runs / kind, run)
    assert [r["epoch"] for r in _metrics(run)] == [1, 2, 3]


def _metrics(run):
    import json
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


# ---- checkpoint faults ----------------------------------------------------------------------
def _state():
    return {"kind": "search", "space": "darts", "x": torch.arange(5.0)}


def test_fault_truncated_checkpoint_falls_back_to_previous(tmp_path, capsys):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(_state(), path)
    save_checkpoint({**_state(), "x": torch.arange(6.0)}, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    state = load_checkpoint(path, "search", "darts")
    assert torch.equal(state["x"], torch.arange(5.0))
    err = capsys.readouterr().err  # one line, not a Python warning with its source line
    assert len(err.splitlines()) == 1 and err.startswith("romenas: warning:") and "previous checkpoint" in err


def test_fault_corrupt_checkpoint_without_fallback_is_refused(tmp_path):
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(os.urandom(1000))
    with pytest.raises(RomenasError, match="corrupt, truncated"):
        load_checkpoint(path, "search")


def test_fault_full_disk_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(_state(), path)
    good = path.read_bytes()

    def full_disk(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(RomenasError, match="disk is full.*last good checkpoint is kept"):
        save_checkpoint({**_state(), "x": torch.zeros(3)}, path)
    assert path.read_bytes() == good and not (tmp_path / "checkpoint.pt.tmp").exists()


def test_fault_file_size_limit_keeps_last_good_checkpoint(tmp_path):
    """Under ``ulimit -f`` torch.save reports EFBIG as a RuntimeError, not an OSError."""
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(_state(), path)
    good = path.read_bytes()
    script = ("import resource, torch; from romenas.checkpoint import save_checkpoint; "
              f"resource.setrlimit(resource.RLIMIT_FSIZE, ({len(good) // 2}, {len(good) // 2})); "
              f"save_checkpoint({{'x': torch.zeros(100000)}}, {str(path)!r})")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode != 0 and "RomenasError" in done.stderr and "could not write checkpoint" in done.stderr
    assert path.read_bytes() == good and not (tmp_path / "checkpoint.pt.tmp").exists()


def test_fault_read_only_folder_is_one_line(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pt"

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(Path, "unlink", read_only)  # the cleanup is refused too
    monkeypatch.setattr(os, "replace", read_only)
    with pytest.raises(RomenasError, match="could not write checkpoint.*Read-only file system"):
        save_checkpoint(_state(), path)


def test_interrupt_names_the_run_to_resume(tmp_path, capsys, monkeypatch):
    from romenas.search.loop import Searcher

    def interrupted(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(Searcher, "fit", interrupted)
    run = tmp_path / "run"
    assert main(["search", *SEARCH_ARGS[1:], "--out", str(run)]) == 130
    assert f"romenas search --resume {run}" in capsys.readouterr().err
    assert json.loads((run / "status.json").read_text())["state"] == "interrupted"  # a user's stop, not a failure


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_fault_malicious_checkpoint_does_not_execute(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "checkpoint.pt"
    with open(path, "wb") as f:
        pickle.dump({"format": 1, "kind": "search", "payload": _Exploit(marker)}, f, protocol=2)
    torch.save({"format": 1, "kind": "search", "payload": _Exploit(marker)}, tmp_path / "zip.pt")
    for p in (path, tmp_path / "zip.pt"):
        with pytest.raises(RomenasError, match="corrupt, truncated or not a romenas checkpoint"):
            load_checkpoint(p, "search")
    assert not marker.exists()


def _stopped_after_epoch_1(run: Path, monkeypatch) -> None:
    """A 2-epoch search stopped as epoch 2 begins (its checkpoint: epoch 1 done)."""
    real_temperature = SinglePath.temperature

    def stop_in_epoch_2(self, epoch, epochs):
        if epoch == 1:
            raise RomenasError("stopped for the test")
        return real_temperature(self, epoch, epochs)

    monkeypatch.setattr(SinglePath, "temperature", stop_in_epoch_2)
    with pytest.raises(RomenasError, match="stopped for the test"):
        search(out=run, **{**TINY_SEARCH, "epochs": 2})
    monkeypatch.setattr(SinglePath, "temperature", real_temperature)


def test_fault_nan_loss_stops_and_keeps_checkpoint(tmp_path, monkeypatch):
    run = tmp_path / "run"
    _stopped_after_epoch_1(run, monkeypatch)
    state = load_checkpoint(run / "checkpoint.pt", "search")
    state["net"]["stem.0.weight"].fill_(float("nan"))  # weights that diverged
    save_checkpoint(state, run / "checkpoint.pt")
    good = (run / "checkpoint.pt").read_bytes()
    with pytest.raises(RomenasError, match=r"loss became nan at epoch 2, step 1;.*checkpoint is kept"):
        search(resume=run)
    assert (run / "checkpoint.pt").read_bytes() == good
    assert json.loads((run / "status.json").read_text())["state"] == "failed"


# ---- the bad-input matrix --------------------------------------------------------------------
DAMAGES = ("format-text", "no-net", "no-config", "config-list", "both-corrupt")


def _damaged_run(tmp_path, run: Path, damage: str) -> Path:
    """A copy of a finished search run with one kind of damage."""
    import json
    import shutil

    copy = tmp_path / f"damaged-{damage}"
    shutil.copytree(run, copy)
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    if damage == "format-text":
        torch.save({**state, "format": "1"}, copy / "checkpoint.pt")
    elif damage == "no-net":
        torch.save({k: v for k, v in state.items() if k != "net"}, copy / "checkpoint.pt")
    elif damage == "no-config":
        (copy / "config.json").write_text(json.dumps({"kind": "search"}))
    elif damage == "config-list":
        (copy / "config.json").write_text("[1, 2]")
    else:
        for name in ("checkpoint.pt", "checkpoint.pt.prev"):
            (copy / name).write_bytes(b"garbage")
    return copy


def _png_header(width: int, height: int) -> bytes:
    """A PNG that claims width x height pixels (a decompression bomb's header) and holds none."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IEND", b""))
def _folder(tmp_path, name, classes=("a", "b"), sizes=((8, 8),), garbage=False):
    from PIL import Image

    root = tmp_path / name
    for c in classes:
        (root / "train" / c).mkdir(parents=True)
        for i, size in enumerate(sizes * 2):
            Image.new("RGB", size, (i * 40, 0, 0)).save(root / "train" / c / f"{i}.png")
    if garbage:
        (root / "train" / classes[0] / "bad.jpg").write_bytes(b"not an image")
    return str(root)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("finished")
    search(out=root / "run", **{**TINY_SEARCH, "epochs": 1})
    train("NB201_ALL_SKIP", out=root / "trained", **{**TINY_TRAIN, "epochs": 1})
    return root


def _digest(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file() and "tb" not in p.parts:
            h.update(p.name.encode() + p.read_bytes())
    return h.hexdigest()


def _bad_inputs(tmp_path, run: Path, trained: Path):
    tiny = ["--no-progress", "--limit-train", "64", "--channels", "4", "--layers", "3", "--epochs", "1"]
    other_space = tmp_path / "other_space"
    other_space.mkdir()
    (other_space / "config.json").write_text((run / "config.json").read_text())
    save_checkpoint({"kind": "search", "space": "nb201"}, other_space / "checkpoint.pt")
    newer = tmp_path / "newer"
    newer.mkdir()
    (newer / "config.json").write_text((run / "config.json").read_text())
    torch.save({"format": 99, "kind": "search", "space": "darts"}, newer / "checkpoint.pt")
    truncated = tmp_path / "truncated"
    truncated.mkdir()
    (truncated / "config.json").write_text((run / "config.json").read_text())
    (truncated / "checkpoint.pt").write_bytes((run / "checkpoint.pt").read_bytes()[:500])
    empty = tmp_path / "empty"
    (empty / "train" / "a").mkdir(parents=True)
    nb = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
    damaged = {name: _damaged_run(tmp_path, run, name) for name in DAMAGES}
    header = "CIFAR10TestAccuracy200Epochs,CIFAR100TestAccuracy200Epochs,ImageNetTestAccuracy200Epochs," \
             "ArchitectureString,UniqueString\n"
    tables = {"text": header + f"ninety,70,40,{nb},k\n", "short": header + "90,70\n",
              "bytes": None}
    for name, text in tables.items():
        path = tmp_path / f"table-{name}.csv"
        path.write_bytes(b"\xff\xfe\x00bad" if text is None else text.encode())
    concat7 = tmp_path / "concat7.json"
    concat7.write_text('{"family": "darts", "cells": {"normal": [[["sep_conv_3x3", 0], ["sep_conv_3x3", 1]]], '
                       '"reduce": [[["sep_conv_3x3", 0], ["sep_conv_3x3", 1]]]}, "concat": 7}')
    pair = "('sep_conv_3x3', 0), ('sep_conv_3x3', 1)"
    a_file = tmp_path / "a_file.txt"
    a_file.write_text("x")
    (tmp_path / "damaged.tar").write_bytes(b"not a tar archive " * 64)
    bomb = _folder(tmp_path, "bomb")
    (Path(bomb) / "train" / "a" / "bomb.png").write_bytes(_png_header(20000, 20000))
    half_empty = _folder(tmp_path, "half_empty")
    (Path(half_empty) / "train" / "c").mkdir()
    return [
        (["search", "--resume", str(damaged["format-text"])], "no integer 'format' field"),
        (["search", "--resume", str(damaged["no-net"])], "checkpoint lacks ['net']"),
        (["search", "--resume", str(damaged["no-config"])], "config.json is damaged"),
        (["search", "--resume", str(damaged["config-list"])], "config.json is damaged"),
        (["search", "--resume", str(damaged["both-corrupt"])], "both checkpoints"),
        (["search", "--resume", str(run), "--space", "nb201", "--epochs", "3"], "--resume continues a run"),
        (["search", "--preset", "../../x"], "unknown preset"),
        (["search", "--dataset", str(a_file), *tiny], "is a file"),
        (["search", "--dataset", bomb, *tiny], "cannot read image"),
        (["search", "--dataset", half_empty, *tiny], "hold no images"),
        (["bench", "nb201", nb, "--table", str(tmp_path / "table-text.csv")], "are not all numbers"),
        (["bench", "nb201", nb, "--table", str(tmp_path / "table-short.csv")], "are not all numbers"),
        (["bench", "nb201", nb, "--table", str(tmp_path / "table-bytes.csv")], "cannot read NAS-Bench-201 table"),
        (["train", str(concat7), "--dry-run"], "concat must map"),
        (["train", f"Genotype(normal=[{pair}], normal_concat=5, reduce=[{pair}])", "--dry-run"], "_concat must be"),
        (["train", f"Genotype(normal=[{pair}], normal_concat=range(30000000), reduce=[{pair}])", "--dry-run"],
         "longer than any cell"),
        (["plot", str(a_file)], "no metrics yet"),
        (["plot", str(run), "--compare", str(tmp_path / "nowhere")], "no metrics yet"),
        (["search", "--space", "mobilenet", *tiny], "unknown search space"),
        (["search", "--algorithm", "enas", *tiny], "unknown algorithm"),
        (["search", "--epochs", "0"], "epochs must be positive"),
        (["search", "--batch-size", "-4"], "batch_size must be positive"),
        (["search", "--samples", "0"], "samples must be at least 1"),
        (["search", "--tau-max", "0.1", "--tau-min", "1"], "tau range is reversed"),
        (["search", "--train-portion", "1.5"], "train_portion"),
        (["search", "--layers", "2"], "layers >= 3"),
        (["search", "--channels", "5"], "even channel count"),
        (["search", "--edge-sampler", "random"], "unknown edge_sampler"),
        (["search", "--device", "cuda:0"] if not torch.cuda.is_available() else ["search", "--device", "tpu"],
         "CUDA is not available" if not torch.cuda.is_available() else "unknown device"),
        (["search", "--preset", "imaginary"], "unknown preset"),
        (["search", "--tau-min", "nan"], "tau_min must be a finite number"),
        (["search", "--tau-max", "inf"], "tau_max must be a finite number"),
        (["search", "--grad-clip", "nan"], "grad_clip must be a finite number"),
        (["search", "--w-lr", "nan"], "w_lr must be a finite number"),
        (["search", "--limit-train", "-5"], "limit_train must be positive"),
        (["search", "--limit-train", "0"], "limit_train must be positive"),
        (["search", "--image-size", "0"], "image_size must be positive"),
        (["search", "--seed", "99999999999999999999999"], "seed must lie in"),
        (["search", "--a-betas", "2", "2"], "a_betas must be two numbers in [0, 1)"),
        (["search", "--w-momentum", "-1"], "momentum must not be negative"),
        (["search", "--w-nesterov", "--w-momentum", "0"], "Nesterov momentum needs"),
        (["search", "--nb201-table", "x.csv"], "--nb201-table looks NAS-Bench-201 cells up"),
        (["search", "--recipe", "gdas-imagenet"], "unknown recipe"),
        (["search", "--darts-order", "2"], "rome does not use --darts-order"),
        (["search", "--space", "nb201", "--ops", "conv_9x9"], "not in space nb201"),
        (["train", "NB201_OPTIMUM", "--lr", "nan"], "lr must be a finite number"),
        (["train", "NB201_OPTIMUM", "--nesterov", "--momentum", "0"], "Nesterov momentum needs"),
        (["search", "--dataset", str(tmp_path / "missing"), *tiny], "does not exist"),
        (["search", "--dataset", str(empty), *tiny], "holds no images"),
        (["search", "--dataset", _folder(tmp_path, "one", classes=("a",)), *tiny], "1 class folder"),
        (["search", "--dataset", _folder(tmp_path, "garbage-w", garbage=True), "--workers", "1", *tiny],
         "cannot read image"),  # raised in a loader worker, still one line
        (["search", "--precision", "8-mixed"], "unknown precision"),
        (["search", "--augment", "crop"], "unknown augment"),
        (["train", "NB201_OPTIMUM", "--workers", "-1", "--dry-run"], "workers must not be negative"),
        (["search", "--algorithm", "darts", "--darts-order", "2", "--precision", "bf16-mixed"], "finite differences"),
        (["search", "--dataset", str(tmp_path / "nowhere" / "{0..3}.tar"), *tiny], "do not exist"),
        (["search", "--dataset", str(tmp_path / "damaged.tar"), *tiny], "is damaged"),
        (["search", "--dataset", _folder(tmp_path, "garbage", garbage=True), *tiny], "cannot read image"),
        (["search", "--batch-size", "512", *tiny], "smaller than one batch"),
        (["search", "--out", str(run), *tiny], "already holds a run"),
        (["search", "--resume", str(trained)], "is a train run"),
        (["search", "--resume", str(tmp_path)], "not a romenas run folder"),
        (["search", "--resume", str(other_space)], "from space 'nb201'"),
        (["search", "--resume", str(newer)], "newer than this romenas reads"),
        (["search", "--resume", str(truncated)], "corrupt, truncated"),
        (["train", "Genotype(normal=[('conv_9x9', 0), ('sep_conv_3x3', 1)] * 4, reduce=[])", "--dry-run"], "cannot parse"),
        (["train", nb.replace("nor_conv_1x1~2", "nor_conv_7x7~2"), "--dry-run"], "not in the space"),
        (["train", nb.replace("nor_conv_3x3~0|+|nor_conv_3x3~0", "nor_conv_3x3~1|+|nor_conv_3x3~0"), "--dry-run"],
         "not an earlier node"),
        (["train", "|nor_conv_3x3~0|+|nor_conv_3x3~0|", "--dry-run"], "needs 2"),
        (["train", "Genotype(normal=[('sep_conv_3x3', 0)] * 8"], "cannot parse"),
        (["train", "DARTS_V2", "--layers", "2", "--dry-run"], "layers >= 3"),
        (["train", "NB201_OPTIMUM", "--batch-size", "100000", "--no-progress"], "fewer than one batch"),
        (["train", "NB201_OPTIMUM", "--drop-path", "1.0"], "drop_path must be below 1"),
        (["train", "--resume", str(run)], "is a search run"),
        (["train"], "no genotype given"),
        (["bench", "nb201", "DARTS_V2", "--table", str(tmp_path / "none.csv")], "cannot read NAS-Bench-201 table"),
        (["derive", str(tmp_path / "nowhere")], "not a genotype"),
        (["show", str(tmp_path)], "not a romenas run folder"),
        (["plot", str(tmp_path)], "no metrics yet"),
        # Op sets that cannot derive a cell are refused before any work, for every algorithm.
        *[(["search", "--algorithm", a, "--ops", "none", *tiny], "with only 'none'") for a in ("rome", "gdas", "darts")],
        (["search", "--space", "nb201", "--ops", "none", *tiny], "with only 'none'"),
        (["search", "--space", "nb201", "--edge-sampler", "subset", "--ops", "skip_connect", "nor_conv_3x3", *tiny],
         "has no 'none'"),
        (["search", "--edge-sampler", "subset", *tiny], "keep 2; use --edge-sampler top2"),
        # A setting the algorithm does not read, given as a flag, does nothing: refused.
        (["search", "--algorithm", "gdas", "--samples", "3", *tiny], "gdas does not use --samples"),
        (["search", "--algorithm", "darts", "--fair", *tiny], "darts does not use --weight-sampling"),
        (["search", "--weight-sampling", "uniform"], "unknown weight_sampling"),
        # --resume continues a run as it is: another genotype, folder or preset is refused, not ignored.
        (["train", "DARTS_V2", "--resume", str(trained)], "drop a genotype"),
        (["train", "--resume", str(trained), "--out", str(tmp_path / "elsewhere")], "drop --out"),
        (["search", "--resume", str(run), "--preset", "quickstart"], "drop --preset"),
        (["train", "DARTS_V2", "--batch-size", "1", "--auxiliary-weight", "0.4", "--dry-run"],
         "auxiliary head's batch norm"),
        # Sizes no network comes near (a typo would build for minutes): refused at once.
        (["train", "DARTS_V2", "--dry-run", "--channels", "36", "--layers", "100000"], "beyond romenas' bounds"),
        (["search", *tiny, "--channels", "100000"], "beyond romenas' bounds"),
        (["search", *tiny, "--image-size", "100000"], "beyond 4096 pixels"),
        (["search", *tiny, "--dataset", "fake{.tar"], "is malformed"),
        (["search", *tiny, "--out", "."], "--out needs the name of a new folder"),
        (["search", *tiny, "--out", str(tmp_path / "other_space" / "checkpoint.pt")], "is a file"),
        (["predict", str(trained), str(tmp_path)], "is not an image file"),
        (["search", *tiny, "--target-mflops", "50", "--budget-weight", "1e300"], "beyond 1000"),
        (["search", *tiny, "--target-mflops", "50", "--budget-channels", "5"], "check --budget-channels and --budget-layers"),
        # Budgets: out of range, unreachable, or shaping no budget at all.
        (["search", "--target-mflops", "0", *tiny], "target_mflops must be positive"),
        (["search", "--target-params", "nan", *tiny], "target_params must be a finite number"),
        (["search", "--target-latency-ms", "-3", *tiny], "target_latency_ms must be positive"),
        (["search", "--target-mflops", "0.01", "--batch-size", "16", *tiny], "below the smallest network space darts can build"),
        (["search", "--space", "nb201", "--target-params", "0.001", "--batch-size", "16", *tiny], "below the smallest network space nb201"),
        (["search", "--budget-weight", "3", *tiny], "no budget is set"),
        (["search", "--target-mflops", "9", "--budget-layers", "0", *tiny], "budget_layers must be positive"),
    ]


def test_bad_input_matrix(tmp_path, finished_run, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # default run folders would land here; none may be created
    run, trained = finished_run / "run", finished_run / "trained"
    before = _digest(finished_run)
    cases = _bad_inputs(tmp_path, run, trained)
    assert len(cases) >= 25
    for argv, message in cases:
        code = main(argv)
        err = capsys.readouterr().err.strip()
        assert code == 2, (argv, err)
        assert message in err, (argv, err)
        assert len(err.splitlines()) == 1 and err.startswith("romenas: error: "), (argv, err)
    assert _digest(finished_run) == before  # no earlier result was touched
    assert not (tmp_path / "runs").exists()  # bad input creates no run folder


def test_plot_of_bad_input_writes_nothing(tmp_path, finished_run):
    from romenas.viz import plot_runs

    with pytest.raises(RomenasError):
        plot_runs(finished_run / "run", [tmp_path], tmp_path / "plots")
    assert not (tmp_path / "plots").exists()
    with pytest.raises(RomenasError):
        plot_runs(tmp_path, [], None)
    assert not (tmp_path / "plots").exists()


def test_list_reports_damaged_runs_and_the_rest(tmp_path, finished_run, capsys):
    import shutil

    shutil.copytree(finished_run / "run", tmp_path / "good")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.json").write_text("[1, 2]")
    assert main(["list", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "good" in out and "damaged" in out


def test_run_stopped_before_its_first_checkpoint_resumes_from_the_start(tmp_path):
    run = tmp_path / "stuck"
    search(out=tmp_path / "reference", **{**TINY_SEARCH, "epochs": 1})
    run.mkdir()
    (run / "config.json").write_text((tmp_path / "reference" / "config.json").read_text())
    assert main(["show", str(run)]) == 0
    result = search(resume=run)
    assert len(result.metrics) == 1 and (run / "checkpoint.pt").exists()
    assert (run / "genotype.json").read_text() == (tmp_path / "reference" / "genotype.json").read_text()


def test_empty_test_folder_is_no_test_split(tmp_path):
    root = Path(_folder(tmp_path, "no_test"))
    for c in ("a", "b"):
        (root / "test" / c).mkdir(parents=True)
    result = search(out=tmp_path / "run", **{**TINY_SEARCH, "dataset": str(root), "epochs": 1, "batch_size": 2,
                                             "limit_train": None})
    assert len(result.metrics) == 1


def test_bad_input_argparse_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["search", "--epochs", "many"])
    assert exc.value.code == 2


def test_an_unexpected_exception_is_one_line_with_the_traceback_in_a_file(monkeypatch, capsys):
    import romenas.report

    def broken(path):
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(romenas.report, "summary", broken)
    assert main(["show", "anything"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "internal error in 'show': ZeroDivisionError" in err
    path = Path(err.split("traceback is in ")[1].split(" (please")[0])
    assert "boom" in path.read_text()
    path.unlink()


def test_learning_rates_may_change_on_resume_and_the_change_is_recorded(tmp_path, monkeypatch):
    """The advice after a divergence ('lower --w-lr, then --resume') can be followed."""
    import math

    _stopped_after_epoch_1(tmp_path / "run", monkeypatch)
    result = search(resume=tmp_path / "run", w_lr=0.01, a_lr=0.002, progress=False)
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["config"]["w_lr"] == 0.01 and saved["config"]["a_lr"] == 0.002
    assert saved["history"] == [{"epoch": 1, "step": 0, "changed": {"w_lr": 0.01, "a_lr": 0.002}}]
    eta_min = saved["config"]["w_lr_min"]
    # epoch 2 of 2 runs at the cosine's midpoint, now from the new base
    assert result.metrics[1]["lr"] == pytest.approx(eta_min + (0.01 - eta_min) * (1 + math.cos(math.pi / 2)) / 2)
    with pytest.raises(RomenasError, match="--resume continues a run"):
        search(resume=tmp_path / "run", w_momentum=0.5)


@pytest.mark.parametrize("damage", ["config-keys", "pid-text", "started-text", "row-keys", "row-types"])
def test_show_and_list_survive_damaged_side_files(finished_run, tmp_path, damage):
    import json
    import shutil

    from romenas.report import list_runs, summary

    run = tmp_path / "run"
    shutil.copytree(finished_run / "run", run)
    if damage == "config-keys":
        (run / "config.json").write_text(json.dumps({"kind": "search", "config": {}}))
    elif damage in ("pid-text", "started-text"):
        status = json.loads((run / "status.json").read_text())
        status.update({"state": "running", "pid": "12x"} if damage == "pid-text" else {"started": "yesterday"})
        (run / "status.json").write_text(json.dumps(status))
    else:
        rows = (run / "metrics.jsonl").read_text().splitlines()
        extra = {"epoch": 9} if damage == "row-keys" else {**json.loads(rows[-1]), "op_entropy": "high"}
        (run / "metrics.jsonl").write_text("\n".join([*rows, json.dumps(extra)]) + "\n")
    text = summary(run)
    assert text.startswith("run:") and ("crashed" in text if damage == "pid-text" else True)
    assert any(line.startswith("run ") for line in list_runs(tmp_path).splitlines()[1:])


def test_weights_made_non_finite_by_the_last_step_are_a_divergence_not_a_finished_run(tmp_path, monkeypatch):
    """The last step of an epoch can leave NaN weights with a finite loss; the run must not be marked finished."""
    import json

    from romenas.runtime import Runtime

    real_step = Runtime.step

    def poisoning_step(self, optimizer, *args, **kwargs):
        real_step(self, optimizer, *args, **kwargs)
        with torch.no_grad():
            optimizer.param_groups[0]["params"][0].fill_(float("nan"))

    monkeypatch.setattr(Runtime, "step", poisoning_step)
    with pytest.raises(RomenasError, match="weights became NaN/inf at epoch 1"):
        train("NB201_OPTIMUM", out=tmp_path / "run", **{**TINY_TRAIN, "limit_train": 32, "batch_size": 32})
    assert json.loads((tmp_path / "run" / "status.json").read_text())["state"] == "failed"
    assert main(["predict", str(tmp_path / "run"), "x.png", "--json"]) == 2  # no weights were ever kept


def test_a_run_in_use_is_not_resumed_twice(finished_run, tmp_path):
    """Two resumes of one run at once: the second is refused in one line, nothing is written."""
    import shutil

    from romenas.runs import RunDir

    run = tmp_path / "run"
    shutil.copytree(finished_run / "run", run)
    before = (run / "status.json").read_text()
    with RunDir(run).lock():
        with pytest.raises(RomenasError, match="in use by another romenas process"):
            search(resume=run)
    assert (run / "status.json").read_text() == before
    search(resume=run)  # released: resumes (a finished run has nothing left to do)


@pytest.mark.parametrize("damage, needle", [
    ("world", "written by 2 process"), ("data", "changed since this run's checkpoint"),
    ("generator", "sampler or scaler state is damaged"), ("scalers", "sampler or scaler state is damaged"),
    ("metrics", "progress is damaged"), ("accum", "progress is damaged"),
])
def test_a_resume_that_cannot_be_exact_is_refused(finished_run, tmp_path, damage, needle):
    """Another process count, other data, or crafted checkpoint fields: one line, never a KeyError."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(finished_run / "run", run)
    state = load_checkpoint(run / "checkpoint.pt", "search")
    if damage == "world":
        state["world"] = 2
    elif damage == "data":
        state["data_fingerprint"] = "0" * 16
    elif damage == "generator":
        del state["generator"]
    elif damage == "scalers":
        state["scalers"] = {"arch": "junk"}
    elif damage == "metrics":
        state["metrics"] = [{"loss": 1.0}]
    else:
        state["accum"] = {"junk": "x"}
    (run / "checkpoint.pt.prev").unlink(missing_ok=True)
    save_checkpoint(state, run / "checkpoint.pt")
    (run / "checkpoint.pt.prev").unlink(missing_ok=True)
    with pytest.raises(RomenasError, match=needle):
        search(resume=run)


def test_edited_training_data_is_caught_on_resume(tmp_path):
    from conftest import make_folder

    folder = make_folder(tmp_path / "data", 24, size=(8, 8))
    run = tmp_path / "run"
    search(out=run, **{**TINY_SEARCH, "dataset": str(folder), "epochs": 2, "batch_size": 4})
    state = load_checkpoint(run / "checkpoint.pt", "search")
    state["epoch"], state["metrics"] = 1, state["metrics"][:1]  # as if stopped after epoch 1
    save_checkpoint(state, run / "checkpoint.pt")
    (folder / "train" / "c0" / "00000.png").write_bytes((folder / "train" / "c1" / "00001.png").read_bytes() * 2)
    with pytest.raises(RomenasError, match="changed since this run's checkpoint"):
        search(resume=run)


# ---- the run lifecycle (romenas/runs.py: RunLifecycle) ----------------------------------------
@pytest.mark.parametrize("saved, preset", [
    ({"preset": "darts-cifar10", "sources": {"epochs": "preset quickstart"}}, "darts-cifar10"),  # the field wins
    ({"preset": None, "sources": {"epochs": "preset quickstart"}}, None),
    ({"sources": {"epochs": "flag", "channels": "preset s3-cifar10"}}, "s3-cifar10"),  # written before the field
    ({"sources": {"epochs": "flag"}}, None),
    ({"sources": ["preset quickstart"]}, None),
    ({}, None),
])
def test_config_json_names_its_preset_and_old_run_folders_still_do(tmp_path, saved, preset):
    from romenas.runs import RunDir

    (tmp_path / "config.json").write_text(json.dumps({"kind": "search", "config": {}, **saved}))
    assert RunDir(tmp_path).preset() == preset


def test_search_and_train_record_their_preset(finished_run):
    from romenas.runs import RunDir

    for name in ("run", "trained"):  # both on the built-in digits: the quick start
        assert json.loads((finished_run / name / "config.json").read_text())["preset"] == "quickstart"
        assert RunDir(finished_run / name).preset() == "quickstart"


def _stop_after_checkpoint(args, run: Path, signum) -> subprocess.CompletedProcess:
    """Start a run, send it ``signum`` once its first checkpoint exists, and wait for it to end."""
    proc = subprocess.Popen([sys.executable, "-m", "romenas", *args, "--out", str(run)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (run / "checkpoint.pt").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signum)
    return subprocess.CompletedProcess(proc.args, proc.wait(), "", proc.stderr.read())


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["search", "train"])
@pytest.mark.parametrize("signum, code, why", [(signal.SIGINT, 130, "KeyboardInterrupt"),
                                               (signal.SIGTERM, 143, "stopped by SIGTERM")])
def test_a_stopped_run_says_how_to_resume_and_finishes_without_the_stop(kind, signum, code, why, tmp_path, capsys):
    from romenas.report import summary

    run = tmp_path / "run"
    args = [*(SEARCH_ARGS if kind == "search" else TRAIN_ARGS), "--limit-train", "192", "--epochs", "2"]
    stopped = _stop_after_checkpoint(args, run, signum)
    assert stopped.returncode == code, stopped.stderr
    assert stopped.stderr.strip().splitlines()[-1].endswith(f"romenas {kind} --resume {run}")
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "interrupted" and status["error"] == why
    assert status["epoch"] == len(_metrics(run)) if (run / "metrics.jsonl").exists() else status["epoch"] == 0
    assert main([kind, "--resume", str(run), "--no-progress"]) == 0
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "finished" and status["epoch"] == 2 and "error" not in status
    assert "error:" not in summary(run) and "status:   finished" in summary(run)


def _edit_config(run: Path, **changes) -> None:
    data = json.loads((run / "config.json").read_text())
    data["config"].update(changes)
    (run / "config.json").write_text(json.dumps(data))


def _edit_checkpoint(run: Path, kind: str, edit) -> None:
    state = load_checkpoint(run / "checkpoint.pt", kind)
    edit(state)
    save_checkpoint(state, run / "checkpoint.pt")
    (run / "checkpoint.pt.prev").unlink(missing_ok=True)


def _set(key, value, part=None):
    """An edit of one checkpoint field: ``state[key] = value``, or ``state[part][key]`` (a schedule's field)."""
    def edit(state):
        (state if part is None else state[part])[key] = value
    return edit


def _set_lr(part, value):
    def edit(state):
        state[part]["param_groups"][0]["lr"] = value
    return edit


#: (kind, what is edited, the edit, what the one line says): run folders edited by hand or damaged.
EDITED = [
    *[(kind, "config.json", lambda run: _edit_config(run, epochs=2), "config.json says epochs 2 (checkpoint: 1)")
      for kind in ("search", "train")],
    *[(kind, "config.json", lambda run: _edit_config(run, epochs=10 ** 30), "epochs 1000000000000000000000000000000 "
      "is beyond 10000") for kind in ("search", "train")],
    *[(kind, "config.json", lambda run: _edit_config(run, epochs="many"), "config.json was edited or is damaged")
      for kind in ("search", "train")],
    ("search", "config.json", lambda run: _edit_config(run, batch_size=[32]), "config.json was edited or is damaged"),
    ("train", "config.json", lambda run: _edit_config(run, lr="fast"), "config.json was edited or is damaged"),
    *[(kind, "checkpoint", lambda run, kind=kind, epoch=epoch: _edit_checkpoint(run, kind, _set("epoch", epoch)),
       f"says epoch {shown}") for kind in ("search", "train")
      for epoch, shown in ((-1, "-1"), (10 ** 6, "1000000"), ("1", "'1'"))],
    ("search", "checkpoint", lambda run: _edit_checkpoint(run, "search", _set("step", -3)), "step -3"),
    ("search", "checkpoint", lambda run: _edit_checkpoint(run, "search", _set("T_max", "20", "w_sched")),
     "w_sched.T_max is '20'"),
    ("train", "checkpoint", lambda run: _edit_checkpoint(run, "train", _set("last_epoch", None, "sched")),
     "sched.last_epoch is None"),
    ("train", "checkpoint", lambda run: _edit_checkpoint(run, "train", _set("T_max", 7, "sched")),
     "schedule spans 7 epochs"),
    ("search", "checkpoint", lambda run: _edit_checkpoint(run, "search", _set_lr("w_opt", "0.1")),
     "w_opt.param_groups[0].lr is '0.1'"),
]


@pytest.mark.parametrize("kind, where, edit, needle", EDITED, ids=[f"{k}-{n}" for k, _, _, n in EDITED])
def test_a_run_folder_edited_by_hand_is_one_line_naming_the_file(finished_run, tmp_path, capsys, kind, where, edit,
                                                                 needle):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(finished_run / ("run" if kind == "search" else "trained"), run)
    edit(run)
    before = _digest(run)
    assert main([kind, "--resume", str(run), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("romenas: error: "), err
    assert needle in err and str(run / ("config.json" if where == "config.json" else "checkpoint.pt")) in err, err
    assert _digest(run) == before  # nothing written


@pytest.mark.parametrize("kind", ["search", "train"])
@pytest.mark.parametrize("damage", ["{not json", "[1, 2]", "9" * 5000])
def test_a_damaged_status_file_does_not_block_a_resume(finished_run, tmp_path, capsys, kind, damage):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(finished_run / ("run" if kind == "search" else "trained"), run)
    (run / "status.json").write_text(damage)
    assert main([kind, "--resume", str(run), "--no-progress"]) == 0
    assert json.loads((run / "status.json").read_text())["state"] == "finished"
