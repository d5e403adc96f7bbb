"""Make the two unpaired domains for the shipped ``photo2sketch`` CycleGAN, from real photographs.

Two stages, so the second can run on another machine from a few megabytes:

    python examples/photo2sketch/prepare.py collect DEBS_ROOT work-data/photo2sketch
    python examples/photo2sketch/prepare.py crops work-data/photo2sketch
    python examples/photo2sketch/prepare.py pairs work-data/photo2sketch   # for the pix2pix comparison

``collect`` finds the photographs listed in PHOTOS under DEBS_ROOT (Debian packages unpacked
with ``dpkg -x``, see examples/README.md) and in scikit-image's bundled sample images, scales
each so its long side is 512 px (the scale the model is used at) and writes them to
``photos512/train`` and ``photos512/heldout``; the training photos also at 768 px to
``photos768/train`` (a second scale for ``distill-cpu.sh``). Held out: the photos of ``examples/photos`` and
the quality set of ``benchmarks/quality.py`` (HELD_OUT); they never reach training.

``crops`` shuffles the training photos (seed 0) and splits them in two halves. Domain A gets
random 144 px crops (at the 512 px scale) of the first half; domain B gets the same kind of crops of the pencil sketch
(``cv2.pencilSketch(sigma_s=40, sigma_r=0.07, shade_factor=0.04)``, computed on the whole
512 px photo) of the second half. No A photo has its sketch in B: the domains are unpaired.

``pairs`` (for the paired pix2pix model that ships beside it, for comparison) takes the same kind
of crops from every training photo and from its sketch at the same place: ``pairs/photo/x.jpg``
goes with ``pairs/sketch/x.jpg``.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

LONG_SIDE, CROP, PER_PHOTO = 512, 144, 60  # crops for 128 px training (load 144, random 128 crop)

# file stem -> (package or source, licence). Only photographs: flat vector wallpapers have an
# almost blank pencil sketch and taught the first model to draw nothing.
PHOTOS = {
    # mate-backgrounds (GPL-2+, authors in the package's AUTHORS file)
    "Aqua": ("mate-backgrounds", "GPL-2+"), "Blinds": ("mate-backgrounds", "GPL-2+"),
    "Dune": ("mate-backgrounds", "GPL-2+"), "FreshFlower": ("mate-backgrounds", "GPL-2+"),
    "Garden": ("mate-backgrounds", "GPL-2+"), "GreenMeadow": ("mate-backgrounds", "GPL-2+"),
    "LadyBird": ("mate-backgrounds", "GPL-2+"), "RainDrops": ("mate-backgrounds", "GPL-2+"),
    "Storm": ("mate-backgrounds", "GPL-2+"), "TwoWings": ("mate-backgrounds", "GPL-2+"),
    "Wood": ("mate-backgrounds", "GPL-2+"), "YellowFlower": ("mate-backgrounds", "GPL-2+"),
    # lomiri-wallpapers-16.04 / -20.04 (per file in the package's copyright file)
    "Picture_1A_by_freespace": ("lomiri-wallpapers-16.04", "CC-BY-SA-4.0"),
    "Picture_0B_by_freespace": ("lomiri-wallpapers-16.04", "CC-BY-SA-4.0"),
    "Wine_by_Jakkub_Mede": ("lomiri-wallpapers-16.04", "CC-BY-SA-4.0"),
    "seeding_by_Clements_Engelhardt": ("lomiri-wallpapers-16.04", "CC-BY-SA-4.0"),
    "aitzgorri_by_Aitzol_Berasategi": ("lomiri-wallpapers-16.04", "CC-BY-4.0"),
    "Dragonfly_by_Bolly": ("lomiri-wallpapers-16.04", "CC-BY-SA-4.0"),
    "friends_by_Aitzol_Berasategi": ("lomiri-wallpapers-16.04", "CC-BY-4.0"),
    "sunset_by_Aitzol_Berasategi": ("lomiri-wallpapers-16.04", "CC-BY-4.0"),
    "free_by_Peter_Nerlich": ("lomiri-wallpapers-16.04", "CC-BY-SA-4.0"),
    "picosdeeuropa_by_Aitzol_Berasategi": ("lomiri-wallpapers-16.04", "CC-BY-4.0"),
    "life_by_Aitzol_Berasategi": ("lomiri-wallpapers-16.04", "CC-BY-4.0"),
    "Bridge_by_Sander_Klootwijk": ("lomiri-wallpapers-20.04", "CC-BY-SA-4.0"),
    "Kleiber_by_Lukas_Baubkus": ("lomiri-wallpapers-20.04", "CC-BY-SA-4.0"),
    "Infinite-Sea_by_Aury88": ("lomiri-wallpapers-20.04", "CC-BY-SA-4.0"),
    # plasma-workspace-wallpapers (GPL-2+, KDE Visual Design Group); one folder per wallpaper
    "BytheWater": ("plasma-workspace-wallpapers", "GPL-2+"),
    "ColdRipple": ("plasma-workspace-wallpapers", "GPL-2+"),
    "ColorfulCups": ("plasma-workspace-wallpapers", "GPL-2+"),
    "EveningGlow": ("plasma-workspace-wallpapers", "GPL-2+"),
    "FallenLeaf": ("plasma-workspace-wallpapers", "GPL-2+"),
    "Grey": ("plasma-workspace-wallpapers", "GPL-2+"),
    "Kite": ("plasma-workspace-wallpapers", "GPL-2+"),
    "OneStandsOut": ("plasma-workspace-wallpapers", "GPL-2+"),
    "Path": ("plasma-workspace-wallpapers", "GPL-2+"),
    "Volna": ("plasma-workspace-wallpapers", "GPL-2+"),
    "summer_1am": ("plasma-workspace-wallpapers", "GPL-2+"),
    # scikit-image's bundled sample images (skimage/data; licences in its README)
    "astronaut": ("scikit-image", "public domain (NASA)"), "chelsea": ("scikit-image", "CC0"),
    "coffee": ("scikit-image", "CC0"), "rocket": ("scikit-image", "public domain (NASA)"),
    "motorcycle_left": ("scikit-image", "CC-BY (Middlebury stereo)"), "grass": ("scikit-image", "CC0"),
    "gravel": ("scikit-image", "CC0"), "brick": ("scikit-image", "CC0"),
}
# never trained on: examples/photos (the README demo) and the quality benchmark's photos
EXAMPLES = ["Garden", "picosdeeuropa_by_Aitzol_Berasategi", "EveningGlow", "chelsea"]
HELD_OUT = EXAMPLES + ["aitzgorri_by_Aitzol_Berasategi", "life_by_Aitzol_Berasategi", "Path"]


def sketch(rgb: np.ndarray) -> np.ndarray:
    """The definition of domain B: OpenCV's pencil sketch, gray, as RGB."""
    gray, _ = cv2.pencilSketch(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), sigma_s=40, sigma_r=0.07, shade_factor=0.04)
    return np.repeat(gray[:, :, None], 3, axis=2)


