"""``ganctl runs``: the registry of local training runs."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, List, Optional

import typer

from cyclegan_cli.cli.common import JsonOpt, Output, QuietOpt

app = typer.Typer(help="Local training runs: list (the default), show, promote, export, remove, scan.")


def _run(name: str):
    """A run by name (see :func:`cyclegan_cli.zoo.runs.find_run`) or by its folder."""
    from cyclegan_cli.errors import NotFoundError
    from cyclegan_cli.zoo import runs

    if ("/" in name or os.sep in name) and runs.is_run_dir(Path(name)):
        return runs.known(Path(name))
    r = runs.find_run(name)
    if r is None:
        import difflib

        close = difflib.get_close_matches(name, [x.name for x in runs.list_runs()], n=3)
        raise NotFoundError(f"no run {name!r}" + (f"; did you mean {', '.join(close)}?" if close else ""))
    return r


def _last_stats(run_dir: Path) -> dict:
    f = run_dir / "stats.jsonl"
    if not f.is_file():
        return {}
    last = {}
    with open(f) as fh:
        for line in fh:
            try:
                last = json.loads(line)
            except ValueError:
                pass
    return last


def _tensorboard_line(run_dir: Path) -> str | None:
    """The command that shows the run in TensorBoard; None when it has no event files."""
    import shlex

    from cyclegan_cli.train.tensorboard import TENSORBOARD_DIR, event_files

    return f"tensorboard --logdir {shlex.quote(str(run_dir / TENSORBOARD_DIR))}" if event_files(run_dir) else None


@app.callback(invoke_without_command=True)
def _default(ctx: typer.Context):
    """``ganctl runs`` alone lists, as ``ganctl runs list`` does."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(list_runs)


@app.command("list")
def list_runs(json_out: JsonOpt = False):
    """Every registered run: a table on a terminal, TSV when piped, JSON lines with --json.

    Examples:

    \b
      ganctl runs list
      ganctl runs list --json | jq -r .path
    """
    from cyclegan_cli.zoo import runs

    from cyclegan_cli.cli.common import human_time, print_table

    o = Output(False, False, json_out)
    rows = []
    for r in runs.list_runs():
        d = r.to_dict()
        opts = runs.read_options(Path(r.path))
        d["domains"] = opts.get("domains") or []
        d["method"] = opts.get("method") or d["kind"]  # a FastCUT run is of kind cut: the table says fastcut
        if not json_out:
            d["domains"] = " -> ".join(d["domains"])
            d["updated"] = human_time(d.get("updated"))
        rows.append(d)
    print_table(o, rows, [("name", "NAME"), ("method", "KIND"), ("last_step", "STEP"), ("domains", "DOMAINS"),
                          ("updated", "UPDATED"), ("path", "WHERE")], "runs registered")


@app.command("show")
def show(name: str, json_out: JsonOpt = False):
    """Options, last step, latest losses, latest sample grid and checkpoints of a run."""
    from cyclegan_cli.zoo import runs

    o = Output(False, False, json_out)
    r = _run(name)
    d = Path(r.path)
    samples = sorted((d / "samples").glob("*.png")) if (d / "samples").is_dir() else []
    info = {**r.to_dict(), "options": runs.read_options(d), "checkpoints": runs.checkpoint_steps(d),
            "latest": _last_stats(d), "latest_sample": str(samples[-1]) if samples else None}
    info["tensorboard"] = _tensorboard_line(d)
    if json_out:
        o.json(info)
        return
    from cyclegan_cli.cli.common import human_time

    info["updated"] = human_time(info.get("updated"))
    if info["tensorboard"] is None:
        from cyclegan_cli.train.tensorboard import INSTALL, installed

        info["tensorboard"] = "no event files" + ("" if installed() else f" (for the next runs: {INSTALL})")
    choice = info["options"].get("student_choice")
    if choice:  # a distill run: the student it chose, and why
        from cyclegan_cli.train.student_shape import describe

        o.result(f"student: {describe(choice['student'])}; "
                 f"speed-up {choice['speedup']:g}x at {choice['size']} px fp32 ({choice['student_ms']:g} ms against "
                 f"the teacher's {choice['teacher_ms']:g} ms; {choice['student_macs'] / 1e9:.2f} against "
                 f"{choice['teacher_macs'] / 1e9:.2f} GMAC): {choice['reason']}")
        for label, gmac, ms, speedup in choice.get("timed", []):
            o.result(f"  timed: {label}: {gmac:g} GMAC, {ms:g} ms, {speedup:g}x")
    for k, v in info.items():
        if isinstance(v, dict):
            o.result(f"{k}:")
            for kk, text in _readable(v):
                o.result(f"  {kk}: {text}")
        else:
            o.result(f"{k}: {_readable_value(v)}")


