#!/usr/bin/env bash
# photo2sketch-paired: a pix2pix model on aligned photo/sketch crops of the same training photos
# (prepare.py pairs), shipped beside the CycleGAN for comparison: what the same data gives when the
# pairs are known. The official pix2pix recipe (U-Net with batch norm, here unet_128 for 128 px
# crops, PatchGAN, L1 weight 100) with ngf 16 (ngf 64 would ship as 80 MB in fp16), ndf 32 and
# resize up-sampling (the official transposed convs gave a grid score of 9.9 on the held-out
# photos after 4,560 steps), 4 + 4 epochs of 1,140 pairs (9,120 steps). Rerunning resumes.
set -euo pipefail
cd "$(dirname "$0")/../.."
W=work-data/photo2sketch
[ -d $W/pairs ] || python examples/photo2sketch/prepare.py pairs $W
OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} ganctl train $W/pairs/photo $W/pairs/sketch --paired --name p2s-pix2pix \
  --runs-dir work-data/runs --size 128 --load-size 144 --ngf 16 --ndf 32 --upsample resize --epochs 4 --decay-epochs 4 \
  --log-every 50 --sample-every 500 --save-every 250 --keep 40
