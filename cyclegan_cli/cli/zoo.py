"""``ganctl zoo``: the named models (shipped, official by URL, and your own)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from cyclegan_cli.cli.common import JsonOpt, Output, QuietOpt

app = typer.Typer(help="Named models: list (the default), show, download, import, remove, verify.")


def _entry(name: str):
    """A zoo entry by name or alias; ``zoo:NAME`` and ``user:NAME`` pick the catalogue or your zoo."""
    from cyclegan_cli.errors import NotFoundError
    from cyclegan_cli.zoo import catalog

    where, _, bare = name.partition(":") if name.startswith(("zoo:", "user:")) else ("", "", name)
    manifest = catalog.load_manifest() if where in ("", "zoo") else {}
    for e in manifest.values():
        if bare == e.name or bare in e.aliases:
            return e
    user = catalog.user_entries() if where in ("", "user") else {}
    if bare in user:
        return user[bare]
    import difflib

    names = list(dict.fromkeys([*manifest, *user]))
    close = difflib.get_close_matches(bare, names, n=3)
    raise NotFoundError(f"no zoo model {name!r}" + (f"; did you mean {', '.join(close)}?" if close else ""))


def _status(e) -> str:
    from cyclegan_cli.zoo import catalog, paths

    if e.origin == "user":
        return "user"
    if e.alias_of:
        return "alias"
    if e.file:
        return "shipped" if (paths.pretrained_dir() / e.file).exists() else "missing"
    if e.kind == "features":
        return "cached" if catalog.raw_path(e).is_file() else "remote"
    return "cached" if (catalog.cached_checkpoint(e) / "config.json").is_file() else "remote"


@app.callback(invoke_without_command=True)
def _default(ctx: typer.Context):
    """``ganctl zoo`` alone lists, as ``ganctl zoo list`` does."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(list_models)


@app.command("list")
def list_models(json_out: JsonOpt = False):
    """List every named model: kind, domains, size, and whether it is shipped, cached or remote (an
    alias: which model it names).

    Examples:

    \b
      ganctl zoo list
      ganctl zoo list --json | jq -r 'select(.kind == "pix2pix") | .name'
    """
    from cyclegan_cli.cli.common import human_size, print_table
    from cyclegan_cli.zoo import catalog

    o = Output(False, False, json_out)
    rows = []
    manifest = catalog.load_manifest()
    for e in list(manifest.values()) + list(catalog.user_entries().values()):
        d = {**e.to_dict(), "status": _status(e)}
        d["domains_text"] = " -> ".join(catalog.follow(e, manifest).domains)
        d["size_text"] = human_size(e.size)
        d["aliases_text"] = ", ".join(e.aliases)
        # an alias (photo2sketch: the sketch model benchmarks/quality.py chose) is where its model is
        d["status_text"] = (e.alias_of + (f" (chosen by {e.chosen_by})" if e.chosen_by else "")) if e.alias_of else d["status"]
        rows.append(d)
    if json_out:
        rows = [{k: v for k, v in r.items() if not k.endswith("_text")} for r in rows]
    print_table(o, rows, [("name", "NAME"), ("kind", "KIND"), ("domains_text", "DOMAINS"), ("status_text", "WHERE"),
                          ("size_text", "SIZE"), ("aliases_text", "ALIASES")], "models in the zoo")


@app.command("show")
def show(name: str, json_out: JsonOpt = False):
    """Everything the manifest says about NAME."""
    o = Output(False, False, json_out)
    e = _entry(name)
    d = {**e.to_dict(), "status": _status(e)}
    if e.alias_of:
        del d["format"]  # an alias has no file of its own: its model's entry says what it is
    from cyclegan_cli.zoo import catalog

    if e.url and not e.sha256:
        pin = catalog.pinned_sha(e.name)
        d["sha256_note"] = (f"no published sha256; pinned at first verified download: {pin}" if pin else
                            "no published sha256; it is pinned at the first download")
    if json_out:
        o.json(d)
        return
    for k, v in d.items():
        if v not in (None, "", []):
            o.result(f"{k}: {', '.join(map(str, v)) if isinstance(v, list) else v}")


@app.command("download")
def download(name: str, quiet: QuietOpt = False, json_out: JsonOpt = False):
    """Download NAME into the cache (resumes an interrupted transfer) and convert it once.

    Examples:

    \b
      ganctl zoo download horse2zebra
      ganctl zoo download inception-fid    # the FID network, for ganctl eval
    """
    from cyclegan_cli.zoo import catalog

    o = Output(quiet, False, json_out)
    e = _entry(name)
    with o.progress(f"download {e.name}", None, "MB") as bar:
        path = catalog.materialize(e, on_progress=lambda done, total: bar.update(done >> 20, (total or 0) >> 20 or None))
    o.emit(str(path), {"name": e.name, "path": str(path)})


