"""A run folder: its owner (one trainer at a time, named in a lock file), its options
(options.json, checked and kept on a resume), its statistics (stats.jsonl, one line per tick), its
checkpoints pruned to the last K (and the best ones), and its entry in the registry of runs (keyed by path)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from dataclasses import fields
from pathlib import Path

from cyclegan_cli.errors import BusyError, UsageError, folder_error
from cyclegan_cli.train.options import LENGTH_OPTIONS

LOCK_FILE = ".ganctl-run.lock"  # HOST PID of the process training the run, while it does

# how a run reports and keeps itself: free to change on a resume, remembered when not given
RUN_SETTINGS = {"log_every": 50, "sample_every": 500, "save_every": 1000, "keep_checkpoints": 3}


def next_run_name(runs_dir: Path, kind: str) -> str:
    n = 0
    if runs_dir.is_dir():
        for d in runs_dir.iterdir():
            if d.name.startswith(kind + "-") and d.name[len(kind) + 1:].isdigit():
                n = max(n, int(d.name[len(kind) + 1:]))
    return f"{kind}-{n + 1:03d}"


def schedule_length(max_steps: int | None, steps_per_epoch: int, epochs: int, decay_epochs: int) -> int:
    """How many steps a run takes: ``max_steps``, which may not pass the end of the learning-rate
    schedule (the rate would be zero, or negative), or the whole schedule."""
    schedule = steps_per_epoch * (epochs + decay_epochs)
    if max_steps and max_steps > schedule:
        raise UsageError(f"--max-steps {max_steps} is past the end of the learning-rate schedule ({schedule} steps "
                         f"= {epochs} + {decay_epochs} epochs of {steps_per_epoch}); to train longer, raise --epochs "
                         "and/or --decay-epochs (a resumed run may change them)")
    return max_steps or schedule


def run_path(runs_dir: Path, name: str | None, kind: str, dist=None) -> Path:
    """The run's folder: ``name``'s, or a new KIND-NNN made here (made, so that a trainer started
    beside this one takes the next number rather than the same run). Rank 0 chooses for every rank."""
    from cyclegan_cli.zoo.names import check_name

    runs_dir = Path(runs_dir)
    if name:
        name = check_name(name, "--name")
    elif dist is None or dist.main:
        while True:
            name = next_run_name(runs_dir, kind)
            try:
                (runs_dir / name).mkdir(parents=True)
                break
            except FileExistsError as exc:
                if runs_dir.is_dir():  # a trainer beside this one took the number
                    continue
                raise folder_error(runs_dir, exc, "--runs-dir") from None  # a dangling link on the way
            except OSError as exc:
                raise folder_error(runs_dir, exc, "--runs-dir") from None
    if dist is not None:
        name = dist.broadcast(name)  # other ranks would count the folders at another moment
    return runs_dir / name


@contextlib.contextmanager
def hold_run(run_dir: Path, main: bool = True):
    """This process trains ``run_dir`` until the block ends: it holds the run's lock, which names
    its host and pid, and a trainer started beside it is refused (:class:`BusyError`). On taking the
    run, what a killed trainer left half-written (temporary files and folders) is removed; a live
    writer's never is. Only rank 0 (``main``) holds it, for every rank."""
    from cyclegan_cli.files import LockHeld, OwnerLock, host_tag, remove_stale_tmp

    if not main:
        yield
        return
    run_dir = Path(run_dir)
    made = not run_dir.exists()
    lock = OwnerLock(run_dir / LOCK_FILE)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        lock.acquire(wait=False)
    except OSError as exc:  # a new run is said by its --runs-dir, an existing one by its own folder
        raise (folder_error(run_dir.parent, exc, "--runs-dir") if made else folder_error(run_dir, exc)) from None
    except LockHeld as held:
        who = f"pid {held.pid}" + (f" on {held.host}" if held.host not in (None, host_tag()) else "") \
            if held.pid is not None else "another process"
        raise BusyError(f"run {run_dir.name} is being trained by {who}; wait for it to end, or choose another "
                        "--name") from None
    try:
        remove_stale_tmp(run_dir, lock.dead)
        yield
    finally:
        lock.release()
        if made:  # a new run that stopped before writing anything (a name taken by a zoo model) leaves no folder
            with contextlib.suppress(OSError):
                os.rmdir(run_dir)


