"""Batch translation of image files and folders (videos: :mod:`cyclegan_cli.infer.video`).

The pipeline: inputs are planned into jobs (source -> destination, tree mirrored), filtered
(``skip_existing``, ``shard``), decoded by a thread pool, grouped into same-size batches for
the network, and encoded by another thread pool with atomic writes. Every finished job is
reported through ``on_result`` as a dict; the function never prints.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
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


NOT_MEDIA = "not an image or video"


def plan_jobs(inputs: list[Path], out: Path, fmt: str = "same", suffix: str = "", shard=None,
              video_container: str = "mp4", include_videos: bool = True,
              others: list | None = None) -> tuple[list[Job], list[str]]:
    """Turn inputs into jobs. Returns (jobs, problems) where problems are one-line messages for
    inputs that cannot be planned (missing paths, duplicates). A folder's files that are neither
    images nor videos are left out, and added to ``others`` as (path, reason) when it is given;
    a file named on its own goes to the decoder, which says what is wrong with it."""
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
                if kind is None and others is not None and in_shard(str(f.relative_to(p)), shard):
                    others.append((f, NOT_MEDIA))
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
                     on_result: Callable[[dict], None] | None = None) -> Summary:
    """Translate image jobs; every job ends in exactly one ``on_result`` call."""
    summary = Summary()
    t_start = time.perf_counter()
    report = on_result or (lambda r: None)

    def decode(job: Job):
        t0 = time.perf_counter()
        if translator.decode_on_device and not size:  # the batch is decoded on the device, later
            enc = img.jpeg_for_device(job.src, max_pixels)
            if enc is not None and min(enc.size) >= 2 and not translator.needs_tiling(enc.height, enc.width):
                return enc, t0
        pic = _resize_short_side(img.read_picture(job.src, max_pixels), size)
        w, h = pic.size
        if min(w, h) < 2:
            raise InputError(f"{job.src}: {w}x{h} image is too small to translate (use --size to upscale)")
        return pic, t0

    def encode(job: Job, pic: img.Picture, t0: float):
        pil_format, _ = img.output_format(job.src, fmt)
        img.write_picture(pic, job.dst, pil_format, quality)
        return (time.perf_counter() - t0) * 1000

    ran_as: dict[str, str] = {}  # input -> the precision its network pass ran in

    def finish(job, status, ms=None, error=None):
        if status == "ok":
            summary.converted += 1
        elif status == "failed":
            summary.failed += 1
        record = {"input": str(job.src), "output": str(job.dst), "status": status,
                  "ms": None if ms is None else round(ms, 1), "error": error}
        if status == "ok" and str(job.src) in ran_as:
            record["precision"] = ran_as.pop(str(job.src))
        report(record)

    pending: "OrderedDict[tuple, list]" = OrderedDict()  # padded shape -> [(job, pic, t0)]
    encodes = []

    def finish_encode(job, fut):  # waits for it when it is still running
        try:
            finish(job, "ok", fut.result())
        except Exception as exc:
            finish(job, "failed", error=_one_line(job, exc))

    def drain_encodes(block=False):
        keep = []
        for job, fut in encodes:
            if block or fut.done():
                finish_encode(job, fut)
            else:
                keep.append((job, fut))
        encodes[:] = keep

    def wait_for_encoder():
        """Backpressure: a producer waits once about 2x the encoder threads' outputs are pending,
        so decoded and translated images never pile up in memory when encoding is the slow part."""
        while len(encodes) > 2 * max(1, workers):
            finish_encode(*encodes.pop(0))

    def run_group(items, encoder):
        w, h = items[0][1].size
        precision = translator.ran_as(h, w)
        for job, _, _ in items:
            ran_as[str(job.src)] = precision
        if isinstance(items[0][1], img.EncodedJpeg):
            try:
                outs = translator.run_jpegs([p.data for _, p, _ in items])
            except Exception:  # a file the device decoder refuses: each one on the CPU, so only it fails
                for job, _, t0 in items:
                    try:
                        run_group([(job, img.read_picture(job.src, max_pixels), t0)], encoder)
                    except Exception as exc:
                        finish(job, "failed", error=_one_line(job, exc))
                return
        else:
            try:
                outs = translator(np.stack([p.rgb for _, p, _ in items]))
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
                job, fut = queue.pop(0)
                try:
                    pic, t0 = fut.result()
                except Exception as exc:
                    finish(job, "failed", error=_one_line(job, exc))
                    continue
                w, h = pic.size
                if translator.needs_tiling(h, w):
                    ran_as[str(job.src)] = translator.ran_as(h, w)
                    try:
                        out = translator.run_image(pic.rgb)
                    except Exception as exc:
                        finish(job, "failed", error=_one_line(job, exc))
                        continue
                    res = img.Picture(out, pic.alpha, pic.icc_profile, pic.source_format)
                    encodes.append((job, encoder.submit(encode, job, res, t0)))
                else:
                    key = (*translator.padded(h, w), h, w, isinstance(pic, img.EncodedJpeg))
                    pending.setdefault(key, []).append((job, pic, t0))
                    if len(pending[key]) >= min(batch_size, translator.batch_limit(h, w)):
                        run_group(pending.pop(key), encoder)
                    elif sum(len(v) for v in pending.values()) > 2 * batch_size:
                        # many different sizes: run the oldest group rather than hold images
                        run_group(pending.pop(next(iter(pending))), encoder)
                drain_encodes()
                wait_for_encoder()
            for key in list(pending):
                run_group(pending.pop(key), encoder)
            drain_encodes(block=True)
        except KeyboardInterrupt:
            for _, f in queue:
                f.cancel()
            for _, f in encodes:
                f.cancel()
            raise Interrupted(INTERRUPTED) from None
    summary.seconds = time.perf_counter() - t_start
    return summary


def _one_line(job: Job, exc: Exception) -> str:
    msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if str(job.src) not in msg:
        msg = f"{job.src}: {msg}"
    return msg


DIRECTIONS = ("AtoB", "BtoA")
INTERRUPTED = "interrupted; finished files are complete, rerun to carry on"


def check_options(*, direction: str = "AtoB", fmt: str = "same", quality: int = 95, size: int | None = None,
                  tile: int | None = None, batch_size: int | None = None, workers: int = 2,
                  shard: str | None = None, device: str = "auto", precision: str = "auto", backend: str = "auto",
                  max_pixels: int = img.DEFAULT_MAX_PIXELS, max_memory: float | None = None,
                  out: Path | None = None, video_options: dict | None = None) -> None:
    """Every option checked before anything is planned, skipped or loaded: a bad value is one
    UsageError (exit 2) at once, never a failure per file or a silent no-op."""
    from cyclegan_cli.device import DEVICE_PATTERN, TRANSLATE_PRECISIONS
    from cyclegan_cli.infer.engine import BACKENDS

    def bad(msg):
        raise UsageError(msg)

    if direction not in DIRECTIONS:
        bad(f"--direction {direction!r}: AtoB or BtoA")
    if fmt not in ("same", *img.SAVE_FORMATS):
        bad(f"--format {fmt!r}: same, png, jpg, webp, bmp or tiff")
    if not 1 <= quality <= 100:
        bad(f"--quality {quality}: 1 to 100")
    if size is not None and size < 2:
        bad(f"--size {size}: the short side must be at least 2 px")
    if tile is not None and tile < 16:
        bad(f"--tile {tile}: tiles must be at least 16 px (and at least what the model needs)")
    if batch_size is not None and batch_size < 1:
        bad(f"--batch-size {batch_size}: at least 1")
    if workers < 1:
        bad(f"--workers {workers}: at least 1")
    parse_shard(shard)
    if not DEVICE_PATTERN.match((device or "auto").strip().lower()):
        bad(f"unknown device {device!r}: use auto, cpu, cuda, cuda:N or mps")
    if precision not in TRANSLATE_PRECISIONS:
        bad(f"--precision {precision!r}: {', '.join(TRANSLATE_PRECISIONS)}")
    if backend not in BACKENDS:
        bad(f"--backend {backend!r}: {', '.join(BACKENDS)}")
    if max_pixels < 1:
        bad(f"--max-pixels {max_pixels}: at least 1")
    if max_memory is not None and max_memory <= 0:
        bad(f"--max-memory {max_memory}: a positive number of GiB")
    if out is not None and Path(out).exists() and not Path(out).is_dir():
        bad(f"--out {out}: is a file, not a folder")
    v = video_options or {}
    if not 0 <= v.get("crf", 18) <= 51:
        bad(f"--crf {v.get('crf')}: 0 (lossless) to 51")
    for key in ("start", "end"):
        if v.get(key) is not None and v[key] < 0:
            bad(f"--{key} {v[key]}: seconds, not negative")
    if v.get("start") is not None and v.get("end") is not None and v["end"] <= v["start"]:
        bad(f"--end {v['end']} is not after --start {v['start']}")
    if v.get("max_frames") is not None and v["max_frames"] < 1:
        bad(f"--max-frames {v['max_frames']}: at least 1")
    frames_out = v.get("frames_out")
    if frames_out is not None and Path(frames_out).exists() and not Path(frames_out).is_dir():
        bad(f"--frames-out {frames_out}: is a file, not a folder")


# ---------------------------------------------------------------------------------------------
# what made each output


MANIFEST = ".ganctl-manifest.json"


@contextlib.contextmanager
def _folder_lock(path: Path):
    """An exclusive lock on ``path`` (in the output folder, so shards on other machines sharing it
    see it too) that leaves no file behind: the holder deletes it before letting go, and whoever
    then wakes on the deleted file sees it is no longer the one at ``path`` and locks afresh."""
    try:
        import fcntl
    except ImportError:  # Windows: filelock's lock, which stays as an empty file
        from filelock import FileLock

        with FileLock(str(path)):
            yield
        return
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if os.fstat(fd).st_ino == os.stat(path).st_ino:
                break
        except FileNotFoundError:  # deleted by the holder we waited for
            pass
        os.close(fd)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
        os.close(fd)


class Manifest:
    """``OUT/.ganctl-manifest.json``: which *maker* (weights hash, direction and every option that
    changes pixels) made each output, so skip-existing never passes off another model's file as
    done. Outputs are claimed before they are written, under a file lock, so shards sharing an
    output folder keep one consistent manifest."""

    def __init__(self, out: Path, maker: dict):
        self.out, self.maker = Path(out), maker
        self.key = hashlib.sha256(json.dumps(maker, sort_keys=True).encode()).hexdigest()[:16]

    def _rel(self, dst: Path) -> str:
        return os.path.relpath(dst, self.out)

    def _read(self) -> dict:
        try:
            data = json.loads((self.out / MANIFEST).read_text())
            if isinstance(data, dict) and isinstance(data.get("files"), dict):
                return data
        except (OSError, ValueError):
            pass
        return {"version": 1, "makers": {}, "files": {}}

    def claim(self, jobs: list, overwrite: bool, dry_run: bool = False) -> tuple[list, list]:
        """(jobs to run, [(job, why)] to skip). Raises UsageError when an existing output was made
        by another maker and ``overwrite`` is off."""
        self.out.mkdir(parents=True, exist_ok=True) if not dry_run else None
        lock = _folder_lock(self.out / (MANIFEST + ".lock")) if not dry_run else contextlib.nullcontext()
        with lock:
            data = self._read()
            todo, skip, foreign = [], [], []
            for job in jobs:
                rel = self._rel(job.dst)
                made_by = data["files"].get(rel)
                if overwrite or not job.dst.exists():
                    todo.append(job)
                elif made_by is None or made_by == self.key:
                    skip.append((job, "exists"))
                else:
                    foreign.append(job)
            if foreign:
                other = data["makers"].get(data["files"][self._rel(foreign[0].dst)], {})
                def short(v):
                    return f"{v[:12]}..." if isinstance(v, str) and len(v) > 16 else v

                what = ", ".join(f"{k} {short(other.get(k))} -> {short(self.maker.get(k))}" for k in self.maker
                                 if other.get(k) != self.maker.get(k))[:200]
                raise UsageError(f"{len(foreign)} output(s) in {self.out} were made by another model or other "
                                 f"options ({what}); use --overwrite to replace them, or another --out")
            if not dry_run:
                data["makers"][self.key] = self.maker
                for job in todo:
                    data["files"][self._rel(job.dst)] = self.key
                img.atomic_write_bytes(self.out / MANIFEST, json.dumps(data, indent=1, sort_keys=True).encode())
        return todo, skip


class _InOrder:
    """Passes results on in plan order, whatever order the workers finish in."""

    def __init__(self, report: Callable[[dict], None], order: list):
        self.report, self.next, self.held = report, 0, {}
        self.index = {str(j.src): i for i, j in enumerate(order)}

    def __call__(self, r: dict) -> None:
        i = self.index.get(r["input"])
        if i is None:
            self.report(r)
            return
        self.held[i] = r
        while self.next in self.held:
            self.report(self.held.pop(self.next))
            self.next += 1

    def flush(self) -> None:
        for i in sorted(self.held):
            self.report(self.held.pop(i))


def translate(model, inputs: list, out="translated", direction: str = "AtoB", fmt: str = "same",
              quality: int = 95, suffix: str = "", size: int | None = None, tile: int | None = None,
              batch_size: int | None = None, workers: int | None = None, skip_existing: bool = True,
              shard: str | None = None,
              device: str = "auto", precision: str = "auto", backend: str = "auto",
              max_pixels: int = img.DEFAULT_MAX_PIXELS, max_memory: float | None = None,
              video_options: dict | None = None, dry_run: bool = False, dropout: bool = False,
              engine: str = "local", ray_address: str | None = None, compile: bool = False,
              raw_weights: bool = False,
              on_result: Callable[[dict], None] | None = None, on_notice: Callable[[str], None] | None = None,
              on_detail: Callable[[str], None] | None = None, on_plan: Callable[[list], None] | None = None,
              on_progress: Callable[[dict], None] | None = None) -> Summary:
    """Translate image and video files and folders with ``model`` (a name, path or LoadedModel).

    Outputs mirror the input tree under ``out``. An output that exists is skipped when it was made
    by the same model and options (see :class:`Manifest`), refused when another maker made it,
    and redone when ``skip_existing`` is False. Each job is reported through ``on_result``, in
    input order; ``dry_run`` reports the plan (status ``planned`` or ``skipped``) and writes nothing.
    """
    from cyclegan_cli.checkpoints import TRANSLATION_KINDS
    from cyclegan_cli.infer.engine import Translator, weights_hash
    from cyclegan_cli.zoo.resolve import load

    inputs = [Path(p) for p in inputs]
    if not inputs:
        raise UsageError("no inputs given")
    video_options = {"stabilize": True, **(video_options or {})}
    if engine not in ("local", "ray"):
        raise UsageError(f"--engine {engine!r}: local or ray")
    if engine == "ray":
        from cyclegan_cli.infer.ray_engine import import_ray

        import_ray()  # without the extra: one line naming it, before any work
    workers_given = workers is not None
    workers = workers or 2
    check_options(direction=direction, fmt=fmt, quality=quality, size=size, tile=tile, batch_size=batch_size,
                  workers=workers, shard=shard, device=device, precision=precision, backend=backend,
                  max_pixels=max_pixels, max_memory=max_memory, out=Path(out), video_options=video_options)
    if all(not p.exists() for p in inputs) and len(inputs) == 1:
        raise NotFoundError(f"{inputs[0]}: no such file or folder")
    notice = on_notice or (lambda m: None)
    detail = on_detail or (lambda m: None)
    others = []
    jobs, problems = plan_jobs(inputs, Path(out), fmt, suffix, parse_shard(shard),
                               video_container=video_options.get("container", "mp4"), others=others)
    summary = Summary()
    for msg in problems:
        summary.failed += 1
        (on_result or (lambda r: None))({"input": msg.split(":")[0], "output": None, "status": "failed",
                                         "ms": None, "error": msg})
    for src, why in others:  # reported before the plan: every input is counted once
        summary.skipped += 1
        (on_result or (lambda r: None))({"input": str(src), "output": None, "status": "skipped", "reason": why,
                                         "ms": None, "error": None})
    report = _InOrder(on_result or (lambda r: None), jobs)
    if on_plan:
        on_plan(jobs)
    if not jobs:
        return summary
    loaded = load(model, nets=None) if not hasattr(model, "generator") else model
    if loaded.config.kind not in TRANSLATION_KINDS:
        raise UsageError(f"{model if isinstance(model, (str, Path)) else 'this'} is a {loaded.config.kind} model: it generates images "
                         "rather than translating them; use ganctl sample")
    net = loaded.generator(direction, raw=raw_weights)  # the EMA weights where the checkpoint has them
    maker = {"model": weights_hash(net), "direction": direction, "size": size, "format": fmt, "quality": quality,
             "precision": precision, "tile": tile, "dropout": dropout,
             "video": {k: video_options.get(k) for k in ("crf", "preset", "codec", "start", "end", "max_frames", "stabilize")}}
    todo, skipped = Manifest(Path(out), maker).claim(jobs, overwrite=not skip_existing, dry_run=dry_run)
    skipped_src = {str(j.src): why for j, why in skipped}
    summary.skipped += len(skipped)
    if dry_run:
        for job in jobs:
            why = skipped_src.get(str(job.src))
            report({"input": str(job.src), "output": str(job.dst), "status": "skipped" if why else "planned",
                    "kind": job.kind, "reason": why, "ms": None, "error": None})
        return summary
    for job, why in skipped:
        report({"input": str(job.src), "output": str(job.dst), "status": "skipped", "reason": why,
                "ms": None, "error": None})
    if not todo:
        report.flush()
        return summary
    img.remove_stale_tmp(Path(out))
    if engine == "ray":
        from cyclegan_cli.infer.ray_engine import run_jobs

        options = {"device": device, "precision": precision, "backend": backend, "tile": tile,
                   "max_memory": max_memory, "dropout": dropout, "size": size, "fmt": fmt, "quality": quality,
                   "max_pixels": max_pixels, "video": video_options, "raw_weights": raw_weights}
        try:
            converted, failed = run_jobs(todo, loaded.path, direction, options, ray_address,
                                         workers if workers_given else None, report)
        except KeyboardInterrupt:
            raise Interrupted(INTERRUPTED) from None
        finally:
            report.flush()
        summary.converted += converted
        summary.failed += failed
        return summary
    translator = Translator(net, loaded.config, device=device, precision=precision, backend=backend, tile=tile,
                            max_memory=max_memory, dropout=dropout, compile=compile,
                            on_notice=notice)  # int8 giving way to fp32 is said whatever the verbosity
    for note in translator.notes:
        detail(note)
    detail(f"memory budget {translator.memory_budget / 2**30:.1f} GiB: images up to "
           f"{translator.max_untiled_pixels / 1e6:.1f} Mpx run whole"
           + ("" if translator.tile is None else f"; --tile {translator.tile}")
           + f"; backend {'onnxruntime' if translator.backend is not None else 'torch'}; precision {translator.precision}")
    batch_size = batch_size or translator.default_batch_size
    images = [j for j in todo if j.kind == "image"]
    videos = [j for j in todo if j.kind == "video"]
    try:
        if images:
            s = translate_images(translator, images, fmt, quality, size, batch_size, workers, max_pixels, report)
            summary.converted += s.converted
            summary.failed += s.failed
        for job in videos:
            from cyclegan_cli.infer.video import translate_video

            t0 = time.perf_counter()
            try:
                info = translate_video(translator, job.src, job.dst, size=size, batch_size=batch_size,
                                       on_notice=notice, on_progress=on_progress, on_detail=detail, **video_options)
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
            frames_out = video_options.get("frames_out")
            output = str(Path(frames_out) / job.src.stem) if frames_out is not None else str(job.dst)
            report({"input": str(job.src), "output": output, "status": status,
                    "ms": round((time.perf_counter() - t0) * 1000, 1), "error": info.get("error"),
                    "frames": info.get("frames"), "precision": translator.precision_so_far()})
    except KeyboardInterrupt:  # during a video: the same one line as during images
        raise Interrupted(INTERRUPTED) from None
    finally:
        translator.close()
        report.flush()
    return summary
