#!/usr/bin/env bash
# Re-ship the models from their runs (see examples/README.md for how the runs were made).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-work-data/runs}
# Each sketch model ships under its method's name; the name photo2sketch (and sketch) is an alias that
# benchmarks/quality.py points at the one it scores best, last of all.
# CUT (train-cut-cpu.sh with METHOD=cut), step 1432 (see pretrained/TRAINING.md); photo2sketch until 2026-12-07
.venv/bin/python examples/ship.py "${CUT:-$RUNS/p2s-cut}" photo2sketch-cut --step 1432 \
  --license "weights: MIT (ganctl); training photos: GPL-2+ (mate-backgrounds, plasma-workspace-wallpapers), CC-BY-4.0/CC-BY-SA-4.0 (lomiri-wallpapers-16.04/-20.04), CC0/public domain (scikit-image data)" \
  --source "examples/photo2sketch (real photographs from Debian and scikit-image at 512 px; domain B made with OpenCV pencilSketch)" \
  --description "photo -> pencil sketch CUT (Park et al. 2020; ResNet-6, ngf 32, resize up-sampling, EMA weights, 128 px crops at the 512 px scale); shipped as photo2sketch until 2026-12-07"
# the student of photo2sketch-cut (photo2sketch/distill-cpu.sh), its last step (3600)
.venv/bin/python examples/ship.py "${FAST:-$RUNS/p2s-noise3}" photo2sketch-fast \
  --license "weights: MIT (ganctl); training photos: GPL-2+ (mate-backgrounds, plasma-workspace-wallpapers), CC-BY-4.0/CC-BY-SA-4.0 (lomiri-wallpapers-16.04/-20.04), CC0/public domain (scikit-image data)" \
  --source "ganctl distill photo2sketch-cut (examples/photo2sketch training photos at 512 and 768 px; pretrained/TRAINING.md)" \
  --description "photo -> pencil sketch, distilled from photo2sketch-cut (ganctl distill; width 32, 4 dense residual blocks at 1/4 size, pixel-unshuffle entry, --stable x 8 with --stable-noise 3; 5x faster in fp32)"
# the CycleGAN (train-cpu.sh); photo2sketch until 2026-11-30
# P2S: the photo2sketch run (named photo2sketch when the shipped model was trained; p2s by the recipe now)
# step 3000 of 3420: the grid score of the last checkpoints rose again (5.8 at 3000, 11.2 at 3250, 13.7 at 3420)
.venv/bin/python examples/ship.py "${P2S:-$RUNS/p2s}" photo2sketch-cyclegan --step 3000 \
  --license "weights: MIT (ganctl); training photos: GPL-2+ (mate-backgrounds, plasma-workspace-wallpapers), CC-BY-4.0/CC-BY-SA-4.0 (lomiri-wallpapers-16.04/-20.04), CC0/public domain (scikit-image data)" \
  --source "examples/photo2sketch (real photographs from Debian and scikit-image at 512 px; domain B made with OpenCV pencilSketch)" \
  --description "photo <-> pencil sketch CycleGAN (ResNet-6, ngf 32, resize up-sampling, 128 px crops at the 512 px scale); shipped as photo2sketch until 2026-11-30"
# pix2pix on aligned pairs (train-pix2pix-cpu.sh); step 7750 of 9120, the pick of
# `python examples/photo2sketch/pick.py $RUNS/p2s-pix2pix` (validation photos, not the held-out ones)
.venv/bin/python examples/ship.py "${P2P:-$RUNS/p2s-pix2pix}" photo2sketch-paired --step 7750 \
  --license "weights: MIT (ganctl); training photos: GPL-2+ (mate-backgrounds, plasma-workspace-wallpapers), CC-BY-4.0/CC-BY-SA-4.0 (lomiri-wallpapers-16.04/-20.04), CC0/public domain (scikit-image data)" \
  --source "examples/photo2sketch (the same training photos as photo2sketch-cut and photo2sketch-cyclegan, as aligned photo/sketch pairs: prepare.py pairs)" \
  --description "photo -> pencil sketch pix2pix, trained on aligned photo/sketch pairs (U-Net 128, ngf 16, resize up-sampling, 128 px crops at the 512 px scale)"
# photo2sketch and sketch: the lowest shortfall against the targets on the held-out photos
.venv/bin/python benchmarks/quality.py --choose photo2sketch-paired,photo2sketch-cut,photo2sketch-fast,photo2sketch-cyclegan --set-alias photo2sketch
.venv/bin/python examples/ship.py "$RUNS/emoji32" emoji32 \
  --license "weights: MIT (ganctl); training images: Noto Color Emoji, SIL OFL 1.1" \
  --source "examples/emoji-dcgan (fonts-noto-color-emoji)" --aliases emoji --description "32 px colour-emoji DCGAN (ngf 32)"
