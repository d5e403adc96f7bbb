"""Trust, second wave: each test reproduces one reviewed defect (issue 25) and fails on the code
before its fix."""

import json
import os
from pathlib import Path

import pytest

from conftest import save_rgb

TINY = ["--size", "32", "--load-size", "32", "--ngf", "4", "--ndf", "4", "--blocks", "1", "--max-steps", "1",
        "--workers", "0", "-q"]


def two_folders(tmp_path):
    a, b = tmp_path / "A", tmp_path / "B"
    for i in range(2):
        save_rgb(a / f"{i}.png", 32, 32, seed=i)
        save_rgb(b / f"{i}.png", 32, 32, seed=10 + i)
    return a, b


# ------------------------------------------------------------------------------- 1. runs by path

def test_1_runs_with_the_same_name_in_two_projects_stay_apart(cli, tmp_path, monkeypatch):
    a, b = two_folders(tmp_path)
    p1, p2, p3 = tmp_path / "p1", tmp_path / "p2", tmp_path / "p3"
    for p, seed in ((p1, "1"), (p2, "2")):
        p.mkdir()
        monkeypatch.chdir(p)
        r = cli("train", a, b, *TINY, "--seed", seed)
        assert r.code == 0, r.err
        assert (p / "runs" / "cyclegan-001" / "options.json").is_file()
    r = cli("runs", "list", "--json")
    assert sorted(json.loads(l)["path"] for l in r.out.splitlines()) == sorted(
        str((p / "runs" / "cyclegan-001").resolve()) for p in (p1, p2))
    # in p1, the name means p1's run: --model and the weights behind it
    monkeypatch.chdir(p1)
    save_rgb(tmp_path / "x.png", 16, 16)
    r = cli("translate", tmp_path / "x.png", "--model", "cyclegan-001", "--out", tmp_path / "o1", "--json")
    assert r.code == 0, r.err
    r2 = cli("translate", tmp_path / "x.png", "--model", p1 / "runs" / "cyclegan-001" / "checkpoints" / "step-00000001",
             "--out", tmp_path / "o1b")
    assert r2.code == 0, r2.err
    assert (tmp_path / "o1" / "x.png").read_bytes() == (tmp_path / "o1b" / "x.png").read_bytes()
    # from a third folder the name is ambiguous: one line naming both folders, exit 2
    p3.mkdir()
    monkeypatch.chdir(p3)
    r = cli("translate", tmp_path / "x.png", "--model", "cyclegan-001", "--out", tmp_path / "o3")
    assert r.code == 2 and len(r.err_lines) == 1, r.err
    assert str((p1 / "runs").resolve()) in r.err and str((p2 / "runs").resolve()) in r.err
    assert "--runs-dir" not in r.err  # translate has no such option: the hint names only what works here
    r = cli("translate", tmp_path / "x.png", "--model", p1 / "runs" / "cyclegan-001", "--out", tmp_path / "o3")
    assert r.code == 0 and (tmp_path / "o3" / "x.png").read_bytes() == (tmp_path / "o1" / "x.png").read_bytes()
    r = cli("runs", "rm", "cyclegan-001", "--delete-files")
    assert r.code == 2 and (p1 / "runs" / "cyclegan-001").is_dir() and (p2 / "runs" / "cyclegan-001").is_dir()
    # in p1, rm deletes p1's run and leaves p2's alone
    monkeypatch.chdir(p1)
    r = cli("runs", "rm", "cyclegan-001", "--delete-files")
    assert r.code == 0, r.err
    assert not (p1 / "runs" / "cyclegan-001").exists() and (p2 / "runs" / "cyclegan-001" / "options.json").is_file()
    # now the name is p2's alone, from anywhere; --resume finds it by the registry
    monkeypatch.chdir(p3)
    r = cli("runs", "show", "cyclegan-001", "--json")
    assert r.code == 0 and json.loads(r.out)["path"] == str((p2 / "runs" / "cyclegan-001").resolve())


def test_1_resume_in_a_project_uses_its_own_run(cli, tmp_path, monkeypatch):
    a, b = two_folders(tmp_path)
    p1, p2 = tmp_path / "p1", tmp_path / "p2"
    for p in (p1, p2):
        p.mkdir()
        monkeypatch.chdir(p)
        assert cli("train", a, b, *TINY).code == 0
    monkeypatch.chdir(p1)
    r = cli("train", "--resume", "cyclegan-001", "--max-steps", "2", "-q")
    assert r.code == 0, r.err
    assert (p1 / "runs" / "cyclegan-001" / "checkpoints" / "step-00000002").is_dir()
    assert not (p2 / "runs" / "cyclegan-001" / "checkpoints" / "step-00000002").exists()


