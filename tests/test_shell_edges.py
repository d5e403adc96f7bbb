"""The shell's edges (issue 35, item 5): a reader of stdout that goes away, an output folder that
cannot be made, empty folders, paths from find, --html's videos, and the small things a person
types wrong or reads afterwards."""

import base64
import ctypes
import io
import json
import os
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import save_rgb, smooth_image

PROGRAM = [sys.executable, "-m", "cyclegan_cli"]


def piped_from_a_terminal(args, lines: int, cwd: Path) -> tuple[int, list[bytes], str]:
    """``ganctl ARGS | head -LINES`` typed in a terminal: stdout into a real pipe whose reader takes
    ``lines`` lines and goes away (0: it is gone before the first), stderr on a pty.
    Returns (exit status, the lines read, what the terminal showed)."""
    master, slave = os.openpty()
    r, w = os.pipe()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    p = subprocess.Popen([*PROGRAM, *map(str, args)], stdin=subprocess.DEVNULL, stdout=w, stderr=slave, cwd=cwd, env=env)
    os.close(w)
    os.close(slave)
    with os.fdopen(r, "rb") as reader:
        got = [reader.readline() for _ in range(lines)]
    screen = b""
    while True:  # until the child has gone (the terminal then reads as EIO)
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        screen += chunk
    os.close(master)
    return p.wait(timeout=600), got, screen.decode("utf-8", "replace").replace("\r\n", "\n")


def tiny_dcgan(path: Path) -> Path:
    import torch

    from cyclegan_cli.checkpoints import ModelConfig, save_checkpoint
    from cyclegan_cli.models import build

    torch.manual_seed(0)
    args = {"nz": 8, "ngf": 4, "image_size": 16}
    return save_checkpoint(path, ModelConfig(kind="dcgan", nets={"G": {"arch": "dcgan_generator", "args": args}}),
                           {"G": build("dcgan_generator", **args)})


# ------------------------------------------------------------------------------- stdout's reader goes away

@pytest.mark.parametrize("lines", [0, 2])
def test_translate_into_a_reader_that_goes_away_finishes_quietly(tmp_path, tiny_cyclegan, lines):
    """`translate ... | head -2`: every file is written and recorded, none is counted failed, no
    "Broken pipe" on the terminal, exit 0 (before: 'Errno 32' per file or a silent exit 1 with
    the batch left half done)."""
    for i in range(8):
        save_rgb(tmp_path / "in" / f"{i}.png", 16, 16, seed=i)
    code, got, screen = piped_from_a_terminal(["translate", "in", "--model", tiny_cyclegan, "--out", "out",
                                               "--device", "cpu", "--backend", "torch"], lines, tmp_path)
    assert code == 0, screen
    assert [g.decode().strip() for g in got] == [f"out/{i}.png" for i in range(lines)]
    assert "Broken pipe" not in screen and "rror" not in screen, screen
    assert "8 converted, 0 skipped (exist), 0 failed" in screen, screen
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png")) == [f"{i}.png" for i in range(8)]
    recorded = json.loads((tmp_path / "out" / ".ganctl-manifest.json").read_text())
    assert sorted(recorded["files"]) == [f"{i}.png" for i in range(8)] and not recorded["pending"]


def test_sample_into_a_reader_that_goes_away_finishes_quietly(tmp_path):
    model = tiny_dcgan(tmp_path / "dc")
    code, _, screen = piped_from_a_terminal(["sample", "--model", model, "--seeds", "0-7", "--out", "s",
                                             "--device", "cpu"], 0, tmp_path)
    assert code == 0 and "Broken pipe" not in screen and "rror" not in screen, screen
    assert sorted(p.name for p in (tmp_path / "s").glob("*.png")) == [f"seed{i:04d}.png" for i in range(8)]


# ------------------------------------------------------------------------------- an output folder that cannot be made

