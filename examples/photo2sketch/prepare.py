"""Make the two unpaired domains for the shipped ``photo2sketch`` CycleGAN.

Domain A: random crops of photos. Domain B: pencil sketches (OpenCV ``cv2.pencilSketch``) of
random crops of *other* photos, so no A image has its sketch in B (unpaired, as CycleGAN expects).

Sources (installed offline from Debian, licences in examples/README.md): the wallpapers of
``ukui-wallpapers`` and ``lomiri-wallpapers`` under /usr/share/backgrounds and the photographic
wallpapers of ``gnome-backgrounds``.

    python examples/photo2sketch/prepare.py work-data/photo2sketch
"""

import random
import sys
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

SOURCES = [Path("/usr/share/backgrounds")]
# the originals of examples/photos are held out, so the README demo shows unseen photos
HELD_OUT = {p.stem for p in (Path(__file__).resolve().parents[1] / "photos").glob("*.jpg")}
CROP, OUT, PER_PHOTO = 192, 80, 60


def photos():
    files = []
    for root in SOURCES:
        if root.is_dir():
            files += sorted(p for p in root.rglob("*")
                            if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp") and p.stem not in HELD_OUT)
    return files


def crops(path: Path, rng: random.Random, n: int):
    im = Image.open(path).convert("RGB")
    scale = 640 / min(im.size)
    im = im.resize((max(CROP, round(im.width * scale)), max(CROP, round(im.height * scale))), Image.BICUBIC)
    for _ in range(n):
        x, y = rng.randint(0, im.width - CROP), rng.randint(0, im.height - CROP)
        yield im.crop((x, y, x + CROP, y + CROP)).resize((OUT, OUT), Image.LANCZOS)


def sketch(im: Image.Image) -> Image.Image:
    bgr = cv2.cvtColor(np.asarray(im), cv2.COLOR_RGB2BGR)
    gray, _ = cv2.pencilSketch(bgr, sigma_s=40, sigma_r=0.07, shade_factor=0.04)
    return Image.fromarray(gray).convert("RGB")


def main(out: Path) -> None:
    rng = random.Random(0)
    files = photos()
    rng.shuffle(files)
    half = len(files) // 2
    (out / "photo").mkdir(parents=True, exist_ok=True)
    (out / "sketch").mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(files[:half]):
        for j, c in enumerate(crops(f, rng, PER_PHOTO)):
            c.save(out / "photo" / f"{i:03d}_{j:03d}.png")
    for i, f in enumerate(files[half:]):
        for j, c in enumerate(crops(f, rng, PER_PHOTO)):
            sketch(c).save(out / "sketch" / f"{i:03d}_{j:03d}.png")
    print(f"{len(files)} photos -> {out}/photo ({half} photos) and {out}/sketch ({len(files) - half} photos)")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "work-data/photo2sketch"))
