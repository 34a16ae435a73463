"""romenas sweep: runs named by their settings, the local executor equal to runs made one after
another, a re-run that continues, grids refused before anything runs, and submitit's path."""
from __future__ import annotations

import json
import re
import os
import signal
import threading
import time
from pathlib import Path

import pytest
import torch

from romenas.cli import main
from romenas.errors import RomenasError
from romenas.runs import RunDir
from romenas.sweep import sweep
from romenas.sweep.grid import grid_runs, listed_runs, parse_grid

TINY = dict(dataset="digits", limit_train=128, channels=4, layers=1, epochs=2, batch_size=32, space="nb201")


def _result(run: Path) -> tuple:
    rows = [{k: v for k, v in r.items() if k != "seconds"} for r in RunDir(run).metrics()]
    state = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=False)["algo"]
    return rows, {k: v.tolist() for k, v in state.items()}


def test_runs_are_named_by_their_settings_and_options_go_to_their_owners():
    runs = grid_runs(["rome", "darts"], [0, 1], parse_grid(["samples=3,7", "w_lr=0.1"]), {"tau_min": 0.5})
    assert [r.name for r in runs] == ["rome-seed0-samples3-w_lr0.1", "rome-seed0-samples7-w_lr0.1",
                                      "rome-seed1-samples3-w_lr0.1", "rome-seed1-samples7-w_lr0.1",
                                      "darts-seed0-w_lr0.1", "darts-seed1-w_lr0.1"]
    assert runs[0].settings == {"tau_min": 0.5, "samples": 3, "w_lr": 0.1, "algorithm": "rome", "seed": 0}
    assert "samples" not in runs[-1].settings and "tau_min" not in runs[-1].settings  # DARTS has neither


def test_two_jobs_give_the_runs_of_one_after_another_and_a_rerun_continues(tmp_path):
    grid = ["samples=2,3"]
    one = sweep(["rome", "gdas"], [0], out=tmp_path / "one", grid=grid, jobs=1, threads=1, progress=False, **TINY)
    two = sweep(["rome", "gdas"], [0], out=tmp_path / "two", grid=grid, jobs=2, threads=1, progress=False, **TINY)
    names = [r["run"] for r in one.rows]
    assert names == ["rome-seed0-samples2", "rome-seed0-samples3", "gdas-seed0"]
    assert all(r["status"] == "finished" for r in one.rows + two.rows)
    for name in names:  # bit for bit: metrics rows (wall-clock aside) and alpha/beta
        assert _result(tmp_path / "one" / name) == _result(tmp_path / "two" / name)
    assert "3 of 3 runs finished" in two.table and "rome-samples3" in two.table

    stamp = (tmp_path / "two" / "gdas-seed0" / "checkpoint.pt").stat().st_mtime_ns
    again = sweep(["rome", "gdas"], [0, 1], out=tmp_path / "two", grid=grid, jobs=2, threads=1, progress=False, **TINY)
    assert (tmp_path / "two" / "gdas-seed0" / "checkpoint.pt").stat().st_mtime_ns == stamp  # reused, not rerun
    assert len(again.rows) == 6 and all(r["status"] == "finished" for r in again.rows)
    manifest = json.loads((tmp_path / "two" / "sweep.json").read_text())
    assert manifest["runs"]["rome-seed1-samples3"]["settings"]["samples"] == 3

    with pytest.raises(RomenasError, match="other settings"):  # a common flag changed: refused, nothing rerun
        sweep(["gdas"], [0], out=tmp_path / "two", progress=False, **{**TINY, "epochs": 3})
    with pytest.raises(RomenasError, match="was made with preset None, this command gives 'quickstart'"):
        sweep(["gdas"], [0], out=tmp_path / "two", preset="quickstart", progress=False, **TINY)
    assert main(["show", str(tmp_path / "two"), "--csv"]) == 0
    assert main(["plot", str(tmp_path / "two")]) == 0  # each group's seeds, and the groups' curves
    assert all((tmp_path / "two" / "plots" / f).stat().st_size > 0 for f in ("seeds.png", "curves.png"))
    assert main(["plot", str(tmp_path / "two"), "--compare", str(tmp_path / "one" / "gdas-seed0")]) == 2


