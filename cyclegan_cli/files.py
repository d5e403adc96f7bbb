"""Writing files safely, in one place: temporary names, atomic replacement, fsync.

Every file ganctl writes goes to a temporary name beside its destination
(``.NAME.HOST.PID.ganctl-tmp``, created fresh, never through a symlink), is flushed to disk, and
is renamed into place: a reader sees the old file or the whole new one, never a part, and a killed
process leaves only a temporary file that :func:`remove_stale_tmp` can tell is garbage. A folder
(a checkpoint, a video's frames) is written the same way: a temporary folder of the same name
pattern, then a rename.

A process that owns a folder (a training run; an output folder while its manifest is written)
holds an :class:`OwnerLock` there: a lock file that names the holder's host and pid, and that only
a killed holder leaves behind.

An OSError that escapes keeps the destination's path in ``filename``, so that
:func:`cyclegan_cli.errors.from_os_error` can say in one line what could not be written.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

TMP_SUFFIX = ".ganctl-tmp"


def host_tag() -> str:
    """This host's name as it appears in temporary names (letters, digits, - and _)."""
    import socket

    return "".join(c if c.isalnum() or c == "-" else "_" for c in socket.gethostname())[:40] or "host"


def tmp_name(dst: Path) -> Path:
    """The temporary name a file is written under before it is renamed into place:
    ``.NAME.HOST.PID.ganctl-tmp``, so a cleanup can tell whose it is."""
    return dst.with_name(f".{dst.name}.{host_tag()}.{os.getpid()}{TMP_SUFFIX}")


def create_tmp(dst: Path):
    """Open ``tmp_name(dst)`` for writing, created fresh: never through a symlink, never an
    existing file (``O_EXCL|O_NOFOLLOW``), with the umask's permissions. Returns (path, file)."""
    tmp = tmp_name(dst)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(tmp, flags, 0o666)
    except FileExistsError:  # left by a killed process that had our pid: it is ours to replace
        os.unlink(tmp)
        fd = os.open(tmp, flags, 0o666)
    return tmp, os.fdopen(fd, "wb")


def reserve_tmp(dst: Path) -> Path:
    """Create ``tmp_name(dst)`` as :func:`create_tmp` does, for writers that open files by name
    themselves (FFmpeg, the ONNX exporter). Returns its path."""
    tmp, fh = create_tmp(dst)
    fh.close()
    return tmp


@contextlib.contextmanager
def replacing(dst: Path):
    """For writers that open a file by name: yields a reserved temporary path beside ``dst``; when
    the block ends without an error it is synced and replaces ``dst``, otherwise it is removed."""
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = reserve_tmp(dst)
    try:
        yield tmp
        fsync_file(tmp)
        os.replace(tmp, dst)
    except OSError as exc:
        raise _at(exc, dst) from None
    finally:
        if tmp.exists():
            tmp.unlink()


def remove_stale_tmp(folder: Path, dead: tuple[str, int] | None = None) -> int:
    """Delete temporary files and folders left by killed ganctl processes *of this host* (their pid
    is gone). Those of other hosts are left alone: on a shared folder their writers may be alive;
    except those of ``dead`` (host tag, pid), a writer known to be gone: the one a lock names that
    was found free (:class:`OwnerLock`). Returns the count."""
    removed = 0
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    host = host_tag()
    for dirpath, dirs, files in os.walk(folder):
        for name in [*files, *dirs]:
            if not name.endswith(TMP_SUFFIX):
                continue
            parts = name[: -len(TMP_SUFFIX)].rsplit(".", 2)
            if len(parts) != 3 or not parts[2].isdigit():
                continue
            pid = int(parts[2])
            if (parts[1], pid) == dead or (parts[1] == host and pid != os.getpid() and not _pid_alive(pid)):
                try:
                    _remove(Path(dirpath, name))
                    removed += 1
                except OSError:
                    pass
        dirs[:] = [d for d in dirs if os.path.lexists(os.path.join(dirpath, d))]
    return removed


