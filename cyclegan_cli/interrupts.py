"""Ctrl-C that is never lost.

Python turns SIGINT into a KeyboardInterrupt at the next point where the main thread runs Python
code. That point can be a finaliser or a callback that a C library calls (OpenCV, PyAV, torch),
where the exception is swallowed, and the run goes on as if nothing was asked. :func:`install`
(the CLI calls it) keeps the usual KeyboardInterrupt and also remembers that one was asked for;
long loops call :func:`check` at each step (a frame, a batch), which raises it again if it was lost.
Without :func:`install` (ganctl used as a library) :func:`check` never raises.
"""

from __future__ import annotations

import signal
import threading

_asked = threading.Event()


def _on_sigint(signum, frame):
    _asked.set()
    raise KeyboardInterrupt


def install() -> None:
    """Handle SIGINT as above (main thread only; elsewhere a no-op). Clears an earlier request."""
    _asked.clear()
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _on_sigint)


def check() -> None:
    """Raise KeyboardInterrupt if Ctrl-C was pressed since :func:`install`, even if it was swallowed."""
    if _asked.is_set():
        raise KeyboardInterrupt
