"""xautodl's own GDAS network through the NAS-Bench-201 cpu-proxy schedule, beside romenas' GDAS.

Is GDAS' collapse on the CPU proxy the proxy's or romenas' code? Each seed runs romenas' GDAS
search exactly as ``nb201_search.py --preset cpu-proxy --variants gdas`` does (the same data,
epochs, optimisers and ops), records its batches and Gumbel draws, then runs xautodl's
``TinyNetworkGDAS`` from the same start through the official loop of
exps/NAS-Bench-201-algos/GDAS.py (tests/xautodl_reference.py) on those batches and draws, with
the same proxy settings. Both genotypes are looked up in the NAS-Bench-201 table.

    pip install --no-deps xautodl==1.0.0
    python benchmarks/xautodl_proxy.py --seeds 3 0 --ops skip_connect nor_conv_1x1 nor_conv_3x3 avg_pool_3x3

Writes xautodl_proxy.csv and xautodl_proxy.md under --out.
"""
from __future__ import annotations

import sys
import time
from datetime import date
from pathlib import Path

import torch

from _runs import REPO, SHARED, benchmark_parser, run_benchmark, write_csv
from nb201_search import PRESETS

sys.path.insert(0, str(REPO / "tests"))


def _one_seed(args, seed: int) -> dict:
    import romenas.sampling as sampling
    import xautodl_reference as ref
    from romenas.bench.nb201 import NB201Table
    from romenas.config import SearchConfig, build_config
    from romenas.search.loop import Searcher

    preset = {k: v for k, v in PRESETS["cpu-proxy"].items() if k != "samples"}  # GDAS reads no K
    cfg = build_config(SearchConfig, dict(**preset, algorithm="gdas", space="nb201", dataset=args.dataset,
                                          ops=args.ops, seed=seed, progress=False))
    searcher = Searcher(cfg, None)
    net0 = {k: v.clone() for k, v in searcher.net.state_dict().items()}
    alpha0 = {k: v.detach().clone() for k, v in searcher.algo.alphas.items()}
    seen, draws, inputs, gumbel = [], [], searcher.runtime.inputs, sampling.gumbel

    def record_input(t):
        seen.append(t)
        return inputs(t)

    def record_gumbel(shape, generator, device=None):
        g = gumbel(shape, generator, device)
        draws.append(g.detach().clone())
        return g

    searcher.runtime.inputs, sampling.gumbel = record_input, record_gumbel
    started = time.perf_counter()
    try:
        searcher.fit()
    finally:
        sampling.gumbel = gumbel
    romenas_s = time.perf_counter() - started
    steps = searcher.steps_per_epoch
    batches = [tuple(seen[4 * i:4 * i + 4]) for i in range(len(seen) // 4)]
    per_epoch = [batches[e * steps:(e + 1) * steps] for e in range(cfg.epochs)]

    ops = list(searcher.algo.space.site_ops["cell"][0])
    xnet = ref.build("nb201", "gdas", ops, cfg.channels, cfg.layers, searcher.net.classifier.out_features)
    start = searcher.algo.space.build_supernet(cfg.channels, cfg.layers, searcher.net.classifier.out_features, 3)
    start.load_state_dict(net0)
    ref.load_from_romenas(xnet, start, alpha0, "nb201")

    class _Patch:  # injected_gumbel takes pytest's monkeypatch; this does the same outside pytest
        def setattr(self, obj, name, value):
            setattr(obj, name, value)

    started = time.perf_counter()
    with ref.injected_gumbel(_Patch(), draws):
        ref.official_search(xnet, per_epoch, lr=cfg.w_lr, eta_min=cfg.w_lr_min, momentum=cfg.w_momentum,
                            decay=cfg.w_weight_decay, nesterov=cfg.w_nesterov, clip=cfg.grad_clip, a_lr=cfg.a_lr,
                            a_betas=tuple(cfg.a_betas), a_decay=cfg.a_weight_decay, tau_max=cfg.options["tau_max"],
                            tau_min=cfg.options["tau_min"])
    xautodl_s = time.perf_counter() - started

    table = NB201Table.load(args.table)
    ours = searcher.algo.derive()
    alpha_x = ref.arch_parameters(xnet)["cell"].detach()
    alpha_r = searcher.algo.alphas["cell"].detach().clone()
    with torch.no_grad():
        searcher.algo.alphas["cell"].copy_(alpha_x)
    theirs = searcher.algo.derive()
    return {"seed": seed, "romenas_cifar10": table.lookup(ours)["cifar10"],
            "xautodl_cifar10": table.lookup(theirs)["cifar10"], "same_genotype": ours == theirs,
            "alpha_max_diff": float((alpha_x - alpha_r).abs().max()),
            "romenas_genotype": str(ours), "xautodl_genotype": str(theirs), "steps": len(batches),
            "romenas_s": round(romenas_s), "xautodl_s": round(xautodl_s)}


def main():
    p = benchmark_parser(__doc__, PRESETS, "xautodl-proxy", seeds=[3, 0])
    p.add_argument("--table", default=str(SHARED / "nb201" / "nb201_test_accuracy_200ep.csv"))
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for seed in args.seeds:
        rows.append(_one_seed(args, seed))
        r = rows[-1]
        print(f"seed {seed}: romenas {r['romenas_cifar10']:.2f}  xautodl {r['xautodl_cifar10']:.2f}  "
              f"same genotype {r['same_genotype']}  {r['romenas_s']} s / {r['xautodl_s']} s", flush=True)
    write_csv(out / "xautodl_proxy.csv", rows)
    ops = " ".join(args.ops) if args.ops else "all five"
    lines = [f"GDAS on the NAS-Bench-201 cpu-proxy: romenas vs xautodl's TinyNetworkGDAS, ops {ops}, {date.today()}",
             "", "| seed | romenas CIFAR-10 | xautodl CIFAR-10 | same genotype | max alpha difference | steps | romenas genotype |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['seed']} | {r['romenas_cifar10']:.2f} | {r['xautodl_cifar10']:.2f} | {r['same_genotype']} | "
              f"{r['alpha_max_diff']:.2e} | {r['steps']} | {r['romenas_genotype']} |" for r in rows]
    (out / "xautodl_proxy.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    run_benchmark(main)
