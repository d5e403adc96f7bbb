#!/usr/bin/env bash
# Re-ship both models from their runs (see examples/README.md for how the runs were made).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-work-data/runs}
# P2S: the photo2sketch run (named photo2sketch when the shipped model was trained; p2s by the recipe now)
# step 3000 of 3420: the grid score of the last checkpoints rose again (5.8 at 3000, 11.2 at 3250, 13.7 at 3420)
# the shipped photo2sketch: CUT (train-cut-cpu.sh with METHOD=cut), step 1432 (see pretrained/TRAINING.md)
.venv/bin/python examples/ship.py "${CUT:-$RUNS/p2s-cut}" photo2sketch --step 1432 \
  --license "weights: MIT (ganctl); training photos: GPL-2+ (mate-backgrounds, plasma-workspace-wallpapers), CC-BY-4.0/CC-BY-SA-4.0 (lomiri-wallpapers-16.04/-20.04), CC0/public domain (scikit-image data)" \
  --source "examples/photo2sketch (real photographs from Debian and scikit-image at 512 px; domain B made with OpenCV pencilSketch)" \
  --aliases sketch --description "photo -> pencil sketch CUT (Park et al. 2020; ResNet-6, ngf 32, resize up-sampling, EMA weights, 128 px crops at the 512 px scale)"
# the CycleGAN that shipped as photo2sketch before, kept for comparison
.venv/bin/python examples/ship.py "${P2S:-$RUNS/p2s}" photo2sketch-cyclegan --step 3000 \
  --license "weights: MIT (ganctl); training photos: GPL-2+ (mate-backgrounds, plasma-workspace-wallpapers), CC-BY-4.0/CC-BY-SA-4.0 (lomiri-wallpapers-16.04/-20.04), CC0/public domain (scikit-image data)" \
  --source "examples/photo2sketch (real photographs from Debian and scikit-image at 512 px; domain B made with OpenCV pencilSketch)" \
  --description "photo <-> pencil sketch CycleGAN, shipped before photo2sketch became a CUT model, kept for comparison (ResNet-6, ngf 32, resize up-sampling, 128 px crops at the 512 px scale)"
# the paired comparison model (train-pix2pix-cpu.sh); step 7750 of 9120, the pick of
# `python examples/photo2sketch/pick.py $RUNS/p2s-pix2pix` (validation photos, not the held-out ones)
.venv/bin/python examples/ship.py "${P2P:-$RUNS/p2s-pix2pix}" photo2sketch-paired --step 7750 \
  --license "weights: MIT (ganctl); training photos: GPL-2+ (mate-backgrounds, plasma-workspace-wallpapers), CC-BY-4.0/CC-BY-SA-4.0 (lomiri-wallpapers-16.04/-20.04), CC0/public domain (scikit-image data)" \
  --source "examples/photo2sketch (the same training photos as photo2sketch, as aligned photo/sketch pairs: prepare.py pairs)" \
  --description "photo -> pencil sketch pix2pix, for comparison with the unpaired photo2sketch (U-Net 128, ngf 16, resize up-sampling, 128 px crops at the 512 px scale)"
.venv/bin/python examples/ship.py "$RUNS/emoji32" emoji32 \
  --license "weights: MIT (ganctl); training images: Noto Color Emoji, SIL OFL 1.1" \
  --source "examples/emoji-dcgan (fonts-noto-color-emoji)" --aliases emoji --description "32 px colour-emoji DCGAN (ngf 32)"
