"""``loss.png``: the loss curves from stats.jsonl drawn with Pillow (no plotting dependency)."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image, ImageDraw

COLORS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
          (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]


def plot_losses(stats: Path, out: Path, width: int = 800, height: int = 400) -> None:
    rows = []
    if Path(stats).is_file():
        for line in Path(stats).read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except ValueError:
                pass
    keys = [k for k in (rows[-1] if rows else {}) if k.startswith("loss")]
    im = Image.new("RGB", (width, height), "white")
    d = ImageDraw.Draw(im)
    if len(rows) >= 2 and keys:
        x0, x1 = rows[0]["step"], max(rows[-1]["step"], rows[0]["step"] + 1)
        vals = [r[k] for r in rows for k in keys if k in r]
        lo, hi = min(vals), max(vals)
        hi = hi if hi > lo else lo + 1
        m = 40
        d.rectangle([m, 10, width - 10, height - m], outline=(0, 0, 0))
        for j, k in enumerate(keys):
            pts = [(m + (r["step"] - x0) / (x1 - x0) * (width - m - 10),
                    height - m - (r[k] - lo) / (hi - lo) * (height - m - 10)) for r in rows if k in r]
            d.line(pts, fill=COLORS[j % len(COLORS)], width=2)
            d.text((m + 5, 12 + 12 * j), k, fill=COLORS[j % len(COLORS)])
        d.text((m, height - m + 5), f"step {x0} .. {rows[-1]['step']}   loss {lo:.3g} .. {hi:.3g}", fill=(0, 0, 0))
    from cyclegan_cli.data.images import save_image_atomic

    save_image_atomic(im, Path(out))
