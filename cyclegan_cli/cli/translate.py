"""``ganctl translate``: images, folders and videos through a CycleGAN generator."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Annotated, List, Literal, Optional

import typer

from cyclegan_cli.cli.common import (DeviceOpt, JsonOpt, MaxPixelsOpt, ModelOpt, OfflineOpt, Output, TranslatePrecisionOpt,
                                     QuietOpt, VerboseOpt, duration)


def _direction(model, direction: str, to: Optional[str]) -> str:
    if to is None:
        return direction
    domains = model.config.domains
    if to in domains[1:2]:
        return "AtoB"
    if to in domains[:1]:
        return "BtoA"
    from cyclegan_cli.errors import UsageError

    raise UsageError(f"--to {to}: this model's domains are {' and '.join(domains) or 'unnamed'}")


def translate(
    inputs: Annotated[List[str], typer.Argument(metavar="INPUT...", help="Image/video files, folders (recursive), or - to read paths from stdin (a folder listed there with files inside it, as find lists them, is left out, not searched).", show_default=False)],
    model: ModelOpt = ...,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder (the input tree is mirrored).")] = Path("translated"),
    direction: Annotated[Literal["AtoB", "BtoA"], typer.Option("--direction", help="AtoB (domain A to B) or BtoA.")] = "AtoB",
    to: Annotated[Optional[str], typer.Option("--to", help="Target domain name (picks the direction).")] = None,
    size: Annotated[Optional[int], typer.Option("--size", help="Resize the short side to N first.")] = None,
    tile: Annotated[Optional[int], typer.Option("--tile", help="Run in N-pixel tiles, rounded to the network's size grid (default: whole images, tiles only for images over the memory budget).")] = None,
    max_memory: Annotated[Optional[float], typer.Option("--max-memory", help="GiB a forward pass may use (default: 75% of available RAM, or 80% of free GPU memory); larger images are tiled.")] = None,
    fmt: Annotated[Literal["same", "png", "jpg", "jpeg", "webp", "bmp", "tif", "tiff"], typer.Option("--format", help="Output format (same: as the input).")] = "same",
    quality: Annotated[int, typer.Option("--quality", min=1, max=100, help="JPEG/WebP quality.")] = 95,
    suffix: Annotated[str, typer.Option("--suffix", help="Appended to each output file's stem.")] = "",
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", min=1, help="Images per network call (default: 1 on CPU, 8 on GPU).")] = None,
    workers: Annotated[Optional[int], typer.Option("--workers", min=1, help="Decode/encode threads (default 2); with --engine ray, translator actors (default: one per GPU, or per CPU).")] = None,
    engine: Annotated[Literal["local", "ray"], typer.Option("--engine", help="local, or ray: the jobs as a Ray Dataset over a cluster's actors (pip install 'ganctl[ray]').")] = "local",
    ray_address: Annotated[Optional[str], typer.Option("--ray-address", metavar="ADDR", help="With --engine ray: auto or HOST:PORT of a running cluster (default: start a local one).")] = None,
    skip_existing: Annotated[bool, typer.Option("--skip-existing/--overwrite", help="Skip outputs that exist (a rerun carries on), or redo them.")] = True,
    shard: Annotated[Optional[str], typer.Option("--shard", help="K/N: take a stable 1/N of the inputs.")] = None,
    backend: Annotated[Literal["auto", "torch", "onnxruntime"], typer.Option("--backend", help="auto: ONNX Runtime on the CPU when installed, else torch.")] = "auto",
    max_pixels: MaxPixelsOpt = 89_478_485,
    raw_weights: Annotated[bool, typer.Option("--raw-weights", help="Use the generator's raw weights, not the moving average (--ema) that a checkpoint may hold.")] = False,
    dropout: Annotated[bool, typer.Option("--dropout", help="Keep dropout on (pix2pix's stochastic sampling); off by default, so outputs are deterministic.")] = False,
    null: Annotated[bool, typer.Option("--null", "-0", help="With -: paths on stdin are NUL-separated (find -print0).")] = False,
    relative_to: Annotated[Optional[Path], typer.Option("--relative-to", metavar="DIR", help="Each output keeps its input's path below DIR (DIR/a/x.jpg -> OUT/a/x.jpg), so two a/IMG_1.jpg and b/IMG_1.jpg do not collide; inputs outside DIR are refused, and files inside --out left out. Default with -: the current folder, as rsync -R keeps paths; otherwise a file named goes straight into --out and a folder's tree is mirrored.")] = None,
    allow_empty: Annotated[bool, typer.Option("--allow-empty", help="Accept a folder with no images or videos, and no paths on stdin (exit 0, nothing done), as a script over many folders may want; otherwise refused, as train refuses them.")] = False,
    compile_net: Annotated[bool, typer.Option("--compile", help="torch.compile the generator (CUDA graphs on a GPU): for many images or frames of one size; each new size compiles again.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan (source -> destination, convert or skip) and write nothing.")] = False,
    html: Annotated[bool, typer.Option("--html", help="Also write OUT/index.html: each input beside its output, to look through in a browser (relative links, nothing from the network).")] = False,
    crf: Annotated[int, typer.Option("--crf", help="Video quality, H.264 CRF: 0 lossless .. 51 worst (default 18: visually lossless).")] = 18,
    preset: Annotated[Literal["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow"], typer.Option("--video-preset", "--preset", help="libx264/libx265 preset: faster encodes, bigger files (default medium, x264's own).")] = "medium",
    codec: Annotated[str, typer.Option("--codec", help="Video codec.")] = "libx264",
    container: Annotated[str, typer.Option("--container", help="Video container for outputs.")] = "mp4",
    frames_out: Annotated[Optional[Path], typer.Option("--frames-out", help="Write each video's frames as PNG images (frame_000001.png ...) instead of a video, into a folder per video under this one, the input tree mirrored as under --out (day1/clip.mkv -> FRAMES/day1/clip); each folder is written whole, and recorded in FRAMES' own manifest.")] = None,
    start: Annotated[Optional[float], typer.Option("--start", help="Video: start time in seconds.")] = None,
    end: Annotated[Optional[float], typer.Option("--end", help="Video: end time in seconds.")] = None,
    max_frames: Annotated[Optional[int], typer.Option("--max-frames", help="Video: at most N frames.")] = None,
    stabilize: Annotated[bool, typer.Option("--stabilize/--no-stabilize", help="Video: blend each frame with the previous output along the input's motion, against flicker (scene cuts start afresh; -v lists them by frame index from 0, as eval --temporal --json does); --no-stabilize: every frame on its own.")] = True,
    device: DeviceOpt = "auto",
    precision: TranslatePrecisionOpt = "auto",
    offline: OfflineOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
    json_out: JsonOpt = False,
):
    """Translate images, folders and videos with a CycleGAN, CUT or pix2pix generator, at full resolution.

    Prints the output path of each file it converts, one per line, in input order; outputs already
    made by the same model and options are skipped and not printed, so a rerun lists only what it
    added (-v names the skipped ones on stderr; --json gives every file with its status;
    --dry-run prints the plan instead).
    Exit 0 when all converted, 1 when some failed (each failure is one line on stderr) or --out
    cannot be written, 2 for a bad option or an input folder with no images, before any work.
    When stdout's reader goes away (| head -2), the batch still finishes and exits as it would
    have; only the list stops, quietly.

    Examples:

    \b
      ganctl translate photos/ --model photo2sketch --out sketches
      ganctl translate clip.mp4 --model horse2zebra --out out        # fps and audio kept
      find . -name '*.jpg' -print0 | ganctl translate - -0 --model maps --shard 1/4 --json
                                          # ./a/x.jpg -> translated/a/x.jpg (--relative-to DIR)
    """
    from cyclegan_cli.cli.common import check_paths_exist
    from cyclegan_cli.errors import SomeInputsFailed

    o = Output(quiet, verbose, json_out)
    from cyclegan_cli.infer.translate import check_options

    video_options = {"crf": crf, "preset": preset, "codec": codec, "container": container,
                     "frames_out": frames_out, "start": start, "end": end, "max_frames": max_frames,
                     "stabilize": stabilize}
    if engine == "ray":
        from cyclegan_cli.infer.ray_engine import import_ray

        import_ray()
    check_options(direction=direction, fmt=fmt, quality=quality, size=size, tile=tile, batch_size=batch_size,
                  workers=workers or 2, shard=shard, device=device, precision=precision, backend=backend,
                  max_pixels=max_pixels, max_memory=max_memory, out=out, video_options=video_options,
                  suffix=suffix)
    paths, listed_folders = [], []
    for item in inputs:
        if item == "-":
            stream = getattr(sys.stdin, "buffer", None)
            data = stream.read() if stream is not None else os.fsencode(sys.stdin.read())
            names = data.split(b"\0") if null else data.splitlines()
            listed = [Path(os.fsdecode(n)) for n in names if n.strip()]
            # `find DIR` lists DIR and its subfolders beside their files: searching them too would take
            # each file twice (and every file of a folder a -newer or -name filter picked), so a listed
            # folder with something else listed inside it is left out; a folder listed alone (`ls -d
            # photos/*`) is searched, as a folder argument is
            inside = {parent for p in listed for parent in p.parents}
            for p in listed:
                (listed_folders if p in inside and p.is_dir() else paths).append(p)
        else:
            paths.append(Path(item))
    if listed_folders:
        named = f"{listed_folders[0]}" + (f" and {len(listed_folders) - 1} more" if len(listed_folders) > 1 else "")
        o.detail(f"left out the folders stdin lists with their files ({named}): - takes the files it lists")
    if len(paths) == 1:
        check_paths_exist(paths)
    if relative_to is None and "-" in inputs:
        relative_to = Path(".")  # paths from find keep their folders (rsync -R)

    from cyclegan_cli.infer.translate import translate as run_translate
    from cyclegan_cli.zoo.resolve import load

    loaded = load(model, offline=offline)
    o.detail(f"model {model}: {loaded.path}")  # which checkpoint a name or run resolved to
    from cyclegan_cli.checkpoints import TRANSLATION_KINDS

    if loaded.config.kind not in TRANSLATION_KINDS:
        from cyclegan_cli.errors import UsageError

        raise UsageError(f"{model} is a {loaded.config.kind} model: it generates images rather than translating "
                         "them; use ganctl sample")
    d = _direction(loaded, direction, to)
    loaded.generator(d, raw=raw_weights)  # a direction the model lacks is a usage error before any work
    counts = {"ok": 0, "failed": 0, "skipped": 0, "planned": 0}
    why_skipped: dict[str, int] = {}
    progress = o.progress("translate", None, "files")

    one_video = []  # the job is one video: the bar counts its frames, not "0/1 files"

    def on_plan(jobs):  # the inputs already reported (missing, not images) count in the total too
        if not dry_run and progress.done == 0 and len(jobs) == 1 and jobs[0].kind == "video":
            one_video.append(True)
            progress.relabel(f"translate {Path(jobs[0].src).name}", "frames")
            return
        progress.update(progress.done, progress.done + len(jobs))

    video_started = {}

    def on_frames(info):  # inside a video: its frames (of how many) and the time it has left, on the detail line
        if one_video:
            progress.update(info["frames"], info.get("total"))
            return
        now = time.monotonic()
        first = video_started.setdefault(info["input"], (info["frames"], now))
        n, total = info["frames"], info.get("total")
        text = f"{Path(info['input']).name} frame {n}" + (f"/{total}" if total else "")
        if total and n > first[0] and now > first[1]:
            text += f", eta {duration((total - n) * (now - first[1]) / (n - first[0]))}"
        progress.update(progress.done, video=text)

    pairs = []  # (input, output) for --html

    def on_result(r: dict) -> None:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
        if r["status"] in ("ok", "skipped") and r.get("output") and Path(r["output"]).is_file():
            pairs.append((Path(r["input"]), Path(r["output"])))
        if r["status"] == "skipped":
            why_skipped[r.get("reason") or "exists"] = why_skipped.get(r.get("reason") or "exists", 0) + 1
        if r["status"] == "failed":
            o.error(r["error"])
        if o.json_mode:
            o.json(r)
        elif r["status"] == "ok":
            o.result(r["output"])
        elif r["status"] == "planned":
            o.result(f"{r['input']} -> {r['output']}")
        elif r["status"] == "skipped":
            target = f" -> {r['output']}" if r["output"] else ""
            if dry_run:
                o.result(f"{r['input']}{target} (skip: {r.get('reason') or 'exists'})")
            elif r["output"]:
                o.detail(f"skipped {r['input']}: {r['output']} {r.get('reason') or 'exists'}")
            else:
                o.detail(f"skipped {r['input']}: {r.get('reason')}")
        if not one_video:
            progress.advance()

    with progress:
        run_translate(loaded, paths, out, direction=d, fmt=fmt, quality=quality, suffix=suffix, size=size, tile=tile,
                      batch_size=batch_size, workers=workers, skip_existing=skip_existing, shard=shard, device=device,
                      precision=precision, backend=backend, max_pixels=max_pixels, max_memory=max_memory,
                      video_options=video_options, dry_run=dry_run, dropout=dropout, engine=engine, raw_weights=raw_weights,
                      ray_address=ray_address, compile=compile_net, allow_empty=allow_empty, relative_to=relative_to,
                      model_name=model,
                      on_result=on_result, on_notice=o.info,
                      on_detail=o.detail, on_plan=on_plan, on_progress=on_frames)
    if html and not dry_run and pairs:
        from cyclegan_cli.infer.page import write_page

        o.info(f"page: {write_page(out, pairs, f'ganctl translate --model {model} ({d})')}")
    if dry_run:
        o.info(f"translate --dry-run: {counts['planned']} to convert, {counts['skipped']} to skip; nothing written")
    else:
        whys = ", ".join(f"{n} {'exist' if why == 'exists' else why}" if len(why_skipped) > 1 else
                         ("exist" if why == "exists" else why) for why, n in why_skipped.items()) or "exist"
        o.info(f"translate: {counts['ok']} converted, {counts['skipped']} skipped ({whys}), {counts['failed']} failed")
    if counts["failed"]:
        raise SomeInputsFailed("")
