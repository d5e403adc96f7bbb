"""Every error ganctl raises on purpose: a type, an exit code and a one-line message.

The CLI turns these into ``ganctl: error: <message>`` on stderr and exits with ``exit_code``.
Anything else that escapes is a bug and is reported the same way (exit 70), with the
traceback only when ``GANCTL_DEBUG=1``.
"""

from __future__ import annotations

import contextlib
import errno


class GanctlError(Exception):
    """Base class. ``str(err)`` is the one line the user sees."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message)
        self.hint = hint


class SomeInputsFailed(GanctlError):
    """A batch finished but some of its inputs could not be converted (each already reported)."""

    exit_code = 1


class UsageError(GanctlError):
    """Options that contradict each other or make no sense for the inputs."""

    exit_code = 2


class BusyError(UsageError):
    """A run that another live process is training (its lock names the process)."""


class NotFoundError(GanctlError):
    """An input path, model name, run or zoo entry that does not exist."""

    exit_code = 3


class CheckpointError(GanctlError):
    """A checkpoint that is missing pieces, truncated, mismatched or from a newer ganctl."""

    exit_code = 4


class DownloadError(GanctlError):
    """A download that failed, or a file whose size or sha256 does not match."""

    exit_code = 5


class InputError(GanctlError):
    """One input file that cannot be read (reported per file inside a batch)."""

    exit_code = 1


class Interrupted(GanctlError):
    exit_code = 130


class WriteError(GanctlError):
    """A file or folder that cannot be written: no space, read-only, no permission."""

    exit_code = 1


# the OS errors a user can act on: errno -> (what to say, exit code); anything else stays a bug
OS_ERRORS = {
    errno.ENOSPC: ("no space left on device", 1),
    errno.EDQUOT: ("disk quota exceeded", 1),
    errno.EFBIG: ("file too large for this file system or the file size limit (ulimit -f)", 1),
    errno.EROFS: ("read-only file system", 1),
    errno.EACCES: ("permission denied", 1),
    errno.EPERM: ("operation not permitted", 1),
    errno.ENOTDIR: ("a part of this path is a file, not a folder", 2),
}


def from_os_error(exc: BaseException) -> GanctlError | None:
    """The one-line error (with its exit code) for an OSError a user can act on, else None."""
    if not isinstance(exc, OSError) or exc.errno not in OS_ERRORS:
        return None
    what, code = OS_ERRORS[exc.errno]
    message = f"{exc.filename}: {what}" if exc.filename is not None else what
    return UsageError(message) if code == 2 else WriteError(message)


def _why(folder, exc: OSError) -> str:
    """What the OS said about making ``folder`` or writing in it, in words; a dangling link on the
    way (mkdir meets a name that is not a folder: FileExistsError) is named with where it points."""
    import os
    from pathlib import Path

    if isinstance(exc, FileExistsError):
        folder = Path(folder)
        link = next((p for p in (folder, *folder.parents) if p.is_symlink() and not p.exists()), None)
        return (f"{link} is a link to {os.readlink(link)}, which does not exist" if link is not None
                else f"{exc.filename or folder} is in the way")
    return OS_ERRORS[exc.errno][0] if exc.errno in OS_ERRORS else (exc.strerror or type(exc).__name__).lower()


def _write_failed(message: str, exc: OSError) -> GanctlError:
    """A path that cannot be written exits 1, as OS_ERRORS says (2 where a part of it is a file)."""
    return UsageError(message) if OS_ERRORS.get(exc.errno, (None, 1))[1] == 2 else WriteError(message)


def folder_error(folder, exc: OSError, option: str | None = None) -> GanctlError:
    """The one line for an output folder that cannot be made, or written in: it names the folder
    (and the option that gave it), not the file inside it that showed it (a lock, a manifest), with
    the exit code of a file that cannot be written. A dangling link on the way is named with
    where it points."""
    from pathlib import Path

    folder = Path(folder)
    named = f"{option} {folder}" if option else str(folder)
    verb = "create" if not folder.is_dir() else "write in"
    return _write_failed(f"{named}: cannot {verb} this folder ({_why(folder, exc)})", exc)


def file_error(path, exc: OSError, option: str | None = None) -> GanctlError:
    """The one line for an output file that cannot be written: it names the file (and the option
    that gave it), never the temporary name it was being written under, and the folder on its way
    that could not be made, if that was what failed."""
    from pathlib import Path

    path = Path(path)
    named = f"{option} {path}" if option else str(path)
    failed = Path(exc.filename) if isinstance(exc.filename, str) and exc.filename else None
    if failed is not None and failed in path.parents and not failed.is_dir():
        return _write_failed(f"{named}: cannot create its folder {failed} ({_why(failed, exc)})", exc)
    return _write_failed(f"{named}: cannot write this file ({_why(path.parent, exc)})", exc)


@contextlib.contextmanager
def writing(path, option: str | None = None, folder: bool = False):
    """An OSError in the block is the one line for ``path`` (a file, or with ``folder`` a folder to
    write in) that cannot be written: :func:`file_error` or :func:`folder_error`. Keep the block to
    the writes, so that no other OSError is said as one of them."""
    try:
        yield
    except OSError as exc:
        raise (folder_error if folder else file_error)(path, exc, option) from None


EXIT_CODES = {
    0: "success",
    1: "some inputs failed (each reported on stderr), a training run failed, or a file or folder could not be "
       "written or created (no space, read-only, permission)",
    2: "usage error: bad option or combination of options, or a run another process is training",
    3: "not found: input path, model, run or zoo entry",
    4: "bad checkpoint: missing/unexpected keys, wrong shapes, truncated or newer format",
    5: "download or integrity failure (HTTP error, size or sha256 mismatch, offline)",
    70: "internal error (a bug: rerun with GANCTL_DEBUG=1 and report the traceback)",
    130: "interrupted (Ctrl-C / SIGINT); no partial output files are left",
}


def reason(exc: BaseException, limit: int = 160) -> str:
    """The first line of an exception's message (its type when the message is empty), for error lines."""
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:limit]
