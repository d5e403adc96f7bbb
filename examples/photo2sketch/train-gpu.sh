#!/usr/bin/env bash
# Train photo2sketch-cyclegan on one GPU inside a fixed time budget, then ship it (benchmarks/quality.py
# --choose then says whether the name photo2sketch should point to it; see examples/ship-all.sh).
#
#   BUDGET=420 bash examples/photo2sketch/train-gpu.sh [OUT_DIR]
#
# Needs work-data/photo2sketch/photos512 (prepare.py collect). A short probe measures the step
# time on this GPU; the schedule (constant lr, then linear decay, as the official recipe) is
# sized so the whole run ends inside BUDGET seconds. Rerunning resumes the same run.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-python3}
BUDGET=${BUDGET:-420}
OUT=${1:-work-data/ship}
W=${W:-work-data/photo2sketch}
RUNS=${RUNS:-work-data/runs}
ARGS=(--size 256 --load-size 288 --ngf 32 --ndf 64 --blocks 6 --upsample resize --batch-size 4 ${EXTRA:-})
mkdir -p "$OUT"
[ -d $W/photo ] || $PY examples/photo2sketch/prepare.py crops $W
if [ ! -f "$RUNS/p2s-gpu/options.json" ]; then
  rm -rf /tmp/p2s-probe
  $PY -m cyclegan_cli train $W/photo $W/sketch --name probe --runs-dir /tmp/p2s-probe "${ARGS[@]}" \
    --max-steps 120 --log-every 40 --sample-every 100000 --save-every 100000 -q
  sec=$(tail -1 /tmp/p2s-probe/probe/stats.jsonl | $PY -c 'import json,sys; print(json.load(sys.stdin)["sec_per_it"])')
  n=$(ls $W/photo | wc -l)
  # steps that fit (minus ~40 s of start, samples and checkpoints), as whole epochs, half of them decaying
  epochs=$($PY -c "import math; s=int(($BUDGET-40)/$sec); per=math.ceil($n/4); print(max(1, s//per//2))")
  echo "probe: $sec s/step on $(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null || echo cpu); $epochs + $epochs epochs of $n images"
else
  epochs=$($PY -c "import json; print(json.load(open('$RUNS/p2s-gpu/options.json'))['epochs'])")
fi
$PY -m cyclegan_cli train $W/photo $W/sketch --name p2s-gpu --runs-dir "$RUNS" "${ARGS[@]}" \
  --epochs "$epochs" --decay-epochs "$epochs" --log-every 100 --sample-every 1000 --save-every 1000 -q || true
$PY examples/ship.py "$RUNS/p2s-gpu" photo2sketch-cyclegan --license "see examples/README.md" --source "examples/photo2sketch"
cp pretrained/photo2sketch-cyclegan/model.safetensors pretrained/photo2sketch-cyclegan/config.json "$RUNS/p2s-gpu/stats.jsonl" "$OUT/"
cp "$(ls "$RUNS"/p2s-gpu/samples/*.png | tail -1)" "$OUT/samples.png"
