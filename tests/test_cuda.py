"""CUDA paths (autocast, channels_last, GradScaler). Skipped with a reason on machines without a GPU."""

import numpy as np
import pytest
from PIL import Image

from conftest import save_rgb

pytestmark = pytest.mark.cuda


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_translate_on_cuda_matches_cpu(tmp_path, cli, tiny_cyclegan, precision):
    save_rgb(tmp_path / "in" / "a.png", 64, 48)
    cpu = cli("translate", tmp_path / "in", "--model", tiny_cyclegan, "--out", tmp_path / "cpu", "--device", "cpu")
    gpu = cli("translate", tmp_path / "in", "--model", tiny_cyclegan, "--out", tmp_path / "gpu", "--device", "cuda",
              "--precision", precision)
    assert cpu.code == gpu.code == 0, gpu.err
    a = np.asarray(Image.open(tmp_path / "cpu" / "a.png"), dtype=int)
    b = np.asarray(Image.open(tmp_path / "gpu" / "a.png"), dtype=int)
    assert np.abs(a - b).max() <= (2 if precision == "fp32" else 32)


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_train_with_autocast(tmp_path, cli, precision):
    for d, s in (("A", 0), ("B", 9)):
        for i in range(2):
            save_rgb(tmp_path / d / f"{i}.png", 40, 40, seed=s + i)
    r = cli("train", tmp_path / "A", tmp_path / "B", "--name", "g", "--size", "32", "--load-size", "36", "--ngf", "8",
            "--ndf", "8", "--blocks", "1", "--max-steps", "6", "--device", "cuda", "--precision", precision, "-q")
    assert r.code == 0, r.err
