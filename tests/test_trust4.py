"""A new user's trial (4): what a person sees when an output path cannot be written."""

import json
import os
from pathlib import Path

import pytest

from conftest import run_subprocess, save_rgb

LINUX_PROC = pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")


def tiny_dcgan(path: Path) -> Path:
    import torch

    from cyclegan_cli.checkpoints import ModelConfig, save_checkpoint
    from cyclegan_cli.models import build

    torch.manual_seed(0)
    args = {"nz": 8, "ngf": 4, "image_size": 16}
    return save_checkpoint(path, ModelConfig(kind="dcgan", nets={"G": {"arch": "dcgan_generator", "args": args}}),
                           {"G": build("dcgan_generator", **args)})


def tiny_folders(tmp_path: Path) -> tuple[Path, Path]:
    for d in "AB":
        for i in range(2):
            save_rgb(tmp_path / d / f"{i}.png", 32, 32, seed=i)
    return tmp_path / "A", tmp_path / "B"


TINY_TRAIN = ["--max-steps", "1", "--size", "32", "--load-size", "32", "--ngf", "4", "--ndf", "4", "--blocks", "1",
              "--device", "cpu"]


@LINUX_PROC
@pytest.mark.parametrize("command, line", [
    ("export", "--onnx /proc/nope/x.onnx: cannot create its folder /proc/nope (no such file or directory)"),
    ("export-in-proc", "--onnx /proc/x.onnx: cannot write this file (no such file or directory)"),
    ("sample", "--out /proc/nope: cannot create this folder (no such file or directory)"),
    ("sample-grid", "--out /proc/nope/g.png: cannot create its folder /proc/nope (no such file or directory)"),
    ("interpolate", "--out /proc/nope/w.gif: cannot create its folder /proc/nope (no such file or directory)"),
    ("train", "--runs-dir /proc/nope: cannot create this folder (no such file or directory)"),
    ("train-named", "--runs-dir /proc/nope: cannot create this folder (no such file or directory)"),
])
def test_an_output_that_cannot_be_written_is_one_line_exit_1(cli, tmp_path, tiny_cyclegan, command, line):
    """Before: 'internal error: FileNotFoundError: [Errno 2] ...' and exit 70 (the temporary file's
    name for /proc/x.onnx), where translate said one line naming its --out and exited 1."""
    args = {
        "export": ["export", tiny_cyclegan, "--onnx", "/proc/nope/x.onnx"],
        "export-in-proc": ["export", tiny_cyclegan, "--onnx", "/proc/x.onnx"],
        "sample": ["sample", "--model", tiny_dcgan(tmp_path / "dc"), "--seeds", "0-1", "--out", "/proc/nope",
                   "--device", "cpu"],
        "sample-grid": ["sample", "--model", tiny_dcgan(tmp_path / "dc"), "--seeds", "0-3", "--grid", "2x2",
                        "--out", "/proc/nope/g.png", "--device", "cpu"],
        "interpolate": ["interpolate", "--model", tiny_dcgan(tmp_path / "dc"), "--steps", "2",
                        "--out", "/proc/nope/w.gif", "--device", "cpu"],
        "train": ["train", *tiny_folders(tmp_path), "--runs-dir", "/proc/nope", *TINY_TRAIN],
        "train-named": ["train", *tiny_folders(tmp_path), "--runs-dir", "/proc/nope", "--name", "mine", *TINY_TRAIN],
    }[command]
    r = cli(*args)
    assert (r.code, r.err_lines[-1:]) == (1, [f"ganctl: error: {line}"]), r.err
    assert "internal" not in r.err and "Traceback" not in r.err and r.out == "", r.err


def test_a_dangling_runs_dir_is_one_line_not_a_loop(tmp_path):
    """A --runs-dir that is a link to nothing: mkdir meets FileExistsError, which run_path took for a
    trainer beside it taking the number, and tried the same number again for ever (before: no end)."""
    os.symlink(tmp_path / "gone", tmp_path / "runs")
    r = run_subprocess("train", *tiny_folders(tmp_path), *TINY_TRAIN, cwd=tmp_path, timeout=120,
                       env={"OMP_NUM_THREADS": "1"})
    assert r.returncode == 1 and r.stderr.splitlines()[-1:] == [
        f"ganctl: error: --runs-dir runs: cannot create this folder (runs is a link to {tmp_path / 'gone'}, which does "
        "not exist)"], r.stderr
    assert not (tmp_path / "gone").exists()