@app.command("import")
def import_(file: Path, name: Annotated[str, typer.Option("--name", help="Name in your zoo.")] = ...,
            domains: Annotated[Optional[str], typer.Option("--domains", help="A,B domain names.")] = None,
            overwrite: Annotated[bool, typer.Option("--overwrite")] = False, json_out: JsonOpt = False):
    """Import an official .pth, a .safetensors or a checkpoint folder into your zoo as NAME.

    Examples:

    \b
      ganctl zoo import latest_net_G_A.pth --name mymaps --domains map,satellite
      ganctl zoo import weights-inception-2015-12-05-6726825d.pth --name inception-fid   # offline
    """
    import dataclasses

    from cyclegan_cli.checkpoints import load_model, save_checkpoint
    from cyclegan_cli.errors import NotFoundError, UsageError
    from cyclegan_cli.zoo import paths

    o = Output(False, False, json_out)
    from cyclegan_cli.zoo import catalog
    from cyclegan_cli.zoo.names import check_free_user_name

    from cyclegan_cli.zoo import runs as registry

    import os
    import shlex
    import sqlite3

    if not file.exists():
        run_name = str(file).partition(":")[0]  # NAME or NAME:STEP, as runs promote takes it
        try:
            is_run = "/" not in run_name and os.sep not in run_name and registry.find_run(run_name) is not None
        except (UsageError, sqlite3.Error):  # several of that name, or a registry that cannot be read
            is_run = False
        if is_run:
            raise UsageError(f"{file} is a run, not a file: `ganctl runs promote {shlex.quote(str(file))} --as "
                             f"{shlex.quote(name)}` copies its checkpoint into your zoo")
        raise NotFoundError(f"{file}: no such file or folder")
    if registry.is_run_dir(file):
        steps = registry.checkpoint_steps(file)
        latest = f" (the latest: {registry.checkpoint_dir(file, steps[-1])})" if steps else ""
        raise UsageError(f"{file} is a run folder, not a checkpoint: import one of its checkpoints{latest}, or "
                         f"`ganctl runs promote {shlex.quote(str(file.resolve()))} --as {shlex.quote(name)}`")
    entry = catalog.load_manifest().get(name)
    if entry is not None and entry.kind == "features" and entry.url:  # e.g. inception-fid, for offline machines
        path = catalog.import_raw(entry, file)
        o.emit(str(path), {"name": name, "path": str(path)})
        return
    check_free_user_name(name, "--name")
    target = paths.user_zoo_dir() / name
    if target.exists() and not overwrite:
        raise UsageError(f"your zoo already has {name!r}; pass --overwrite to replace it")
    cfg, nets = load_model(file).generators_only()  # a training checkpoint's discriminators are not needed
    if domains:
        cfg = dataclasses.replace(cfg, domains=[d.strip() for d in domains.split(",")])
    cfg = dataclasses.replace(cfg, source=cfg.source or str(file))
    save_checkpoint(target, cfg, nets)
    o.emit(str(target), {"name": name, "path": str(target)})


@app.command("rm")
def rm(name: str, quiet: QuietOpt = False, json_out: JsonOpt = False):
    """Remove NAME from your zoo, or a downloaded model from the cache."""
    import shutil

    from cyclegan_cli.errors import UsageError
    from cyclegan_cli.zoo import catalog

    o = Output(quiet, False, json_out)
    e = _entry(name)
    if e.origin == "user":
        path = catalog.remove_user(e.name)
    elif e.url:
        path = catalog.cached_checkpoint(e)
        shutil.rmtree(path, ignore_errors=True)
    else:
        raise UsageError(f"{name} is shipped with ganctl and cannot be removed")
    o.emit("" if quiet else f"removed {path}", {"name": e.name, "removed": str(path)})


@app.command("verify")
def verify(json_out: JsonOpt = False):
    """Check every shipped or cached model: sha256 where known, and a strict load."""
    from cyclegan_cli.checkpoints import load_model
    from cyclegan_cli.errors import GanctlError, SomeInputsFailed
    from cyclegan_cli.zoo import catalog, paths
    from cyclegan_cli.zoo.download import sha256_file

    o = Output(False, False, json_out)
    bad = 0
    for e in list(catalog.load_manifest().values()) + list(catalog.user_entries().values()):
        status = _status(e)
        if status in ("remote", "alias"):  # an alias's model is checked under its own name
            continue
        if e.kind == "features":  # a feature network's file: its hash is what can be checked
            pinned = e.sha256 or catalog.pinned_sha(e.name)
            ok = pinned is None or sha256_file(catalog.raw_path(e)) == pinned
            bad += not ok
            o.emit(f"{e.name}: {'ok' if ok else 'sha256 mismatch'}", {"name": e.name, "ok": ok,
                                                                    "problem": None if ok else "sha256 mismatch"})
            continue
        path = Path(e.path) if e.origin == "user" else (paths.pretrained_dir() / e.file if e.file else catalog.cached_checkpoint(e))
        problem = None
        try:
            if e.file and e.sha256:
                weights = path / "model.safetensors" if path.is_dir() else path
                if sha256_file(weights) != e.sha256:
                    problem = "sha256 mismatch"
            if problem is None:
                load_model(path)
        except GanctlError as exc:
            problem = str(exc)
        bad += problem is not None
        o.emit(f"{e.name}: {'ok' if problem is None else problem}", {"name": e.name, "ok": problem is None, "problem": problem})
    if bad:
        raise SomeInputsFailed(f"{bad} model(s) failed verification")
