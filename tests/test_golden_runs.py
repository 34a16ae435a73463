"""Golden runs: tiny searches of every algorithm on every cell family, kept bit for bit.

The design step that moved each algorithm into its own module (GDAS beside ROME on a shared
single-path base, options declared by the algorithms, a narrow architecture-step context) was
to change no number. These runs were captured before it (tests/golden/runs.json) and must stay
identical: the final genotype, every architecture parameter (alpha, beta) and every metrics
row (wall-clock seconds aside). Every algorithm option is given explicitly, so a default that
moves (K's was 4 in the config, 7 in ROME) cannot hide a change of computation.

Float32 results depend on the CPU's vector unit (oneDNN picks kernels by it) and on the thread
count, so the runs use one thread, and the file records the torch version, CPU capability and
the bits of a small seeded step it was captured with: on another, the test skips and says so (regenerate it there from the commit
before a change to compare across it). A deliberate change of computation regenerates the file,
and says why in its commit:

    python tests/test_golden_runs.py --write
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

GOLDEN = Path(__file__).parent / "golden" / "runs.json"
TINY = dict(dataset="digits", limit_train=192, channels=4, layers=3, epochs=2, batch_size=32, progress=False,
            recipe="none", a_lr=0.05, a_weight_decay=0.0)
GUMBEL = dict(tau_max=10.0, tau_min=0.1)
ROME = dict(algorithm="rome", samples=2, weight_sampling="fair", topology=True, edge_sampler="top2", **GUMBEL)
GDAS = dict(algorithm="gdas", unselected_ops=True, **GUMBEL)
DARTS = dict(algorithm="darts", darts_order=1)
NB201 = dict(space="nb201", layers=1)
ONESHOT1 = dict(space="1shot1-s2", layers=1)

#: name -> settings: each algorithm (and each of its options' values) on each cell family.
CASES = {
    "rome-darts": dict(ROME, space="darts"),
    "rome-darts-pair-gumbel": dict(ROME, space="darts", edge_sampler="pair", weight_sampling="gumbel", seed=1),
    "rome-darts-notopology-single": dict(ROME, space="darts", topology=False, weight_sampling="single"),
    "rome-s3-fair-edges": dict(ROME, space="s3", weight_sampling="fair-edges"),
    "rome-nb201": dict(ROME, **NB201),
    "rome-nb201-subset-fair-edges": dict(ROME, **NB201, ops=("none", "skip_connect", "nor_conv_3x3"),
                                         edge_sampler="subset", weight_sampling="fair-edges"),
    "rome-1shot1": dict(ROME, **ONESHOT1),
    "rome-1shot1-notopology": dict(ROME, **ONESHOT1, topology=False),
    "gdas-darts": dict(GDAS, space="darts", unselected_ops=False),
    "gdas-nb201": dict(GDAS, **NB201),
    "gdas-nb201-seed1": dict(GDAS, **NB201, seed=1, step_order="weights-first"),
    "gdas-1shot1": dict(GDAS, **ONESHOT1, unselected_ops=False),
    "darts-darts": dict(DARTS, space="darts"),
    "darts-darts-second-order": dict(DARTS, space="darts", darts_order=2, layers=3, channels=4),
    "darts-nb201": dict(DARTS, **NB201, step_order="weights-first"),
    "darts-1shot1": dict(DARTS, **ONESHOT1),
}


def _floats(x):
    return [float(v) for v in x.flatten().tolist()]


def kernel_fingerprint() -> str:
    """The bits of a seeded conv-BN-ReLU-pool-linear step (forward and backward, one thread): two
    CPUs of one name and vector unit can still pick different kernels (two AMD EPYC machines
    did, 2026-12-03), and then every float32 golden value moves in its last digits."""
    import hashlib

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        g = torch.Generator().manual_seed(0)
        x = torch.randn(8, 3, 16, 16, generator=g)
        net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
                                  torch.nn.Conv2d(8, 8, 3, padding=1, groups=8), torch.nn.AdaptiveAvgPool2d(1),
                                  torch.nn.Flatten(), torch.nn.Linear(8, 10))
        with torch.no_grad():
            for p in net.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.3)
        out = net(x)
        torch.nn.functional.cross_entropy(out, torch.arange(8)).backward()
        bits = out.detach().numpy().tobytes() + b"".join(p.grad.numpy().tobytes() for p in net.parameters())
        return hashlib.sha256(bits).hexdigest()[:16]
    finally:
        torch.set_num_threads(threads)


def machine() -> dict:
    """What float32 results depend on besides the code."""
    return {"torch": torch.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "kernels": kernel_fingerprint()}


def run_case(name: str, root: Path) -> dict:
    import romenas

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = romenas.search(out=root / name, **{**TINY, **CASES[name]})
    finally:
        torch.set_num_threads(threads)
    state = torch.load(root / name / "checkpoint.pt", map_location="cpu", weights_only=False)["algo"]
    rows = [{k: v for k, v in row.items() if k != "seconds"} for row in result.metrics]
    return {"genotype": str(result.genotype), "architecture": {k: _floats(v) for k, v in sorted(state.items())},
            "metrics": json.loads(json.dumps(rows))}


@pytest.fixture(scope="module")
def golden():
    saved = json.loads(GOLDEN.read_text())
    if saved["machine"] != machine():
        pytest.skip(f"golden runs captured on {saved['machine']}, this is {machine()}: float32 results differ "
                    "across CPUs; regenerate them here from the commit before a change to compare across it")
    return saved["runs"]


@pytest.mark.parametrize("name", sorted(CASES))
def test_run_equals_its_golden_run(name, golden, tmp_path):
    got = run_case(name, tmp_path)
    want = golden[name]
    assert got["genotype"] == want["genotype"]
    assert got["architecture"].keys() == want["architecture"].keys()
    for key, values in want["architecture"].items():
        assert got["architecture"][key] == values, key  # exactly: float32 values survive JSON
    if CASES[name]["algorithm"] == "darts":  # captured when DARTS' rows still logged a tau it never read
        want["metrics"] = [{k: v for k, v in row.items() if k != "tau"} for row in want["metrics"]]
    assert got["metrics"] == want["metrics"]


if __name__ == "__main__" and "--write" in sys.argv:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        GOLDEN.parent.mkdir(exist_ok=True)
        runs = {n: run_case(n, Path(tmp)) for n in sorted(CASES)}
        GOLDEN.write_text(json.dumps({"machine": machine(), "runs": runs}, indent=0) + "\n")
    print(f"wrote {GOLDEN}")
