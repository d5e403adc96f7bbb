"""Issue 34, item 1: one trainer a run. A trainer holds a lock on its run folder that names its pid
and host; a second one is refused in one line; only a dead trainer's leftovers are removed."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys

from conftest import run_subprocess
from test_trust3_train import TINY, _folders


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


# ------------------------------------------------------------------------------- one trainer a run

def test_second_trainer_on_a_running_run_is_refused_and_the_first_finishes(tmp_path):
    folders = _folders(tmp_path)
    args = [sys.executable, "-m", "cyclegan_cli", "train", *folders, "--name", "r1", *TINY, "--max-steps", "6",
            "--log-every", "1", "--save-every", "2", "--sample-every", "100", "--json"]
    first = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert json.loads(first.stdout.readline())["event"] == "step"  # it trains (and holds the run)
        first.send_signal(signal.SIGSTOP)  # paused, it still owns the run: the others must wait for it
        try:
            for again in (["train", *folders, "--name", "r1", *TINY, "--max-steps", "6", "-q"],
                          ["train", "--resume", "r1"]):  # without -q, notices (the device) come before it
                r = run_subprocess(*again)
                assert r.returncode == 2, (again, r.stderr)
                lines = r.stderr.strip().splitlines()
                assert lines[-1].startswith("ganctl: error: run r1 is being trained by"), r.stderr
                assert str(first.pid) in lines[-1] and "Traceback" not in r.stderr
                assert len(lines) == 1 or "-q" not in again, r.stderr
        finally:
            first.send_signal(signal.SIGCONT)
        out, err = first.communicate(timeout=600)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert first.returncode == 0, err
    run = tmp_path / "runs" / "r1"
    steps = [json.loads(line)["step"] for line in (run / "stats.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5, 6]  # one writer: every step once
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step-00000002", "step-00000004", "step-00000006"]
    assert not (run / ".ganctl-run.lock").exists()  # a trainer that ends lets go of its run
    # ended, the run is free again: a resume is accepted (and has nothing to train)
    r = run_subprocess("train", "--resume", "r1", "-q")
    assert r.returncode == 0, r.stderr


def test_a_dead_trainers_lock_is_taken_over_and_only_its_leftovers_removed(tmp_path):
    from cyclegan_cli.files import TMP_SUFFIX, host_tag
    from cyclegan_cli.train.runfolder import LOCK_FILE, hold_run

    run = tmp_path / "r1"
    ckpts = run / "checkpoints"
    ckpts.mkdir(parents=True)
    dead, alive, host = _dead_pid(), os.getppid(), host_tag()
    (run / LOCK_FILE).write_text(f"otherhost {dead}\n")  # killed on another machine sharing the folder
    leftovers = {
        "dead here": ckpts / f".step-00000002.{host}.{dead}{TMP_SUFFIX}",
        "dead owner": ckpts / f".step-00000004.otherhost.{dead}{TMP_SUFFIX}",
        "live here": ckpts / f".step-00000006.{host}.{alive}{TMP_SUFFIX}",
        "other host": ckpts / f".step-00000008.thirdhost.{dead}{TMP_SUFFIX}",
        "not ours": ckpts / ".keep",
    }
    for d in leftovers.values():
        d.mkdir()
        (d / "model.safetensors").write_bytes(b"partial")
    with hold_run(run):
        assert (run / LOCK_FILE).read_text().split() == [host, str(os.getpid())]  # names its owner
        assert {k for k, d in leftovers.items() if d.exists()} == {"live here", "other host", "not ours"}
    assert not (run / LOCK_FILE).exists()


def test_a_checkpoint_restore_spares_a_live_writers_half_written_checkpoint(tmp_path):
    from cyclegan_cli.files import TMP_SUFFIX, host_tag
    from cyclegan_cli.train.checkpointer import Checkpointer
    from cyclegan_cli.train.distributed import Dist
    from cyclegan_cli.train.runfolder import RunFolder

    ckpts = tmp_path / "r1" / "checkpoints"
    writing = ckpts / f".step-00000002.{host_tag()}.{os.getppid()}{TMP_SUFFIX}"  # its writer is alive
    writing.mkdir(parents=True)
    (writing / "model.safetensors").write_bytes(b"half")
    assert Checkpointer(RunFolder(tmp_path / "r1"), None, Dist(), 3).restore() is None
    assert (writing / "model.safetensors").read_bytes() == b"half"

@contextlib.contextmanager
def held_elsewhere(run):
    """Another process holds ``run``'s lock until the block ends (it waits on its stdin)."""
    code = ("import sys; from cyclegan_cli.train.runfolder import hold_run\n"
            f"with hold_run(__import__('pathlib').Path({str(run)!r})):\n"
            "    print('held', flush=True); sys.stdin.read()\n")
    holder = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        yield holder
    finally:
        holder.communicate("")


def test_a_live_holder_refuses_the_run_in_one_line(tmp_path):
    from cyclegan_cli.errors import BusyError
    from cyclegan_cli.train.runfolder import hold_run

    run = tmp_path / "r1"
    with held_elsewhere(run) as holder:
        try:
            with hold_run(run):
                raise AssertionError("a second owner was let in")
        except BusyError as exc:
            assert exc.exit_code == 2 and str(holder.pid) in str(exc) and "\n" not in str(exc)
    with hold_run(run):  # free once its owner ended
        pass


def test_runs_rm_delete_files_refuses_a_run_being_trained(tmp_path, cli):
    """`runs rm --delete-files` deleted a run under its trainer, which then died with exit 70."""
    a, b = _folders(tmp_path)
    runs = tmp_path / "runs"
    r = cli("train", a, b, "--runs-dir", runs, "--name", "busy", *TINY, "--max-steps", "1", "-q")
    assert r.code == 0, r.err
    run = runs / "busy"
    with held_elsewhere(run):
        r = cli("runs", "rm", "busy", "--delete-files")
        assert r.code == 2 and "being trained" in r.err and len(r.err.strip().splitlines()) == 1, r.err
        assert (run / "options.json").is_file()
    r = cli("runs", "rm", "busy", "--delete-files")
    assert r.code == 0 and not run.exists(), r.err
