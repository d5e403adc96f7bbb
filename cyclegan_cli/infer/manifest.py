"""What made each output of a translate job: ``OUT/.ganctl-manifest.json``, claimed before the
job and committed after each atomic write (see :class:`Manifest`)."""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import json
import os
import time
from pathlib import Path

from cyclegan_cli.errors import UsageError, folder_error
from cyclegan_cli.files import OwnerLock, atomic_write_bytes

MANIFEST = ".ganctl-manifest.json"
FRAME_NAME = "frame_{:06d}.png"  # a video's frames in its --frames-out folder (infer/video.py writes them)


def _not_ours(folder: Path) -> str | None:
    """Why the existing ``folder``, which no manifest records, may not be replaced by a folder of
    frames: it holds something other than frames (a user's file or folder), or cannot be read.
    None when it holds nothing but ``frame_*.png`` files."""
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if not fnmatch.fnmatchcase(entry.name, "frame_*.png") or entry.is_dir(follow_symlinks=False):
                    return f"it holds {entry.name}, which is not a frame (frame_*.png)"
    except OSError as exc:
        return f"it cannot be read ({exc.strerror or exc})"
    return None


class Manifest:
    """``OUT/.ganctl-manifest.json``: which *maker* (weights hash, direction and every option that
    changes that kind of output: an image's format, a video's codec) made each output, so skip-existing never passes off another model's file as
    done. :meth:`claim` marks the outputs a job will write as pending; :meth:`commit` records each
    one after its atomic write (written out in small groups and at :meth:`close`), so a job killed
    half way, or an output that failed, is redone by a rerun rather than taken as done. Reads and
    writes happen under a file lock, so shards sharing an output folder keep one manifest."""

    def __init__(self, out: Path, maker: dict, option: str = "--out", name: str | None = None):
        self.out, self.maker, self.option = Path(out), maker, option  # option: the flag that names the folder
        self.name = name  # the model as the user named it (zoo name, run, path): said when another maker is refused
        self.key = hashlib.sha256(json.dumps(maker, sort_keys=True).encode()).hexdigest()[:16]
        self._claimed: set[str] = set()
        self._done: list[str] = []
        self._last_write = 0.0

    def _rel(self, dst: Path) -> str:
        return os.path.relpath(dst, self.out)

    def _read(self) -> dict:
        try:
            data = json.loads((self.out / MANIFEST).read_text())
            if isinstance(data, dict) and isinstance(data.get("files"), dict):
                if not isinstance(data.get("pending"), dict):
                    data["pending"] = {}
                return data
        except (OSError, ValueError):
            pass
        return {"version": 1, "makers": {}, "files": {}, "pending": {}}

    def _lock(self):
        return OwnerLock(self.out / (MANIFEST + ".lock"))  # in the folder: shards on other machines see it too

    @contextlib.contextmanager
    def _take(self):
        """The folder made and its lock held: the first writes in it, so a folder that cannot be
        made or written in is said here, in one line naming it (not the lock file)."""
        try:
            self.out.mkdir(parents=True, exist_ok=True)
            lock = self._lock().acquire()
        except OSError as exc:
            raise folder_error(self.out, exc, self.option) from None
        try:
            yield lock
        finally:
            lock.release()

    def _write(self, data: dict) -> None:
        atomic_write_bytes(self.out / MANIFEST, json.dumps(data, indent=1, sort_keys=True).encode())

    def claim(self, jobs: list, overwrite: bool, dry_run: bool = False) -> tuple[list, list]:
        """(jobs to run, [(job, why)] to skip). Raises UsageError when an existing output was made
        by another maker and ``overwrite`` is off. An output claimed by an earlier job but never
        committed (it failed, or the job was killed) is run again."""
        with self._take() if not dry_run else contextlib.nullcontext():
            data = self._read()
            todo, skip, foreign = [], [], []
            for job in jobs:
                rel = self._rel(job.dst)
                made_by = data["files"].get(rel)
                if overwrite or not job.dst.exists() or (made_by is None and rel in data["pending"]):
                    # a folder is replaced whole: one this manifest does not record is replaced only when
                    # it holds nothing but frames, so a user's folder at its place is never deleted
                    why = None if made_by is not None or not job.dst.is_dir() else _not_ours(job.dst)
                    if why:
                        raise UsageError(f"{job.dst} is not a folder of frames ganctl made: {why}; move it "
                                         f"away or use another {self.option} (--overwrite does not replace it)")
                    todo.append(job)
                elif made_by is None or self._same_maker(made_by, data["makers"].get(made_by)):
                    skip.append((job, "exists"))
                else:
                    foreign.append(job)
            if foreign:
                other_key = data["files"][self._rel(foreign[0].dst)]
                other = data["makers"].get(other_key, {})
                def short(v):
                    return f"{v[:12]}..." if isinstance(v, str) and len(v) > 16 else v

                names = [data.get("names", {}).get(other_key), self.name]  # the models as their users named them
                if names[0] == names[1] or None in names:  # a name retrained, or an output made before names were kept
                    names = [f"{n} ({short(w)})" if n else short(w) for n, w in zip(names, (other.get("model"),
                                                                                            self.maker.get("model")))]

                def pair(k):  # (theirs, ours), as said
                    return names if k == "model" else (short(other.get(k)), short(self.maker.get(k)))

                what = ", ".join(f"{k} {pair(k)[0]} -> {pair(k)[1]}" for k in self.maker
                                 if other.get(k) != self.maker.get(k))[:200]
                raise UsageError(f"{len(foreign)} output(s) in {self.out} were made by another model or other "
                                 f"options ({what}); use --overwrite to replace them, or another {self.option}")
            if not dry_run:
                data["makers"][self.key] = self.maker
                if self.name:
                    data.setdefault("names", {})[self.key] = self.name
                for job in todo:  # no longer anyone's until written
                    rel = self._rel(job.dst)
                    data["files"].pop(rel, None)
                    data["pending"][rel] = self.key
                    self._claimed.add(rel)
                self._write(data)
        self._last_write = time.monotonic()
        return todo, skip

    def _same_maker(self, key: str, maker) -> bool:
        """Whether the maker recorded under ``key`` agrees with ours on every option ours names: a
        maker recorded before image and video options were kept apart names both kinds'."""
        return key == self.key or (isinstance(maker, dict) and all(maker.get(k) == v for k, v in self.maker.items()))

    def commit(self, dst) -> None:
        """``dst`` is written: record it (on disk within a few seconds, and at :meth:`close`)."""
        rel = self._rel(Path(dst))
        if rel in self._claimed:
            self._done.append(rel)
            if len(self._done) >= 64 or time.monotonic() - self._last_write >= 2.0:
                self.flush()

    def flush(self) -> None:
        if not self._done:
            return
        with self._lock():
            data = self._read()
            data["makers"][self.key] = self.maker
            for rel in self._done:
                data["files"][rel] = self.key
                data["pending"].pop(rel, None)
            self._write(data)
        self._done = []
        self._last_write = time.monotonic()

    def close(self) -> None:
        self.flush()
