"""Make the README's pictures from the shipped models: docs/before-after.png (the held-out example
photos; the model the name photo2sketch points to, the one benchmarks/quality.py --choose picked;
OpenCV's pencilSketch of them, the definition of the sketch domain; then the other sketch models,
each under its method's name), each row labelled, and docs/emoji-grid.png (64 samples of emoji32,
twice their size).

    python examples/readme_images.py
"""

import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image, ImageDraw

REPO = Path(__file__).resolve().parents[1]
SKETCH_MODELS = ("photo2sketch-paired", "photo2sketch-cut", "photo2sketch-fast", "photo2sketch-cyclegan")  # the order of the table
METHOD = {"pix2pix": "pix2pix, paired", "cut": "CUT, unpaired", "cyclegan": "CycleGAN, unpaired",
          "distill": "distilled, 5x faster"}


def main():
    import json

    from cyclegan_cli.infer.sheet import INK, font

    shipped = json.loads((REPO / "pretrained" / "zoo.json").read_text())["models"]
    default = shipped["photo2sketch"]["alias_of"]
    models = [default] + [m for m in SKETCH_MODELS if m in shipped and m != default]
    with tempfile.TemporaryDirectory() as d:
        for m in models:
            subprocess.run([sys.executable, "-m", "cyclegan_cli", "translate", str(REPO / "examples" / "photos"),
                            "--model", m, "--out", str(Path(d) / m), "-q"], check=True, stdout=subprocess.DEVNULL)
        import numpy as np

        sys.path.insert(0, str(REPO / "benchmarks"))
        from quality import pencil

        photos = sorted((REPO / "examples" / "photos").glob("*.jpg"))
        h = 160
        # one row each: the photos, the default model, OpenCV's pencilSketch (the definition), the other models
        labels = [("held-out photos", ""), (f"photo2sketch = {default}", METHOD[shipped[default]["kind"]]),
                  ("OpenCV pencilSketch", "the sketch domain"),
                  *((m, METHOD[shipped[m]["kind"]]) for m in models[1:])]
        columns = []
        for p in photos:
            a = Image.open(p).convert("RGB")
            outs = [Image.open(Path(d) / m / p.name).convert("RGB") for m in models]
            c = Image.fromarray(pencil(np.asarray(a))).convert("RGB")
            w = round(a.width * h / a.height)
            columns.append([im.resize((w, h), Image.LANCZOS) for im in (a, outs[0], c, *outs[1:])])
        f = font(17)
        label_w = 16 + int(max(f.getlength(t) for pair in labels for t in pair))
        width = label_w + sum(col[0].width for col in columns) + 4 * (len(columns) + 1)
        rows = len(columns[0])
        sheet = Image.new("RGB", (width, rows * h + 4 * (rows + 1)), "white")
        draw = ImageDraw.Draw(sheet)
        for row, (name, method) in enumerate(labels):
            y = 4 + row * (h + 4) + h // 2
            draw.text((8, y - 22 if method else y - 11), name, font=f, fill=INK)
            if method:
                draw.text((8, y + 2), method, font=f, fill=(90, 90, 90))
        x = label_w + 4
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
