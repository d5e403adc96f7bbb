"""Pictures made to be looked at: small images enlarged to tiles a person can see, a caption above
each tile, and the signs between tiles (+ - =) drawn as strokes, so that they read at any size (the
font Pillow bundles has no minus sign). No torch here.

A row is a list whose items are tiles, ``(image, caption)`` with the image (H, W, 3) uint8 and the
caption's lines split on newlines, and joins between them: ``"+"``, ``"-"``, ``"="`` (a sign),
``"|"`` (a thin rule that sets a group apart) or ``""`` (a narrow gap, the default between two
tiles). A join may open a row (``"-"`` before a subtracted first group).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

TILE_PX = 128  # the smallest side a tile is shown at: a 32 px DCGAN sample is enlarged 4x
SIGNS = ("+", "-", "=")
MARGIN = 8
GAP = 6
INK = (20, 20, 20)
RULE = (170, 170, 170)


def scale_for(side: int, at_least: int = TILE_PX) -> int:
    """The whole factor that makes a ``side`` px image at least ``at_least`` px."""
    return max(1, -(-at_least // max(1, side)))


def enlarge(images: np.ndarray, scale: int) -> np.ndarray:
    """(N, H, W, 3) -> (N, H*scale, W*scale, 3): nearest neighbour, each pixel a scale x scale block."""
    if scale == 1:
        return images
    return images.repeat(scale, axis=1).repeat(scale, axis=2)


@lru_cache(maxsize=8)
def font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)  # Pillow >= 10.1 with FreeType: a scalable sans
    except TypeError:  # older Pillow: the fixed bitmap font
        return ImageFont.load_default()


def _fit(text: str, f, width: int) -> str:
    """``text`` cut to ``width`` px, with '..' where it was cut."""
    if f.getlength(text) <= width:
        return text
    while text and f.getlength(text + "..") > width:
        text = text[:-1]
    return text + ".."


def _join_width(join: str, side: int) -> int:
    if join in SIGNS:
        return max(28, side // 4)
    return 4 * GAP + 1 if join == "|" else GAP


def _draw_sign(draw, sign: str, cx: int, cy: int, arm: int) -> None:
    """``sign`` as strokes centred on (cx, cy), ``arm`` px from the centre to each end."""
    w = max(2, arm // 4)
    if sign in ("+", "-"):
        draw.rectangle([cx - arm, cy - w // 2, cx + arm, cy - w // 2 + w - 1], fill=INK)
    if sign == "+":
        draw.rectangle([cx - w // 2, cy - arm, cx - w // 2 + w - 1, cy + arm], fill=INK)
    if sign == "=":
        for y in (cy - arm // 2 - w // 2, cy + arm // 2 - w // 2):
            draw.rectangle([cx - arm, y, cx + arm, y + w - 1], fill=INK)


def sheet(rows: list[list], title: str | None = None) -> np.ndarray:
    """The rows (see the module's docstring) one under the other, each tile under its caption,
    ``title`` above all: (H, W, 3) uint8, white ground."""
    from PIL import Image, ImageDraw

    tiles = [it[0] for row in rows for it in row if isinstance(it, tuple)]
    side = max(max(t.shape[0], t.shape[1]) for t in tiles)
    f = font(min(18, max(12, side // 9)))
    line = int(f.getbbox("Ag")[3]) + 4
    lines = max((len(it[1].split("\n")) for row in rows for it in row if isinstance(it, tuple) and it[1]), default=0)
    band = lines * line + 4 if lines else 0  # the captions' band above each row's tiles

    def items(row):  # (kind, value, width): a join between two tiles where none was given
        out, last_tile = [], False
        for it in row:
            if isinstance(it, tuple):
                if last_tile:
                    out.append(("join", "", _join_width("", side)))
                out.append(("tile", it, it[0].shape[1]))
                last_tile = True
            else:
                out.append(("join", it, _join_width(it, side)))
                last_tile = False
        return out

    laid = [items(row) for row in rows]
    heights = [band + max(it[0].shape[0] for it in row if isinstance(it, tuple)) for row in rows]
    top = MARGIN + (line + 6 if title else 0)
    width = 2 * MARGIN + max(sum(w for _, _, w in row) for row in laid)
    height = top + sum(heights) + GAP * (len(rows) - 1) + MARGIN
    if title:
        width = max(width, 2 * MARGIN + int(f.getlength(title)) + 1)
    im = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(im)
    if title:
        draw.text((MARGIN, MARGIN), title, font=f, fill=INK)
    y = top
    for row, h in zip(laid, heights):
        x = MARGIN
        for kind, value, w in row:
            if kind == "tile":
                image, caption = value
                im.paste(Image.fromarray(np.ascontiguousarray(image)), (x, y + band))
                for i, text in enumerate(caption.split("\n") if caption else []):
                    text = _fit(text, f, w)
                    draw.text((x + (w - f.getlength(text)) / 2, y + 2 + i * line), text, font=f, fill=INK)
            elif value == "|":
                draw.line([(x + w // 2, y + band), (x + w // 2, y + h - 1)], fill=RULE, width=1)
            elif value in SIGNS:
                _draw_sign(draw, value, x + w // 2, y + band + (h - band) // 2, max(5, w // 3))
            x += w
        y += h + GAP
    return np.asarray(im)


def arithmetic_sheet(groups: list[tuple[int, str, int]], images: np.ndarray, noise: float) -> np.ndarray:
    """``ganctl arithmetic``'s picture: each group's mean under its seeds, the signs between them,
    ``=`` the result, then (set apart) its neighbours. ``groups``: (sign, seed list as given, how
    many seeds) in order; ``images``: the groups' means, the result, the neighbours."""
    row: list = []
    for i, ((sign, spec, n), image) in enumerate(zip(groups, images)):
        if i or sign < 0:
            row.append("+" if sign > 0 else "-")
        row.append((image, f"seed {spec}" if n == 1 else f"mean of {spec}"))
    row += ["=", (images[len(groups)], "result")]
    for i, image in enumerate(images[len(groups) + 1:]):
        row += ["|" if i == 0 else "", (image, f"neighbour {i + 1}")]
    expr = " ".join(f"{'+' if sign > 0 else '-'} {spec}" for sign, spec, _ in groups).removeprefix("+ ")
    neighbours = len(images) - len(groups) - 1
    return sheet([row], title=f"{expr} = result" + (f"; its neighbours: result + {noise:g} x noise" if neighbours else ""))


def nearest_sheet(queries: np.ndarray, names: list[str], data: np.ndarray, data_names: list[str],
                  idx: np.ndarray, dist: np.ndarray, scale: int) -> np.ndarray:
    """``ganctl nearest``'s picture: a row per query (``names``), then its nearest images of ``data``
    (``idx``, ``dist``: (Q, k), as infer.sample.nearest gives them) under their names and distances;
    every image as compared, enlarged ``scale`` times."""
    big = lambda image: enlarge(image[None], scale)[0]  # noqa: E731
    k, size = idx.shape[1], queries.shape[1]
    rows = [[(big(queries[q]), f"sample\n{names[q]}"), "|"]
            + [(big(data[j]), f"{data_names[j]}\nL2 {d:.2f}") for j, d in zip(idx[q], dist[q])] for q in range(len(queries))]
    return sheet(rows, title=f"each sample, then its {k} nearest training image{'s' if k > 1 else ''} "
                             f"(pixel L2 distance at {size} px)")
