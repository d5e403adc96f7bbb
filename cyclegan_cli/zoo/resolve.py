"""The one ``--model`` resolver every command goes through.

A spec is, in this order of checks: a path to a checkpoint folder, a run folder (its latest
checkpoint), ``.safetensors`` or ``.pth``; a zoo name or alias (``zoo:`` forces it); a user zoo
name; a run (``NAME``, ``NAME:STEP``, ``NAME:latest``; ``run:`` forces it). A name that fits several gives an error listing them;
a name that fits none gives "did you mean ...".

An alias entry of the manifest (``photo2sketch``: the sketch model ``benchmarks/quality.py`` chose)
resolves to the model it names. Where that name once named another model (its ``previously``), the
first resolution in a process says so, once, as a :class:`NameMoved` warning (``ganctl`` prints it
as one ``ganctl: note:`` line on stderr); the folder that was shipped under that name
(``pretrained/photo2sketch``) resolves to its model's folder now, with the same kind of note.
"""

from __future__ import annotations

import difflib
import warnings
from dataclasses import dataclass
from pathlib import Path

from cyclegan_cli.errors import NotFoundError, UsageError
from cyclegan_cli.zoo import catalog, runs

PATH_SUFFIXES = (".pth", ".pt", ".safetensors", ".ckpt")
METHOD_WORDS = {"cut": "CUT", "cyclegan": "CycleGAN", "fastcut": "FastCUT", "dcgan": "DCGAN"}  # else the kind itself


class NameMoved(UserWarning):
    """A name that now names another model than it did (said once a process)."""


_said: set[str] = set()  # the moved names already said in this process


def _say_moved(name: str, message: str) -> None:
    if name not in _said:
        _said.add(name)
        warnings.warn(NameMoved(message), stacklevel=3)


@dataclass
class Resolved:
    path: Path  # a local checkpoint folder or file (after download for URL entries)
    origin: str  # path | zoo | user | run
    name: str
    entry: catalog.ZooEntry | None = None


def looks_like_path(spec: str) -> bool:
    return "/" in spec or "\\" in spec or spec.endswith(PATH_SUFFIXES) or spec.startswith(".") or Path(spec).exists()


def candidates(name: str) -> list[tuple[str, object]]:
    """Every (origin, thing) that ``name`` could mean."""
    found = []
    manifest = catalog.load_manifest()
    for entry in manifest.values():
        if name == entry.name or name in entry.aliases:
            found.append(("zoo", entry))
    user = catalog.user_entries()
    if name in user:
        found.append(("user", user[name]))
    base = name.split(":", 1)[0]
    run = runs.find_run(base)
    if run is not None:
        found.append(("run", run))
    return found


def all_names() -> list[str]:
    names = []
    for e in catalog.load_manifest().values():
        names += [e.name, *e.aliases]
    names += list(catalog.user_entries())
    try:
        names += [r.name for r in runs.list_runs()]
    except Exception:
        pass
    return names


def resolve_model(spec: str, offline: bool = False, on_progress=None) -> Resolved:
    spec = (spec or "").strip()
    if not spec:
        raise UsageError("--model is required")
    forced = None
    for prefix in ("zoo:", "run:", "user:"):
        if spec.startswith(prefix):
            forced, spec = prefix[:-1], spec[len(prefix):]
    if forced is None and looks_like_path(spec):
        p = Path(spec).expanduser()
        moved = None if p.exists() else catalog.moved_folder(p)
        if moved is not None:
            _say_moved(str(p), f"{p} is now {moved}")
            p = moved
        if not p.exists():
            raise NotFoundError(f"model path {p}: no such file or folder")
        if runs.is_run_dir(p):  # a run folder: its latest checkpoint (how to name one of two same-named runs)
            return Resolved(runs.run_checkpoint(runs.known(p), None), "run", str(p))
        return Resolved(p, "path", str(p))
    name, _, step = spec.partition(":")
    found = [c for c in candidates(spec if not step else name) if forced is None or c[0] == forced]
    if step:
        found = [c for c in found if c[0] == "run"] or found
    if not found:
        close = difflib.get_close_matches(name, list(dict.fromkeys(all_names())), n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(close)}?" if close else "; see ganctl zoo list and ganctl runs list"
        raise NotFoundError(f"unknown model {spec!r}{hint}")
    if len(found) > 1:
        kinds = ", ".join(f"{o}:{getattr(t, 'name', '')}" for o, t in found)
        raise UsageError(f"model {spec!r} is ambiguous: it names {kinds}; prefix it with zoo:, user: or run:")
    origin, thing = found[0]
    if origin == "run":
        return Resolved(runs.run_checkpoint(thing, step or None), "run", spec)
    if origin == "zoo" and thing.alias_of:
        manifest = catalog.load_manifest()
        alias, thing = thing, catalog.follow(thing, manifest)
        if alias.previously and alias.previously != thing.name:
            was = manifest.get(alias.previously)
            method = METHOD_WORDS.get(was.kind, was.kind) if was is not None else "earlier"
            why = f" (chosen by {alias.chosen_by})" if alias.chosen_by else ""
            _say_moved(name, f"{name} now names {thing.name}{why}; the {method} model is {alias.previously}")
    path = catalog.materialize(thing, offline=offline, on_progress=on_progress)
    return Resolved(path, origin, thing.name, thing)


def load(spec, nets: list[str] | None = None, device=None, offline: bool = False, on_progress=None):
    """Resolve ``spec`` and load it (see :func:`cyclegan_cli.checkpoints.load_model`)."""
    return load_resolved(resolve_model(str(spec), offline=offline, on_progress=on_progress), nets, device)


def load_resolved(r: Resolved, nets: list[str] | None = None, device=None):
    """Load what :func:`resolve_model` found, with the zoo entry's domain names where the
    checkpoint has none (for a caller that also needs the :class:`Resolved`: distill's teacher)."""
    import dataclasses

    from cyclegan_cli.checkpoints import load_model

    model = load_model(r.path, device=device, nets=nets)
    if r.entry is not None and r.entry.domains and model.config.domains in ([], ["A", "B"]):
        model.config = dataclasses.replace(model.config, domains=list(r.entry.domains))
    return model
