"""Property test: any invalid config value is refused with exit code 2 and one line, before any work."""
import dataclasses
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from romenas.cli import main
from romenas.config import SearchConfig, TrainConfig

TINY = ["--no-progress", "--limit-train", "64", "--epochs", "1", "--channels", "4", "--layers", "3"]


def _fields(cls, kind):
    return [f.name for f in dataclasses.fields(cls) if type(f.default) is kind and f.name != "progress"]


def _invalid_numbers(kind):
    """Non-finite floats and negative numbers: none is a valid value of any numeric setting."""
    if kind is float:
        return st.sampled_from([math.nan, math.inf, -math.inf]) | st.floats(max_value=-1e-6, min_value=-1e12)
    return st.integers(max_value=-1, min_value=-10 ** 30)


def _refused(argv, capsys) -> str:
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, (argv, err)
    assert len(err.splitlines()) == 1 and err.startswith("romenas: error: "), (argv, err)
    return err


@pytest.mark.parametrize("command, cls", [("search", SearchConfig), ("train", TrainConfig)])
@pytest.mark.parametrize("kind", [float, int])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_invalid_numbers_exit_2_in_one_line(command, cls, kind, data, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    name = data.draw(st.sampled_from(_fields(cls, kind)))
    value = data.draw(_invalid_numbers(kind))
    extra = ["NB201_OPTIMUM", "--dry-run"] if command == "train" else TINY
    err = _refused([command, *extra, f"--{name.replace('_', '-')}={value}"], capsys)
    assert name.split("_")[-1] in err or "tau" in err or "seed" in err
    assert not (tmp_path / "runs").exists()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(["algorithm", "space", "edge_sampler", "parallel", "subnet_execution", "recipe", "device"]),
       value=st.text(alphabet="abcxyz-_/.0123456789", min_size=1, max_size=12))
def test_unknown_choices_exit_2_in_one_line(name, value, capsys):
    _refused(["search", *TINY, f"--{name.replace('_', '-')}={value}"], capsys)


def test_every_flag_of_every_command_has_a_help_line():
    import argparse

    from romenas.cli import build_parser

    def walk(parser, path):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    yield from walk(sub, f"{path} {name}")
            elif not isinstance(action, argparse._HelpAction):
                yield path, action

    empty = [f"{path} {'/'.join(a.option_strings) or a.dest}" for path, a in walk(build_parser(), "romenas")
             if not (a.help or "").strip()]
    assert not empty
    assert len(list(walk(build_parser(), "romenas"))) > 100  # every command walked


def test_settings_shared_by_search_and_train_are_defined_once():
    from romenas.config import RunSettings

    shared = {f.name for f in dataclasses.fields(RunSettings)}
    own = lambda cls: {f.name for f in dataclasses.fields(cls)} - shared  # noqa: E731
    assert {"dataset", "seed", "precision", "workers"} <= shared
    assert not {n for n in own(SearchConfig) & own(TrainConfig)
                if getattr(SearchConfig, n, None) == getattr(TrainConfig, n, None)
                and SearchConfig.__dataclass_fields__[n].metadata == TrainConfig.__dataclass_fields__[n].metadata}


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["derive", "DARTS_V2"], ["config"], ["list", "."],
                                  ["bench", "collapse", "GDAS"]])
def test_light_commands_start_without_torch(argv):
    """--help, derive, config, list and show read text only: they must not pay torch's import (seconds)."""
    import subprocess
    import sys

    code = ("import sys, romenas.cli\ntry:\n    romenas.cli.main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            "sys.stdout.write('\\nTORCH=%s' % ('torch' in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=60)
    assert done.stdout.rstrip().endswith("TORCH=False"), done.stdout[-300:] + done.stderr[-300:]
    if argv == ["--version"]:
        assert done.stdout.startswith("romenas 0.")


@pytest.mark.parametrize("command, cls", [("search", SearchConfig), ("train", TrainConfig), ("sweep", SearchConfig)])
def test_help_groups_each_setting_under_its_group_and_shows_its_choices(command, cls):
    import argparse

    from romenas.cli import build_parser
    from romenas.config import SETTING_GROUPS
    from romenas.registry import SPACES

    parser = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices[command]
    flags = {g.title: {s for a in g._group_actions for s in a.option_strings} for g in parser._action_groups}
    titles = [t for t in flags if t in SETTING_GROUPS]
    assert titles == sorted(titles, key=SETTING_GROUPS.index) and len(titles) >= 5
    for f in dataclasses.fields(cls):
        if f.name != "options":
            assert "--" + f.name.replace("_", "-") in flags[f.metadata["group"]], f.name
    shown = {a.dest: a for a in parser._actions}
    for f in dataclasses.fields(cls):
        if f.name != "options" and f.metadata["choices"]:
            assert shown[f.name].metavar == "{" + ",".join(f.metadata["choices"]) + "}"
    if cls is SearchConfig:
        assert all(name in shown["space"].help for name in SPACES)
