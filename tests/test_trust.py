"""Trust: no path escapes, no shadowed names, no decompression bombs, no stale-file races, no
skip-existing that hides another model's output, one-line errors for bad options, no exit 70."""

import json
import os
import socket
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import save_rgb


def tiny_run(cli, tmp_path, name="r1"):
    a, b = tmp_path / "A", tmp_path / "B"
    for i in range(2):
        save_rgb(a / f"{i}.png", 32, 32, seed=i)
        save_rgb(b / f"{i}.png", 32, 32, seed=10 + i)
    r = cli("train", a, b, "--name", name, "--size", "32", "--load-size", "32", "--ngf", "4", "--ndf", "4",
            "--blocks", "1", "--max-steps", "2", "--workers", "0", "-q")
    assert r.code == 0, r.err
    return a, b


BAD_NAMES = ["../../victim", "ABSOLUTE", "a/b", "a\\b", "", ".", "..", ".hidden", "x:1"]


@pytest.mark.parametrize("bad", BAD_NAMES)
def test_user_names_never_become_paths_outside(cli, tmp_path, tiny_cyclegan, isolated_home, bad):
    if bad == "ABSOLUTE":
        bad = str(tmp_path / "abs")  # an absolute path, inside this test's folder
    tiny_run(cli, tmp_path)
    victim = tmp_path / "victim"
    victim.mkdir(exist_ok=True)
    (victim / "keep.txt").write_text("mine")
    for args in (["runs", "promote", "r1", "--as", bad, "--overwrite"],
                 ["zoo", "import", tiny_cyclegan, "--name", bad, "--overwrite"],
                 ["train", tmp_path / "A", tmp_path / "B", "--name", bad, "--max-steps", "1"]):
        r = cli(*args)
        assert r.code == 2, (args, r.err)
        assert len(r.err_lines) == 1 and r.err.startswith("ganctl: error: ")
    assert (victim / "keep.txt").read_text() == "mine" and sorted(os.listdir(victim)) == ["keep.txt"]
    assert not (tmp_path / "abs").exists()


def test_names_of_shipped_models_are_not_shadowed(cli, tmp_path, tiny_cyclegan, isolated_home):
    tiny_run(cli, tmp_path)
    for args in (["runs", "promote", "r1", "--as", "photo2sketch"], ["zoo", "import", tiny_cyclegan, "--name", "emoji32"],
                 ["zoo", "import", tiny_cyclegan, "--name", "sketch"],  # an alias
                 ["zoo", "import", tiny_cyclegan, "--name", "Horse2Zebra"]):  # an official name, another case
        r = cli(*args)
        assert r.code == 2 and "zoo model" in r.err, (args, r.err)
    save_rgb(tmp_path / "p.png", 24, 24)
    assert cli("translate", tmp_path / "p.png", "--model", "photo2sketch", "--out", tmp_path / "o").code == 0
    # user:NAME addresses the user's zoo in rm
    assert cli("zoo", "import", tiny_cyclegan, "--name", "mine").code == 0
    r = cli("zoo", "rm", "user:mine")
    assert r.code == 0, r.err
    assert not (isolated_home / "zoo" / "mine").exists()


def test_did_you_mean_names_each_model_once(cli, tmp_path, tiny_cyclegan):
    tiny_run(cli, tmp_path, "mymodel")
    assert cli("zoo", "import", tiny_cyclegan, "--name", "mymodel").code == 0  # a run and a zoo model
    save_rgb(tmp_path / "x.png", 16, 16)
    r = cli("translate", tmp_path / "x.png", "--model", "mymodle")
    assert r.code == 3
    hint = r.err.split("did you mean", 1)[1]
    names = [n.strip(" ?\n") for n in hint.split(",")]
    assert len(names) == len(set(names)), r.err


# ------------------------------------------------------------------------------- bombs

def png_bomb(path: Path, w: int, h: int) -> Path:
    """A valid gray PNG of w x h zero pixels: tiny on disk, w*h bytes once decoded."""
    raw = zlib.compress(b"".join(b"\x00" + bytes(w) for _ in range(h)), 9)

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", raw) + chunk(b"IEND", b""))
    return path


