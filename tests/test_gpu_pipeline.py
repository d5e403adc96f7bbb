"""The GPU translate pipeline: JPEGs decoded in batches on the device (nvJPEG on a GPU), the
others on the CPU; --compile. The decode path is device-generic, so it also runs here on the
CPU (torchvision's CPU JPEG decoder in place of nvJPEG) against the ordinary Pillow path; the
CUDA-marked tests run it on a GPU."""

import numpy as np
import pytest
import torch
from PIL import Image

from test_fullres import photo_like


def _inputs(folder):
    folder.mkdir()
    for i in range(3):  # three of one size: one batched decode
        Image.fromarray(photo_like(96, 64, i)).save(folder / f"same{i}.jpg", quality=90)
    Image.fromarray(photo_like(80, 72, 7)).save(folder / "other.jpg", quality=90)
    Image.fromarray(photo_like(64, 64, 8)).convert("CMYK").save(folder / "cmyk.jpg")  # the CPU reader
    rot = Image.fromarray(photo_like(96, 64, 9))
    exif = rot.getexif()
    exif[0x0112] = 6  # rotated: the CPU reader applies it
    rot.save(folder / "rotated.jpg", exif=exif, quality=90)
    Image.fromarray(photo_like(64, 48, 10)).save(folder / "plain.png")
    data = (folder / "same0.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(data[: len(data) // 3])  # a valid header, then nothing


def _translate(tmp_path, folder, out, on_device, spy=None):
    from cyclegan_cli.checkpoints import ModelConfig
    from cyclegan_cli.infer.engine import Translator
    from cyclegan_cli.infer.translate import plan_jobs, translate_images
    from cyclegan_cli.models import build

    torch.manual_seed(0)
    net = build("resnet_generator", ngf=8, n_blocks=2)
    t = Translator(net, ModelConfig(kind="cyclegan", nets={}), device="cpu", backend="torch")
    t.decode_on_device = on_device
    if spy is not None:
        real = t.run_jpegs
        t.run_jpegs = lambda blobs: (spy.append(len(blobs)), real(blobs))[1]
    jobs, problems = plan_jobs([folder], out)
    assert not problems
    results = []
    summary = translate_images(t, jobs, batch_size=4, on_result=results.append)
    return summary, {r["input"].split("/")[-1]: r for r in results}


def test_device_jpeg_decode_path_matches_the_pillow_path(tmp_path):
    src = tmp_path / "in"
    _inputs(src)
    calls = []
    s_dev, r_dev = _translate(tmp_path, src, tmp_path / "dev", True, calls)
    s_cpu, r_cpu = _translate(tmp_path, src, tmp_path / "cpu", False)
    # the 3 same-size JPEGs and the truncated one (its header says the same size) together, the other
    # one alone; no CMYK/rotated/PNG. The batch with the truncated file fails on the device and is
    # redone file by file on the CPU, so only that file fails.
    assert sorted(calls) == [1, 4]
    assert (s_dev.converted, s_dev.failed) == (s_cpu.converted, s_cpu.failed) == (7, 1)
    assert r_dev["truncated.jpg"]["status"] == "failed" and "truncated.jpg" in r_dev["truncated.jpg"]["error"]
    for name, r in r_cpu.items():
        if r["status"] != "ok":
            continue
        a = np.asarray(Image.open(tmp_path / "dev" / name), dtype=int)
        b = np.asarray(Image.open(tmp_path / "cpu" / name), dtype=int)
        assert a.shape == b.shape, name
        assert np.abs(a - b).mean() < 0.5 and np.abs(a - b).max() <= 8, name  # the same decoder family


@pytest.mark.cuda
def test_translate_jpegs_on_cuda_decodes_on_the_gpu(tmp_path, cli, tiny_cyclegan, monkeypatch):
    from cyclegan_cli.infer.engine import Translator

    src = tmp_path / "in"
    _inputs(src)
    calls = []
    real = Translator.run_jpegs
    monkeypatch.setattr(Translator, "run_jpegs", lambda self, blobs: (calls.append(len(blobs)), real(self, blobs))[1])
    gpu = cli("translate", src, "--model", tiny_cyclegan, "--out", tmp_path / "gpu", "--device", "cuda", "--precision", "fp32")
    cpu = cli("translate", src, "--model", tiny_cyclegan, "--out", tmp_path / "cpu", "--device", "cpu")
    assert gpu.code == cpu.code == 1  # the truncated JPEG
    assert sum(calls) == 4
    for name in ("same0.jpg", "same1.jpg", "same2.jpg", "other.jpg", "cmyk.jpg", "rotated.jpg", "plain.png"):
        a = np.asarray(Image.open(tmp_path / "gpu" / name), dtype=int)
        b = np.asarray(Image.open(tmp_path / "cpu" / name), dtype=int)
        assert a.shape == b.shape and np.abs(a - b).mean() < 2, name  # nvJPEG's IDCT differs from libjpeg's a little


def _compiled_equals_eager(tmp_path, cli, model, device_args, mode):
    (tmp_path / "in").mkdir()
    for i in range(2):
        Image.fromarray(photo_like(64, 64, i)).save(tmp_path / "in" / f"{i}.png")
    a = cli("translate", tmp_path / "in", "--model", model, "--out", tmp_path / "c", *device_args, "--compile", "-v")
    b = cli("translate", tmp_path / "in", "--model", model, "--out", tmp_path / "e", *device_args)
    assert a.code == b.code == 0, a.err
    assert f"--compile: torch.compile mode {mode}" in a.err
    for i in range(2):
        x = np.asarray(Image.open(tmp_path / "c" / f"{i}.png"), dtype=int)
        y = np.asarray(Image.open(tmp_path / "e" / f"{i}.png"), dtype=int)
        assert np.abs(x - y).max() <= 2


@pytest.mark.cuda
def test_translate_compile_on_cuda(tmp_path, cli, tiny_cyclegan):
    _compiled_equals_eager(tmp_path, cli, tiny_cyclegan, ["--device", "cuda", "--precision", "fp32"], "reduce-overhead")


@pytest.mark.long
def test_translate_compile_on_cpu(tmp_path, cli, tiny_cyclegan):
    """torch.compile on the CPU (inductor's C++ backend): slow to compile, so on request."""
    _compiled_equals_eager(tmp_path, cli, tiny_cyclegan, ["--backend", "torch"], "default")
