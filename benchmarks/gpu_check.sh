#!/usr/bin/env bash
# The GPU check in one command: the CUDA tests (pytest -m cuda) and the GPU benchmark rows (translate
# at 256^2 and 1024^2 against the official per-image loop, a training step against the official one,
# nvJPEG decode, fp32/bf16/fp16, channels_last, CUDA graphs, a one-GPU torchrun), in under 8 minutes,
# every figure in one text file.
#
#   benchmarks/gpu_check.sh [FIGURES.txt]      (default: gpu-check-<host>-<UTC time>.txt here)
#
# Without a CUDA GPU it says so in one line and exits 0. PYTHON picks the interpreter (default: python).
set -u
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
gpu=$("$PY" -c "import torch; print('yes' if torch.cuda.is_available() else 'no')" 2>&1 | tail -n 1)
case $gpu in
    yes) ;;
    no) echo "gpu_check: no CUDA GPU here (torch.cuda.is_available() is false): nothing run"; exit 0 ;;
    *) echo "gpu_check: $PY cannot import torch ($gpu); set PYTHON to the project's interpreter"; exit 1 ;;
esac
OUT=${1:-gpu-check-$(hostname)-$(date -u +%Y%m%dT%H%M%SZ).txt}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
start=$(date +%s)
{
    echo "# ganctl GPU check, $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | sed 's/^/# GPU: /'
    echo
    echo "## CUDA tests (pytest -m cuda)"
    timeout 180 "$PY" -m pytest -q -m cuda tests 2>&1 | tail -n 25
    echo "pytest exit status: ${PIPESTATUS[0]}"
    echo
    echo "## GPU benchmark rows (benchmarks/run.py --quick --only translate,train,gpu)"
    timeout 270 "$PY" benchmarks/run.py --quick --only translate,train,gpu 2>&1
    echo "benchmark exit status: $?"
    echo
    echo "# $(($(date +%s) - start)) s in all"
} | tee "$OUT"
echo "gpu_check: figures in $OUT"
