"""``romenas`` command line: parse, call the Python API, print. Errors: one line, exit code 2."""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import sys
import types
import typing

from .config import (DEFAULT_PRESET, METRICS, TARGETS, SearchConfig, TrainConfig, build_config, field_help, format_cost,
                     preset_names, SETTING_GROUPS, to_dict)
from .arguments import os_error_line, printable
from .errors import RomenasError


def _add_config_flags(parser: argparse.ArgumentParser, cls) -> None:
    """One ``--flag`` per config field (booleans get ``--x/--no-x``), in the field's group
    (config.SETTING_GROUPS, in that order); unset flags keep the preset's value."""
    hints, meaning = typing.get_type_hints(cls), field_help(cls)
    fields = [f for f in dataclasses.fields(cls) if f.name != "options"]  # options: _add_algorithm_flags
    groups = {name: parser.add_argument_group(name) for name in SETTING_GROUPS
              if any(f.metadata["group"] == name for f in fields)}
    next(iter(groups.values())).description = (
        "a flag overrides the preset's and the recipe's value; a setting neither sets takes the default shown "
        "('romenas config' prints what a preset resolves to)")
    for f in fields:
        group = groups[f.metadata["group"]]
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        shown = " ".join(map(str, default)) if isinstance(default, tuple) else default
        flag = "--" + f.name.replace("_", "-")
        text = f"{meaning.get(f.name, '')}{_registered(f.name)} [default: {shown}]".replace("%", "%%")
        hint = hints[f.name]
        args = [a for a in typing.get_args(hint) if a is not type(None)] if isinstance(hint, types.UnionType) else []
        base = args[0] if args else hint
        if base is bool:
            group.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=text)
        elif typing.get_origin(base) is tuple and typing.get_args(base)[-1] is Ellipsis:
            group.add_argument(flag, type=typing.get_args(base)[0], nargs="+", default=None,
                               metavar=f.name[:-1].upper(), help=text)
        elif typing.get_origin(base) is tuple:
            group.add_argument(flag, type=float, nargs=2, default=None, metavar=("B1", "B2"), help=text)
        else:  # choices are shown, and checked by validate() (one line, exit 2), not by argparse
            choices = f.metadata["choices"]
            group.add_argument(flag, type=base, default=None, help=text,
                               metavar="{" + ",".join(choices) + "}" if choices else f.name.upper())


def _registered(setting: str) -> str:
    """': one of ...' for the settings whose values are registry names."""
    from .algorithms import ALGORITHM_ENTRIES
    from .registry import SPACES

    names = {"algorithm": ALGORITHM_ENTRIES, "space": SPACES}.get(setting)
    return f": one of {', '.join(names)}" if names else ""


def _add_algorithm_flags(parser: argparse.ArgumentParser) -> None:
    """The flags of every registered algorithm's options, grouped by the algorithms that own them,
    each with the default that applies and the values its recipes or the quick start set instead."""
    from .algorithms import ALGORITHM_ENTRIES, option_owners
    from .config import load_preset
    from .recipes import RECIPES

    owners, quick = option_owners(), load_preset(DEFAULT_PRESET, "search")
    groups: dict[tuple[str, ...], argparse._ArgumentGroup] = {}
    for name, algorithms in owners.items():
        option = ALGORITHM_ENTRIES[algorithms[0]].option(name)
        key = tuple(algorithms)
        if key not in groups:
            groups[key] = parser.add_argument_group(f"{' and '.join(key)} options",
                                                    "another algorithm's option given as a flag is refused")
        notes = [f"recipe {r}: {v}" for r, v in sorted((r.name, r.settings[name]) for r in RECIPES.values()
                                                        if name in r.settings and r.settings[name] != option.default)]
        if quick.get("algorithm") in algorithms and quick.get(name, option.default) != option.default:
            notes.append(f"the quick start (no --dataset): {quick[name]}")
        shown = "; ".join([str(option.default)] + notes)
        text = f"{option.help} [default: {shown}]".replace("%", "%%")
        if option.kind is bool:
            groups[key].add_argument(option.flag, action=argparse.BooleanOptionalAction, default=None, help=text)
        else:
            metavar = "{" + ",".join(map(str, option.choices)) + "}" if option.choices else name.upper()
            groups[key].add_argument(option.flag, type=option.kind, default=None, metavar=metavar, help=text)


