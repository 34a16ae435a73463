"""torchrun with 2 gloo processes: sample-parallel search equals the single-process run; DDP training agrees."""
import json
import subprocess
import sys

import pytest
import torch

from romenas import search

from conftest import TINY_SEARCH

TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
            "-m", "romenas"]


def _torchrun(args, tmp_path):
    done = subprocess.run([*TORCHRUN, *args], capture_output=True, text=True, cwd=tmp_path, timeout=240,
                          env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.slow
def test_sample_parallel_search_equals_single_process(tmp_path):
    # Adam divides each entry by its own magnitude: at a high lr, summation-order noise in a
    # near-zero gradient entry becomes an lr-sized difference, so a small lr keeps this a
    # check of the gradients.
    # Gumbel weight subnets (K=4, two per rank): the fair step's 7 subnets split 4/3 add up in
    # another order on each side, and Adam turns that order's noise in a near-zero entry into an
    # lr-sized step of alpha.
    cfg = {**TINY_SEARCH, "epochs": 1, "samples": 4, "limit_train": 192, "a_lr": 3e-4, "weight_sampling": "gumbel"}
    search(out=tmp_path / "single", preset="quickstart", **cfg)  # the CLI's default preset
    args = ["search", "--out", str(tmp_path / "multi"), "--no-progress",
            *[f"--{k.replace('_', '-')}={v}" for k, v in cfg.items() if k != "progress"]]
    _torchrun(args, tmp_path)
    a = torch.load(tmp_path / "single" / "checkpoint.pt", weights_only=True)
    b = torch.load(tmp_path / "multi" / "checkpoint.pt", weights_only=True)
    for key in ("algo", "net"):
        for name, tensor in a[key].items():
            if "running_" in name or "num_batches" in name:
                continue  # BN statistics: each rank tracks only its own share of subnets
            assert torch.allclose(tensor.float(), b[key][name].float(), atol=1e-5, rtol=1e-5), (key, name)
    assert (tmp_path / "single" / "genotype.json").read_text() == (tmp_path / "multi" / "genotype.json").read_text()
    # The logged figures are the whole run's, not rank 0's share of the subnets.
    rows = [[json.loads(line) for line in (tmp_path / run / "metrics.jsonl").read_text().splitlines()]
            for run in ("single", "multi")]
    for one, two in zip(*rows):
        for key in ("train_loss", "train_acc", "val_loss", "val_acc"):
            assert two[key] == pytest.approx(one[key], rel=1e-4, abs=1e-4), key


@pytest.mark.slow
def test_distributed_training_ends_identical_on_both_ranks(tmp_path):
    args = ["train", "NB201_OPTIMUM", "--dataset", "digits", "--limit-train", "256", "--limit-test", "64",
            "--channels", "4", "--layers", "1", "--epochs", "1", "--batch-size", "32", "--no-progress",
            "--out", str(tmp_path / "ddp")]
    _torchrun(args, tmp_path)
    status = json.loads((tmp_path / "ddp" / "status.json").read_text())
    assert status["state"] == "finished" and status["epoch"] == 1
    checksums = status["rank_checksums"]  # each rank's SHA-256 of its final parameters
    assert len(checksums) == 2 and checksums[0] == checksums[1]


@pytest.mark.slow
def test_ddp_training_on_shards_splits_them_across_ranks(tmp_path):
    """Each rank reads its own shards (2 of 4), both run the same number of steps and end identical."""
    pytest.importorskip("webdataset", reason="tar shards need the webdataset extra (pip install -e '.[shards]')")

    from test_data import make_shards

    train_shards = make_shards(tmp_path / "train", shards=4, per_shard=24)
    test_shards = make_shards(tmp_path / "test", shards=1, per_shard=12)
    args = ["train", "NB201_OPTIMUM", "--dataset", train_shards, "--test-dataset", test_shards, "--channels", "4",
            "--layers", "1", "--epochs", "2", "--batch-size", "8", "--workers", "1", "--no-progress",
            "--out", str(tmp_path / "ddp")]
    _torchrun(args, tmp_path)
    status = json.loads((tmp_path / "ddp" / "status.json").read_text())
    assert status["state"] == "finished" and len(set(status["rank_checksums"])) == 1


@pytest.mark.slow
def test_data_parallel_search_logs_every_ranks_images(tmp_path):
    """--parallel data: each rank takes every other batch, so 2 processes at batch B see what one
    process sees at 2B; the logged rows count all of them and average the ranks' losses (batch
    norm statistics are per rank, so the losses agree closely, not exactly)."""
    cfg = {**TINY_SEARCH, "epochs": 1, "samples": 2, "limit_train": 256, "space": "nb201", "layers": 1}
    search(out=tmp_path / "single", **{**cfg, "batch_size": 32})
    _torchrun(["search", "--out", str(tmp_path / "multi"), "--no-progress", "--parallel", "data",
               *[f"--{k.replace('_', '-')}={v}" for k, v in {**cfg, "batch_size": 16}.items() if k != "progress"]],
              tmp_path)
    one, two = ([json.loads(line) for line in (tmp_path / run / "metrics.jsonl").read_text().splitlines()]
                for run in ("single", "multi"))
    assert two[0]["images"] == one[0]["images"] == {"weights": 128, "architecture": 128}
    for key in ("train_loss", "val_loss"):
        assert two[0][key] == pytest.approx(one[0][key], rel=0.05), key


#: 288 images in batches that do not divide by 2 ranks: 9 training batches (train), 9 per half
#: (a data-parallel search); the rank with the fifth batch must not wait for the other in it.
UNEVEN = {
    "train": (["train", "NB201_OPTIMUM", "--dataset", "digits", "--limit-train", "288", "--limit-test", "50",
               "--channels", "4", "--layers", "1", "--epochs", "1", "--batch-size", "32"], None),
    "search --parallel data": (["search", "--dataset", "digits", "--limit-train", "288", "--space", "nb201",
                                "--layers", "1", "--channels", "4", "--epochs", "1", "--batch-size", "16",
                                "--samples", "2", "--parallel", "data"], {"weights": 128, "architecture": 128}),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(UNEVEN))
def test_ranks_with_uneven_batches_take_the_same_steps(case, tmp_path):
    args, images = UNEVEN[case]
    _torchrun([*args, "--no-progress", "--out", str(tmp_path / "run")], tmp_path)
    status = json.loads((tmp_path / "run" / "status.json").read_text())
    assert status["state"] == "finished" and status["epoch"] == 1
    if images is not None:  # 4 steps on each rank, 16 images a step: the fifth batch is left out
        row = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[0])
        assert row["images"] == images
    else:
        assert len(set(status["rank_checksums"])) == 1
