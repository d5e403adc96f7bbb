"""Sample grids as training writes them: a PNG of rows of images, each row's label in a left
margin, with an optional title line."""

from __future__ import annotations

from pathlib import Path


def save_grid(grid, path: Path, row_labels: list[str] | None = None, title: str = "") -> None:
    """``grid`` ((3, H, W) float tensor in [0, 1], as torchvision's make_grid gives) as a PNG, with
    each row's label in a left margin (and a title line above), written atomically."""
    from PIL import Image, ImageDraw, ImageFont

    from cyclegan_cli.data.images import save_image_atomic

    im = Image.fromarray(grid.mul(255).round().clamp(0, 255).byte().permute(1, 2, 0).numpy())
    if row_labels or title:
        margin, top = (8 + 6 * max(len(t) for t in row_labels)) if row_labels else 0, 16 if title else 0
        canvas = Image.new("RGB", (im.width + margin, im.height + top), "white")
        canvas.paste(im, (margin, top))
        d = ImageDraw.Draw(canvas)
        # Pillow's bitmap font: 6 px a character, spaces included (its default FreeType font draws a
        # space 2 px wide: "-> A again" read "-> Aagain"); the margin above counts 6 px a character
        d.font = ImageFont.load_default_imagefont() if hasattr(ImageFont, "load_default_imagefont") else ImageFont.load_default()
        if title:
            d.text((margin + 2, 2), title, fill=(0, 0, 0))
        if row_labels:
            h = im.height / len(row_labels)
            for i, t in enumerate(row_labels):
                d.text((4, top + i * h + h / 2 - 5), t, fill=(0, 0, 0))
        im = canvas
    save_image_atomic(im, Path(path))