def _readable(options: dict, prefix: str = ""):
    """(key, text) for each value of ``options``, a nested option dict flattened into ``key.sub``
    lines (a distill run's teacher and student), so that no line is a Python dict's repr."""
    for k, v in options.items():
        if isinstance(v, dict) and v:
            yield from _readable(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}", _readable_value(v)


def _readable_value(v) -> str:
    """A list of plain values as ``a, b``; a list holding lists or dicts, or an empty dict, as compact JSON."""
    if isinstance(v, list) and not any(isinstance(x, (list, dict)) for x in v):
        return ", ".join(map(str, v))
    if isinstance(v, (list, dict)):
        return json.dumps(v, default=str, ensure_ascii=False, separators=(", ", ": "))
    return str(v)


@app.command("scan")
def scan(folders: Annotated[Optional[List[Path]], typer.Argument(help="Folders holding runs.")] = None, json_out: JsonOpt = False):
    """Rebuild the registry from the run folders (the truth)."""
    from cyclegan_cli.zoo import runs

    o = Output(False, False, json_out)
    found = runs.scan(folders)
    if json_out:
        o.json([r.to_dict() for r in found])
    else:
        for r in found:
            o.result(f"{r.name} {r.path}")


@app.command("promote")
def promote(spec: Annotated[str, typer.Argument(help="NAME or NAME:STEP")],
            as_name: Annotated[str, typer.Option("--as", help="Name in your zoo.")] = ...,
            overwrite: Annotated[bool, typer.Option("--overwrite")] = False, json_out: JsonOpt = False):
    """Copy a run's checkpoint (generators only) into your zoo.

    Examples:

    \b
      ganctl runs promote h2z --as my-h2z
      ganctl runs promote h2z:best-kid --as my-h2z --overwrite
    """
    from cyclegan_cli.checkpoints import load_model, save_checkpoint
    from cyclegan_cli.errors import UsageError
    from cyclegan_cli.zoo import paths, runs

    from cyclegan_cli.zoo.names import check_free_user_name

    o = Output(False, False, json_out)
    check_free_user_name(as_name, "--as")
    name, _, step = spec.partition(":")
    ckpt = runs.run_checkpoint(_run(name), step or None)
    target = paths.user_zoo_dir() / as_name
    if target.exists() and not overwrite:
        raise UsageError(f"your zoo already has {as_name!r}; pass --overwrite to replace it")
    import dataclasses

    cfg, gens = load_model(ckpt).generators_only()
    save_checkpoint(target, dataclasses.replace(cfg, source=str(ckpt)), gens)
    o.emit(str(target), {"run": name, "checkpoint": str(ckpt), "zoo": as_name, "path": str(target)})


@app.command("export")
def export(spec: str, dest: Path, json_out: JsonOpt = False):
    """Copy a run's checkpoint folder (NAME or NAME:STEP) to DEST."""
    import shutil

    from cyclegan_cli.errors import UsageError
    from cyclegan_cli.zoo import runs

    o = Output(False, False, json_out)
    name, _, step = spec.partition(":")
    ckpt = runs.run_checkpoint(_run(name), step or None)
    if dest.exists():
        raise UsageError(f"{dest} exists; choose a new folder")
    shutil.copytree(ckpt, dest, ignore=shutil.ignore_patterns("resume.pt"))
    o.emit(str(dest), {"run": name, "checkpoint": str(ckpt), "path": str(dest)})


@app.command("rm")
def rm(name: Annotated[str, typer.Argument(help="A run name or a run folder.")], delete_files: Annotated[bool, typer.Option("--delete-files", help="Also delete the run folder.")] = False,
       quiet: QuietOpt = False, json_out: JsonOpt = False):
    """Forget a run (and with --delete-files, delete its folder)."""
    import shutil

    from cyclegan_cli.zoo import runs

    o = Output(quiet, False, json_out)
    r = _run(name)
    if delete_files and Path(r.path).is_dir():
        from cyclegan_cli.train.runfolder import hold_run

        with hold_run(Path(r.path)):  # a run that a trainer is training is refused (BusyError), never deleted under it
            runs.unregister(r.path)
            shutil.rmtree(r.path, ignore_errors=True)
    else:
        runs.unregister(r.path)
    what = "removed" if delete_files else "forgot (its folder is kept)"
    o.emit("" if quiet else f"{what} {r.name} ({r.path})", {"name": r.name, "path": r.path, "deleted_files": delete_files})
