"""Planning a translate job: inputs (files, folders walked with their links, ``-``) become jobs
(source -> destination, the input tree mirrored under ``--out``, and a video's folder of frames
under ``--frames-out`` the same way), each file's kind sniffed from its first bytes, and a stable
shard of them kept."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from cyclegan_cli.data import images as img
from cyclegan_cli.errors import UsageError

from cyclegan_cli.data.names import VIDEO_EXTENSIONS  # noqa: E402,F401  (declared beside the image ones)


@dataclass
class Job:
    src: Path
    dst: Path
    kind: str = "image"  # "image" or "video"



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


def _is_within(child: Path, parent: Path) -> bool:
    try:
        child.resolve().relative_to(parent.resolve())
        return True
    except ValueError:
        return False


NOT_MEDIA = "not an image or video"


def _below(base: Path) -> Callable[[Path], Path]:
    """path -> its path below ``base`` (both made absolute, ``..`` taken away by name, as the shell
    spells them; links are not followed); a path outside ``base`` is refused."""
    import os

    top = Path(os.path.abspath(base))
    where = "the current folder" if top == Path.cwd() else str(base)

    def rel(p: Path) -> Path:
        try:
            return Path(os.path.abspath(p)).relative_to(top)
        except ValueError:
            raise UsageError(f"{p} is not under {where}: give --relative-to a folder that holds every input") from None

    return rel


def _key(dst: Path) -> str:
    """Where ``dst`` really is, so that two spellings of one output are seen as one."""
    return str(dst.resolve()) if dst.parent.exists() else str(dst.absolute())


def plan_jobs(inputs: list[Path], out: Path, fmt: str = "same", suffix: str = "", shard=None,
              video_container: str = "mp4", include_videos: bool = True,
              on_skip: Callable[[str], None] | None = None,
              others: list | None = None, frames_out: Path | None = None, allow_empty: bool = False,
              relative_to: Path | None = None) -> tuple[list[Job], list[str]]:
    """Turn inputs into jobs. Returns (jobs, problems) where problems are one-line messages for
    inputs that cannot be planned (missing paths, duplicates). Linked folders are followed; one
    that leads back to a folder already planned is reported through ``on_skip``. A folder's files
    that are neither images nor videos are left out, and added to ``others`` as (path, reason) when
    it is given; a file named on its own goes to the decoder, which says what is wrong with it.
    A folder with no image or video in it is refused (as training refuses it) unless ``allow_empty``.
    Outputs mirror each folder's tree; a file named on its own goes straight into ``out``, unless
    ``relative_to``: then every output keeps its input's path below that folder (``a/b.jpg`` ->
    ``OUT/a/b.jpg``, as ``rsync -R`` keeps it), an input outside it is refused, and one inside
    ``out`` (an earlier output, found again by ``find .``) is left out, as ``others``.
    With ``frames_out``, a video's output is a folder of frames, placed under ``frames_out`` as a
    video file would be under ``out`` (``day1/clip.mkv`` -> ``FRAMES/day1/clip``)."""
    out = Path(out)
    frames_out = None if frames_out is None else Path(frames_out)
    below = None if relative_to is None else _below(Path(relative_to))
    jobs, problems, seen = [], [], {}
    folders = [p for p in inputs if p.is_dir()]
    for folder in folders:
        for flag, where in (("--out", out), ("--frames-out", frames_out)):
            if where is not None and _is_within(where, folder):
                raise UsageError(f"{flag} {where} is inside the input folder {folder}; choose another folder")
    several = len(inputs) > 1
    for p in inputs:
        if not p.exists():
            problems.append(f"{p}: no such file or folder")
            continue
        if below is not None and _is_within(p, out) and not p.is_dir():
            if others is not None:
                others.append((p, "inside --out"))
            continue
        if p.is_dir():
            tree = Path(p.resolve().name) if several else Path()
            media = 0
            for f in img.walk_files(p, on_skip):
                kind = sniff_kind(f)
                if kind is None and others is not None and in_shard(str(f.relative_to(p)), shard):
                    others.append((f, NOT_MEDIA))
                if kind is None or (kind == "video" and not include_videos):
                    continue
                media += 1
                jobs.append((f, Path(), below(f), kind) if below else (f, tree, f.relative_to(p), kind))
            if not media and not allow_empty:
                raise UsageError(f"{p}: no images{' or videos' if include_videos else ''} to translate "
                                 "(--allow-empty accepts an empty folder)")
        else:
            kind = sniff_kind(p)
            if kind is None:
                kind = "image"  # let the decoder say what is wrong with it
            jobs.append((p, Path(), below(p) if below else Path(p.name), kind))
    planned = []
    for src, tree, rel, kind in jobs:
        if kind == "video" and frames_out is not None:
            dst = frames_out / tree / rel.with_name(rel.stem + suffix)
        elif kind == "video":
            dst = out / tree / rel.with_name(rel.stem + suffix + "." + video_container)
        else:
            _, ext = img.output_format(src, fmt)
            dst = out / tree / rel.with_name(rel.stem + suffix + ext)
        if not in_shard(str(rel), shard):
            continue
        key = _key(dst)
        if key in seen:
            problems.append(f"{src}: its output {dst} is also the output of {seen[key]}; skipped")
            continue
        if src.resolve() == dst.resolve():
            problems.append(f"{src}: output would overwrite the input; skipped")
            continue
        seen[key] = src
        planned.append(Job(src, dst, kind))
    if frames_out is not None:
        planned = _outside_frame_folders(planned, out, problems)
    return planned, problems


def _outside_frame_folders(jobs: list[Job], out: Path, problems: list[str]) -> list[Job]:
    """A folder of frames is replaced whole when it is written: no other output of the plan, and
    not ``--out`` itself, may lie inside one (``--frames-out`` the same as ``--out``, with a video
    ``clip.mp4`` beside a folder ``clip/``)."""
    folders = {_key(j.dst): j for j in jobs if j.kind == "video"}
    out_key = Path(_key(out))
    for key, job in list(folders.items()):
        if out_key == Path(key) or Path(key) in out_key.parents:
            problems.append(f"{job.src}: its folder of frames {job.dst} would hold --out {out}; skipped")
            del folders[key]
    kept = []
    for job in jobs:
        key = Path(_key(job.dst))
        holder = next((folders[str(a)] for a in key.parents if str(a) in folders), None)
        if job.kind == "video" and str(key) not in folders:
            continue
        if holder is not None:
            problems.append(f"{job.src}: its output {job.dst} is inside {holder.dst}, the folder of frames of "
                            f"{holder.src}; skipped")
            continue
        kept.append(job)
    return kept