def _remove(path: Path) -> None:
    """Delete a file, a link (not what it points to) or a folder tree."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


class LockHeld(Exception):
    """An :class:`OwnerLock` that another process holds: ``host`` and ``pid`` as its file names them
    (None where it could not be read yet, or on Windows)."""

    def __init__(self, path: Path, host: str | None, pid: int | None):
        super().__init__(f"{path} is held by pid {pid} on {host}")
        self.path, self.host, self.pid = path, host, pid


class OwnerLock:
    """An exclusive lock on the file ``path`` that names its holder: the file holds ``HOST PID``
    while it is held, and the holder deletes it before letting go, so a lock file that stays behind
    names a killed holder. ``with OwnerLock(path):`` waits for it; :meth:`acquire` with ``wait=False``
    raises :class:`LockHeld` instead. Whoever wakes on a file its holder deleted sees that it is no
    longer the one at ``path`` and locks afresh. The lock lives with the folder (in it), so other
    machines sharing the folder see it too; the kernel lets go of it when its holder dies, however.
    :attr:`dead` is the (host, pid) that a killed holder's file named, else None."""

    def __init__(self, path: Path):
        self.path, self.dead, self._fd, self._other = Path(path), None, None, None

    def acquire(self, wait: bool = True) -> "OwnerLock":
        try:
            import fcntl
        except ImportError:  # Windows: filelock's lock, which stays as an empty file and names no one
            from filelock import FileLock, Timeout

            self._other = FileLock(str(self.path))
            try:
                self._other.acquire(timeout=-1 if wait else 0)
            except Timeout:
                raise LockHeld(self.path, None, None) from None
            return self
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        while True:
            fd = os.open(self.path, flags, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
                if os.fstat(fd).st_ino == os.stat(self.path).st_ino:
                    break
            except FileNotFoundError:  # deleted by the holder we waited for
                pass
            except BlockingIOError:
                owner = _owner(os.read(fd, 200))
                os.close(fd)
                raise LockHeld(self.path, *(owner or (None, None))) from None
            os.close(fd)
        self.dead = _owner(os.read(fd, 200))  # a holder that let go deleted its file: this one was killed
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{host_tag()} {os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._other is not None:
            self._other.release()
            self._other = None
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.path)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "OwnerLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _owner(data: bytes) -> tuple[str, int] | None:
    """(host tag, pid) from a lock file's ``HOST PID``, else None."""
    parts = data.decode("ascii", "replace").split()
    return (parts[0], int(parts[1])) if len(parts) == 2 and parts[1].isdigit() else None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _at(exc: OSError, path: Path) -> OSError:
    """``exc``, naming ``path`` when it names no file (a write to an open file has no name of its
    own); ``OSError(errno, ...)`` gives the subclass for the errno (PermissionError, ...)."""
    if exc.errno is None or exc.filename is not None:
        return exc
    return OSError(exc.errno, exc.strerror, str(path))


def atomic_write_bytes(dst: Path, data) -> None:
    """Temporary file in the same folder (see :func:`create_tmp`), fsync, ``os.replace``: a reader
    sees the old file or the whole new one, never a part."""
    dst = Path(dst)
    tmp = None
    try:
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp, fh = create_tmp(dst)
        with fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, dst)
    except BaseException as exc:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
        if isinstance(exc, OSError):
            raise _at(exc, dst) from None
        raise


def write_synced(path: Path, data, mode: int | None = None) -> None:
    """Write ``data`` to a new file ``path`` (inside a temporary folder) and fsync it; ``mode``
    defaults to the umask's permissions."""
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.chmod(path, (0o666 if mode is None else mode) & ~umask())


def fsync_file(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def make_tmp_folder(dst: Path) -> Path:
    """Create ``tmp_name(dst)`` as a fresh, empty folder beside ``dst`` (same file system, so the
    rename into place is atomic), with the umask's permissions. Returns its path."""
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_name(dst)
    try:
        os.mkdir(tmp)
    except FileExistsError:  # left by a killed process that had our pid: it is ours to replace
        _remove(tmp)
        os.mkdir(tmp)
    return tmp


def replace_folder(tmp: Path, target: Path) -> None:
    """Put the folder ``tmp`` in the place of ``target``. An existing ``target`` is first moved
    aside under a temporary name (so that, should the process die there, a cleanup can tell it is
    garbage) and removed once the new one is in place: nothing of the old folder stays in the new."""
    target = Path(target)
    old = None
    if os.path.lexists(target):
        old = tmp_name(target.with_name(target.name + ".old"))
        if os.path.lexists(old):
            _remove(old)
        os.replace(target, old)
    os.replace(tmp, target)
    if old is not None:
        with contextlib.suppress(OSError):
            _remove(old)
    fsync_dir(target.parent)


@contextlib.contextmanager
def atomic_folder(target: Path):
    """Yields a fresh temporary folder beside ``target`` (:func:`make_tmp_folder`); when the block
    ends without an error it replaces ``target`` (:func:`replace_folder`), otherwise it is deleted
    and ``target`` is left as it was."""
    target = Path(target)
    try:
        tmp = make_tmp_folder(target)
    except OSError as exc:
        raise _at(exc, target) from None
    try:
        yield tmp
        replace_folder(tmp, target)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise _at(exc, target) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
