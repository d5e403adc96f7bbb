#!/usr/bin/env bash
# The shipped photo2sketch, trained on a 2-core CPU (no GPU was lent): 128 px random crops of
# 144 px crops taken at the 512 px scale of use, ResNet-6 ngf 32 with resize up-sampling,
# the official identity loss (0.5: the model trained without it, last round, drew light sketches
# with tones unrelated to the photo's), 1 + 2 epochs of 1,140 images at batch 1 (3,420 steps).
# Rerunning the same command resumes.
set -euo pipefail
cd "$(dirname "$0")/../.."
W=work-data/photo2sketch
[ -d $W/photo ] || python examples/photo2sketch/prepare.py crops $W
OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} ganctl train $W/photo $W/sketch --name p2s --runs-dir work-data/runs \
  --size 128 --load-size 144 --ngf 32 --ndf 32 --blocks 6 --upsample resize --lambda-identity 0.5 \
  --epochs 1 --decay-epochs 2 --log-every 50 --sample-every 500 --save-every 250