def _overrides(args: argparse.Namespace, cls) -> dict:
    names = [f.name for f in dataclasses.fields(cls) if f.name != "options"]
    if cls is SearchConfig:
        from .algorithms import option_owners

        names += list(option_owners())
    values = {k: getattr(args, k) for k in names if getattr(args, k, None) is not None}
    for name, value in values.items():  # argparse turns "--space=--" into an empty list
        if isinstance(value, list) and not value:
            raise RomenasError(f"--{name.replace('_', '-')} needs a value")
    return values


def _is_main() -> bool:
    """Under torchrun only rank 0 reports."""
    from .distributed import context

    return context().is_main


def _print_json(data) -> None:
    try:
        print(json.dumps(data, indent=2, allow_nan=False))
    except ValueError:  # NaN/inf is not JSON: a script reading it would fail later, and worse
        raise RomenasError("the results hold non-finite numbers (NaN/inf), which JSON cannot carry; the network's "
                           "weights are damaged, train it again") from None


# ---- commands ------------------------------------------------------------------------------
def cmd_search(args) -> None:
    from .bench import lookup_lines
    from .search.loop import search

    result = search(out=args.out, resume=args.resume, preset=args.preset,
                    **_overrides(args, SearchConfig))
    if not _is_main():
        return
    args.finished_run = result.run_dir  # a Ctrl-C from here on interrupts only the report
    print(f"run folder: {result.run_dir}")
    if result.metrics:
        last = result.metrics[-1]
        print(f"epoch {last['epoch']}: train acc {last['train_acc']:.2f}%, val acc {last['val_acc']:.2f}%")
        for line in lookup_lines(last):
            print(line)
    print(f"genotype: {result.genotype}")
    if result.metrics:
        from .viz import plot_runs

        print(f"plots: {plot_runs(result.run_dir, [], None)[-1]} and the architecture weights beside it")


def cmd_derive(args) -> None:
    from .published import load_genotype

    given = {k: getattr(args, k) for k in (*TARGETS, "budget_channels", "budget_layers", "image_size")}
    SearchConfig(recipe="none", **{k: v for k, v in given.items() if v is not None}).validate()  # as search checks them
    targets = {metric: given[name] for name, metric in TARGETS.items() if given[name] is not None}
    size = {"channels": args.budget_channels, "layers": args.budget_layers, "image_size": args.image_size}
    if not targets:
        if any(v is not None for v in size.values()):
            raise RomenasError("--budget-channels/--budget-layers/--image-size size the network a budget prices; "
                               "add --target-mflops, --target-params or --target-latency-ms, or drop them")
        genotype = load_genotype(args.run)
    else:
        from .search.budget import derive_within

        genotype, mode, cost, priced = derive_within(args.run, targets, **size)
        note = ", ".join(format_cost(m, cost[m]) for m in targets)
        print(f"romenas: the most probable cell within the budget: {note} (C={priced['channels']}, "
              f"{priced['layers']} layers, {priced['image_size']}px)" +
              ("" if mode == genotype else f"; the search's most probable cell, {mode}, is above it"), file=sys.stderr)
    print(genotype.to_json() if args.format == "json" else genotype.to_string())


def cmd_train(args) -> None:
    from .train import describe, train

    if args.dry_run:
        info = describe(args.genotype, preset=args.preset, **_overrides(args, TrainConfig))
        print(f"genotype: {info['genotype']}")
        print(f"input {info['input']}, {info['classes']} classes")
        print(f"params: {info['params'] / 1e6:.3f}M (auxiliary head excluded)")
        print(f"FLOPs: {info['flops'] / 1e6:.1f}M ({info['flops'] / 2e6:.1f}M MACs)")
        return
    result = train(args.genotype, out=args.out, resume=args.resume, preset=args.preset,
                   **_overrides(args, TrainConfig))
    if not _is_main():
        return
    print(f"run folder: {result.run_dir}")
    print(f"params: {result.params / 1e6:.3f}M; final test accuracy: {result.test_acc:.2f}%")


