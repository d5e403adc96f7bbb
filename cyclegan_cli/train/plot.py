"""The run folder's plots, drawn with Pillow (no plotting dependency): ``loss.png`` (every loss,
raw and smoothed, with the resumes marked) and ``eval.png`` (training-time FID/KID)."""

from __future__ import annotations

import json
import math
from pathlib import Path

from PIL import Image, ImageDraw

COLORS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
          (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]


def read_stats(stats: Path) -> list[dict]:
    rows = []
    if Path(stats).is_file():
        for line in Path(stats).read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except ValueError:
                pass
    return rows


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About n round numbers (1, 2 or 5 times a power of ten apart) covering [lo, hi]."""
    if hi <= lo:
        hi = lo + 1
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step) + 1)]


def smooth(values: list[float], alpha: float = 0.1) -> list[float]:
    """Exponential moving average, debiased at the start (as TensorBoard smooths)."""
    out, avg = [], 0.0
    for i, v in enumerate(values, 1):
        avg = (1 - alpha) * avg + alpha * v
        out.append(avg / (1 - (1 - alpha) ** i))
    return out


def _chart(series: dict[str, list[tuple[float, float]]], title: str, marks: list[float], out: Path,
           width: int = 900, height: int = 460, smooth_lines: bool = True) -> None:
    im = Image.new("RGB", (width, height), "white")
    d = ImageDraw.Draw(im)
    left, right, top, bottom = 64, width - 150, 28, height - 40
    d.text((left, 8), title, fill=(0, 0, 0))
    pts = [p for s in series.values() for p in s]
    if len(pts) >= 2:
        x0, x1 = min(p[0] for p in pts), max(p[0] for p in pts)
        y0, y1 = min(p[1] for p in pts), max(p[1] for p in pts)
        x1, y1 = (x1 if x1 > x0 else x0 + 1), (y1 if y1 > y0 else y0 + 1)

        def X(v):
            return left + (v - x0) / (x1 - x0) * (right - left)

        def Y(v):
            return bottom - (v - y0) / (y1 - y0) * (bottom - top)

        for t in nice_ticks(y0, y1):
            d.line([(left, Y(t)), (right, Y(t))], fill=(235, 235, 235))
            d.text((4, Y(t) - 6), f"{t:.3g}", fill=(60, 60, 60))
        for t in nice_ticks(x0, x1, 6):
            d.line([(X(t), bottom), (X(t), bottom + 4)], fill=(0, 0, 0))
            d.text((X(t) - 12, bottom + 8), f"{t:.0f}", fill=(60, 60, 60))
        d.text((right - 30, bottom + 22), "step", fill=(60, 60, 60))
        for m in marks:
            d.line([(X(m), top), (X(m), bottom)], fill=(160, 160, 160), width=1)
            d.text((X(m) + 2, top), "resumed", fill=(120, 120, 120))
        for j, (name, s) in enumerate(series.items()):
            color = COLORS[j % len(COLORS)]
            light = tuple(int(c + (255 - c) * 0.65) for c in color)
            line = [(X(x), Y(y)) for x, y in s]
            if len(line) >= 2:
                if smooth_lines:
                    d.line(line, fill=light, width=1)
                    line = [(X(x), Y(y)) for (x, _), y in zip(s, smooth([y for _, y in s]))]
                d.line(line, fill=color, width=2)
            elif line:
                d.ellipse([line[0][0] - 3, line[0][1] - 3, line[0][0] + 3, line[0][1] + 3], fill=color)
            d.text((right + 10, top + 16 * j), name, fill=color)
        d.rectangle([left, top, right, bottom], outline=(0, 0, 0))
    from cyclegan_cli.data.images import save_image_atomic

    save_image_atomic(im, Path(out))


# the one short name of each logged loss: in loss.png's legend and on the terminal's progress line
SHORT_LOSS_NAMES = {"loss_cycle_A": "cyc_A", "loss_cycle_B": "cyc_B", "loss_idt_A": "idt_A", "loss_idt_B": "idt_B"}


def loss_label(key: str) -> str:
    return SHORT_LOSS_NAMES.get(key, key.replace("loss_", ""))


def plot_losses(stats: Path, out: Path) -> None:
    rows = read_stats(stats)
    keys = sorted({k for r in rows for k in r if k.startswith("loss")})
    series = {loss_label(k): [(r["step"], r[k]) for r in rows if k in r] for k in keys}
    marks = [r["step"] for r in rows if r.get("event") == "resume"]
    _chart(series, "losses (light: as logged; dark: smoothed)", marks, out)


def plot_eval(stats: Path, out: Path) -> None:
    rows = [r for r in read_stats(stats) if isinstance(r.get("eval"), dict)]
    keys = sorted({k for r in rows for k in r["eval"]})
    series = {k: [(r["step"], r["eval"][k]) for r in rows if isinstance(r["eval"].get(k), (int, float))] for k in keys}
    _chart(series, "training-time evaluation", [], out, smooth_lines=False)