def test_a_failed_run_is_retried_then_recorded_and_the_others_finish(tmp_path):
    result = sweep(["gdas"], [0], out=tmp_path / "s", grid=["dataset=digits," + str(tmp_path / "absent")],
                   retries=1, progress=False, **{k: v for k, v in TINY.items() if k != "dataset"})
    status = {r["run"]: r["status"] for r in result.rows}
    assert status[f"gdas-seed0-dataset{'digits'}"] == "finished"
    failed = json.loads((tmp_path / "s" / "sweep.json").read_text())["runs"]
    bad = next(v for k, v in failed.items() if "absent" in k)
    assert bad["status"] == "failed" and bad["attempts"] == 2 and "absent" in bad["error"]
    assert "not finished" in result.table


def test_a_second_sweep_on_the_folder_is_refused_with_the_holders_pid(tmp_path):
    out = tmp_path / "s"
    out.mkdir()
    (out / "sweep.json").write_text('{"version": 1, "runs": {}}\n')
    with RunDir(out).lock():
        with pytest.raises(RomenasError, match=r"in use by another romenas process \(pid \d+\)"):
            sweep(["gdas"], [0], out=out, progress=False, **TINY)


@pytest.mark.parametrize("argv, message", [
    (["--algorithms", "rome", "--grid", "bogus=1"], "no search setting"),
    (["--algorithms", "darts", "--grid", "samples=3"], "an option of rome only"),
    (["--algorithms", "rome", "--grid", "samples="], "empty value"),
    (["--algorithms", "rome", "--grid", "samples"], "is not SETTING=V1,V2"),
    (["--algorithms", "rome", "--seeds", "1", "1"], "lists a seed twice"),
    (["--algorithms", "nas"], "unknown algorithm 'nas'"),
    (["--algorithms", "rome", "--grid", "samples=0"], "run rome-seed0-samples0: samples must be at least 1"),
    (["--algorithms", "rome", "--seed", "3"], "use --seeds"),
    (["--algorithms", "rome", "--jobs", "0"], "jobs must be at least 1"),
    (["--algorithms", "rome", "--slurm-time", "0"], "slurm_time must be at least 1"),
    (["--algorithms", "rome", "--ray-gpus", "-0.5"], "ray_gpus must be at least 0"),
    (["--algorithms", "rome", "--executor", "local", "--no-wait"], "only SLURM"),
])
def test_bad_sweeps_are_one_line_and_exit_2_before_anything_runs(argv, message, tmp_path, capsys):
    assert main(["sweep", *argv, "--out", str(tmp_path / "s"), "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "s" / "logs").exists()


@pytest.mark.parametrize("arguments, message", [
    (dict(algorithms="rome"), "run rome-seed0: epochs"),  # one string is one algorithm, not 'r', 'o', ...
    (dict(seeds=3), "run rome-seed3: epochs"),  # one whole number is one seed
    (dict(grid={"samples": 3}), "run rome-seed0-samples3: epochs"),  # a scalar is one value
    (dict(grid="samples=3,5"), "run rome-seed0-samples3: epochs"),  # one item, as on the command line
    (dict(seeds="3"), "seeds takes a list of whole numbers, got '3'"),
    (dict(grid=5), "grid takes {setting: [values]}"),
    (dict(out=None), "out takes a path"),
    (dict(jobs=1.5), "jobs takes a whole number, got 1.5"),
    (dict(jobs=True), "jobs takes a whole number, got True"),
    (dict(progress="no"), "progress takes True or False"),
    (dict(ray_cpus="a"), "ray_cpus takes a number"),
    (dict(devices=7), "devices takes a non-empty list of names"),
    (dict(train_epochs=0), "train_epochs must be at least 1"),
])
def test_the_sweep_api_takes_unambiguous_values_and_refuses_the_rest_in_one_line(arguments, message, tmp_path):
    given = {**dict(algorithms=["rome"], seeds=[0], out=tmp_path / "s", epochs=0), **arguments}
    with pytest.raises(RomenasError, match="^" + re.escape(message)):
        sweep(**given)
    assert not (tmp_path / "s").exists()


def test_slurm_path_through_submitits_local_executor(tmp_path):
    pytest.importorskip("submitit")
    result = sweep(["gdas"], [0], out=tmp_path / "s", executor="slurm", slurm_cluster="local", slurm_time=10,
                   progress=False, **{**TINY, "epochs": 1})
    assert [r["status"] for r in result.rows] == ["finished"]
    assert (tmp_path / "s" / "gdas-seed0" / "genotype.json").exists()


def test_train_stage_trains_each_derived_genotype_and_joins_its_row(tmp_path):
    result = sweep(["gdas"], [0], out=tmp_path / "s", train="quickstart", train_epochs=1, progress=False,
                   **{**TINY, "epochs": 1})
    row = result.rows[0]
    trained = RunDir(tmp_path / "s" / "trained" / "gdas-seed0")
    assert trained.status()["state"] == "finished" and row["train_acc"] == trained.status()["test_acc"]
    assert json.loads(trained.config_file.read_text())["config"]["epochs"] == 1
    assert "train_acc" in result.table


def test_ray_path_on_a_local_ray_gives_the_local_executors_results(tmp_path):
    pytest.importorskip("ray")
    settings = {**TINY, "epochs": 1}
    ray = sweep(["gdas", "rome"], [0], out=tmp_path / "ray", executor="ray", ray_cpus=1, threads=1, progress=False,
                **settings)
    local = sweep(["gdas", "rome"], [0], out=tmp_path / "local", threads=1, progress=False, **settings)
    assert [r["status"] for r in ray.rows] == ["finished", "finished"]
    for name in ("gdas-seed0", "rome-seed0"):
        assert _result(tmp_path / "ray" / name) == _result(tmp_path / "local" / name)


def _kill_worker_after_first_checkpoint(run: Path, killed: list) -> None:
    """SIGKILL the sweep worker searching into ``run`` once its first epoch's checkpoint is there."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (run / "checkpoint.pt").exists():
        time.sleep(0.02)
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"romenas.sweep.worker" in cmdline and any(str(run.parent).encode() in part for part in cmdline):
            os.kill(int(proc.name), signal.SIGKILL)
            killed.append(int(proc.name))


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="finds the worker through /proc (Linux)")
def test_a_worker_killed_mid_search_is_resumed_to_the_uninterrupted_result(tmp_path):
    settings = {**TINY, "epochs": 4, "limit_train": 256}
    killed: list = []
    watcher = threading.Thread(target=_kill_worker_after_first_checkpoint, args=(tmp_path / "k" / "gdas-seed0", killed))
    watcher.start()
    result = sweep(["gdas"], [0], out=tmp_path / "k", threads=1, retries=1, progress=False, **settings)
    watcher.join()
    assert killed, "the worker was not found to kill"
    entry = json.loads((tmp_path / "k" / "sweep.json").read_text())["runs"]["gdas-seed0"]
    assert entry["status"] == "finished" and entry["attempts"] == 2  # killed once, resumed once
    assert result.rows[0]["status"] == "finished"
    whole = sweep(["gdas"], [0], out=tmp_path / "whole", threads=1, progress=False, **settings)
    assert whole.rows[0]["status"] == "finished"
    assert _result(tmp_path / "k" / "gdas-seed0") == _result(tmp_path / "whole" / "gdas-seed0")


def test_runs_given_one_by_one_keep_their_names_and_are_checked_like_a_file():
    runs = listed_runs([{"algorithm": "gdas", "seed": 1, "name": "mine", "epochs": 2, "data_dir": None},
                        {"algorithm": "rome", "samples": 3}])
    assert [r.name for r in runs] == ["mine", "rome-seed0-samples3"]
    assert runs[0].settings == {"epochs": 2, "algorithm": "gdas", "seed": 1}  # None: not set
    for bad, message in (([], "must hold a list of runs"), ("rome", "must hold a list of runs"),
                         ([{"algorithm": "rome", "name": "a"}, {"algorithm": "gdas", "name": "a"}], "two runs 'a'"),
                         ([{"algorithm": "rome", "name": "../up"}], "letters, digits")):
        with pytest.raises(RomenasError, match=message):
            listed_runs(bad)
    with pytest.raises(RomenasError, match="drop --algorithms"):
        sweep(["rome"], [0], out="unused", runs=[{"algorithm": "rome"}], progress=False)
