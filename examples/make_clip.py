"""Make examples/video/clip.mp4: a 3 s, 24 fps, 256x160 pan across examples/photos/mountains.jpg
with a generated two-tone AAC track (so the README's first command shows fps and audio kept).

    python examples/make_clip.py
"""

from pathlib import Path

import av
import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
W, H, FPS, SECONDS, RATE = 256, 160, 24, 3, 44100


def main() -> None:
    photo = np.asarray(Image.open(HERE / "photos" / "mountains.jpg").convert("RGB").resize((384, 288), Image.LANCZOS))
    out = av.open(str(HERE / "video" / "clip.mp4"), mode="w")
    v = out.add_stream("libx264", rate=FPS)
    v.width, v.height, v.pix_fmt = W, H, "yuv420p"
    v.options = {"crf": "23"}
    a = out.add_stream("aac", rate=RATE)
    a.layout = "mono"
    n = FPS * SECONDS
    for i in range(n):  # a diagonal pan
        x, y = round((384 - W) * i / (n - 1)), round((288 - H) * i / (n - 1))
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(photo[y:y + H, x:x + W]), format="rgb24")
        for p in v.encode(frame):
            out.mux(p)
    for p in v.encode(None):
        out.mux(p)
    t = np.arange(RATE * SECONDS) / RATE
    tone = 0.2 * np.where(t % 1.0 < 0.5, np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 660 * t))
    for start in range(0, len(tone), 1024):
        chunk = tone[start:start + 1024].astype(np.float32)[None]
        frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
        frame.sample_rate, frame.pts = RATE, start
        for p in a.encode(frame):
            out.mux(p)
    for p in a.encode(None):
        out.mux(p)
    out.close()


if __name__ == "__main__":
    main()