def test_1_an_old_registry_keyed_by_name_is_carried_over(tmp_path, isolated_home):
    import sqlite3

    from cyclegan_cli.zoo import runs

    run = tmp_path / "old" / "r"
    run.mkdir(parents=True)
    (run / "options.json").write_text(json.dumps({"name": "r", "kind": "cyclegan"}))
    isolated_home.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(str(isolated_home / "runs.sqlite"))
    con.execute("CREATE TABLE runs (name TEXT PRIMARY KEY, path TEXT NOT NULL, kind TEXT, last_step INTEGER, "
                "updated REAL)")
    con.execute("INSERT INTO runs VALUES ('r', ?, 'cyclegan', 0, 0)", (str(run),))
    con.commit()
    con.close()
    assert [r.path for r in runs.list_runs()] == [str(run)]
    assert runs.find_run("r").path == str(run)


def test_1_two_connections_carrying_over_an_old_registry_at_once(tmp_path, isolated_home, monkeypatch):
    """Another connection (a shard started at the same moment) is carrying the old table over, its
    write transaction open, when ganctl has just seen that table: ganctl waits for it and does not
    then read the table it dropped."""
    import sqlite3
    import threading

    from cyclegan_cli.zoo import runs

    run = tmp_path / "old" / "r"
    run.mkdir(parents=True)
    (run / "options.json").write_text(json.dumps({"name": "r", "kind": "cyclegan"}))
    isolated_home.mkdir(parents=True, exist_ok=True)
    db = str(isolated_home / "runs.sqlite")
    con = sqlite3.connect(db, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("CREATE TABLE run_paths (path TEXT PRIMARY KEY, name TEXT NOT NULL, kind TEXT, last_step INTEGER, updated REAL)")
    con.execute("CREATE TABLE runs (name TEXT PRIMARY KEY, path TEXT NOT NULL, kind TEXT, last_step INTEGER, updated REAL)")
    con.execute("INSERT INTO runs VALUES ('r', ?, 'cyclegan', 0, 0)", (str(run),))
    con.execute("BEGIN IMMEDIATE")  # the other shard, half-way through the same carrying-over
    con.execute("INSERT OR IGNORE INTO run_paths SELECT path, name, kind, last_step, updated FROM runs")
    con.execute("DROP TABLE runs")
    # ganctl's connection: note when it runs its first statement after having looked the tables up
    looked, next_one = threading.Event(), threading.Event()
    connect = sqlite3.connect

    def traced(*a, **kw):
        c = connect(*a, **kw)
        c.set_trace_callback(lambda sql: (next_one.set() if looked.is_set() else None,
                                          looked.set() if "sqlite_master" in sql else None))
        return c

    monkeypatch.setattr(runs.sqlite3, "connect", traced)
    result = []
    t = threading.Thread(target=lambda: result.append(_try(runs.list_runs)))
    t.start()
    assert next_one.wait(30)  # it saw the old table, and went on
    con.execute("COMMIT")
    con.close()
    t.join(60)
    assert result and not isinstance(result[0], Exception), result
    assert [r.path for r in result[0]] == [str(run)]


def _try(fn):
    try:
        return fn()
    except Exception as exc:
        return exc


# ------------------------------------------------------------------------------- 2, 3, 15. translate records

def test_2_an_output_that_failed_is_not_recorded_as_done(cli, tmp_path, tiny_cyclegan):
    src = tmp_path / "in"
    for i in range(3):
        save_rgb(src / f"{i}.png", 16, 16, seed=i)
    out = tmp_path / "out"
    assert cli("translate", src, "--model", tiny_cyclegan, "--out", out).code == 0  # model m1 (AtoB)
    m1 = (out / "1.png").read_bytes()
    good = (src / "1.png").read_bytes()
    (src / "1.png").write_bytes(good[:40])  # m2 fails on this one file
    r = cli("translate", src, "--model", tiny_cyclegan, "--direction", "BtoA", "--out", out, "--overwrite")
    assert r.code == 1 and (out / "1.png").read_bytes() == m1
    (src / "1.png").write_bytes(good)
    r = cli("translate", src, "--model", tiny_cyclegan, "--direction", "BtoA", "--out", out, "--json")
    assert r.code == 0, r.err
    status = {Path(json.loads(l)["input"]).name: json.loads(l)["status"] for l in r.out.splitlines()}
    assert status == {"0.png": "skipped", "1.png": "ok", "2.png": "skipped"}
    assert (out / "1.png").read_bytes() != m1


def test_2_outputs_are_recorded_after_they_are_written(tmp_path, tiny_cyclegan):
    from cyclegan_cli.infer.translate import MANIFEST, translate

    src = tmp_path / "in"
    for i in range(2):
        save_rgb(src / f"{i}.png", 16, 16, seed=i)
    seen = []

    def on_result(r):  # when an output is reported, the manifest may hold it only once the file is there
        data = json.loads((tmp_path / "out" / MANIFEST).read_text())
        seen.append((data["files"].get(Path(r["output"]).name), Path(r["output"]).is_file()))

    translate(tiny_cyclegan, [src], out=tmp_path / "out", on_result=on_result)
    assert len(seen) == 2 and all(made is None or exists for made, exists in seen)
    data = json.loads((tmp_path / "out" / MANIFEST).read_text())
    assert sorted(data["files"]) == ["0.png", "1.png"] and not data["pending"]


def test_3_two_jobs_with_one_source_are_both_reported(cli, tmp_path, tiny_cyclegan):
    photos = tmp_path / "photos"
    for i in range(3):
        save_rgb(photos / f"{i}.png", 16, 16, seed=i)
    r = cli("translate", photos, photos / "1.png", "--model", tiny_cyclegan, "--out", tmp_path / "o", "--json")
    assert r.code == 0, r.err
    records = [json.loads(l) for l in r.out.splitlines()]
    written = sorted(str(p) for p in (tmp_path / "o").rglob("*.png"))
    assert len(written) == 4 and sorted(x["output"] for x in records) == written
    assert all(x["status"] == "ok" for x in records)


def test_15_translate_api_reports_its_seconds(tmp_path, tiny_cyclegan):
    from cyclegan_cli.infer.translate import translate

    save_rgb(tmp_path / "a.png", 16, 16)
    summary = translate(tiny_cyclegan, [tmp_path / "a.png"], out=tmp_path / "o")
    assert summary.converted == 1 and summary.seconds > 0


# ------------------------------------------------------------------------------- 12, 13, 18. one-line errors

def test_12_a_suffix_with_a_slash_is_refused_up_front(cli, tmp_path, tiny_cyclegan):
    save_rgb(tmp_path / "in" / "a.png", 16, 16)
    r = cli("translate", tmp_path / "in", "--model", tiny_cyclegan, "--out", tmp_path / "o", "--suffix", "_v2/final")
    assert r.code == 2 and len(r.err_lines) == 1 and "--suffix" in r.err, r.err
    assert not (tmp_path / "o").exists()


def test_13_export_without_the_onnx_extra_is_one_line(cli, tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "onnx", None)  # as if the extra were not installed
    r = cli("export", "emoji32", "--onnx", tmp_path / "e.onnx")
    assert r.code == 2 and len(r.err_lines) == 1 and "onnx extra" in r.err, r.err
    assert not (tmp_path / "e.onnx").exists()


def test_18_dcgan_size_error_names_every_size_it_takes(cli, tmp_path):
    from cyclegan_cli.models import build

    for s in (16, 256):  # the generator builds these, so the message must name them
        build("dcgan_generator", nz=4, ngf=2, nc=3, image_size=s)
    for i in range(2):
        save_rgb(tmp_path / "faces" / f"{i}.png", 16, 16, seed=i)
    r = cli("train", tmp_path / "faces", "--size", "48", "--max-steps", "1")
    assert r.code == 2 and len(r.err_lines) == 1
    assert all(str(s) in r.err for s in (16, 32, 64, 128, 256)), r.err


# ------------------------------------------------------------------------------- 16, 17. the README

def test_16_17_readme_claims_match_the_code(cli):
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    text = " ".join(readme.split())
    train_help = cli("train", "--help").out
    if "--norm" not in train_help:  # the README may speak of the official option only
        for i in [i for i in range(len(text)) if text.startswith("--norm", i)]:
            assert "official" in text[max(0, i - 80):i], text[max(0, i - 80):i + 20]
    # dropout off is our choice: the official test.py keeps pix2pix dropout on unless --eval
    i = text.index("run as the official `test.py` runs them")
    sentence = text[i:text.index(".", i)]
    assert "dropout" not in sentence.lower(), sentence
    assert "`--eval`" in text


# ------------------------------------------------------------------------------- 10, 11. disks that say no

def test_10_out_under_a_file_is_one_usage_error(cli, tmp_path, tiny_cyclegan):
    save_rgb(tmp_path / "in" / "a.png", 16, 16)
    (tmp_path / "file.txt").write_text("x")
    r = cli("translate", tmp_path / "in", "--model", tiny_cyclegan, "--out", tmp_path / "file.txt" / "x")
    assert r.code == 2 and len(r.err_lines) == 1 and "file.txt is a file" in r.err, r.err


@pytest.mark.parametrize("code, words", [("ENOSPC", "no space left on device"), ("EROFS", "read-only file system"),
                                         ("EACCES", "permission denied")])
def test_10_an_out_that_cannot_be_written_is_one_line(cli, tmp_path, tiny_cyclegan, monkeypatch, code, words):
    import errno

    save_rgb(tmp_path / "in" / "a.png", 16, 16)
    real_fsync = os.fsync

    def fsync(fd):  # the disk refuses every file under --out (the manifest is the first)
        if "/out" in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(getattr(errno, code), os.strerror(getattr(errno, code)))
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    r = cli("translate", tmp_path / "in", "--model", tiny_cyclegan, "--out", tmp_path / "out")
    assert r.code == 1 and len(r.err_lines) == 1 and words in r.err and "internal" not in r.err, r.err
    assert str(tmp_path / "out") in r.err


def test_11_a_full_disk_while_saving_a_checkpoint_keeps_the_last_one(cli, tmp_path, monkeypatch):
    import errno

    a, b = two_folders(tmp_path)
    assert cli("train", a, b, "--name", "full", *TINY).code == 0
    real_fsync = os.fsync

    def fsync(fd):
        if "checkpoints" in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    r = cli("train", "--resume", "full", "--max-steps", "2", "-q")
    assert r.code == 1 and len(r.err_lines) == 1 and "no space left on device" in r.err, r.err
    ckpts = tmp_path / "runs" / "full" / "checkpoints"
    assert sorted(p.name for p in ckpts.iterdir()) == ["step-00000001"]  # the last one, and no leftovers


def test_11_a_file_size_limit_while_saving_a_checkpoint_is_one_line(tmp_path):
    """The real serialisers under a limit they cannot pass (ulimit -f): torch.save used to end in
    "[enforce fail at inline_container.cc]", exit 70."""
    import resource
    import signal

    from conftest import run_subprocess

    a, b = two_folders(tmp_path)
    r = run_subprocess("train", a, b, "--name", "lim", *TINY, cwd=tmp_path)
    assert r.returncode == 0, r.stderr

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (40_000, resource.RLIM_INFINITY))

    r = run_subprocess("train", "--resume", "lim", "--max-steps", "2", "-q", cwd=tmp_path, preexec_fn=limit)
    err = [l for l in r.stderr.splitlines() if l.strip()]
    assert r.returncode == 1 and len(err) == 1 and "file too large" in r.stderr, r.stderr
    assert sorted(p.name for p in (tmp_path / "runs" / "lim" / "checkpoints").iterdir()) == ["step-00000001"]


