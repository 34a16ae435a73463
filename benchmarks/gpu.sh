#!/usr/bin/env bash
# Everything a lent GPU should measure, in one command (a few minutes on one H100):
#   bash benchmarks/gpu.sh            # results under benchmarks/results/gpu/
# The CUDA tests, then the search-step cost (romenas vs the official xautodl, batched ROME
# included) in float32 and bf16-mixed, then loader throughput.
set -euo pipefail
cd "$(dirname "$0")/.."
out=benchmarks/results/gpu
mkdir -p "$out/bf16"
python -m pytest -q tests/test_gpu.py 2>&1 | tee "$out/tests.txt"
python benchmarks/step_cost.py --quick --device cuda --out "$out"
python benchmarks/step_cost.py --quick --device cuda --precision bf16-mixed --out "$out/bf16"
python benchmarks/data_throughput.py --skip-rss --out "$out"
