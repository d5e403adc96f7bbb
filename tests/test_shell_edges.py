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