def cmd_evaluate(args) -> None:
    from .inference import evaluate_run

    report, written = evaluate_run(args.run, args.dataset, args.batch_size, args.data_dir, args.download,
                                   progress=sys.stderr.isatty())
    print(f"{printable(report['folder'])}: {report['images']} images")
    if "note" in report:
        print(f"note: {printable(report['note'])}")
    print(f"top-1 {report['top1']:.2f}%   top-{report['top5_k']} {report['top5']:.2f}%")
    names = {name: printable(name) for name in report["per_class"]}  # class names come from files
    width = max(map(len, names.values()))
    print(f"{'class':{width}s}  images  accuracy")
    for name, row in report["per_class"].items():
        print(f"{names[name]:{width}s}  {row['images']:6d}  {row['accuracy']:7.2f}%")
    for path in written:
        print(f"wrote {printable(str(path))}")
    if len(written) == 1:
        print(f"confusion matrix: {len(report['classes'])} classes are too many to draw; it is in the JSON report")


def cmd_predict(args) -> None:
    from .inference import TrainedModel

    results = TrainedModel.load(args.run).predict(args.images, args.topk)
    if args.json:
        _print_json(results)
        return
    for r in results:  # class names come from the weights file, image names from a folder: escaped
        print(printable(r["image"]) + ": " + ", ".join(f"{printable(t['class'])} {t['probability']:.3f}"
                                                       for t in r["top"]))


def cmd_export(args) -> None:
    from .export import export

    info = export(args.run, args.format, args.out)
    opset = f", opset {info['opset']}, dynamic batch axis" if info["opset"] else ""
    print(f"wrote {info['file']} ({info['format']}{opset}, input {info['input']})")
    print(f"checked: max |difference| to PyTorch {info['max_abs_difference']:.2e} on {info['checked_on']}")
    print(f"inputs: {info['metadata']['preprocessing']}; mean {info['metadata']['mean']}, std "
          f"{info['metadata']['std']} (also in the file's metadata, with the class names and the genotype)")


def cmd_card(args) -> None:
    from .model_card import write_model_card

    print(write_model_card(args.run))


def cmd_bench(args) -> None:
    from .published import load_genotype

    if args.bench == "nb201":
        from .bench.nb201 import NB201Table

        found = NB201Table.load(args.table).lookup(args.arch)
        print(f"arch:      {found['arch']}")
        isomorphic = found["canonical"] != found["arch"]
        if isomorphic:
            print(f"class:     {found['canonical']} (isomorphic: same function, trained separately)")
        for key in ("cifar10", "cifar100", "imagenet16-120"):
            print(f"{key:15s} {found[key]:.2f}" + (f"   (class row {found['class'][key]:.2f})" if isomorphic else ""))
    elif args.bench == "nb101":
        _bench_nb101(args)
    else:
        from .bench.collapse import collapse_metrics

        _print_json(collapse_metrics(load_genotype(args.genotype)))