@pytest.mark.parametrize("where", ["/proc/nope", "dangling/sub", "dangling"])
def test_an_out_that_cannot_be_created_is_one_line_naming_it(cli, tmp_path, tiny_cyclegan, where):
    """/proc/nope was FileNotFoundError, a path under a dangling link FileExistsError: exit 70."""
    save_rgb(tmp_path / "in" / "a.png", 16, 16)
    os.symlink(tmp_path / "gone", tmp_path / "dangling")
    r = cli("translate", tmp_path / "in", "--model", tiny_cyclegan, "--out", where, "--device", "cpu")
    assert r.code == 1 and len(r.err_lines) == 1 and "internal" not in r.err, r.err
    assert r.err_lines[0].startswith(f"ganctl: error: --out {where}: cannot create this folder"), r.err
    if where.startswith("dangling"):
        assert f"dangling is a link to {tmp_path / 'gone'}, which does not exist" in r.err, r.err
    assert r.out == ""


def _without_root_powers():
    """``preexec_fn``: root without CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH, from the bounding set so
    that exec does not give them back: a folder's mode bits then refuse root as they refuse anyone."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def test_a_read_only_out_is_one_line_naming_the_folder(tmp_path, tiny_cyclegan):
    """It named the internal lock file (OUT/.ganctl-manifest.json.lock), exit 1 as 'some inputs failed'."""
    save_rgb(tmp_path / "in" / "a.png", 16, 16)
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    if os.geteuid() == 0:
        probe = subprocess.run(["touch", str(ro / "probe")], preexec_fn=_without_root_powers, capture_output=True)
        if probe.returncode == 0:
            pytest.skip("root keeps writing into a read-only folder here")
    r = subprocess.run([*PROGRAM, "translate", "in", "--model", str(tiny_cyclegan), "--out", "ro", "--device", "cpu"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=600,
                       preexec_fn=_without_root_powers if os.geteuid() == 0 else None)
    ro.chmod(0o755)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 1 and lines == ["ganctl: error: --out ro: cannot write in this folder (permission denied)"], \
        r.stderr
    assert r.stdout == "" and not list(ro.iterdir())


# ------------------------------------------------------------------------------- empty folders

def test_an_empty_folder_is_refused_as_train_refuses_it(cli, tmp_path, tiny_cyclegan):
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("no pictures here")
    save_rgb(tmp_path / "photos" / "a.png", 16, 16)
    for folders in (["empty"], ["notes"], ["photos", "empty"]):
        r = cli("translate", *folders, "--model", tiny_cyclegan, "--out", "out", "--device", "cpu")
        assert r.code == 2 and len(r.err_lines) == 1, (folders, r.err)
        assert r.err_lines[0].startswith(f"ganctl: error: {folders[-1]}: no images or videos") and \
            "--allow-empty" in r.err, r.err
        assert not (tmp_path / "out").exists()
    trained = cli("train", "empty", "photos", "--device", "cpu")
    assert trained.code == 2 and len(trained.err_lines) == 1, trained.err  # the same refusal, the same code
    r = cli("translate", "empty", "--model", tiny_cyclegan, "--out", "out", "--device", "cpu", "--allow-empty")
    assert r.code == 0 and r.out == "" and "0 converted" in r.err, r.err
    r = cli("translate", "photos", "empty", "--model", tiny_cyclegan, "--out", "out", "--device", "cpu", "--allow-empty")
    assert r.code == 0 and r.out.split() == ["out/photos/a.png"], (r.out, r.err)
    r = cli("translate", "-", "--model", tiny_cyclegan, "--device", "cpu", "--allow-empty", stdin="")
    assert r.code == 0 and r.out == "", r.err  # a find that found nothing
    assert cli("translate", "-", "--model", tiny_cyclegan, "--device", "cpu", stdin="").code == 2


# ------------------------------------------------------------------------------- paths from find

def test_paths_on_stdin_keep_their_folders(cli, tmp_path, tiny_cyclegan, monkeypatch):
    """`find . -print0 | ganctl translate - -0`: two IMG_0001.jpg in two folders were both planned
    as OUT/IMG_0001.jpg (one failed as a duplicate)."""
    for i, day in enumerate(("day1", "day2")):
        save_rgb(tmp_path / day / "IMG_0001.jpg", 16, 16, seed=i)
    found = "\0".join(f"./{d}/IMG_0001.jpg" for d in ("day1", "day2")) + "\0"
    args = ("translate", "-", "-0", "--model", tiny_cyclegan, "--device", "cpu")
    r = cli(*args, stdin=found)
    assert r.code == 0, r.err
    assert r.out.split() == ["translated/day1/IMG_0001.jpg", "translated/day2/IMG_0001.jpg"]
    # a second find also lists the outputs: they are left out, not translated into translated/translated/
    found += "./translated/day1/IMG_0001.jpg\0"
    r = cli(*args, "--json", stdin=found)
    assert r.code == 0 and not (tmp_path / "translated" / "translated").exists(), r.err
    assert [(row["status"], row.get("reason")) for row in map(json.loads, r.out.splitlines())] == \
        [("skipped", "inside --out"), ("skipped", "exists"), ("skipped", "exists")]
    # --relative-to names the folder the paths are kept below; a path outside it is refused
    r = cli(*args, "--relative-to", "day1", "--out", "o2", stdin=str(tmp_path / "day1" / "IMG_0001.jpg"))
    assert r.code == 0 and r.out.split() == ["o2/IMG_0001.jpg"], r.err
    monkeypatch.chdir(tmp_path / "day2")
    r = cli(*args, "--out", "o3", stdin="../day1/IMG_0001.jpg\0")
    assert r.code == 2 and len(r.err_lines) == 1 and "not under the current folder" in r.err, r.err
    assert "--relative-to" in cli("translate", "--help").out


# ------------------------------------------------------------------------------- --html and videos

def test_html_shows_each_videos_first_frame_as_its_poster(cli, tmp_path, tiny_cyclegan):
    from cyclegan_cli.data.video import read_frames, write_frames_lossless

    first = smooth_image(48, 32)
    (tmp_path / "clips").mkdir()
    write_frames_lossless([first, 255 - first, first[::-1]], tmp_path / "clips" / "c.mkv")
    r = cli("translate", "clips", "--model", tiny_cyclegan, "--out", "out", "--device", "cpu", "--html",
            "--no-stabilize")
    assert r.code == 0, r.err
    page = (tmp_path / "out" / "index.html").read_text()
    posters = re.findall(r'<video src="([^"]+)" poster="data:image/jpeg;base64,([^"]+)"', page)
    assert [src for src, _ in posters] == ["../clips/c.mkv", "c.mp4"], page
    for (src, data), video in zip(posters, (tmp_path / "clips" / "c.mkv", tmp_path / "out" / "c.mp4")):
        still = np.asarray(Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB"), np.float32)
        frames = [f.astype(np.float32) for f in read_frames(video)]
        assert still.shape == frames[0].shape
        off = [np.abs(still - f).mean() for f in frames]
        assert off[0] < 10 and off[0] < min(off[1:]) / 2, (src, off)  # the first frame (as a JPEG), not a black box


# ------------------------------------------------------------------------------- small things

TINY_TRAIN = ["--size", "32", "--load-size", "32", "--ngf", "4", "--ndf", "4", "--blocks", "1", "--device", "cpu",
              "--no-tensorboard"]


def _two_folders(tmp_path):
    for i in range(2):
        save_rgb(tmp_path / "A" / f"{i}.png", 32, 32, seed=i)
        save_rgb(tmp_path / "B" / f"{i}.png", 32, 32, seed=9 + i)
    return tmp_path / "A", tmp_path / "B"


def test_train_model_cut_points_to_method_cut(cli, tmp_path):
    a, b = _two_folders(tmp_path)
    for model, flag in (("cut", "--method cut"), ("fastcut", "--method fastcut"), ("pix2pix", "--paired")):
        r = cli("train", a, b, "--model", model)
        assert r.code == 2 and len(r.err_lines) == 1 and r.err.strip().endswith(f"use {flag}"), r.err
    assert "<cyclegan|dcgan>" in cli("train", "--help").out


def _ctrl_c_after_the_first_step(monkeypatch):
    """Ctrl-C as the loop sees it (its SIGINT handler), once the first step is logged."""
    from cyclegan_cli.train import loop

    real = loop._Steps.log

    def log(self, state, losses):
        real(self, state, losses)
        if state.step == 1:
            signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(loop._Steps, "log", log)


@pytest.mark.parametrize("runs_dir", ["runs", "elsewhere"])
def test_an_interrupted_run_says_the_command_that_carries_it_on(cli, tmp_path, monkeypatch, runs_dir):
    a, b = _two_folders(tmp_path)
    _ctrl_c_after_the_first_step(monkeypatch)
    r = cli("train", a, b, "--runs-dir", runs_dir, "--max-steps", "3", *TINY_TRAIN)
    assert r.code == 130, r.err
    line = r.err_lines[-1]
    command = line.split("to carry on: ", 1)[1]
    expected = ["ganctl", "train", "--resume", "cyclegan-001"] + (["--runs-dir", runs_dir] if runs_dir != "runs" else [])
    assert line.startswith("ganctl: error: interrupted at step 1; checkpoint saved;") and shlex.split(command) == expected
    r = cli(*shlex.split(command)[1:])  # typed as said: the run carries on (from step 1: no second Ctrl-C)
    assert r.code == 0 and "resuming cyclegan-001 from step 1" in r.err, r.err


def test_an_interrupted_distill_says_its_command(cli, tmp_path, monkeypatch, tiny_cyclegan):
    inp = tmp_path / "photos"
    inp.mkdir()
    for i in range(2):
        Image.fromarray(smooth_image(40 + 8 * i, 36)).save(inp / f"p{i}.png")
    _ctrl_c_after_the_first_step(monkeypatch)
    r = cli("distill", tiny_cyclegan, inp, "--width", "4", "--blocks", "1", "--size", "32", "--batch-size", "2",
            "--epochs", "1", "--decay-epochs", "1", "--max-steps", "3", "--device", "cpu", "--no-tensorboard")
    assert r.code == 130, r.err
    command = r.err_lines[-1].split("to carry on: ", 1)[1]
    assert shlex.split(command) == ["ganctl", "distill", str(tiny_cyclegan), "--name", "distill-001"], r.err


def test_another_models_outputs_are_refused_by_name(cli, tmp_path, tiny_cyclegan):
    """It said 'model 4165e76a42b8... -> 939d1c99de35...'."""
    import shutil

    from safetensors.torch import load_file, save_file

    other = tmp_path / "other-model"
    shutil.copytree(tiny_cyclegan, other)
    weights = load_file(other / "model.safetensors")
    save_file({k: v + 0.01 if k.startswith("G_A.") and v.is_floating_point() else v for k, v in weights.items()},
              other / "model.safetensors")
    save_rgb(tmp_path / "in" / "a.png", 16, 16)
    assert cli("translate", "in", "--model", tiny_cyclegan, "--out", "out", "--device", "cpu").code == 0
    r = cli("translate", "in", "--model", other, "--out", "out", "--device", "cpu")
    assert r.code == 2 and len(r.err_lines) == 1, r.err
    assert f"(model {tiny_cyclegan} -> {other})" in r.err and not re.search(r"[0-9a-f]{12}", r.err), r.err


def test_runs_list_says_fastcut(cli, tmp_path):
    a, b = _two_folders(tmp_path)
    r = cli("train", a, b, "--method", "fastcut", "--name", "fc", "--max-steps", "1", "-q", *TINY_TRAIN)
    assert r.code == 0, r.err
    header, row = cli("runs", "list").out.splitlines()
    assert header.split("\t")[:2] == ["NAME", "KIND"] and row.split("\t")[:2] == ["fc", "fastcut"]
    [obj] = [json.loads(line) for line in cli("runs", "list", "--json").out.splitlines()]
    assert (obj["kind"], obj["method"]) == ("cut", "fastcut")


def test_a_cpu_run_says_what_its_checkpoints_take(cli, tmp_path):
    a, b = _two_folders(tmp_path)
    r = cli("train", a, b, "--name", "t", "--max-steps", "2", "--save-every", "1", "--keep", "2", *TINY_TRAIN)
    assert r.code == 0, r.err
    from cyclegan_cli.cli.common import human_size

    ckpt = tmp_path / "runs" / "t" / "checkpoints" / "step-00000001"
    size = sum(f.stat().st_size for f in ckpt.rglob("*") if f.is_file())
    said = [line for line in r.err_lines if line.startswith("each checkpoint is")]
    assert said == [f"each checkpoint is {human_size(size)}; --keep 2 keeps up to {human_size(2 * size)}, "
                    f"--keep 1 would save {human_size(size)}"], r.err
