"""Which checkpoint of a photo2sketch run to ship: score every saved checkpoint on validation photos.

    python examples/photo2sketch/pick.py work-data/runs/p2s [--data work-data/photo2sketch] [--json]

The grid texture of a CycleGAN sketch model is not monotone in training (the first CPU model's grid
score went 1.5 -> 7.4 -> 5.8 -> 13.7 between steps 1,500 and 3,420), so the last checkpoint is not
necessarily the one to ship. This scores each checkpoint with benchmarks/quality.py's three figures
on *training* photos at 512 px, the ones whose sketches went to domain B (the model never saw them as
photos). The held-out photos of benchmarks/quality.py are not looked at here, so the figures that
benchmark reports for the shipped checkpoint are not selected on.

The pick: the lowest shortfall against the quality targets, the sum of how far the mean mad is above
30 (relative), the mean edge correlation below 0.55 (relative) and the worst photo's grid score above 3
(relative); 0 when all three are met.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))
import quality  # noqa: E402  (the benchmark's own figures, so the two agree)

VALIDATION = 8  # photos


def validation_photos(data: Path) -> list[Path]:
    """The B half of prepare.py's split (same seed and order), the first VALIDATION of them."""
    files = sorted((data / "photos512" / "train").glob("*.png"))
    random.Random(0).shuffle(files)
    return sorted(files[len(files) // 2:])[:VALIDATION]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--data", type=Path, default=REPO / "work-data" / "photo2sketch")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    import torch

    from cyclegan_cli.checkpoints import load_model
    from cyclegan_cli.infer.engine import Translator
    from cyclegan_cli.zoo.runs import checkpoint_dir, checkpoint_steps

    photos = validation_photos(a.data)
    if not photos:
        sys.exit(f"no training photos under {a.data}/photos512/train (run prepare.py collect first)")
    images = [quality.load_512(f) for f in photos]
    refs = [quality.pencil(x) for x in images]
    rows = []
    for step in checkpoint_steps(a.run_dir):
        model = load_model(checkpoint_dir(a.run_dir, step), nets=["G_A", "G_A_ema"])  # the EMA where kept
        fwd = Translator(model.generator("AtoB"), model.config, device="cpu", backend="torch")
        with torch.inference_mode():
            s = [quality.scores(fwd.run_image(x), r) for x, r in zip(images, refs)]
        mean = {k: float(np.mean([x[k] for x in s])) for k in ("mad", "edges", "grid")}
        worst = max(x["grid"] for x in s)
        rows.append({"step": step, **mean, "worst_grid": worst, "shortfall": quality.shortfall(mean, worst)})
        if not a.json:
            r = rows[-1]
            print(f"step {step:>6}: mad {r['mad']:5.1f}  edges {r['edges']:5.2f}  grid {r['grid']:5.2f} "
                  f"(worst {worst:5.2f})  shortfall {r['shortfall']:.3f}", flush=True)
    best = min(rows, key=lambda r: r["shortfall"])
    if a.json:
        print(json.dumps({"photos": [p.name for p in photos], "checkpoints": rows, "pick": best["step"]}, indent=1))
    else:
        print(f"pick: step {best['step']} (validation photos: {', '.join(p.stem for p in photos)})")


if __name__ == "__main__":
    main()
