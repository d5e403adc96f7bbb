"""The registry of local training runs: SQLite (WAL) in the ganctl home, rebuilt from the run
folders, which are the truth (``ganctl runs scan``).

Runs are keyed by their absolute folder: two projects may each have a ``cyclegan-001``. A name
finds the run ``RUNS_DIR/NAME`` under the current runs folder first; otherwise the one registered
run of that name, and several are an error that lists their folders."""

from __future__ import annotations

import json
import re
import sqlite3
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from cyclegan_cli.errors import NotFoundError, UsageError
from cyclegan_cli.zoo import paths

STEP_RE = re.compile(r"^step-(\d+)$")
OPTIONS_FILE = "options.json"


@dataclass
class RunInfo:
    name: str
    path: str
    kind: str
    last_step: int
    updated: float

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def _connect() -> sqlite3.Connection:
    db = paths.registry_db()
    db.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(str(db), timeout=30)
    try:
        con.execute("PRAGMA journal_mode=WAL")
        if _tables(con) != {"run_paths"}:  # a new registry, or one written before runs were keyed by folder
            # a write transaction, checked again inside: shards of a job array that start together on
            # an old registry would otherwise both see its table, and the second fail to read it
            con.execute("BEGIN IMMEDIATE")
            tables = _tables(con)
            if "run_paths" not in tables:
                con.execute("CREATE TABLE run_paths (path TEXT PRIMARY KEY, name TEXT NOT NULL, kind TEXT, "
                            "last_step INTEGER, updated REAL)")
            if "runs" in tables:  # one run per name across all projects: carried over, then dropped
                con.execute("INSERT OR IGNORE INTO run_paths SELECT path, name, kind, last_step, updated FROM runs")
                con.execute("DROP TABLE runs")
            con.commit()
    except BaseException:
        con.close()  # an open transaction is rolled back
        raise
    return con


def _tables(con: sqlite3.Connection) -> set[str]:
    rows = con.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ('runs', 'run_paths')")
    return {name for (name,) in rows}


_COLUMNS = "name, path, kind, last_step, updated"


def checkpoint_steps(run_dir: Path) -> list[int]:
    d = Path(run_dir) / "checkpoints"
    if not d.is_dir():
        return []
    steps = []
    for c in d.iterdir():
        m = STEP_RE.match(c.name)
        if m and (c / "config.json").is_file() and (c / "model.safetensors").is_file():
            steps.append(int(m.group(1)))
    return sorted(steps)


def checkpoint_dir(run_dir: Path, step: int) -> Path:
    return Path(run_dir) / "checkpoints" / f"step-{step:08d}"


def read_options(run_dir: Path) -> dict:
    f = Path(run_dir) / OPTIONS_FILE
    try:
        return json.loads(f.read_text())
    except (OSError, ValueError):
        return {}


def is_run_dir(d: Path) -> bool:
    return (Path(d) / OPTIONS_FILE).is_file()


def last_change(run_dir: Path) -> float:
    """When the run last wrote its options, stats or a checkpoint (the folder's own record)."""
    run_dir = Path(run_dir)
    files = [run_dir / OPTIONS_FILE, run_dir / "stats.jsonl",
             *(checkpoint_dir(run_dir, s) for s in checkpoint_steps(run_dir))]
    times = []
    for f in files:
        try:
            times.append(f.stat().st_mtime)
        except OSError:
            pass
    return max(times, default=time.time())


def register(run_dir: Path, updated: float | None = None) -> RunInfo:
    run_dir = Path(run_dir).resolve()
    opts = read_options(run_dir)
    steps = checkpoint_steps(run_dir)
    info = RunInfo(name=opts.get("name", run_dir.name), path=str(run_dir), kind=opts.get("kind", "?"),
                   last_step=steps[-1] if steps else 0, updated=time.time() if updated is None else updated)
    with closing(_connect()) as con, con:
        con.execute(f"INSERT OR REPLACE INTO run_paths ({_COLUMNS}) VALUES (?, ?, ?, ?, ?)",
                    (info.name, info.path, info.kind, info.last_step, info.updated))
    return info


def known(run_dir: Path) -> RunInfo:
    """The registry's entry for a run folder, registered (with its own last-change time) when missing:
    naming a run never touches an entry that is already there."""
    run_dir = Path(run_dir).resolve()
    with closing(_connect()) as con:
        row = con.execute(f"SELECT {_COLUMNS} FROM run_paths WHERE path = ?", (str(run_dir),)).fetchone()
    return RunInfo(*row) if row else register(run_dir, updated=last_change(run_dir))


