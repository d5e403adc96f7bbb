"""Architectures by name, so a checkpoint's config.json can say which one to build."""

from __future__ import annotations

from typing import Callable

ARCHITECTURES: dict[str, Callable] = {}


def register(name: str):
    def deco(cls):
        ARCHITECTURES[name] = cls
        cls.arch_name = name
        return cls

    return deco


def build(arch: str, **kwargs):
    from cyclegan_cli.errors import CheckpointError

    if arch not in ARCHITECTURES:
        known = ", ".join(sorted(ARCHITECTURES))
        raise CheckpointError(f"unknown architecture {arch!r} (known: {known})")
    try:
        return ARCHITECTURES[arch](**kwargs)
    except TypeError as exc:
        raise CheckpointError(f"architecture {arch!r}: bad arguments {kwargs}: {exc}") from None
