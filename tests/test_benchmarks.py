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
