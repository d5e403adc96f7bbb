"""Benchmark rows on video: translate against a naive OpenCV loop, and the stabiliser's cost."""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from bench_common import photo, resnet_checkpoint


def bench_video(tmp: Path, frames: int):
    import av
    import cv2

    from cyclegan_cli.checkpoints import load_model
    from cyclegan_cli.infer.translate import translate

    ck = resnet_checkpoint(tmp / "vid-model", ngf=32, blocks=6)
    src = tmp / "clip.mp4"
    out = av.open(str(src), mode="w")
    v = out.add_stream("libx264", rate=30)
    v.width, v.height, v.pix_fmt = 256, 256, "yuv420p"
    for i in range(frames):
        for p in v.encode(av.VideoFrame.from_ndarray(np.roll(photo(256, 256, 3), i, 1), format="rgb24")):
            out.mux(p)
    for p in v.encode(None):
        out.mux(p)
    out.close()
    model = load_model(ck)
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    G = model.generator().eval().to(dev)

    def naive():
        """OpenCV decode -> G -> H.264 (PyAV libx264, the same crf 18 / preset medium as ganctl), inline."""
        cap = cv2.VideoCapture(str(src))
        o = av.open(str(tmp / "naive.mp4"), mode="w")
        st = o.add_stream("libx264", rate=30)
        st.width, st.height, st.pix_fmt = 256, 256, "yuv420p"
        st.options = {"crf": "18", "preset": "medium"}
        t, n = time.perf_counter(), 0
        with torch.no_grad():
            while True:
                ok, bgr = cap.read()
                if not ok:
                    break
                x = torch.from_numpy(bgr[:, :, ::-1].copy()).permute(2, 0, 1)[None].to(dev).float() / 127.5 - 1
                y = ((G(x)[0] + 1) * 127.5).clamp(0, 255).byte().permute(1, 2, 0).cpu().numpy()
                for p in st.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(y), format="rgb24")):
                    o.mux(p)
                n += 1
        for p in st.encode(None):
            o.mux(p)
        o.close()
        return n / (time.perf_counter() - t)

    def ours(precision="auto"):
        t = time.perf_counter()
        translate(model, [src], tmp / "vid-out", skip_existing=False, precision=precision)
        return frames / (time.perf_counter() - t)

    frames_dir = tmp / "vid-frames"
    frames_dir.mkdir()
    with av.open(str(src)) as inp:
        for i, fr in enumerate(inp.decode(video=0)):
            Image.fromarray(fr.to_ndarray(format="rgb24")).save(frames_dir / f"{i:05d}.png", compress_level=1)

    def folder(precision="auto"):
        t = time.perf_counter()
        translate(model, [frames_dir], tmp / "vid-frames-out", skip_existing=False, precision=precision)
        return frames / (time.perf_counter() - t)

    naive()
    ours()  # warm-ups
    ref = naive()
    v = ours()
    f = folder()
    fast = None
    if dev.type == "cpu" and importlib.util.find_spec("onnxruntime") is not None:
        ours("int8")  # warm: the ONNX export and the calibration, cached for the timed runs
        fast = (ours("int8"), folder("int8"))
    print(f"video, 256x256, {frames} frames, ResNet-6 ngf 32, H.264 crf 18 preset medium on both sides:")
    print(f"  naive loop: OpenCV decode, G, libx264 inline (reference)  {ref:7.2f} frames/s   1.00x")
    print(f"  ganctl translate clip.mp4                                  {v:7.2f} frames/s   {v / ref:5.2f}x")
    print(f"  ganctl translate on the same frames as PNG files           {f:7.2f} frames/s   "
          f"(video / image folder: {v / f:.2f}x)")
    if fast:
        print(f"  ganctl translate clip.mp4 --precision int8                 {fast[0]:7.2f} frames/s   {fast[0] / ref:5.2f}x")
        print(f"  the PNG frames, --precision int8                           {fast[1]:7.2f} frames/s   "
              f"(video / image folder: {fast[0] / fast[1]:.2f}x)")


def bench_stabilize(tmp: Path, frames: int):
    """--stabilize (the default for videos) against --no-stabilize, 854x480, photo2sketch-cut (the model of
    docs/benchmarks.md's figures, photo2sketch when they were taken).
    Wall-clock time and the process's CPU time (all its threads): on a shared machine the second is
    the steadier figure, as long as the cores are not idle while waiting (one thread here, see below)."""
    import av

    from cyclegan_cli.infer.translate import translate
    from cyclegan_cli.zoo.resolve import load

    src = tmp / "clip480.mp4"
    out = av.open(str(src), mode="w")
    v = out.add_stream("libx264", rate=30)
    v.width, v.height, v.pix_fmt = 854, 480, "yuv420p"
    base = photo(854 + 2 * frames, 480, 5)
    for i in range(frames):
        for p in v.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(base[:, 2 * i:2 * i + 854]), format="rgb24")):
            out.mux(p)
    for p in v.encode(None):
        out.mux(p)
    out.close()
    model = load("photo2sketch-cut")

    def run(stabilize: bool) -> tuple[float, float]:
        w, c = time.perf_counter(), time.process_time()
        translate(model, [src], tmp / "stab-out", skip_existing=False, video_options={"stabilize": stabilize})
        return (time.perf_counter() - w) / frames, (time.process_time() - c) / frames

    run(False)  # warm-up
    plain, stable = [], []
    for _ in range(2):  # interleaved: the load of a shared machine drifts
        plain.append(run(False))
        stable.append(run(True))
    pw, pc = min(t[0] for t in plain), min(t[1] for t in plain)
    sw, sc = min(t[0] for t in stable), min(t[1] for t in stable)
    print(f"video, 854x480, {frames} frames, photo2sketch-cut (ResNet-6 ngf 32), H.264 crf 18, best of 2, "
          f"{torch.get_num_threads()} thread(s):")
    print(f"  ganctl translate clip.mp4 --no-stabilize (reference)  wall {pw:6.3f} s/frame  CPU {pc:6.3f} s/frame   1.00x")
    print(f"  ganctl translate clip.mp4 (--stabilize, the default)  wall {sw:6.3f} s/frame  CPU {sc:6.3f} s/frame   "
          f"time {sw / pw:4.2f}x wall, {sc / pc:4.2f}x CPU  (target <= 1.3x)")
