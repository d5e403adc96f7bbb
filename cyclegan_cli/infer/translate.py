"""Batch translation of image files and folders (videos: :mod:`cyclegan_cli.infer.video`).

The pipeline: inputs are planned into jobs (source -> destination, tree mirrored), filtered
(``skip_existing``, ``shard``), decoded by a thread pool, grouped into same-size batches for
the network, and encoded by another thread pool with atomic writes. Every finished job is
reported through ``on_result`` as a dict; the function never prints.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from cyclegan_cli.errors import InputError, Interrupted, NotFoundError, UsageError
from cyclegan_cli.data import images as img

VIDEO_EXTENSIONS = {".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".ts"}


@dataclass
class Job:
    src: Path
    dst: Path
    kind: str = "image"  # "image" or "video"


@dataclass
class Summary:
    converted: int = 0
    skipped: int = 0
    failed: int = 0
    seconds: float = 0.0


# ---------------------------------------------------------------------------------------------
# planning


def parse_shard(spec: str | None) -> tuple[int, int] | None:
    """``K/N`` with 1 <= K <= N."""
    if not spec:
        return None
    try:
        k, n = (int(p) for p in spec.split("/"))
    except ValueError:
        raise UsageError(f"--shard {spec!r}: expected K/N, e.g. 1/4") from None
    if not (1 <= k <= n):
        raise UsageError(f"--shard {spec!r}: K must be between 1 and N")
    return k, n


def in_shard(key: str, shard: tuple[int, int] | None) -> bool:
    """A stable assignment by hash of the relative path, the same on every machine."""
    if shard is None:
        return True
    k, n = shard
    digest = hashlib.sha1(key.encode("utf-8", "surrogateescape")).digest()
    return int.from_bytes(digest[:8], "big") % n == k - 1


def sniff_kind(path: Path) -> str | None:
    """'image', 'video' or None, by content first (magic bytes), then by name."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(64)
    except OSError:
        return "image" if img.is_image_name(path) else None
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"avif", b"avis", b"heic", b"heix", b"mif1"):
            return "image"
        return "video"
    if head[:4] == b"\x1aE\xdf\xa3":  # Matroska / WebM
        return "video"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "video"
    if head[:4] in (b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3") or head[:4] == b"FLV\x01":
        return "video"
    if path.suffix.lower() in VIDEO_EXTENSIONS:
        return "video"
    if img.is_image_name(path):
        return "image"
    return None


def _walk(folder: Path) -> Iterable[Path]:
    for dirpath, dirnames, files in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith("."):
                yield Path(dirpath) / name


def _is_within(child: Path, parent: Path) -> bool:
    try:
        child.resolve().relative_to(parent.resolve())
        return True
    except ValueError:
        return False


def plan_jobs(inputs: list[Path], out: Path, fmt: str = "same", suffix: str = "", shard=None,
              video_container: str = "mp4", include_videos: bool = True) -> tuple[list[Job], list[str]]:
    """Turn inputs into jobs. Returns (jobs, problems) where problems are one-line messages for
    inputs that cannot be planned (missing paths, duplicates)."""
    out = Path(out)
    jobs, problems, seen = [], [], {}
    folders = [p for p in inputs if p.is_dir()]
    for folder in folders:
        if _is_within(out, folder):
            raise UsageError(f"--out {out} is inside the input folder {folder}; choose another folder")
    several = len(inputs) > 1
    for p in inputs:
        if not p.exists():
            problems.append(f"{p}: no such file or folder")
            continue
        if p.is_dir():
            base = out / p.resolve().name if several else out
            for f in _walk(p):
                kind = sniff_kind(f)
                if kind is None or (kind == "video" and not include_videos):
                    continue
                jobs.append((f, base, f.relative_to(p), kind))
        else:
            kind = sniff_kind(p)
            if kind is None:
                kind = "image"  # let the decoder say what is wrong with it
            jobs.append((p, out, Path(p.name), kind))
    planned = []
    for src, base, rel, kind in jobs:
        if kind == "video":
            dst = base / rel.with_name(rel.stem + suffix + "." + video_container)
        else:
            _, ext = img.output_format(src, fmt)
            dst = base / rel.with_name(rel.stem + suffix + ext)
        if not in_shard(str(rel), shard):
            continue
        key = str(dst.resolve()) if dst.parent.exists() else str(dst.absolute())
        if key in seen:
            problems.append(f"{src}: its output {dst} is also the output of {seen[key]}; skipped")
            continue
        if src.resolve() == dst.resolve():
            problems.append(f"{src}: output would overwrite the input; skipped")
            continue
        seen[key] = src
        planned.append(Job(src, dst, kind))
    return planned, problems


# ---------------------------------------------------------------------------------------------
# running


def _resize_short_side(pic: img.Picture, size: int | None) -> img.Picture:
    if not size:
        return pic
    alpha = None if pic.alpha is None else img.resize_short_side(pic.alpha, size)
    return img.Picture(img.resize_short_side(pic.rgb, size), alpha, pic.icc_profile, pic.source_format)


def translate_images(translator, jobs: list[Job], fmt: str = "same", quality: int = 95, size: int | None = None,
                     batch_size: int = 4, workers: int = 2, max_pixels: int = img.DEFAULT_MAX_PIXELS,
                     on_result: Callable[[dict], None] | None = None, stop: threading.Event | None = None) -> Summary:
    """Translate image jobs; every job ends in exactly one ``on_result`` call."""
    summary = Summary()
    t_start = time.perf_counter()
    report = on_result or (lambda r: None)
    minimum = translator.minimum

    def decode(job: Job):
        t0 = time.perf_counter()
        pic = _resize_short_side(img.read_picture(job.src, max_pixels), size)
        w, h = pic.size
        if min(w, h) < 2:
            raise InputError(f"{job.src}: {w}x{h} image is too small to translate (use --size to upscale)")
        return pic, t0

    def encode(job: Job, pic: img.Picture, t0: float):
        pil_format, _ = img.output_format(job.src, fmt)
        img.write_picture(pic, job.dst, pil_format, quality)
        return (time.perf_counter() - t0) * 1000

    def finish(job, status, ms=None, error=None):
        if status == "ok":
            summary.converted += 1
        elif status == "failed":
            summary.failed += 1
        report({"input": str(job.src), "output": str(job.dst), "status": status,
                "ms": None if ms is None else round(ms, 1), "error": error})

    pending: "OrderedDict[tuple, list]" = OrderedDict()  # padded shape -> [(job, pic, t0)]
    encodes = []

    def drain_encodes(block=False):
        keep = []
        for job, fut in encodes:
            if block or fut.done():
                try:
                    finish(job, "ok", fut.result())
                except Exception as exc:
                    finish(job, "failed", error=_one_line(job, exc))
            else:
                keep.append((job, fut))
        encodes[:] = keep

    def run_group(items, encoder):
        batch = np.stack([p.rgb for _, p, _ in items])
        try:
            outs = translator(batch)
        except Exception as exc:
            for job, _, _ in items:
                finish(job, "failed", error=_one_line(job, exc))
            return
        for (job, pic, t0), o in zip(items, outs):
            res = img.Picture(o, pic.alpha, pic.icc_profile, pic.source_format)
            encodes.append((job, encoder.submit(encode, job, res, t0)))

    with ThreadPoolExecutor(max(1, workers), thread_name_prefix="decode") as decoder, \
            ThreadPoolExecutor(max(1, workers), thread_name_prefix="encode") as encoder:
        window = max(2 * batch_size, 2 * workers)
        queue = []
        it = iter(jobs)
        try:
            while True:
                while len(queue) < window:
                    job = next(it, None)
                    if job is None:
                        break
                    queue.append((job, decoder.submit(decode, job)))
                if not queue:
                    break
                if stop is not None and stop.is_set():
                    raise KeyboardInterrupt
                job, fut = queue.pop(0)
                try:
                    pic, t0 = fut.result()
                except Exception as exc:
                    finish(job, "failed", error=_one_line(job, exc))
                    continue
                h, w = pic.rgb.shape[:2]
                if translator.needs_tiling(h, w):
                    try:
                        out = translator.run_image(pic.rgb)
                    except Exception as exc:
                        finish(job, "failed", error=_one_line(job, exc))
                        continue
                    res = img.Picture(out, pic.alpha, pic.icc_profile, pic.source_format)
                    encodes.append((job, encoder.submit(encode, job, res, t0)))
                else:
                    m = translator.multiple
                    key = (max(-(-h // m) * m, minimum), max(-(-w // m) * m, minimum), h, w)
                    pending.setdefault(key, []).append((job, pic, t0))
                    if len(pending[key]) >= batch_size:
                        run_group(pending.pop(key), encoder)
                    elif sum(len(v) for v in pending.values()) > 2 * batch_size:
                        # many different sizes: run the oldest group rather than hold images
                        run_group(pending.pop(next(iter(pending))), encoder)
                drain_encodes()
            for key in list(pending):
                run_group(pending.pop(key), encoder)
            drain_encodes(block=True)
        except KeyboardInterrupt:
            for _, f in queue:
                f.cancel()
            for _, f in encodes:
                f.cancel()
            raise Interrupted("interrupted; finished files are complete, rerun to carry on") from None
    summary.seconds = time.perf_counter() - t_start
    return summary


def _one_line(job: Job, exc: Exception) -> str:
    msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if str(job.src) not in msg:
        msg = f"{job.src}: {msg}"
    return msg


def translate(model, inputs: list, out="translated", direction: str = "AtoB", fmt: str = "same",
              quality: int = 95, suffix: str = "", size: int | None = None, tile: int | None = None,
              batch_size: int | None = None, workers: int = 2, skip_existing: bool = True, shard: str | None = None,
              device: str = "auto", precision: str = "auto", backend: str = "auto",
              max_pixels: int = img.DEFAULT_MAX_PIXELS, video_options: dict | None = None,
              on_result: Callable[[dict], None] | None = None, on_notice: Callable[[str], None] | None = None,
              on_progress: Callable[[dict], None] | None = None) -> Summary:
    """Translate image and video files and folders with ``model`` (a name, path or LoadedModel).

    Outputs mirror the input tree under ``out``; existing outputs are skipped unless
    ``skip_existing`` is False; each job is reported through ``on_result``.
    """
    from cyclegan_cli.infer.engine import Translator
    from cyclegan_cli.zoo.resolve import load

    inputs = [Path(p) for p in inputs]
    if not inputs:
        raise UsageError("no inputs given")
    if all(not p.exists() for p in inputs) and len(inputs) == 1:
        raise NotFoundError(f"{inputs[0]}: no such file or folder")
    if fmt not in ("same", *img.SAVE_FORMATS):
        raise UsageError(f"unknown --format {fmt!r}: use same, png, jpg, webp, bmp or tiff")
    notice = on_notice or (lambda m: None)
    report = on_result or (lambda r: None)
    video_options = dict(video_options or {})
    jobs, problems = plan_jobs(inputs, Path(out), fmt, suffix, parse_shard(shard),
                               video_container=video_options.get("container", "mp4"))
    summary = Summary()
    for msg in problems:
        summary.failed += 1
        report({"input": msg.split(":")[0], "output": None, "status": "failed", "ms": None, "error": msg})
    img.remove_stale_tmp(Path(out))
    todo = []
    for job in jobs:
        if skip_existing and job.dst.exists():
            summary.skipped += 1
            report({"input": str(job.src), "output": str(job.dst), "status": "skipped", "ms": None, "error": None})
        else:
            todo.append(job)
    if not todo:
        return summary
    loaded = load(model, nets=None) if not hasattr(model, "generator") else model
    if loaded.config.kind != "cyclegan":
        raise UsageError(f"{model}: a {loaded.config.kind} model cannot translate images; use ganctl sample")
    net = loaded.generator(direction)
    translator = Translator(net, loaded.config, device=device, precision=precision, backend=backend, tile=tile)
    batch_size = batch_size or translator.default_batch_size
    images = [j for j in todo if j.kind == "image"]
    videos = [j for j in todo if j.kind == "video"]
    if images:
        s = translate_images(translator, images, fmt, quality, size, batch_size, workers, max_pixels, report)
        summary.converted += s.converted
        summary.failed += s.failed
    if videos:
        from cyclegan_cli.infer.video import translate_video

        for job in videos:
            t0 = time.perf_counter()
            try:
                info = translate_video(translator, job.src, job.dst, size=size, batch_size=batch_size,
                                       on_notice=notice, on_progress=on_progress, **video_options)
            except (InputError, OSError) as exc:
                summary.failed += 1
                report({"input": str(job.src), "output": str(job.dst), "status": "failed", "ms": None,
                        "error": _one_line(job, exc)})
                continue
            status = "ok" if not info.get("error") else "failed"
            if status == "ok":
                summary.converted += 1
            else:
                summary.failed += 1
            report({"input": str(job.src), "output": str(job.dst), "status": status,
                    "ms": round((time.perf_counter() - t0) * 1000, 1), "error": info.get("error"),
                    "frames": info.get("frames")})
    return summary
