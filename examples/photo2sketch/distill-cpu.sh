#!/usr/bin/env bash
# photo2sketch-fast: a student of photo2sketch-cut (ganctl distill), 5x faster in fp32 on a CPU.
# The 38 training photos at 512 and 768 px (prepare.py collect), random 256 px crops, batch 4;
# width 32, 4 dense residual blocks at 1/4 size (--width/--blocks: the shape --speedup 8 picked on
# a busy machine; set by hand so the recipe does not depend on the timing of the day), L1 x 10 + the
# feature term + --stable x 8 with --stable-noise 3 (the warped crop also gets noise of 3 gray levels:
# steadier through a video's grain and compression), EMA 0.999, 36 + 36 epochs of 50 steps (3,600
# steps): 53 min wall on 2 threads of a 2-core Intel Xeon, 1.4 h of CPU. Rerunning resumes.
set -euo pipefail
cd "$(dirname "$0")/../.."
W=work-data/photo2sketch
[ -d $W/photos768/train ] || { echo "run first: python examples/photo2sketch/prepare.py collect DEBS_ROOT $W (examples/README.md)" >&2; exit 2; }
OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} ganctl distill photo2sketch-cut $W/photos512/train $W/photos768/train \
  --name p2s-noise3 --runs-dir work-data/runs --width 32 --blocks 4 --size 256 --batch-size 4 \
  --epochs 36 --decay-epochs 36 --stable --stable-weight 8 --stable-noise 3 --ema 0.999 --log-every 25 --sample-every 500 \
  --save-every 100 --keep 40
