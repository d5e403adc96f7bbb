"""The one check every user-given name that becomes a path goes through: run names
(``train --name``), zoo names (``zoo import --name``, ``runs promote --as``)."""

from __future__ import annotations

import re

from cyclegan_cli.errors import UsageError

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")


def check_name(name: str, option: str = "--name") -> str:
    """``name`` if it is one plain path component: letters, digits, '.', '_' and '-', starting with
    a letter or digit, at most 100 characters. No separators, no ``..``, no absolute paths, no
    hidden (dot) names, no ``:`` (which separates a run from its step)."""
    if not isinstance(name, str) or not _NAME.fullmatch(name) or name in (".", ".."):
        shown = name if isinstance(name, str) and name else "an empty name"
        raise UsageError(f"{option} {shown!r}: a name is letters, digits, '.', '_' and '-', starting with a "
                         "letter or digit (no '/', '..' or leading '.')")
    return name


def check_free_user_name(name: str, option: str) -> str:
    """A name for the user's zoo: valid, and not a shipped or official model's name or alias, which
    it would shadow (``--model NAME`` would become ambiguous)."""
    from cyclegan_cli.zoo import catalog

    check_name(name, option)
    for entry in catalog.load_manifest().values():
        if name.lower() in (n.lower() for n in (entry.name, *entry.aliases)):
            raise UsageError(f"{option} {name!r} is the name of the zoo model {entry.name}; choose another name")
    return name
