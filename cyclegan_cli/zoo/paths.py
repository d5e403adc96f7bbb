"""ganctl's folders: ``$GANCTL_HOME`` if set, else the XDG cache/data folders."""

from __future__ import annotations

import os
from pathlib import Path


def ganctl_home() -> Path:
    env = os.environ.get("GANCTL_HOME")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "ganctl"


def cache_home() -> Path:
    env = os.environ.get("GANCTL_HOME")
    if env:
        return Path(env).expanduser() / "cache"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ganctl"


def user_zoo_dir() -> Path:
    return ganctl_home() / "zoo"


def registry_db() -> Path:
    return ganctl_home() / "runs.sqlite"


def default_runs_dir() -> Path:
    env = os.environ.get("GANCTL_RUNS")
    return Path(env).expanduser() if env else Path("runs")


def offline() -> bool:
    return os.environ.get("GANCTL_OFFLINE", "") not in ("", "0")


def pretrained_dir() -> Path:
    """The shipped models and the manifest: the package data ``cyclegan_cli.pretrained`` (the
    repository's ``pretrained/`` folder, installed with the package; an editable install maps it
    back to the repository)."""
    env = os.environ.get("GANCTL_PRETRAINED")
    if env:
        return Path(env)
    from importlib.resources import files

    try:
        return Path(str(files("cyclegan_cli.pretrained")))
    except ModuleNotFoundError:  # running from a source tree that was never installed
        return Path(__file__).resolve().parents[2] / "pretrained"
