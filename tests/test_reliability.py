"""Reliability: SIGKILL-and-resume, checkpoint faults, safe loading, the bad-input matrix."""
import errno
import hashlib
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


def test_fault_truncated_checkpoint_falls_back_to_previous(tmp_path):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(_state(), path)
    save_checkpoint({**_state(), "x": torch.arange(6.0)}, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.warns(UserWarning, match="previous checkpoint"):
        state = load_checkpoint(path, "search", "darts")
    assert torch.equal(state["x"], torch.arange(5.0))


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


def test_fault_nan_loss_stops_and_keeps_checkpoint(tmp_path):
    run = tmp_path / "run"
    search(out=run, **{**TINY_SEARCH, "epochs": 1})
    import json
    cfg = json.loads((run / "config.json").read_text())
    cfg["config"]["epochs"] = 2
    (run / "config.json").write_text(json.dumps(cfg))
    state = load_checkpoint(run / "checkpoint.pt", "search")
    state["net"]["stem.0.weight"].fill_(float("nan"))  # weights that diverged
    save_checkpoint(state, run / "checkpoint.pt")
    good = (run / "checkpoint.pt").read_bytes()
    with pytest.raises(RomenasError, match=r"loss became nan at epoch 2, step 1;.*checkpoint is kept"):
        search(resume=run)
    assert (run / "checkpoint.pt").read_bytes() == good
    assert json.loads((run / "status.json").read_text())["state"] == "failed"


# ---- the bad-input matrix --------------------------------------------------------------------
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
    return [
        (["search", "--space", "mobilenet", *tiny], "unknown space"),
        (["search", "--algorithm", "enas", *tiny], "unknown algorithm"),
        (["search", "--epochs", "0"], "epochs must be positive"),
        (["search", "--batch-size", "-4"], "batch_size must be positive"),
        (["search", "--samples", "0"], "samples must be positive"),
        (["search", "--tau-max", "0.1", "--tau-min", "1"], "tau range is reversed"),
        (["search", "--train-portion", "1.5"], "train_portion"),
        (["search", "--layers", "2"], "layers >= 3"),
        (["search", "--channels", "5"], "even channel count"),
        (["search", "--edge-sampler", "random"], "unknown edge_sampler"),
        (["search", "--device", "cuda:0"] if not torch.cuda.is_available() else ["search", "--device", "tpu"],
         "CUDA is not available" if not torch.cuda.is_available() else "unknown device"),
        (["search", "--preset", "imaginary"], "unknown preset"),
        (["search", "--dataset", str(tmp_path / "missing"), *tiny], "does not exist"),
        (["search", "--dataset", str(empty), *tiny], "holds no images"),
        (["search", "--dataset", _folder(tmp_path, "one", classes=("a",)), *tiny], "1 class folder"),
        (["search", "--dataset", _folder(tmp_path, "mixed", sizes=((8, 8), (9, 9))), *tiny], "differ in size"),
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


def test_bad_input_argparse_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["search", "--epochs", "many"])
    assert exc.value.code == 2