def list_runs() -> list[RunInfo]:
    with closing(_connect()) as con:
        rows = con.execute(f"SELECT {_COLUMNS} FROM run_paths ORDER BY name, path").fetchall()
    return [RunInfo(*r) for r in rows if Path(r[1]).is_dir()]


def scan(folders: list[Path] | None = None) -> list[RunInfo]:
    """Rebuild the registry from run folders: those already known plus every run under ``folders``."""
    known = [Path(r.path) for r in list_runs()]
    candidates = set(p for p in known if is_run_dir(p))
    for folder in folders or [paths.default_runs_dir()]:
        folder = Path(folder)
        if is_run_dir(folder):
            candidates.add(folder.resolve())
        elif folder.is_dir():
            for d in folder.iterdir():
                if is_run_dir(d):
                    candidates.add(d.resolve())
    with closing(_connect()) as con, con:
        con.execute("DELETE FROM run_paths")
    return [register(p, updated=last_change(p)) for p in sorted(candidates)]  # a scan changes no run


def find_run(name: str, runs_dir: Path | None = None) -> RunInfo | None:
    """The run called ``name``: ``runs_dir/NAME`` (default: the current runs folder) when it is a
    run, else the one registered run of that name; None when there is none. A name that several
    registered runs share is a UsageError listing their folders."""
    here = Path(runs_dir if runs_dir is not None else paths.default_runs_dir()) / name
    with closing(_connect()) as con:
        if is_run_dir(here):  # the run of the project the user is in wins
            row = con.execute(f"SELECT {_COLUMNS} FROM run_paths WHERE path = ?", (str(here.resolve()),)).fetchone()
            return RunInfo(*row) if row else register(here)  # not registered (the registry was deleted, say)
        rows = con.execute(f"SELECT {_COLUMNS} FROM run_paths WHERE name = ? ORDER BY path", (name,)).fetchall()
    found = [RunInfo(*r) for r in rows if Path(r[1]).is_dir()]
    if len(found) > 1:
        where = ", ".join(r.path for r in found)
        raise UsageError(f"run name {name!r} is ambiguous: runs in {where}; give the run folder (its path), or "
                         "run from the project whose runs/ holds it")
    return found[0] if found else None


def run_checkpoint(run: RunInfo, step: str | None) -> Path:
    steps = checkpoint_steps(Path(run.path))
    if not steps:
        raise NotFoundError(f"run {run.name} has no checkpoint yet")
    if step in (None, "", "latest"):
        return checkpoint_dir(Path(run.path), steps[-1])
    if step.startswith("best-"):  # the checkpoint with the lowest figure from training-time evaluation
        best = best_step(Path(run.path), step[len("best-"):])
        if best is None:
            raise NotFoundError(f"run {run.name} has no {step[len('best-'):]} figures with a checkpoint "
                                "(train with --eval-every and --eval-data)")
        return checkpoint_dir(Path(run.path), best)
    try:
        s = int(step)
    except ValueError:
        raise NotFoundError(f"run {run.name}: bad step {step!r} (a number or 'latest')") from None
    if s not in steps:
        shown = ", ".join(map(str, steps[-5:]))
        raise NotFoundError(f"run {run.name} has no checkpoint at step {s} (have: {shown})")
    return checkpoint_dir(Path(run.path), s)


def eval_figures(run_dir: Path) -> list[dict]:
    """The training-time evaluation lines of stats.jsonl: [{"step": s, "eval": {"kid": ...}}]."""
    f = Path(run_dir) / "stats.jsonl"
    rows = []
    if f.is_file():
        for line in f.read_text().splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if isinstance(row.get("eval"), dict):
                rows.append(row)
    return rows


def best_step(run_dir: Path, metric: str, among: list[int] | None = None) -> int | None:
    """The step with the lowest ``metric`` (fid, kid) that still has a checkpoint."""
    have = set(checkpoint_steps(run_dir) if among is None else among)
    scored = [(r["eval"][metric], r["step"]) for r in eval_figures(run_dir)
              if r["step"] in have and isinstance(r["eval"].get(metric), (int, float))]
    return min(scored)[1] if scored else None


def unregister(run_dir) -> None:
    """Forget the run in ``run_dir`` (the registry's key is the absolute folder)."""
    with closing(_connect()) as con, con:
        con.execute("DELETE FROM run_paths WHERE path = ?", (str(Path(run_dir).resolve()),))