def _bench_nb101(args) -> None:
    from .published import load_genotype
    from .spaces.nb101 import NB101Network

    genotype = load_genotype(args.spec)  # a spec's JSON, a file of one, a 1shot1 run folder or genotype
    if genotype.family != "nb101":
        raise RomenasError(f"that is a {genotype.family} genotype; bench nb101 looks NAS-Bench-101 cells up: give "
                           "{\"matrix\": [[...]], \"ops\": [...]}, a file of it or a 1shot1 search's run folder")
    spec = genotype.nb101_spec().check_in_benchmark()
    params = sum(p.numel() for p in NB101Network(spec, 10).parameters())
    print(f"spec:      {json.dumps(spec.to_dict())} (pruned: {spec.num_vertices} vertices, {spec.num_edges} edges)")
    print(f"hash:      {spec.hash()}")
    print(f"params:    {params:,} (the benchmark's network: 128 channels, 3 stacks of 3 cells, 10 classes)")
    if args.table:
        from .bench.nb101 import NB101Table

        found = NB101Table(args.table).lookup(spec, args.epochs)
        print(f"{args.epochs} epochs, mean of {found['repeats']} runs: test {found['test_accuracy']:.2f}%, validation "
              f"{found['validation_accuracy']:.2f}%, train {found['train_accuracy']:.2f}%, "
              f"{found['training_time']:.0f} s to train; {found['trainable_parameters']:,} parameters stored")


def cmd_sweep(args) -> None:
    from .sweep import sweep

    common = _overrides(args, SearchConfig)
    for own in ("algorithm", "seed"):
        if own in common:
            raise RomenasError(f"a sweep sets --{own} per run; use --{own}s")
    result = sweep(args.algorithms or (), args.seeds, out=args.out, grid=args.grid, runs_file=args.runs,
                   preset=args.preset, jobs=args.jobs, threads=args.threads, executor=args.executor,
                   devices=args.devices, retries=args.retries, train=args.train, train_epochs=args.train_epochs,
                   wait=args.wait, ray_address=args.ray_address, ray_cpus=args.ray_cpus, ray_gpus=args.ray_gpus,
                   slurm_partition=args.slurm_partition, slurm_time=args.slurm_time, slurm_gpus=args.slurm_gpus,
                   slurm_cpus=args.slurm_cpus, **common)
    print(f"sweep folder: {result.sweep_dir}")
    print(result.table)


def cmd_config(args) -> None:
    import yaml

    cls = SearchConfig if args.kind == "search" else TrainConfig
    given = {k: v for k, v in (("algorithm", args.algorithm), ("space", args.space)) if v is not None}
    if given and args.kind != "search":
        raise RomenasError("--algorithm and --space choose a search's settings; drop them, or drop --kind train")
    resolved = to_dict(build_config(cls, given or None, args.preset))  # bad input fails before anything is printed
    print(f"# preset {args.preset}, {args.kind} settings"
          + "".join(f", {k} {v}" for k, v in given.items()) + ", resolved (recipe, then preset, then these)")
    print(yaml.safe_dump(resolved, sort_keys=False), end="")


def cmd_show(args) -> None:
    from .report import summary
    from .sweep import format_table, is_sweep, sweep_rows

    print(format_table(sweep_rows(args.run), args.csv) if is_sweep(args.run) else summary(args.run))


def cmd_list(args) -> None:
    from .report import list_runs
    from .sweep import format_table, is_sweep, sweep_rows

    print(format_table(sweep_rows(args.root), args.csv) if is_sweep(args.root)
          else list_runs(args.root, args.sort, args.csv))


def cmd_plot(args) -> None:
    from .sweep import is_sweep

    if is_sweep(args.run):
        if args.compare:
            raise RomenasError("--compare overlays run folders; a sweep plots its groups together: drop --compare")
        from .sweep.plot import plot_sweep

        paths = plot_sweep(args.run, args.out, args.format)
    else:
        from .viz import plot_runs

        paths = plot_runs(args.run, args.compare or [], args.out, args.format)
    for path in paths:
        print(path)


def cmd_draw(args) -> None:
    from .viz import draw_genotype

    for path in draw_genotype(args.genotype, args.out, args.format):
        print(path)