def test_pillow_guard_is_left_alone():
    import cyclegan_cli.data.images  # noqa: F401  (importing ganctl must not switch Pillow's guard off)

    assert Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS >= 89_000_000


def test_bombs_are_refused_from_the_header_everywhere(cli, tmp_path, tiny_cyclegan):
    bomb = png_bomb(tmp_path / "data" / "bomb.png", 12000, 12000)  # 144 Mpx, a few hundred kB on disk
    assert bomb.stat().st_size < 1_000_000
    save_rgb(tmp_path / "data" / "ok.png", 32, 32)
    r = cli("translate", bomb, "--model", tiny_cyclegan, "--out", tmp_path / "o")
    assert r.code == 1 and "pixel limit" in r.err and len(r.err_lines) == 2  # the file's line + the summary
    # --max-pixels lowers the limit for one run
    r = cli("translate", tmp_path / "data" / "ok.png", "--model", tiny_cyclegan, "--out", tmp_path / "o2",
            "--max-pixels", "100")
    assert r.code == 1 and "pixel limit" in r.err
    from cyclegan_cli.data.datasets import scan_folder

    files, skipped = scan_folder(tmp_path / "data")
    assert [f.name for f in files] == ["ok.png"] and skipped == 1


# ------------------------------------------------------------------------------- temp files

def test_temp_files_are_exclusive_and_cleanup_spares_other_hosts(tmp_path):
    from cyclegan_cli import files as img

    dst = tmp_path / "out.png"
    tmp = img.tmp_name(dst)
    assert socket.gethostname().replace(".", "_")[:10] in tmp.name and str(os.getpid()) in tmp.name
    # a symlink planted at the temporary name is never followed
    target = tmp_path / "elsewhere.txt"
    target.write_text("keep")
    os.symlink(target, tmp)
    path, fh = img.create_tmp(dst)
    with fh:
        fh.write(b"new")
    assert target.read_text() == "keep" and not path.is_symlink() and path.read_bytes() == b"new"
    os.unlink(path)
    # stale cleanup: only this host's files whose process is gone
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = img.host_tag()
    mine_dead = tmp_path / f".a.png.{host}.{dead.pid}{img.TMP_SUFFIX}"
    mine_alive = tmp_path / f".b.png.{host}.{os.getppid()}{img.TMP_SUFFIX}"
    other_host = tmp_path / f".c.png.otherhost.{dead.pid}{img.TMP_SUFFIX}"
    for f in (mine_dead, mine_alive, other_host):
        f.write_bytes(b"partial")
    assert img.remove_stale_tmp(tmp_path) == 1
    assert not mine_dead.exists() and mine_alive.exists() and other_host.exists()


# ------------------------------------------------------------------------------- skip-existing

def test_rerun_with_another_maker_refuses_or_overwrites(cli, tmp_path, tiny_cyclegan):
    for i in range(3):
        save_rgb(tmp_path / "in" / f"{i}.png", 24, 20, seed=i)
    out = tmp_path / "out"
    assert cli("translate", tmp_path / "in", "--model", tiny_cyclegan, "--out", out).code == 0
    before = {p.name: p.read_bytes() for p in out.glob("*.png")}
    again = cli("translate", tmp_path / "in", "--model", tiny_cyclegan, "--out", out, "--json")
    assert again.code == 0 and {json.loads(l)["status"] for l in again.out.splitlines()} == {"skipped"}
    for other in (["--direction", "BtoA"], ["--model", "photo2sketch"], ["--size", "16"]):
        args = ["translate", tmp_path / "in", "--out", out, *(["--model", tiny_cyclegan] if "--model" not in other else []), *other]
        r = cli(*args)
        assert r.code == 2 and "--overwrite" in r.err and "--out" in r.err and len(r.err_lines) == 1, (other, r.err)
        assert {p.name: p.read_bytes() for p in out.glob("*.png")} == before  # nothing touched
    r = cli("translate", tmp_path / "in", "--model", tiny_cyclegan, "--out", out, "--direction", "BtoA", "--overwrite")
    assert r.code == 0 and len(r.out.split()) == 3
    assert {p.name: p.read_bytes() for p in out.glob("*.png")} != before
    # and now BtoA is what made them: a BtoA rerun skips
    r = cli("translate", tmp_path / "in", "--model", tiny_cyclegan, "--out", out, "--direction", "BtoA", "--json")
    assert r.code == 0 and {json.loads(l)["status"] for l in r.out.splitlines()} == {"skipped"}