def test_folders_that_find_lists_on_stdin_are_left_out(cli, tmp_path, tiny_cyclegan):
    """`find D -print0 | ganctl translate - -0`: find lists D and D/sub beside their files; they were
    searched as well, each file planned twice and failed as 'also the output of' itself (exit 1),
    and `find .` was refused, --out being inside the listed folder '.'."""
    save_rgb(tmp_path / "D" / "a.png", 16, 16, seed=1)
    save_rgb(tmp_path / "D" / "sub" / "b.png", 16, 16, seed=2)
    found = "D\0D/a.png\0D/sub\0D/sub/b.png\0"
    args = ("translate", "-", "-0", "--model", tiny_cyclegan, "--device", "cpu", "--out", "OUT")
    r = cli(*args, stdin=found)
    assert (r.code, r.out.split()) == (0, ["OUT/D/a.png", "OUT/D/sub/b.png"]), r.err
    assert "2 converted, 0 skipped (exist), 0 failed" in r.err and "error" not in r.err, r.err
    r = cli(*args, "-v", "--overwrite", stdin=found)
    assert "left out the folders stdin lists with their files (D and 1 more)" in r.err, r.err
    r = cli(*args, "--json", stdin=".\0./D\0./D/a.png\0./D/sub\0./D/sub/b.png\0./OUT\0./OUT/D\0./OUT/D/a.png\0")
    assert r.code == 0 and "error" not in r.err, r.err  # `find .` lists --out too: its files are left out
    assert [(row["input"], row["status"], row.get("reason")) for row in map(json.loads, r.out.splitlines())] == [
        ("OUT/D/a.png", "skipped", "inside --out"), ("D/a.png", "skipped", "exists"),
        ("D/sub/b.png", "skipped", "exists")]
    assert not (tmp_path / "OUT" / "OUT").exists()
    # a folder listed alone (`ls -d */ x.png | ganctl translate -`) is searched, as a folder argument is
    save_rgb(tmp_path / "x.png", 16, 16, seed=3)
    r = cli("translate", "-", "--model", tiny_cyclegan, "--device", "cpu", "--out", "LS", stdin="D\nx.png\n")
    assert (r.code, sorted(r.out.split())) == (0, ["LS/D/a.png", "LS/D/sub/b.png", "LS/x.png"]), r.err
    assert "as find lists them, is left out" in " ".join(cli("translate", "--help").out.split())


def test_runs_show_prints_nested_options_as_lines_and_json_unchanged(cli, tmp_path):
    """A distill run's options hold dicts (its teacher, its student): `runs show` printed them as
    Python reprs ("teacher: {'spec': 'photo2sketch-cut', ...}")."""
    run = tmp_path / "runs" / "d1"
    run.mkdir(parents=True)
    options = {"kind": "distill", "name": "d1", "domains": ["photo", "sketch"], "empty": {},
               "teacher": {"spec": "photo2sketch-cut", "config": {"kind": "cut", "image_size": 256}},
               "student": {"ngf": 16, "blocks": 3}, "timed": [["ngf 16", 1.5], ["ngf 8", 0.7]]}
    (run / "options.json").write_text(json.dumps(options))
    r = cli("runs", "show", run)
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    start = lines.index("options:")
    assert lines[start + 1:start + 10] == [
        "  kind: distill", "  name: d1", "  domains: photo, sketch", "  empty: {}",
        "  teacher.spec: photo2sketch-cut", "  teacher.config.kind: cut", "  teacher.config.image_size: 256",
        "  student.ngf: 16", "  student.blocks: 3"], r.out
    assert '  timed: [["ngf 16", 1.5], ["ngf 8", 0.7]]' in lines, r.out
    assert "{'" not in r.out and "['" not in r.out, r.out
    r = cli("runs", "show", run, "--json")
    assert r.code == 0 and json.loads(r.out)["options"] == options, r.out