# ------------------------------------------------------------------------------- 14. memory budget in a cgroup

def fake_cgroup(tmp_path, lines, files):
    root = tmp_path / "cgroup"
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    proc = tmp_path / "proc-self-cgroup"
    proc.write_text("\n".join(lines) + "\n")
    return root, proc


@pytest.mark.parametrize("version", ["v2", "v1", "v1-container"])
def test_14_the_memory_budget_stays_inside_the_cgroup_limit(tmp_path, monkeypatch, version):
    import torch

    from cyclegan_cli import device

    gib = 2**30
    if version == "v2":  # a Slurm job: the limit is on the job's cgroup, the step's is unlimited
        root, proc = fake_cgroup(tmp_path, ["0::/job_7/step_0"], {
            "job_7/memory.max": str(2 * gib), "job_7/memory.current": str(gib // 2),
            "job_7/memory.stat": f"anon 1\ninactive_file {gib // 4}\n",
            "job_7/step_0/memory.max": "max", "job_7/step_0/memory.current": "0"})
        expected = 2 * gib - (gib // 2 - gib // 4)
    elif version == "v1":
        root, proc = fake_cgroup(tmp_path, ["4:memory:/docker/abc", "0::/"], {
            "memory/docker/abc/memory.limit_in_bytes": str(2 * gib),
            "memory/docker/abc/memory.usage_in_bytes": str(gib // 4),
            "memory/memory.limit_in_bytes": "9223372036854771712"})
        expected = 2 * gib - gib // 4
    else:  # the container's own cgroup mounted at the root, under a path that does not exist there
        root, proc = fake_cgroup(tmp_path, ["4:memory:/process_api/0123"], {
            "memory/memory.limit_in_bytes": str(2 * gib), "memory/memory.usage_in_bytes": "0"})
        expected = 2 * gib
    monkeypatch.setattr(device, "CGROUP_ROOT", root, raising=False)
    monkeypatch.setattr(device, "PROC_CGROUP", proc, raising=False)
    budget = device.available_memory(torch.device("cpu"))
    assert budget <= int(expected * 0.75), budget / gib
    assert device.cgroup_memory_left() == expected
