"""Property-based fuzzing of the CLI: random option values and combinations, and corrupted inputs
(truncated and bit-flipped images, videos, weights, configs and resume states).

Invariants: never exit 70 (an internal error), never a traceback, never a file under a final name
that is incomplete, never a file changed outside --out and the run folder.

Examples per test: GANCTL_FUZZ_EXAMPLES (default 12 in CI; the long mode used 300).
"""

import contextlib
import hashlib
import io
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from conftest import save_rgb

N = int(os.environ.get("GANCTL_FUZZ_EXAMPLES", "12"))
SETTINGS = settings(max_examples=N, deadline=None, derandomize=os.environ.get("GANCTL_FUZZ_RANDOM") is None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def run(*args) -> tuple[int, str, str]:
    """ganctl in-process: (exit code, stdout, stderr)."""
    from cyclegan_cli.cli import main

    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main([str(a) for a in args])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return code, out.getvalue(), err.getvalue()


def snapshot(root: Path, skip: tuple) -> dict:
    """sha256 of every file under root, except under the folders in skip."""
    out = {}
    for dirpath, _, files in os.walk(root):
        if any(Path(dirpath).is_relative_to(s) for s in skip):
            continue
        for f in files:
            p = Path(dirpath) / f
            out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def check(code: int, err: str) -> None:
    assert code != 70 and "Traceback" not in err and "internal error" not in err, err
    for line in err.splitlines():
        assert not line.startswith("ganctl: error: ganctl"), line


def check_outputs(out: Path) -> None:
    """Every file under a final name in --out decodes whole."""
    if not out.is_dir():
        return
    for p in out.rglob("*"):
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in (".png", ".jpg", ".webp", ".bmp", ".tiff"):
            with Image.open(p) as im:
                im.load()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Inputs the examples share: images of awkward sizes, a tiny model, a tiny training set."""
    import torch

    from cyclegan_cli.checkpoints import ModelConfig, save_checkpoint
    from cyclegan_cli.models import build

    root = tmp_path_factory.mktemp("fuzz")
    for i, (w, h) in enumerate([(17, 9), (32, 32), (5, 40), (64, 48)]):
        save_rgb(root / "in" / f"{i}.png", w, h, seed=i)
    save_rgb(root / "in" / "sub" / "x.jpg", 30, 20, seed=9, fmt="JPEG")
    torch.manual_seed(0)
    args = {"input_nc": 3, "output_nc": 3, "ngf": 4, "n_blocks": 1, "norm": "instance"}
    nets = {"G_A": build("resnet_generator", **args), "G_B": build("resnet_generator", **args)}
    cfg = ModelConfig(kind="cyclegan", nets={k: {"arch": "resnet_generator", "args": args} for k in nets},
                      image_size=32, domains=["cat", "dog"])
    save_checkpoint(root / "model", cfg, nets)
    for d in ("A", "B"):
        for i in range(2):
            save_rgb(root / d / f"{i}.png", 32, 32, seed=ord(d) + i)
    return root


def _isolated(world, tag: str) -> Path:
    work = world / "runs-of" / tag
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    return work


opt_int = st.one_of(st.none(), st.integers(-3, 70), st.sampled_from([0, 1, 2, 4, 7, 16, 500, 10**9]))


@SETTINGS
@given(size=opt_int, tile=opt_int, fmt=st.sampled_from([None, "png", "jpg", "webp", "gif", "bmp", "tiff", "x"]),
       direction=st.sampled_from([None, "AtoB", "BtoA", "sideways", ""]), quality=opt_int,
       batch=opt_int, workers=opt_int, shard=st.sampled_from([None, "1/2", "2/2", "0/1", "3/2", "x", "1/0"]),
       backend=st.sampled_from([None, "torch", "auto", "cuda"]), precision=st.sampled_from([None, "fp32", "bf16", "fp16", "int4"]),
       max_memory=st.sampled_from([None, "0.001", "-1", "0", "1", "abc"]), extra=st.lists(
           st.sampled_from(["--overwrite", "--dry-run", "--json", "-q", "-v", "--to", "dog", "--suffix", "_x",
                            "--max-pixels", "100", "--device", "cpu", "--device", "tpu", "--out", "in"]), max_size=3))
def test_translate_options(world, size, tile, fmt, direction, quality, batch, workers, shard, backend, precision,
                           max_memory, extra):
    work = _isolated(world, "translate")
    out = work / "out"
    args = ["translate", world / "in", "--model", world / "model", "--out", out]
    for flag, v in (("--size", size), ("--tile", tile), ("--format", fmt), ("--direction", direction),
                    ("--quality", quality), ("--batch-size", batch), ("--workers", workers), ("--shard", shard),
                    ("--backend", backend), ("--precision", precision), ("--max-memory", max_memory)):
        if v is not None:
            args += [flag, v]
    before = snapshot(world, skip=(out, world / "runs-of"))
    code, _, err = run(*args, *extra)
    check(code, err)
    assert code in (0, 1, 2, 3), err
    check_outputs(out)
    assert snapshot(world, skip=(out, world / "runs-of")) == before  # nothing outside --out changed


@SETTINGS
@given(seeds=st.sampled_from([None, "0-3", "5", "3,1", "0-", "a", "-1", "2-1", "0-100000000"]),
       grid=st.sampled_from([None, "2x2", "1x1", "0x3", "x", "4x4"]), scale=opt_int, batch=opt_int,
       steps=opt_int, fps=opt_int, method=st.sampled_from([None, "slerp", "lerp", "cubic"]),
       out_name=st.sampled_from(["w.gif", "w.mp4", "w.png", "w.txt", "dir"]), cmd=st.sampled_from(["sample", "interpolate"]))
def test_sample_and_interpolate_options(world, seeds, grid, scale, batch, steps, fps, method, out_name, cmd):
    work = _isolated(world, "sample")
    args = [cmd, "--model", "emoji32", "--out", work / out_name, "--overwrite"]
    opts = [("--seeds", seeds), ("--scale", scale)]
    opts += [("--grid", grid), ("--batch-size", batch)] if cmd == "sample" else [("--steps", steps), ("--fps", fps), ("--method", method)]
    for flag, v in opts:
        if v is not None:
            args += [flag, v]
    if cmd == "interpolate" and steps is not None and steps > 50:
        return  # long walks are not what this fuzzes
    before = snapshot(world, skip=(work,))
    code, _, err = run(*args)
    check(code, err)
    assert code in (0, 2, 3), err
    check_outputs(work)
    assert snapshot(world, skip=(work,)) == before


@SETTINGS
@given(size=st.sampled_from([None, -4, 0, 7, 16, 32, 33]), max_steps=st.sampled_from([None, 0, 1, 2, -1, 10**6]),
       epochs=st.sampled_from([None, 0, 1, 2]), loss=st.sampled_from([None, "lsgan", "hinge", "wgangp", "nope"]),
       ngf=st.sampled_from([None, 0, 2, 4]), upsample=st.sampled_from([None, "resize", "transpose", "x"]),
       name=st.sampled_from([None, "ok", "../x", "", ".h", "a/b"]), kind=st.sampled_from(["cyclegan", "dcgan", "three"]))
def test_train_options(world, size, max_steps, epochs, loss, ngf, upsample, name, kind):
    work = _isolated(world, "train")
    folders = {"cyclegan": [world / "A", world / "B"], "dcgan": [world / "A"], "three": [world / "A"] * 3}[kind]
    args = ["train", *folders, "--runs-dir", work, "--ndf", "4", "--blocks", "1", "--workers", "0", "-q",
            "--max-steps", max_steps if max_steps is not None else 1]
    for flag, v in (("--size", size), ("--epochs", epochs), ("--loss", loss), ("--ngf", ngf if ngf is not None else 4),
                    ("--upsample", upsample), ("--name", name)):
        if v is not None:
            args += [flag, v]
    if kind == "dcgan" and size not in (16, 32):
        args += ["--size", "16"]
    before = snapshot(world, skip=(work,))
    code, _, err = run(*args)
    check(code, err)
    assert code in (0, 2, 3), err
    assert snapshot(world, skip=(work,)) == before


# ------------------------------------------------------------------------------- corrupted inputs

def corrupt(data: bytes, how: str, pos: float, bit: int) -> bytes:
    if how == "truncate":
        return data[: int(len(data) * pos)]
    i = min(len(data) - 1, int(len(data) * pos))
    b = bytearray(data)
    b[i] ^= 1 << bit
    return bytes(b)


damage = dict(how=st.sampled_from(["truncate", "flip"]), pos=st.floats(0.0, 0.999), bit=st.integers(0, 7))


@pytest.fixture(scope="module")
def clip(world):
    from test_video import make_video

    make_video(world / "clip.mp4", 24, 16, fps=6, seconds=1)
    return world / "clip.mp4"


@SETTINGS
@given(kind=st.sampled_from(["png", "jpg", "mp4"]), **damage)
def test_corrupted_media(world, clip, kind, how, pos, bit):
    work = _isolated(world, "media")
    src = work / "in"
    src.mkdir()
    if kind == "mp4":
        data = clip.read_bytes()
    else:
        buf = io.BytesIO()
        Image.fromarray(np.random.default_rng(1).integers(0, 255, (20, 28, 3), dtype=np.uint8)).save(
            buf, format="PNG" if kind == "png" else "JPEG")
        data = buf.getvalue()
    (src / f"x.{kind}").write_bytes(corrupt(data, how, pos, bit))
    save_rgb(src / "good.png", 12, 12)
    code, out, err = run("translate", src, "--model", world / "model", "--out", work / "out")
    check(code, err)
    assert code in (0, 1), err
    assert (work / "out" / "good.png").is_file()  # one bad file never stops the others
    check_outputs(work / "out")


@pytest.fixture(scope="module")
def trained(world):
    work = world / "trained"
    code, _, err = run("train", world / "A", world / "B", "--runs-dir", work, "--name", "r", "--size", "32",
                       "--load-size", "32", "--ngf", "2", "--ndf", "2", "--blocks", "1", "--max-steps", "2",
                       "--epochs", "1", "--decay-epochs", "1", "--workers", "0", "-q")
    assert code == 0, err
    return work / "r"


@SETTINGS
@given(target=st.sampled_from(["model.safetensors", "config.json", "resume.pt"]), **damage)
def test_corrupted_checkpoints(world, trained, target, how, pos, bit):
    work = _isolated(world, "ckpt")
    run_dir = work / "r"
    shutil.copytree(trained, run_dir)
    ck = run_dir / "checkpoints" / "step-00000002"
    f = ck / target
    f.write_bytes(corrupt(f.read_bytes(), how, pos, bit))
    save_rgb(work / "p.png", 16, 16)
    code, _, err = run("translate", work / "p.png", "--model", ck, "--out", work / "out")
    check(code, err)
    code, _, err = run("train", "--resume", run_dir, "--epochs", "2", "--decay-epochs", "2", "-q")
    check(code, err)
    check_outputs(work / "out")