# ------------------------------------------------------------------------------- options

@pytest.mark.parametrize("args, needle", [
    (["--size", "-5"], "--size"), (["--size", "0"], "--size"), (["--direction", "sideways"], "direction"),
    (["--tile", "7"], "--tile"), (["--format", "gif"], "format"), (["--backend", "cuda"], "backend"),
    (["--precision", "int4"], "precision"), (["--quality", "0"], "quality"), (["--max-memory", "-1"], "--max-memory"),
    (["--shard", "3/2"], "--shard"), (["--crf", "99"], "--crf"), (["--start", "-1"], "--start"),
    (["--device", "tpu"], "device"),
])
def test_bad_options_answer_at_once(cli, tmp_path, tiny_cyclegan, args, needle):
    for i in range(2):
        save_rgb(tmp_path / "in" / f"{i}.png", 16, 16, seed=i)
    out = tmp_path / "out"
    assert cli("translate", tmp_path / "in", "--model", tiny_cyclegan, "--out", out).code == 0  # every output exists
    r = cli("translate", tmp_path / "in", "--model", tiny_cyclegan, "--out", out, *args)
    assert r.code == 2 and needle in r.err and len(r.err_lines) == 1, r.err
    assert "ganctl: error: ganctl" not in r.err


def test_out_naming_a_file_is_one_usage_error(cli, tmp_path, tiny_cyclegan):
    for i in range(3):
        save_rgb(tmp_path / "in" / f"{i}.png", 16, 16, seed=i)
    (tmp_path / "afile").write_text("x")
    r = cli("translate", tmp_path / "in", "--model", tiny_cyclegan, "--out", tmp_path / "afile")
    assert r.code == 2 and len(r.err_lines) == 1 and "is a file" in r.err
    assert (tmp_path / "afile").read_text() == "x"


def test_translate_with_a_dcgan_is_one_plain_line(cli, tmp_path):
    save_rgb(tmp_path / "a.png", 16, 16)
    r = cli("translate", tmp_path / "a.png", "--model", "emoji32")
    assert r.code == 2 and len(r.err_lines) == 1, r.err
    assert "emoji32" in r.err and "ganctl sample" in r.err and "LoadedModel" not in r.err and "/" not in r.err


def test_no_such_option_has_one_prefix(cli):
    r = cli("translate", "x.png", "--model", "m", "--nope")
    assert r.code == 2 and r.err.startswith("ganctl: error: translate: ") and "ganctl: error: ganctl" not in r.err


# ------------------------------------------------------------------------------- truncated data

def truncated_jpeg(path: Path, seed: int = 0) -> Path:
    save_rgb(path, 64, 64, seed=seed, fmt="JPEG")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # the header is intact: only decoding finds the damage
    return path


@pytest.mark.parametrize("kind", ["cyclegan", "dcgan"])
def test_truncated_images_in_training_data_are_skipped(cli, tmp_path, kind):
    a, b = tmp_path / "A", tmp_path / "B"
    for i in range(4):
        save_rgb(a / f"{i}.png", 32, 32, seed=i)
        save_rgb(b / f"{i}.png", 32, 32, seed=10 + i)
    truncated_jpeg(a / "bad1.jpg")
    truncated_jpeg(a / "bad2.jpg", seed=1)
    folders = [a, b] if kind == "cyclegan" else [a]
    extra = ["--load-size", "32", "--blocks", "1"] if kind == "cyclegan" else ["--batch-size", "2"]
    r = cli("train", *folders, "--name", "t", "--size", "32", "--ngf", "4", "--ndf", "4", "--max-steps", "6",
            "--workers", "0", *extra)
    assert r.code == 0, r.err
    lines = [l for l in r.err_lines if "bad" in l]
    assert len(lines) == 2 and all("skipped" in l for l in lines), r.err
    assert (tmp_path / "runs" / "t" / "checkpoints" / "step-00000006").is_dir()


