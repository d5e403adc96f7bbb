"""Make the README's pictures from the shipped models: docs/before-after.png (example photos and
their photo2sketch translations) and docs/emoji-grid.png (64 samples of emoji32).

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
        photos = sorted((REPO / "examples" / "photos").glob("*.jpg"))
        h = 128
        pairs = []
        for p in photos:
            a, b = Image.open(p).convert("RGB"), Image.open(out / p.name).convert("RGB")
            w = round(a.width * h / a.height)
            pairs.append((a.resize((w, h), Image.LANCZOS), b.resize((w, h), Image.LANCZOS)))
        width = sum(a.width for a, _ in pairs) + 4 * (len(pairs) + 1)
        sheet = Image.new("RGB", (width, 2 * h + 12), "white")
        x = 4
        for a, b in pairs:
            sheet.paste(a, (x, 4))
            sheet.paste(b, (x, h + 8))
            x += a.width + 4
        (REPO / "docs").mkdir(exist_ok=True)
        sheet.save(REPO / "docs" / "before-after.png", optimize=True)
    subprocess.run([sys.executable, "-m", "cyclegan_cli", "sample", "--model", "emoji32", "--seeds", "0-63", "--grid",
                    "8x8", "--out", str(REPO / "docs" / "emoji-grid.png"), "--overwrite", "-q"], check=True,
                   stdout=subprocess.DEVNULL)


if __name__ == "__main__":
    main()