def prepare_run(run_dir: Path, kind: str, options, saved: dict, main: bool = True) -> tuple[Path, bool]:
    """(run folder, resuming?), under :func:`hold_run`. An existing run resumes when its kind
    matches and its fixed options (``options``, resolved) are the same; ``saved`` is what
    options.json holds. Only rank 0 (``main``) checks and writes (callers then wait at a barrier)."""
    from cyclegan_cli.zoo.runs import OPTIONS_FILE, checkpoint_steps, read_options

    from cyclegan_cli.zoo.names import check_free_user_name

    run_dir = Path(run_dir)
    name = run_dir.name
    if not main:
        return run_dir, None
    if (run_dir / OPTIONS_FILE).is_file():
        old = read_options(run_dir)
        if old.get("kind") != kind:
            raise UsageError(f"run {name} exists and is a {old.get('kind')} run; choose another --name")
        # how long to train may change on a resume; what the networks and data are may not
        changed = options.changes_from(type(options).from_saved(old).resolved())
        known = {f.name for f in fields(options)} | {"world_size", "name", "kind"}
        changed += [f"{k} {old[k]} -> {v}" for k, v in sorted(saved.items()) if k not in known and k in old and old[k] != v]
        if changed:
            raise UsageError(f"run {name} was started with other options ({', '.join(changed[:4])}); use --resume {name} "
                             "or another --name")
        length = {k: v for k, v in saved.items() if k in LENGTH_OPTIONS}
        done = checkpoint_steps(run_dir)
        if done and (length.get("max_steps") or done[-1]) < done[-1]:
            return run_dir, True  # already past it: fit() says so and trains nothing; the run keeps its length
        if main and any(old.get(k) != v for k, v in length.items()):
            write_options(run_dir, {**old, **length})
        return run_dir, True
    if run_dir.exists() and any(p.name != LOCK_FILE for p in run_dir.iterdir()):
        raise UsageError(f"{run_dir} exists and is not a ganctl run; choose another --name")
    check_free_user_name(name, "--name")  # a new run named like a zoo model would make --model NAME ambiguous
    if main:
        (run_dir / "samples").mkdir(parents=True, exist_ok=True)
        (run_dir / "checkpoints").mkdir(exist_ok=True)
        write_options(run_dir, {**saved, "name": name, "kind": kind})
    return run_dir, False


def run_settings(run_dir: Path, main: bool, **given: int | None) -> dict:
    """RUN_SETTINGS for this process: each given one (then saved with the run), else the saved one,
    else the default."""
    from cyclegan_cli.zoo.runs import read_options

    opts = read_options(run_dir)  # {} when unreadable
    out, changed = {}, {}
    for key, default in RUN_SETTINGS.items():
        value = given.get(key)
        if value is None:
            saved = opts.get(key)
            out[key] = saved if isinstance(saved, int) and not isinstance(saved, bool) and saved >= 1 else default
            continue
        if value < 1:
            flag = "--keep" if key == "keep_checkpoints" else "--" + key.replace("_", "-")
            raise UsageError(f"{flag} {value}: must be at least 1")
        out[key] = value
        if opts.get(key) != value:
            changed[key] = value
    if main and opts and changed:
        write_options(run_dir, {**opts, **changed})
    return out


def write_options(run_dir: Path, options: dict) -> None:
    from cyclegan_cli.files import atomic_write_bytes
    from cyclegan_cli.zoo.runs import OPTIONS_FILE

    text = json.dumps(options, indent=2, sort_keys=True, default=str) + "\n"
    atomic_write_bytes(run_dir / OPTIONS_FILE, text.encode())


def truncate_stats(file: Path, step: int) -> None:
    """After a resume, drop stats lines past the checkpoint (they will be written again)."""
    if not file.is_file():
        return
    keep = []
    for line in file.read_text().splitlines():
        try:
            if json.loads(line).get("step", 0) <= step:
                keep.append(line)
        except ValueError:
            pass
    from cyclegan_cli.files import atomic_write_bytes

    atomic_write_bytes(file, ("\n".join(keep) + "\n" if keep else "").encode())




class RunFolder:
    """The files of one run as the training loop writes them; only rank 0 (``main``) writes."""

    def __init__(self, path: Path, main: bool = True):
        self.path, self.main = Path(path), main
        self.stats = self.path / "stats.jsonl"

    def begin(self, step: int) -> None:
        """The run starts (again) at ``step``: stats past it dropped (they will be written again), a
        resume marked for loss.png, and the run registered."""
        if not self.main:
            return
        from cyclegan_cli.zoo import runs as registry

        truncate_stats(self.stats, step)
        if step:
            self.append({"step": step, "event": "resume"})
        registry.register(self.path)

    def append(self, line: dict) -> None:
        """One line of stats.jsonl (rank 0 only)."""
        if self.main:
            with open(self.stats, "a") as fh:
                fh.write(json.dumps(line) + "\n")

    def sample_path(self, step: int) -> Path:
        return self.path / "samples" / f"step-{step:08d}.png"

    def plot(self, losses: bool = True) -> None:
        """loss.png (or eval.png) from stats.jsonl."""
        from cyclegan_cli.train.plot import plot_eval, plot_losses

        if losses:
            plot_losses(self.stats, self.path / "loss.png")
        else:
            plot_eval(self.stats, self.path / "eval.png")

    def prune(self, keep: int) -> None:
        """Keep the last ``keep`` checkpoints and the best by each metric (RUN:best-kid stays), then
        register the run's new last step."""
        from cyclegan_cli.zoo import runs as registry

        steps = registry.checkpoint_steps(self.path)
        kept = set(steps[-keep:])
        kept |= {registry.best_step(self.path, m, steps) for m in ("kid", "fid")} - {None}
        for old in steps:
            if old not in kept:
                shutil.rmtree(registry.checkpoint_dir(self.path, old), ignore_errors=True)
        registry.register(self.path)