def test_truncated_images_in_nearest_are_skipped(cli, tmp_path):
    d = tmp_path / "data"
    for i in range(3):
        save_rgb(d / f"{i}.png", 32, 32, seed=i)
    truncated_jpeg(d / "bad.jpg")
    r = cli("nearest", "--data", d, "--images", d / "0.png", "--out", tmp_path / "n.png")
    assert r.code == 0, r.err
    assert sum("bad.jpg" in l for l in r.err_lines) == 1 and (tmp_path / "n.png").is_file()


def test_checkpoints_respect_the_umask(cli, tmp_path):
    old = os.umask(0o022)
    try:
        tiny_run(cli, tmp_path, "perm")
    finally:
        os.umask(old)
    ck = tmp_path / "runs" / "perm" / "checkpoints" / "step-00000002"
    assert (ck.stat().st_mode & 0o777) == 0o755
    for f in ck.iterdir():
        assert (f.stat().st_mode & 0o777) == 0o644, f


# ------------------------------------------------------------------------------- schedules and resume

def test_schedule_never_negative_and_bounded(cli, tmp_path):
    a, b = tiny_run(cli, tmp_path, "sched")  # 2 images: 2 steps per epoch
    base = ["train", a, b, "--size", "32", "--load-size", "32", "--ngf", "4", "--ndf", "4", "--blocks", "1",
            "--workers", "0", "--log-every", "1", "-q"]
    r = cli(*base, "--name", "s2", "--epochs", "2", "--decay-epochs", "2")
    assert r.code == 0, r.err
    lrs = [json.loads(l)["lr"] for l in (tmp_path / "runs" / "s2" / "stats.jsonl").read_text().splitlines()]
    assert len(lrs) == 8 and all(x >= 0 for x in lrs) and lrs == sorted(lrs, reverse=True)
    r = cli(*base, "--name", "s3", "--epochs", "1", "--decay-epochs", "1", "--max-steps", "50")
    assert r.code == 2 and "--epochs" in r.err and "--decay-epochs" in r.err and len(r.err_lines) == 1
    # resuming past the end: extend the schedule explicitly
    r = cli("train", "--resume", "s2", "--max-steps", "12", "-q")
    assert r.code == 2 and "--decay-epochs" in r.err
    r = cli("train", "--resume", "s2", "--epochs", "4", "--decay-epochs", "4", "-q")
    assert r.code == 0, r.err
    assert (tmp_path / "runs" / "s2" / "checkpoints" / "step-00000016").is_dir()


def test_resume_restores_every_saved_option(cli, tmp_path):
    a, b = tiny_run(cli, tmp_path, "x0")
    args = ["train", a, b, "--name", "keep", "--size", "32", "--load-size", "32", "--ngf", "4", "--ndf", "4",
            "--blocks", "1", "--upsample", "resize", "--precision", "fp32", "--lr", "0.001", "--epochs", "3",
            "--decay-epochs", "3", "--max-steps", "2", "--workers", "0", "-q"]
    assert cli(*args).code == 0
    r = cli("train", "--name", "keep", "--max-steps", "4", "-q")  # the name alone continues
    assert r.code == 0, r.err
    r = cli("train", "--resume", "keep", "--max-steps", "6", "-q")  # so does --resume
    assert r.code == 0, r.err
    opts = json.loads((tmp_path / "runs" / "keep" / "options.json").read_text())
    assert opts["max_steps"] == 6 and opts["lr"] == 0.001 and opts["upsample"] == "resize"
    r = cli("train", "--name", "keep", "--lr", "0.01", "--ngf", "8", "--max-steps", "8")
    assert r.code == 2 and "--lr" in r.err and "--ngf" in r.err and len(r.err_lines) == 1
    r = cli("train", "--name", "keep", "--lr", "0.001", "--max-steps", "8", "-q")  # the same value is no conflict
    assert r.code == 0, r.err


