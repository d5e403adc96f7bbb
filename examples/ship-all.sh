#!/usr/bin/env bash
# Re-ship both models from their runs (see examples/README.md for how the runs were made).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-work-data/runs}
.venv/bin/python examples/ship.py "$RUNS/photo2sketch" photo2sketch \
  --license "weights: MIT (ganctl); training images: CC-BY-SA-3.0 (ukui-wallpapers), CC-BY-SA-3.0/4.0 and CC-BY-4.0 (lomiri-wallpapers), CC-BY-SA-3.0 (gnome-backgrounds)" \
  --source "examples/photo2sketch (Debian wallpapers; domain B made with OpenCV pencilSketch)" \
  --aliases sketch --description "photo <-> pencil sketch CycleGAN (ResNet-6, ngf 32, trained at 64 px)"
.venv/bin/python examples/ship.py "$RUNS/emoji32" emoji32 \
  --license "weights: MIT (ganctl); training images: Noto Color Emoji, SIL OFL 1.1" \
  --source "examples/emoji-dcgan (fonts-noto-color-emoji)" --aliases emoji --description "32 px colour-emoji DCGAN (ngf 32)"
