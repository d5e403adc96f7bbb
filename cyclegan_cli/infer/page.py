"""``translate --html``: one ``index.html`` in the output folder with each input beside its output,
as the official ``test.py`` writes its results page; a video is shown by its first frame (a poster
inline in the page) until it plays. Relative links only, no scripts and nothing fetched from the
network: the folder can be copied, zipped or served as it is."""

from __future__ import annotations

import html
import os
from pathlib import Path
from urllib.parse import quote

from cyclegan_cli.data.images import atomic_write_bytes
from cyclegan_cli.data.names import VIDEO_EXTENSIONS, shown

PAGE = "index.html"

STYLE = """
body { font: 14px sans-serif; margin: 16px; color: #222; }
table { border-collapse: collapse; }
td, th { padding: 6px; vertical-align: top; text-align: left; }
tr + tr td { border-top: 1px solid #ddd; }
img, video { max-width: 320px; max-height: 320px; display: block; }
.name { font-size: 12px; color: #555; word-break: break-all; max-width: 320px; }
"""


def poster(video: Path, side: int = 320) -> str | None:
    """The video's first frame as a small JPEG ``data:`` URL, for ``<video poster>``: a browser
    draws a black box until the video plays, and an input it cannot play (Matroska, FFV1) stays
    black. Inline, so the page still needs no other file; None when no frame can be read."""
    import base64
    import io

    from PIL import Image

    from cyclegan_cli.data.video import read_frames
    from cyclegan_cli.errors import InputError

    frames = read_frames(video)
    try:
        first = next(frames)
    except (InputError, StopIteration, OSError):
        return None
    finally:
        frames.close()
    im = Image.fromarray(first)
    im.thumbnail((side, side))
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _media(href: str, is_video: bool, alt: str, still: str | None = None) -> str:
    if is_video:
        shown_first = f' poster="{still}"' if still else ""
        return f'<video src="{href}"{shown_first} controls muted preload="metadata"></video>'
    return f'<a href="{href}"><img src="{href}" alt="{html.escape(shown(alt))}" loading="lazy"></a>'


def write_page(out: Path, pairs: list[tuple[Path, Path]], title: str) -> Path:
    """``out/index.html`` showing each (input, output) pair side by side, images scaled down by the
    browser and linked to their full size. Written atomically; returns its path. A name whose bytes
    are not UTF-8 is linked by those bytes (percent-encoded) and shown with them as ``\xe9``."""
    out = Path(out)
    rows = []
    for src, dst in pairs:
        cells = []
        for p in (Path(src), Path(dst)):
            href = quote(os.fsencode(Path(os.path.relpath(p.absolute(), out.absolute())).as_posix()))
            is_video = p.suffix.lower() in VIDEO_EXTENSIONS  # an .avi too: no <img> can show it
            cells.append(f'<td>{_media(href, is_video, p.name, poster(p) if is_video else None)}'
                         f'<div class="name">{html.escape(shown(p.name))}</div></td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    doc = (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{html.escape(shown(title))}</title>\n'
           f'<style>{STYLE}</style>\n</head>\n<body>\n<h1>{html.escape(shown(title))}</h1>\n'
           f'<table>\n<tr><th>input</th><th>output</th></tr>\n' + "\n".join(rows) + "\n</table>\n</body>\n</html>\n")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / PAGE, doc.encode("utf-8"))
    return out / PAGE
