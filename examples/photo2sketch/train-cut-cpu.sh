#!/usr/bin/env bash
# photo2sketch with CUT (Park et al. 2020): one generator and one PatchGAN instead of
# CycleGAN's two of each, and PatchNCE tying every output patch to the input patch it came from.
# The same data as the CycleGAN recipe (train-cpu.sh): 128 px random crops of 144 px crops taken
# at the 512 px scale of use, ResNet-6 ngf 32 with resize up-sampling, an EMA of the generator's
# weights (decay 0.999, with warm-up), 1 + 1 epochs of 1,140 images at batch 1 (2,280 steps: what a
# 2-core CPU shared with other work did in the two hours it had).
# METHOD=fastcut trains FastCUT instead, NAME names the run. Rerunning the same command resumes.
set -euo pipefail
cd "$(dirname "$0")/../.."
W=work-data/photo2sketch
METHOD=${METHOD:-cut}
NAME=${NAME:-p2s-$METHOD}
[ -d $W/photo ] || python examples/photo2sketch/prepare.py crops $W
OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} ganctl train $W/photo $W/sketch --method $METHOD --name $NAME \
  --runs-dir work-data/runs --size 128 --load-size 144 --ngf 32 --ndf 32 --blocks 6 --upsample resize --ema 0.999 \
  --epochs 1 --decay-epochs 1 --log-every 50 --sample-every 250 --save-every 250 --keep 40 "$@"
