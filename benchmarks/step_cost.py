"""Search-step cost, side by side: romenas ROME / GDAS / DARTS vs the official xautodl GDAS / DARTS.

Each configuration runs in a fresh process (peak memory on CPU = peak RSS above the
process's RSS just before the first step; on GPU = torch.cuda.max_memory_allocated).
A step is one weight step plus one architecture step, on the same batch size and input.
romenas steps run through the search loop's own step methods on the CIFAR-10 image folder.

    python benchmarks/step_cost.py --quick          # < 10 min on 2 CPU cores
    pip install --no-deps xautodl==1.0.0            # the official reference code (benchmark only)
"""
from __future__ import annotations

import argparse
import contextlib
import json
import resource
import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "cifar10"
IMPLS = ["romenas-rome", "romenas-rome-batched", "romenas-gdas", "romenas-darts", "xautodl-gdas", "xautodl-darts"]
# The networks xautodl builds in the same call: NB201 C=16 N=5; DARTS C=16 N=2, which is 6 cells
# (xautodl: N normal cells in the first stage, N-1 after each reduction).
SPACES = {"nb201": dict(channels=16, layers=5), "darts": dict(channels=16, layers=6)}


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _batches(args, device):
    """The same two CIFAR-10 batches (weight half, architecture half) for every implementation."""
    from romenas.data import epoch_loader, load_data, make_transform

    data = load_data(args.data, limit_train=2 * args.batch)
    loader = epoch_loader(data, "train", make_transform(data, train=True), args.batch, seed=0, workers=0)
    return [tuple(t.to(device) for t in batch) for batch in loader][:2]


def _romenas_stepper(impl, space, args, device):
    from romenas.config import SearchConfig, build_config
    from romenas.search.loop import Searcher

    algo = impl.split("-")[1]
    execution = "batched" if impl.endswith("batched") else "sequential"
    cfg = build_config(SearchConfig, dict(algorithm=algo, space=space, dataset=args.data, limit_train=2 * args.batch,
                                          batch_size=args.batch, samples=args.samples, progress=False,
                                          device=str(device), subnet_execution=execution, precision=args.precision,
                                          **SPACES[space]))
    s = Searcher(cfg, run=None)
    (xw, yw), (xa, ya) = _batches(args, device)
    n_weight = len(s.algo.weight_plans(1.0))
    n_arch = len(s.algo.arch_plans(1.0))

    def step():
        s.net.train()
        s._arch_step(xa, ya, 1.0)
        s._weight_step(xw, yw, 1.0)

    return step, n_weight + n_arch


def _xautodl_stepper(impl, space, args, device):
    from xautodl.models.cell_operations import SearchSpaceNames
    from xautodl.models.cell_searchs import NASNetworkDARTS, NASNetworkGDAS, TinyNetworkDarts, TinyNetworkGDAS

    gdas = impl.endswith("gdas")
    if space == "nb201":
        cls = TinyNetworkGDAS if gdas else TinyNetworkDarts
        net = cls(16, 5, 4, 10, SearchSpaceNames["nas-bench-201"], False, True)
    else:
        cls = NASNetworkGDAS if gdas else NASNetworkDARTS
        net = cls(16, 2, 4, 4, 3, 10, SearchSpaceNames["darts"], False, True)
    net = net.to(device)
    if gdas:
        net.set_tau(1.0)
    w_opt = torch.optim.SGD(net.get_weights(), 0.025, momentum=0.9, weight_decay=3e-4)
    a_opt = torch.optim.Adam(net.get_alphas(), 3e-4, betas=(0.5, 0.999), weight_decay=1e-3)
    (xw, yw), (xa, ya) = _batches(args, device)

    autocast = (torch.autocast(device.type, dtype=torch.bfloat16) if args.precision == "bf16-mixed"
                else contextlib.nullcontext())

    def step():
        net.train()
        w_opt.zero_grad()
        with autocast:
            loss = F.cross_entropy(net(xw)[1], yw)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.get_weights(), 5)
        w_opt.step()
        a_opt.zero_grad()
        with autocast:
            loss = F.cross_entropy(net(xa)[1], ya)
        loss.backward()
        a_opt.step()

    return step, 2


