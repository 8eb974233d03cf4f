#!/usr/bin/env bash
# One prepared GPU check (issue 19): the suite's CUDA tests, inference and training throughput,
# peak GPU memory and where the time goes, written to $OUT as gpu_check.md + gpu_check.json
# (bench/out/gpu_check when OUT is unset). Under 8 minutes on one H100-class GPU: the Python
# part stops adding rows after a 420 s budget, and this script kills it at 470 s.
#
#   bench/gpu_check.sh                          # on the GPU machine
#   bench/gpu_check.sh --device cpu --quick     # the dry run, a few minutes on a CPU
#
# Python: $PYTHON, else .venv/bin/python, else python3. Packages the toolkit needs that the
# machine lacks (the H200 image has no pycocotools or msgspec) can travel as wheels in .whl/
# (see the device notes); they are installed into /tmp/site first. The C core
# (ochuman._evalcore) is built in place when that interpreter cannot import it.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-}
if [ -z "$PY" ]; then
    if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
if compgen -G ".whl/*.whl" >/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
missing=$("$PY" - <<'PY'
import importlib.util
print(" ".join(m for m in ("torch", "torchvision", "cv2", "pycocotools", "msgspec", "click", "tqdm", "pytest")
               if importlib.util.find_spec(m) is None))
PY
)
if [ -n "$missing" ]; then
    echo "Error: $PY lacks: $missing (carry them as wheels in .whl/)" >&2
    exit 1
fi
if ! "$PY" -c "import ochuman._evalcore" 2>/dev/null; then
    "$PY" -c "from setuptools import setup; setup()" build_ext --inplace -q
fi
OUT=${OUT:-bench/out/gpu_check}
mkdir -p "$OUT"
exec timeout 470 "$PY" bench/gpu_check.py --out "$OUT" "$@"
