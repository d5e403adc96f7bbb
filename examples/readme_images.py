"""Make the README's pictures from the shipped models: docs/before-after.png (the held-out example
photos; their photo2sketch translations; OpenCV's pencilSketch of them, the definition of the
sketch domain) and docs/emoji-grid.png (64 samples of emoji32, twice their size).

    python examples/readme_images.py
"""

import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parents[1]


def main():
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "t"
        subprocess.run([sys.executable, "-m", "cyclegan_cli", "translate", str(REPO / "examples" / "photos"),
                        "--model", "photo2sketch", "--out", str(out), "-q"], check=True, stdout=subprocess.DEVNULL)
        import numpy as np

        sys.path.insert(0, str(REPO / "benchmarks"))
        from quality import pencil

        photos = sorted((REPO / "examples" / "photos").glob("*.jpg"))
        h = 160
        columns = []  # photo, ganctl's sketch, OpenCV's pencilSketch (the definition of the sketch domain)
        for p in photos:
            a, b = Image.open(p).convert("RGB"), Image.open(out / p.name).convert("RGB")
            c = Image.fromarray(pencil(np.asarray(a))).convert("RGB")
            w = round(a.width * h / a.height)
            columns.append([im.resize((w, h), Image.LANCZOS) for im in (a, b, c)])
        width = sum(col[0].width for col in columns) + 4 * (len(columns) + 1)
        sheet = Image.new("RGB", (width, 3 * h + 16), "white")
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