def build_parser() -> argparse.ArgumentParser:
    from .version import __version__

    parser = argparse.ArgumentParser(prog="romenas", description="ROME neural architecture search and its workflow.")
    parser.add_argument("--version", action="version", version=f"romenas {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    from .algorithms import ALGORITHM_ENTRIES
    from .registry import SPACES

    p = sub.add_parser("search", help=f"search a cell ({', '.join(ALGORITHM_ENTRIES)})")
    p.add_argument("--preset", help=f"settings to start from, one of {preset_names()} (default: quickstart "
                                    "on the built-in data, none with --dataset: the published recipe)")
    p.add_argument("--out", help="run folder to create (default runs/search-...)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the search in RUN_DIR")
    _add_config_flags(p, SearchConfig)
    _add_algorithm_flags(p)
    p.add_argument("--fair", dest="weight_sampling", action="store_const", const="fair",
                   help="alias of --weight-sampling fair (ROME's default, the arXiv-2020 weight step)")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("sweep", help="many searches (algorithms x seeds x settings) at once, resumable, one table")
    p.add_argument("--algorithms", nargs="+", metavar="A", help=f"the algorithms to search with ({', '.join(ALGORITHM_ENTRIES)})")
    p.add_argument("--seeds", nargs="+", type=int, default=[0], metavar="S", help="the seeds of each (default 0)")
    p.add_argument("--grid", nargs="+", metavar="SETTING=V1,V2", default=[],
                   help="settings to vary: every combination is a run (an option only for its algorithms)")
    p.add_argument("--runs", metavar="FILE.yaml", help="a YAML list of runs instead of --algorithms/--grid")
    p.add_argument("--out", required=True, help="the sweep folder (a run folder per run, sweep.json); an earlier "
                                                "sweep's folder continues it")
    p.add_argument("--preset", help=f"settings every run starts from, one of {preset_names()}")
    p.add_argument("--jobs", type=int, default=1, help="runs at once (default 1; ray/slurm: all, if 1)")
    p.add_argument("--threads", type=int, help="torch threads per local run (default: the cores split between jobs)")
    p.add_argument("--executor", choices=("local", "ray", "slurm"), default="local",
                   help="where runs execute: local processes, Ray tasks, SLURM jobs via submitit (default local)")
    p.add_argument("--devices", nargs="+", metavar="GPU", help="local: GPUs handed out to the jobs round-robin")
    p.add_argument("--retries", type=int, default=1, help="how often a failed run is run again (resumed; default 1)")
    p.add_argument("--train", metavar="PRESET", help="train each derived genotype from scratch with this preset")
    p.add_argument("--train-epochs", type=int, help="the training's epochs (default: the preset's)")
    p.add_argument("--no-wait", dest="wait", action="store_false", help="slurm: submit and return; the same command "
                                                                       "later collects the results")
    p.add_argument("--ray-address", help="ray: the cluster ('auto': the one this machine is in; default: a local one)")
    p.add_argument("--ray-cpus", type=float, default=1.0, help="ray: CPUs per run (default 1)")
    p.add_argument("--ray-gpus", type=float, default=0.0, help="ray: GPUs per run, fractions share one (default 0)")
    p.add_argument("--slurm-partition", help="slurm: the partition")
    p.add_argument("--slurm-time", type=int, default=240, help="slurm: minutes per job (default 240)")
    p.add_argument("--slurm-gpus", type=int, default=0, help="slurm: GPUs per job (default 0)")
    p.add_argument("--slurm-cpus", type=int, default=2, help="slurm: CPUs per job (default 2)")
    _add_config_flags(p, SearchConfig)
    _add_algorithm_flags(p)
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("derive", help="print the genotype of a run folder or genotype file")
    p.add_argument("run", help="search run folder, genotype JSON file, genotype string or published name")
    p.add_argument("--format", choices=("string", "json"), default="string",
                   help="the family's own text (default: DARTS or NAS-Bench-201 string, NAS-Bench-101 matrix + ops) or "
                        "romenas' JSON")
    g = p.add_argument_group("derive again under a budget (a search run folder with a checkpoint)")
    for name, metric in TARGETS.items():
        g.add_argument("--" + name.replace("_", "-"), type=float, metavar="X",
                       help=f"the most probable cell whose {METRICS[metric]} fit X")
    g.add_argument("--budget-channels", type=int, metavar="C",
                   help="initial channels of the network the budget prices (default: the run's budget, else its "
                        "preset's, else the family's paper size)")
    g.add_argument("--budget-layers", type=int, metavar="N", help="cells of the priced network (as above)")
    g.add_argument("--image-size", type=int, metavar="PX", help="image side of the priced network "
                                                                          "(default: the search's images)")
    p.set_defaults(func=cmd_derive)

    p = sub.add_parser("train", help="train a genotype from scratch")
    p.add_argument("genotype", nargs="?", help="run folder, genotype JSON file, genotype string or published name")
    p.add_argument("--preset", help=f"settings to start from, one of {preset_names()} (default: quickstart "
                                    "on the built-in data, none with --dataset)")
    p.add_argument("--out", help="run folder to create (default runs/train-...)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the training run in RUN_DIR")
    p.add_argument("--dry-run", action="store_true", help="build the network, print parameters and FLOPs")
    _add_config_flags(p, TrainConfig)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="top-1/top-5, per-class accuracy and confusion matrix on a labelled folder")
    p.add_argument("run", help="a training run folder")
    p.add_argument("--dataset", required=True, help="folder of <class>/ images (its test/ or val/ split if present), "
                                                    "or a built-in dataset's test split: digits, cifar10, ...")
    p.add_argument("--batch-size", type=int, default=256, help="images per forward pass (default 256)")
    p.add_argument("--data-dir", help="where torchvision datasets live (built-in datasets)")
    p.add_argument("--download", action="store_true", help="let torchvision download a built-in dataset")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("predict", help="classify image files with a trained network")
    p.add_argument("run", help="a training run folder")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files to classify")
    p.add_argument("--topk", type=int, default=5, help="classes to report per image (default 5)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("export", help="export a trained network to ONNX or TorchScript (checked against PyTorch)")
    p.add_argument("run", help="a training run folder")
    p.add_argument("--format", choices=("onnx", "torchscript"), default="onnx", help="file format (default onnx)")
    p.add_argument("--out", help="file to write (default RUN/model.onnx or RUN/model.torchscript.pt)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("card", help="(re)write a training run's MODEL_CARD.md, measuring CPU speed anew")
    p.add_argument("run", help="a training run folder")
    p.set_defaults(func=cmd_card)

    p = sub.add_parser("bench", help="benchmark lookups and metrics")
    bench = p.add_subparsers(dest="bench", required=True)
    b = bench.add_parser("nb201", help="look a NAS-Bench-201 cell up")
    b.add_argument("arch", help="NAS-Bench-201 string, genotype file or run folder")
    b.add_argument("--table", required=True, help="the CSV accuracy table (or a NATS-Bench file with nats_bench)")
    b = bench.add_parser("nb101", help="a NAS-Bench-101 cell: pruned spec, hash, parameters; looked up with --table")
    b.add_argument("spec", help='JSON {"matrix": [[0, 1, ...], ...], "ops": ["input", ..., "output"]}, a file of it, or a 1shot1 search run folder')
    b.add_argument("--table", help="the benchmark's data file (nasbench_only108.tfrecord or nasbench_full.tfrecord)")
    b.add_argument("--epochs", type=int, choices=(4, 12, 36, 108), default=108, help="training budget looked up")
    b = bench.add_parser("collapse", help="parameter-free ops, skips and depth of a genotype")
    b.add_argument("genotype", help="run folder, genotype file, genotype string or published name")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("config", help="print a preset's resolved settings")
    p.add_argument("--preset", default=DEFAULT_PRESET, help=f"one of {preset_names()}")
    p.add_argument("--kind", choices=("search", "train"), default="search", help="which settings (default search)")
    p.add_argument("--algorithm", choices=list(ALGORITHM_ENTRIES), help="a search's algorithm: its recipe and "
                                                                        "options (default: the preset's)")
    p.add_argument("--space", choices=list(SPACES), help="a search's space (default: the preset's)")
    p.set_defaults(func=cmd_config)

    p = sub.add_parser("show", help="one-screen summary of a run, or a sweep's results table")
    p.add_argument("run", help="a run folder (search or training) or a sweep folder")
    p.add_argument("--csv", action="store_true", help="a sweep's table as CSV")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("list", help="the runs under a folder, as a results table")
    p.add_argument("root", nargs="?", default="runs", help="folder holding run folders (default runs)")
    p.add_argument("--sort", default="run", help="column to sort by: run, kind, algorithm, space, dataset, epochs, "
                                                 "accuracy, nb201, param_free, budget, status (numbers: best first)")
    p.add_argument("--csv", action="store_true", help="print CSV (for spreadsheets and scripts)")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("plot", help="plot a run's architecture weights, collapse metrics and curves, or a sweep's "
                                    "seeds and curves per group")
    p.add_argument("run", help="a search run folder, or a sweep folder (SWEEP/plots: seeds.png, curves.png)")
    p.add_argument("--compare", nargs="+", metavar="RUN_DIR", help="other runs to overlay")
    p.add_argument("--out", help="folder for the images (default RUN/plots or SWEEP/plots)")
    p.add_argument("--format", choices=("png", "svg"), default="png", help="image format (default png)")
    p.set_defaults(func=cmd_plot)

    p = sub.add_parser("draw", help="draw a genotype's cells")
    p.add_argument("genotype", help="run folder, genotype file, genotype string or published name")
    p.add_argument("--out", default="cells", help="folder for the diagrams (default cells)")
    p.add_argument("--format", choices=("png", "svg"), default="png", help="image format (default png)")
    p.set_defaults(func=cmd_draw)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except RomenasError as exc:
        print(f"romenas: error: {printable(str(exc))}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into head & co.: stop quietly (an OSError, so caught first)
        sys.stdout = open(os.devnull, "w")
        return 0
    except OSError as exc:  # the system refused a path (too long, no permission, a full disk): the user's to fix
        print(f"romenas: error: {printable(os_error_line(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:  # Ctrl-C, or a SIGTERM during a run (romenas.runs.Stopped)
        print(f"romenas: {exc or 'interrupted'}; {_after_interrupt(args, getattr(exc, 'run_dir', None))}",
              file=sys.stderr)
        return 128 + getattr(exc, "signum", 2)
    except Exception as exc:  # the last resort: every known kind of bad input is a RomenasError above
        with contextlib.suppress(Exception):  # it must not fail itself (a closed stderr, say)
            print(f"romenas: internal error in '{args.command}': {type(exc).__name__}; {_write_traceback()} "
                  "(please report it)", file=sys.stderr)
        return 1
    return 0


def _after_interrupt(args, where) -> str:
    """What a Ctrl-C left, in words: checked against the run folder, not assumed."""
    from .runs import RunDir

    where = where or getattr(args, "finished_run", None)
    if where is None:
        if args.command in ("search", "train"):
            return "no run folder was made yet; start it again"
        return f"'{args.command}' kept no partial output; run it again"
    run = RunDir(where)
    if run.status().get("state") == "finished":
        return f"the run had finished and its results are kept (romenas show {where})"
    if run.has_checkpoint():
        return f"the last checkpoint is kept; continue with romenas {args.command} --resume {where}"
    return f"no checkpoint was written yet; romenas {args.command} --resume {where} starts it from the beginning"


def _write_traceback() -> str:
    """Where the current exception's traceback went: a new file of the temporary folder, or, where
    that folder is unusable, its last line."""
    import tempfile
    import traceback

    text = traceback.format_exc()
    try:
        with tempfile.NamedTemporaryFile("w", prefix="romenas-traceback-", suffix=".txt", delete=False) as f:
            f.write(text)
    except Exception as exc:  # no usable temporary folder (missing, read-only, full, TMPDIR too long)
        last = text.strip().splitlines()[-1]
        return f"the traceback could not be saved ({type(exc).__name__}); its last line: {printable(last)[:300]}"
    return f"the full traceback is in {f.name}"


if __name__ == "__main__":
    sys.exit(main())
