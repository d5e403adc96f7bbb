"""Make the README's pictures from the shipped models: docs/before-after.png (the held-out example
photos; their photo2sketch translations; OpenCV's pencilSketch of them, the definition of the
sketch domain; then photo2sketch-paired (pix2pix) and photo2sketch-cyclegan, where they ship) and
docs/emoji-grid.png (64 samples of emoji32, twice their size).

    python examples/readme_images.py
"""

import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parents[1]


def main():
    import json

    shipped = json.loads((REPO / "pretrained" / "zoo.json").read_text())["models"]
    models = [m for m in ("photo2sketch", "photo2sketch-paired", "photo2sketch-cyclegan") if m in shipped]
    with tempfile.TemporaryDirectory() as d:
        for m in models:
            subprocess.run([sys.executable, "-m", "cyclegan_cli", "translate", str(REPO / "examples" / "photos"),
                            "--model", m, "--out", str(Path(d) / m), "-q"], check=True, stdout=subprocess.DEVNULL)
        import numpy as np

        sys.path.insert(0, str(REPO / "benchmarks"))
        from quality import pencil

        photos = sorted((REPO / "examples" / "photos").glob("*.jpg"))
        h = 160
        columns = []  # photo, photo2sketch, OpenCV's pencilSketch (the definition), then the comparison models
        for p in photos:
            a = Image.open(p).convert("RGB")
            b = Image.open(Path(d) / "photo2sketch" / p.name).convert("RGB")
            c = Image.fromarray(pencil(np.asarray(a))).convert("RGB")
            rest = [Image.open(Path(d) / m / p.name).convert("RGB") for m in models[1:]]
            w = round(a.width * h / a.height)
            columns.append([im.resize((w, h), Image.LANCZOS) for im in (a, b, c, *rest)])
        width = sum(col[0].width for col in columns) + 4 * (len(columns) + 1)
        rows = len(columns[0])
        sheet = Image.new("RGB", (width, rows * h + 4 * (rows + 1)), "white")
        x = 4
        for col in columns:
            for row, im in enumerate(col):
                sheet.paste(im, (x, 4 + row * (h + 4)))
            x += col[0].width + 4
        (REPO / "docs").mkdir(exist_ok=True)
        sheet.save(REPO / "docs" / "before-after.png", optimize=True)
    subprocess.run([sys.executable, "-m", "cyclegan_cli", "sample", "--model", "emoji32", "--seeds", "0-63", "--grid",
                    "8x8", "--scale", "2", "--out", str(REPO / "docs" / "emoji-grid.png"), "--overwrite", "-q"], check=True,
                   stdout=subprocess.DEVNULL)


if __name__ == "__main__":
    main()