def find_sources(debs_root: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for p in sorted(debs_root.rglob("*")):
        if p.suffix.lower() not in (".jpg", ".jpeg", ".png"):
            continue
        stem = p.stem
        if p.parent.name == "images" and p.parent.parent.name == "contents":  # plasma: NAME/contents/images/WxH
            stem = p.parent.parent.parent.name
        if stem in PHOTOS and (stem not in found or p.stat().st_size > found[stem].stat().st_size):
            found[stem] = p  # the largest file of a wallpaper
    try:
        import skimage

        data = Path(skimage.__file__).parent / "data"
        found.update({p.stem: p for p in data.glob("*.*") if p.stem in PHOTOS})
    except ImportError:
        print("scikit-image is not installed: its sample photos are left out", file=sys.stderr)
    return found


def collect(debs_root: Path, out: Path) -> None:
    """Every photo at LONG_SIDE (photos512/{train,heldout}); the training photos also at 768 px
    (photos768/train), the second scale photo2sketch-fast was distilled on."""
    found = find_sources(debs_root)
    missing = sorted(set(PHOTOS) - set(found))
    if missing:
        print(f"not found (left out): {', '.join(missing)}", file=sys.stderr)
    for stem, path in sorted(found.items()):
        src = Image.open(path).convert("RGB")
        sub = "heldout" if stem in HELD_OUT else "train"
        for side in (LONG_SIDE, 768) if sub == "train" else (LONG_SIDE,):
            s = side / max(src.size)
            im = src.resize((round(src.width * s), round(src.height * s)), Image.LANCZOS)
            (out / f"photos{side}" / sub).mkdir(parents=True, exist_ok=True)
            im.save(out / f"photos{side}" / sub / f"{stem}.png")
    n_held = sum(s in found for s in HELD_OUT)
    print(f"{len(found) - n_held} training photos, {n_held} held out -> {out}/photos512 (and photos768/train)")


def crops(out: Path) -> None:
    rng = random.Random(0)
    files = sorted((out / "photos512" / "train").glob("*.png"))
    rng.shuffle(files)
    half = len(files) // 2
    for domain, part, make in (("photo", files[:half], lambda a: a), ("sketch", files[half:], sketch)):
        (out / domain).mkdir(parents=True, exist_ok=True)
        for i, f in enumerate(part):
            a = make(np.asarray(Image.open(f).convert("RGB")))
            h, w = a.shape[:2]
            for j in range(PER_PHOTO):
                x, y = rng.randint(0, w - CROP), rng.randint(0, h - CROP)
                Image.fromarray(a[y:y + CROP, x:x + CROP]).save(out / domain / f"{f.stem}_{j:03d}.jpg", quality=95)
    print(f"{half} photos -> {out}/photo, {len(files) - half} photos -> {out}/sketch ({PER_PHOTO} crops each)")


def pairs(out: Path) -> None:
    rng = random.Random(1)
    files = sorted((out / "photos512" / "train").glob("*.png"))
    for d in ("photo", "sketch"):
        (out / "pairs" / d).mkdir(parents=True, exist_ok=True)
    per = PER_PHOTO * (len(files) // 2) // len(files)  # as many pairs as each unpaired domain has crops
    for f in files:
        a = np.asarray(Image.open(f).convert("RGB"))
        b = sketch(a)
        h, w = a.shape[:2]
        for j in range(per):
            x, y = rng.randint(0, w - CROP), rng.randint(0, h - CROP)
            for d, img in (("photo", a), ("sketch", b)):
                Image.fromarray(img[y:y + CROP, x:x + CROP]).save(out / "pairs" / d / f"{f.stem}_{j:03d}.jpg", quality=95)
    print(f"{len(files)} photos -> {out}/pairs ({per} aligned photo/sketch crops each)")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "collect":
        collect(Path(sys.argv[2]), Path(sys.argv[3]))
    elif len(sys.argv) == 3 and sys.argv[1] == "crops":
        crops(Path(sys.argv[2]))
    elif len(sys.argv) == 3 and sys.argv[1] == "pairs":
        pairs(Path(sys.argv[2]))
    else:
        sys.exit(__doc__)