def measure_one(impl: str, space: str, args) -> dict:
    torch.manual_seed(0)
    device = torch.device(args.device)
    maker = _romenas_stepper if impl.startswith("romenas") else _xautodl_stepper
    step, subnets = maker(impl, space, args, device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    base = _rss_mb()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base_gpu = torch.cuda.memory_allocated() / 2**20
    times = []
    for i in range(args.warmup + args.repeats):
        sync()
        t0 = time.perf_counter()
        step()
        sync()
        if i >= args.warmup:
            times.append(time.perf_counter() - t0)
    peak = (torch.cuda.max_memory_allocated() / 2**20 - base_gpu) if device.type == "cuda" else _rss_mb() - base
    median = statistics.median(times)
    return {"impl": impl, "space": space, "step_s": median, "peak_mb": peak, "subnets_per_step": subnets,
            "s_per_subnet_pair": median / subnets * 2, "device": str(device)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1 warm-up, 2 repeats")
    parser.add_argument("--batched", action=argparse.BooleanOptionalAction, default=None,
                        help="also measure ROME with batched subnets (default: on a GPU only)")
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="CIFAR-10 image folder (romenas rows)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--samples", type=int, default=4, help="ROME's K")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--precision", choices=("32", "bf16-mixed"), default="32", help="for every row alike")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    parser.add_argument("--one", nargs=2, metavar=("IMPL", "SPACE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.warmup, args.repeats = (1, 2) if args.quick else (2, 10)
    if args.batched is None:
        args.batched = args.device.startswith("cuda")
    if args.one:
        print(json.dumps(measure_one(*args.one, args)))
        return
    rows = []
    for space in SPACES:
        for impl in IMPLS if args.batched else [i for i in IMPLS if not i.endswith("batched")]:
            cmd = [sys.executable, __file__, "--one", impl, space, "--data", args.data, "--batch", str(args.batch),
                   "--samples", str(args.samples), "--device", args.device, "--precision", args.precision
                   ] + (["--quick"] if args.quick else [])
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode != 0:
                print(f"{impl} {space}: FAILED\n{done.stderr[-1500:]}", file=sys.stderr)
                rows.append({"impl": impl, "space": space, "error": done.stderr.strip().splitlines()[-1]})
                continue
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
            r = rows[-1]
            print(f"{space:6s} {impl:14s} step {r['step_s']:.3f}s  peak {r['peak_mb']:.0f} MB  "
                  f"subnets/step {r['subnets_per_step']}", flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table = _markdown(rows, args)
    (out / "step_cost.json").write_text(json.dumps(rows, indent=2))
    (out / "step_cost.md").write_text(table)
    print(table)


def _markdown(rows, args) -> str:
    by = {(r["impl"], r["space"]): r for r in rows if "error" not in r}
    lines = [f"Step cost, {date.today()}, device {args.device}, precision {args.precision}, batch {args.batch}, "
             f"ROME K={args.samples} "
             f"(Algorithm 1: K Gumbel subnets in both steps), torch {torch.__version__}", "",
             "| space | impl | step (s) | peak mem (MB) | subnets/step | s per (weight+arch) subnet pair |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['space']} | {r['impl']} | failed: {r['error']} | | | |")
        else:
            lines.append(f"| {r['space']} | {r['impl']} | {r['step_s']:.3f} | {r['peak_mb']:.0f} | "
                         f"{r['subnets_per_step']} | {r['s_per_subnet_pair']:.3f} |")
    lines += ["", "Ratios (measured in this run):", ""]
    for space in SPACES:
        mine, official = by.get(("romenas-darts", space)), by.get(("xautodl-darts", space))
        if mine and official:
            lines.append(f"- {space}: romenas DARTS peak memory / xautodl DARTS = "
                         f"{mine['peak_mb'] / official['peak_mb']:.2f} (time {mine['step_s'] / official['step_s']:.2f})")
        rome = by.get(("romenas-rome", space))
        for ref in ("romenas-darts", "xautodl-darts", "xautodl-gdas"):
            other = by.get((ref, space))
            if rome and other and other["peak_mb"] > 0:
                lines.append(f"- {space}: ROME peak memory / {ref} = {rome['peak_mb'] / other['peak_mb']:.2f}")
        gdas = by.get(("xautodl-gdas", space))
        if rome and gdas:
            lines.append(f"- {space}: ROME time per subnet pair / official GDAS step = "
                         f"{rome['s_per_subnet_pair'] / gdas['step_s']:.2f}")
        batched, single = by.get(("romenas-rome-batched", space)), by.get(("romenas-gdas", space))
        if rome and batched:
            lines.append(f"- {space}: ROME batched step / sequential step = {batched['step_s'] / rome['step_s']:.2f} "
                         f"(peak memory {batched['peak_mb'] / max(rome['peak_mb'], 1e-9):.2f}x)")
        if batched and single:
            lines.append(f"- {space}: ROME batched step ({batched['subnets_per_step']} subnets) / single-subnet "
                         f"(GDAS) step = {batched['step_s'] / single['step_s']:.2f}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
