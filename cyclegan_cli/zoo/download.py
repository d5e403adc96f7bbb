"""Downloads into the cache: streamed to a ``.part`` file, resumed with HTTP Range, size and
sha256 checked, moved into place atomically, and locked so that two processes make one file.
Proxies come from the usual environment variables (urllib's ProxyHandler)."""

from __future__ import annotations

import hashlib
import http.client
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable

from filelock import FileLock

from cyclegan_cli.errors import DownloadError

CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def download(url: str, dest: Path, sha256: str | None = None, size: int | None = None,
             on_progress: Callable[[int, int | None], None] | None = None, timeout: float = 60.0) -> Path:
    """Fetch ``url`` to ``dest`` unless a verified copy is there. Raises :class:`DownloadError`."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(dest) + ".lock", timeout=3600):
        if dest.is_file():
            if (size is None or dest.stat().st_size == size) and (sha256 is None or sha256_file(dest) == sha256):
                return dest
            dest.unlink()  # a stale or corrupt cached copy
        part = dest.with_name(dest.name + ".part")
        _fetch(url, part, on_progress, timeout)
        got_size = part.stat().st_size
        if size is not None and got_size != size:
            part.unlink()
            raise DownloadError(f"{url}: size {got_size} bytes, expected {size}; nothing was kept")
        if sha256 is not None:
            digest = sha256_file(part)
            if digest != sha256:
                part.unlink()
                raise DownloadError(f"{url}: sha256 {digest[:16]}... does not match the expected "
                                    f"{sha256[:16]}...; nothing was kept")
        os.replace(part, dest)
        return dest


def _fetch(url: str, part: Path, on_progress, timeout: float) -> None:
    start = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": "ganctl"}
    if start:
        headers["Range"] = f"bytes={start}-"
    req = urllib.request.Request(url, headers=headers)
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and start:  # we already have every byte
            return
        raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DownloadError(f"{url}: cannot connect ({reason})") from None
    with resp:
        status = getattr(resp, "status", 200)
        if start and status != 206:
            start = 0  # the server ignored Range: start over
        length = resp.headers.get("Content-Length")
        expected = int(length) + start if length is not None else None
        done = start
        mode = "ab" if start else "wb"
        try:
            with open(part, mode) as fh:
                while True:
                    block = resp.read(CHUNK)
                    if not block:
                        break
                    fh.write(block)
                    done += len(block)
                    if on_progress:
                        on_progress(done, expected)
                fh.flush()
                os.fsync(fh.fileno())
        except (OSError, urllib.error.URLError, http.client.HTTPException) as exc:
            if expected is None or done >= expected:
                raise DownloadError(f"{url}: transfer broke off after {done} bytes ({type(exc).__name__}); "
                                    "run again to resume") from None
            # the server closed early: reported as a truncation just below
    if expected is not None and done < expected:
        raise DownloadError(f"{url}: truncated: got {done} of {expected} bytes; run again to resume")
