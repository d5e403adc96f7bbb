"""Render every colour emoji of Noto Color Emoji (Debian ``fonts-noto-color-emoji``, SIL OFL 1.1)
as a 32x32 PNG on white, the training set of the shipped ``emoji32`` DCGAN.

    python examples/emoji-dcgan/prepare.py work-data/emoji
"""

import os
import sys
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

FONT = os.environ.get("EMOJI_FONT", "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")
RANGES = [(0x1F300, 0x1F5FF), (0x1F600, 0x1F64F), (0x1F680, 0x1F6FF), (0x1F900, 0x1F9FF), (0x1FA70, 0x1FAFF)]


def main(out: Path, size: int = 32) -> None:
    font = ImageFont.truetype(FONT, 109)  # the one bitmap size the font carries
    out.mkdir(parents=True, exist_ok=True)
    n = 0
    for lo, hi in RANGES:
        for cp in range(lo, hi + 1):
            ch = chr(cp)
            if font.getmask(ch).getbbox() is None:
                continue
            im = Image.new("RGBA", (136, 128), (255, 255, 255, 255))
            ImageDraw.Draw(im).text((0, 0), ch, font=font, embedded_color=True)
            box = im.convert("RGB").point(lambda v: 255 - v).getbbox()
            if box is None:
                continue
            im = im.crop(box).convert("RGB")
            side = max(im.size)
            canvas = Image.new("RGB", (side, side), (255, 255, 255))
            canvas.paste(im, ((side - im.width) // 2, (side - im.height) // 2))
            canvas.resize((size, size), Image.LANCZOS).save(out / f"u{cp:05x}.png")
            n += 1
    print(f"{n} emoji -> {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "work-data/emoji"))
