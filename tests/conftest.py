"""Shared fixtures: an isolated ganctl home, tiny images made here, and a CLI runner."""

from __future__ import annotations

import os

# Under pytest-xdist (README's `-n auto`) one worker a core: each worker and the processes its tests
# start compute on one thread, so that the workers do not fight over the cores. Set before numpy
# and torch are imported, which size their thread pools when they load.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["OMP_NUM_THREADS"] = "1"

import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]

# One ganctl home for the whole test run, set when pytest loads this file: before any fixture of any
# scope runs (a module-scoped fixture runs before the per-test home below), and inherited by every
# subprocess. The user's own registry, zoo and cache are never touched.
SESSION_HOME = Path(tempfile.mkdtemp(prefix="ganctl-test-home-"))
os.environ["GANCTL_HOME"] = str(SESSION_HOME)


def pytest_unconfigure(config):
    shutil.rmtree(SESSION_HOME, ignore_errors=True)


def pytest_collection_modifyitems(config, items):
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except Exception:
        has_cuda = False
    skip = pytest.mark.skip(reason="needs a CUDA GPU; none is present on this machine")
    long_ok = os.environ.get("GANCTL_LONG_TESTS", "") not in ("", "0")
    skip_long = pytest.mark.skip(reason="a long check: run with GANCTL_LONG_TESTS=1")
    for item in items:
        if "cuda" in item.keywords and not has_cuda:
            item.add_marker(skip)
        if "long" in item.keywords and not long_ok:
            item.add_marker(skip_long)


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch):
    home = tmp_path / "ganctl-home"
    monkeypatch.setenv("GANCTL_HOME", str(home))
    monkeypatch.setenv("GANCTL_OFFLINE", "0")
    monkeypatch.delenv("GANCTL_DEBUG", raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.chdir(tmp_path)
    return home


class Result:
    def __init__(self, code, out, err):
        self.code, self.out, self.err = code, out, err

    @property
    def err_lines(self):
        return [line for line in self.err.splitlines() if line.strip()]


@pytest.fixture
def cli(capsys):
    """Run ganctl in-process: returns Result(code, stdout, stderr)."""
    from cyclegan_cli.cli import main

    def run(*args, stdin: str | None = None):
        import io

        old = sys.stdin
        if stdin is not None:
            sys.stdin = io.StringIO(stdin)
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        finally:
            sys.stdin = old
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


def as_in_a_terminal():
    """``preexec_fn`` for a child that a test stops with Ctrl-C: SIGINT handled as a terminal's
    foreground job has it. A suite started in the background from a script (``cmd &`` without job
    control) runs with SIGINT ignored, and its children inherit that, so Python would never see the
    Ctrl-C. (Only these two calls run in the forked child: nothing to import there.)"""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def run_subprocess(*args, env=None, timeout=300, **kw):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "cyclegan_cli", *map(str, args)], capture_output=True, text=True,
                          env=e, timeout=timeout, **kw)


def save_rgb(path: Path, w: int, h: int, seed: int = 0, mode: str = "RGB", fmt: str | None = None) -> Path:
    rng = np.random.default_rng(seed)
    arr = (rng.random((h, w, 3)) * 255).astype(np.uint8)
    im = Image.fromarray(arr, "RGB")
    if mode != "RGB":
        im = im.convert(mode)
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path, format=fmt)
    return path


def smooth_image(w: int, h: int) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    r = 128 + 80 * np.sin(x / w * 3.1) * np.cos(y / h * 2.3)
    g = 100 + 60 * (x / w)
    b = 90 + 70 * (y / h)
    return np.stack([r, g, b], -1).clip(0, 255).astype(np.uint8)


@pytest.fixture
def tiny_cyclegan(tmp_path):
    """A tiny ResNet generator pair saved as a ganctl checkpoint folder."""
    import torch

    from cyclegan_cli.checkpoints import ModelConfig, save_checkpoint
    from cyclegan_cli.models import build

    torch.manual_seed(0)
    args = {"input_nc": 3, "output_nc": 3, "ngf": 4, "n_blocks": 1, "norm": "instance"}
    nets = {"G_A": build("resnet_generator", **args), "G_B": build("resnet_generator", **args)}
    cfg = ModelConfig(kind="cyclegan", nets={k: {"arch": "resnet_generator", "args": args} for k in nets},
                      image_size=32, domains=["cat", "dog"])
    return save_checkpoint(tmp_path / "tiny-model", cfg, nets)
