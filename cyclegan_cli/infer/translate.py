"""Batch translation of image and video files and folders: the orchestration.

One way through, each step in its own module: options checked (here), inputs planned into jobs
(:mod:`~cyclegan_cli.infer.plan`), outputs claimed in the manifest (:mod:`~cyclegan_cli.infer.manifest`),
images through the pipeline (:mod:`~cyclegan_cli.infer.pipeline`) or videos
(:mod:`~cyclegan_cli.infer.video`) or a Ray cluster (:mod:`~cyclegan_cli.infer.ray_engine`), each
output committed once written. Every job is reported through ``on_result`` as a dict, in plan
order; nothing is printed.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from cyclegan_cli.data import images as img
from cyclegan_cli.errors import InputError, Interrupted, NotFoundError, UsageError
from cyclegan_cli.files import remove_stale_tmp
# the steps' names, importable from here as before the split
from cyclegan_cli.infer.manifest import MANIFEST, Manifest  # noqa: F401
from cyclegan_cli.infer.pipeline import INTERRUPTED, InOrder, Summary, one_line, translate_images  # noqa: F401
from cyclegan_cli.infer.plan import (NOT_MEDIA, VIDEO_EXTENSIONS, Job, in_shard, parse_shard,  # noqa: F401
                                     plan_jobs, sniff_kind)

DIRECTIONS = ("AtoB", "BtoA")


def check_options(*, direction: str = "AtoB", fmt: str = "same", quality: int = 95, size: int | None = None,
                  tile: int | None = None, batch_size: int | None = None, workers: int = 2,
                  shard: str | None = None, device: str = "auto", precision: str = "auto", backend: str = "auto",
                  max_pixels: int = img.DEFAULT_MAX_PIXELS, max_memory: float | None = None,
                  out: Path | None = None, video_options: dict | None = None, suffix: str = "") -> None:
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
    if any(c in suffix for c in "/\\\0"):
        bad(f"--suffix {suffix!r}: it goes on the end of a file name, so no / or \\")
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
    if out is not None:  # the folder, or the first of its parents that exists, must be a folder
        there = next((p for p in (Path(out), *Path(out).parents) if p.exists()), None)
        if there is not None and not there.is_dir():
            bad(f"--out {out}: is a file, not a folder" if there == Path(out) else
                f"--out {out}: {there} is a file, not a folder")
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


def translate(model, inputs: list, out="translated", direction: str = "AtoB", fmt: str = "same",
              quality: int = 95, suffix: str = "", size: int | None = None, tile: int | None = None,
              batch_size: int | None = None, workers: int | None = None, skip_existing: bool = True,
              shard: str | None = None,
              device: str = "auto", precision: str = "auto", backend: str = "auto",
              max_pixels: int = img.DEFAULT_MAX_PIXELS, max_memory: float | None = None,
              video_options: dict | None = None, dry_run: bool = False, dropout: bool = False,
              engine: str = "local", ray_address: str | None = None, compile: bool = False,
              raw_weights: bool = False, allow_empty: bool = False, relative_to: Path | None = None,
              model_name: str | None = None,
              on_result: Callable[[dict], None] | None = None, on_notice: Callable[[str], None] | None = None,
              on_detail: Callable[[str], None] | None = None, on_plan: Callable[[list], None] | None = None,
              on_progress: Callable[[dict], None] | None = None) -> Summary:
    """Translate image and video files and folders with ``model`` (a name, path or LoadedModel).

    Outputs mirror the input tree under ``out`` (a video's folder of frames, with
    ``video_options["frames_out"]``, under that folder), each recorded in the manifest of the folder
    it is under. An output that exists is skipped when it was made
    by the same model and options (see :class:`Manifest`), refused when another maker made it,
    and redone when ``skip_existing`` is False. Each job is reported through ``on_result``, in
    input order; ``dry_run`` reports the plan (status ``planned`` or ``skipped``) and writes nothing.
    No inputs, or a folder with no image or video, is refused unless ``allow_empty``; with
    ``relative_to``, outputs keep their inputs' paths below that folder (see :func:`plan_jobs`).
    ``model_name`` (default: ``model`` when a name or path, else where it was loaded from) is how
    the manifest names the model to a later job that another model's outputs refuse.
    """
    from cyclegan_cli.checkpoints import TRANSLATION_KINDS
    from cyclegan_cli.infer.backends import weights_hash
    from cyclegan_cli.infer.engine import Translator
    from cyclegan_cli.zoo.resolve import load

    t_start = time.perf_counter()
    inputs = [Path(p) for p in inputs]
    if not inputs:
        if allow_empty:
            return _timed(Summary(), t_start)
        raise UsageError("no inputs given (--allow-empty accepts none)")
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
                  max_pixels=max_pixels, max_memory=max_memory, out=Path(out), video_options=video_options,
                  suffix=suffix)
    if all(not p.exists() for p in inputs) and len(inputs) == 1:
        raise NotFoundError(f"{inputs[0]}: no such file or folder")
    notice = on_notice or (lambda m: None)
    detail = on_detail or (lambda m: None)
    others = []
    frames_out = video_options.get("frames_out")  # a video's output is then its folder of frames
    jobs, problems = plan_jobs(inputs, Path(out), fmt, suffix, parse_shard(shard),
                               video_container=video_options.get("container", "mp4"), on_skip=notice, others=others,
                               frames_out=frames_out, allow_empty=allow_empty, relative_to=relative_to)
    summary = Summary()
    for msg in problems:
        summary.failed += 1
        (on_result or (lambda r: None))({"input": msg.split(":")[0], "output": None, "status": "failed",
                                         "ms": None, "error": msg})
    for src, why in others:  # reported before the plan: every input is counted once
        summary.skipped += 1
        (on_result or (lambda r: None))({"input": str(src), "output": None, "status": "skipped", "reason": why,
                                         "ms": None, "error": None})
    report = InOrder(on_result or (lambda r: None), jobs)
    if on_plan:
        on_plan(jobs)
    if not jobs:
        return _timed(summary, t_start)
    loaded = load(model, nets=None) if not hasattr(model, "generator") else model
    if loaded.config.kind not in TRANSLATION_KINDS:
        raise UsageError(f"{model if isinstance(model, (str, Path)) else 'this'} is a {loaded.config.kind} model: it generates images "
                         "rather than translating them; use ganctl sample")
    net = loaded.generator(direction, raw=raw_weights)  # the EMA weights where the checkpoint has them
    # each output is recorded in the manifest of the folder it is in (a folder of frames: --frames-out's),
    # with the options that change it: an image's are not a video's
    made_by = {"model": weights_hash(net), "direction": direction, "size": size, "precision": precision,
               "tile": tile, "dropout": dropout}
    video_maker = {**made_by, "video": {k: video_options.get(k) for k in ("crf", "preset", "codec", "start", "end",
                                                                          "max_frames", "stabilize")}}
    outputs = {"image": (Path(out), "--out", {**made_by, "format": fmt, "quality": quality}),
               "video": (Path(out), "--out", video_maker),
               "frames": (frames_out, "--frames-out",
                          {**made_by, "frames": {k: video_options.get(k) for k in ("start", "end", "max_frames",
                                                                                    "stabilize")}})}

    def output_kind(job: Job) -> str:
        return "frames" if job.kind == "video" and frames_out is not None else job.kind

    manifests, todo, skipped = {}, [], []
    for kind, (folder, option, maker) in outputs.items():
        mine = [j for j in jobs if output_kind(j) == kind]
        if mine:
            manifests[kind] = Manifest(folder, maker, option, model_name or (
                str(model) if isinstance(model, (str, Path)) else loaded.path or None))
            t, s = manifests[kind].claim(mine, overwrite=not skip_existing, dry_run=dry_run)
            todo += t
            skipped += s
    place = {str(j.dst): i for i, j in enumerate(jobs)}
    todo.sort(key=lambda j: place[str(j.dst)])
    manifest_of = {str(j.dst): manifests[output_kind(j)] for j in todo}
    skipped_dst = {str(j.dst): why for j, why in skipped}
    summary.skipped += len(skipped)
    if dry_run:
        for job in jobs:
            why = skipped_dst.get(str(job.dst))
            report({"input": str(job.src), "output": str(job.dst), "status": "skipped" if why else "planned",
                    "kind": job.kind, "reason": why, "ms": None, "error": None}, job)
        return _timed(summary, t_start)
    for job, why in skipped:
        report({"input": str(job.src), "output": str(job.dst), "status": "skipped", "reason": why,
                "ms": None, "error": None}, job)
    if not todo:
        report.flush()
        return _timed(summary, t_start)

    def done(r: dict, job: Job | None = None) -> None:  # an output is recorded only once it is written
        if r.get("status") == "ok" and r.get("output"):
            manifest_of[r["output"]].commit(r["output"])
        report(r, job)

    def close_manifests() -> None:
        for m in manifests.values():
            m.close()

    for folder in {m.out for m in manifests.values()}:
        remove_stale_tmp(folder)
    video_kw = {**{k: v for k, v in video_options.items() if k != "frames_out"}, "frames": frames_out is not None}
    if engine == "ray":
        from cyclegan_cli.infer.ray_engine import run_jobs

        options = {"device": device, "precision": precision, "backend": backend, "tile": tile,
                   "max_memory": max_memory, "dropout": dropout, "size": size, "fmt": fmt, "quality": quality,
                   "max_pixels": max_pixels, "video": video_kw, "raw_weights": raw_weights}
        try:
            converted, failed = run_jobs(todo, loaded.path, direction, options, ray_address,
                                         workers if workers_given else None, done)
        except KeyboardInterrupt:
            raise Interrupted(INTERRUPTED) from None
        finally:
            close_manifests()
            report.flush()
        summary.converted += converted
        summary.failed += failed
        return _timed(summary, t_start)
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
            s = translate_images(translator, images, fmt, quality, size, batch_size, workers, max_pixels, done)
            summary.converted += s.converted
            summary.failed += s.failed
        for job in videos:
            from cyclegan_cli.infer.video import translate_video

            t0 = time.perf_counter()
            try:
                info = translate_video(translator, job.src, job.dst, size=size, batch_size=batch_size,
                                       on_notice=notice, on_progress=on_progress, on_detail=detail, **video_kw)
            except (InputError, OSError) as exc:
                summary.failed += 1
                done({"input": str(job.src), "output": str(job.dst), "status": "failed", "ms": None,
                      "error": one_line(job, exc)}, job)
                continue
            status = "ok" if not info.get("error") else "failed"
            if status == "ok":
                summary.converted += 1
            else:
                summary.failed += 1
            done({"input": str(job.src), "output": str(job.dst), "status": status,
                  "ms": round((time.perf_counter() - t0) * 1000, 1), "error": info.get("error"),
                  "frames": info.get("frames"), "precision": translator.precision_so_far()}, job)
    except KeyboardInterrupt:  # during a video: the same one line as during images
        raise Interrupted(INTERRUPTED) from None
    finally:
        translator.close()
        close_manifests()
        report.flush()
    return _timed(summary, t_start)


def _timed(summary: Summary, t_start: float) -> Summary:
    summary.seconds = time.perf_counter() - t_start
    return summary