# ------------------------------------------------------------------------------- sample / interpolate / export

def test_dcgan_commands_refuse_bad_values(cli, tmp_path):
    for fps in ("0", "-5"):
        r = cli("interpolate", "--model", "emoji32", "--seeds", "1,2", "--fps", fps, "--out", tmp_path / "w.mp4")
        assert r.code == 2 and "--fps" in r.err and not (tmp_path / "w.mp4").exists()
    r = cli("sample", "--model", "emoji32", "--seeds", "0-63", "--grid", "4x4", "--out", tmp_path / "g.png")
    assert r.code == 2 and "64" in r.err and "8x8" in r.err and not (tmp_path / "g.png").exists()
    r = cli("sample", "--model", "emoji32", "--seeds", "0-15", "--grid", "4x4", "--scale", "3", "--out", tmp_path / "g.png")
    assert r.code == 0, r.err
    assert Image.open(tmp_path / "g.png").size == (4 * 96 + 5 * 2, 4 * 96 + 5 * 2)


def test_export_dcgan_to_onnx_matches_torch(cli, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    import torch

    from cyclegan_cli.infer.sample import latents_for_seeds
    from cyclegan_cli.zoo.resolve import load

    r = cli("export", "emoji32", "--onnx", tmp_path / "e.onnx")
    assert r.code == 0, r.err
    G = load("emoji32").nets["G"].float().eval()
    z = latents_for_seeds([0, 1, 2], G.nz)
    with torch.no_grad():
        ref = G(z).numpy()
    sess = ort.InferenceSession(str(tmp_path / "e.onnx"), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"z": z.numpy()})[0]
    assert got.shape == ref.shape == (3, 3, 32, 32) and np.abs(got - ref).max() < 1e-3


def test_video_with_no_frames_in_range_is_an_input_error(cli, tmp_path, tiny_cyclegan):
    from test_video import make_video

    make_video(tmp_path / "v.mp4", 32, 24, fps=10, seconds=1, audio=False)
    r = cli("translate", tmp_path / "v.mp4", "--model", tiny_cyclegan, "--out", tmp_path / "o", "--start", "9999")
    assert r.code == 1 and "no video frames" in r.err and len(r.err_lines) == 2  # the file's line + the summary
    assert not any(p.suffix == ".mp4" for p in (tmp_path / "o").rglob("*")) if (tmp_path / "o").exists() else True
    r = cli("translate", tmp_path / "v.mp4", "--model", tiny_cyclegan, "--out", tmp_path / "f", "--frames-out",
            tmp_path / "frames", "--max-frames", "2")
    assert r.code == 0, r.err
    assert r.out.strip() == str(tmp_path / "frames" / "v")  # where the frames went, not a video never written
    assert len(list((tmp_path / "frames" / "v").glob("*.png"))) == 2


def test_training_cache_is_uint8_and_capped(tmp_path):
    from cyclegan_cli.data.datasets import SingleDataset, UnpairedDataset

    files = [save_rgb(tmp_path / f"{i}.png", 40, 40, seed=i) for i in range(6)]
    d = UnpairedDataset(files, files, load_size=36, crop_size=32, cache_bytes=2 * 36 * 36 * 3 * 2)
    for i in range(6):
        d[(0, i, i, i)]
    cached = list(d.a._cache.values())
    assert cached and all(a.dtype == np.uint8 for a in cached)
    assert len(d.a._cache) == 2 and d.a._used <= d.a.cache_bytes  # the cap holds; the rest is decoded per use
    s = SingleDataset(files, image_size=32, cache_bytes=10**9)
    t = s[(0, 0, 3, 0)]
    assert t.dtype.is_floating_point and t.shape == (3, 32, 32) and s.images._cache[3].dtype == np.uint8
