"""--precision int8 / fast on the CPU: the choice, the accuracy against fp32 on the shipped model and
real photos, calibration (first images of a job, then stored), the layers kept in fp32, and the
one-line errors."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from test_fullres import by_hand, photo_like

REPO = Path(__file__).resolve().parents[1]
PHOTOS = sorted((REPO / "examples" / "photos").glob("*.jpg")) + sorted((REPO / "benchmarks" / "heldout").glob("*.jpg"))


def psnr(a, b) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def load_512(f: Path) -> np.ndarray:
    im = Image.open(f).convert("RGB")
    s = 512 / max(im.size)
    return np.asarray(im.resize((round(im.width * s), round(im.height * s)), Image.LANCZOS))


def test_fast_picks_by_cpu_flags():
    from cyclegan_cli.device import fast_precision

    cpu = torch.device("cpu")
    assert fast_precision(cpu, {"avx2", "fma", "amx_bf16", "amx_tile"}, True)[0] == "bf16"
    assert fast_precision(cpu, {"avx512f", "avx512_bf16"}, True)[0] == "bf16"
    choice, why = fast_precision(cpu, {"avx2", "fma"}, True)
    assert choice == "int8" and "AVX2" in why
    assert "VNNI" in fast_precision(cpu, {"avx2", "avx_vnni"}, True)[1]
    choice, why = fast_precision(cpu, {"avx2", "fma"}, False)
    assert choice == "fp32" and "pip install 'ganctl[onnx]'" in why


# the CPU kinds fast chooses between, by their /proc/cpuinfo flags
AVX2_ONLY = {"sse4_2", "avx", "avx2", "fma"}  # e.g. Zen 2, Haswell
AVX512 = AVX2_ONLY | {"avx512f", "avx512bw", "avx512vl", "avx512_vnni"}  # e.g. Cascade Lake: no bf16
AMX = AVX512 | {"avx512_bf16", "amx_bf16", "amx_tile", "amx_int8"}  # e.g. Sapphire Rapids


@pytest.mark.parametrize("flags, expected", [(AVX2_ONLY, "int8"), (AVX512, "int8"), (AMX, "bf16")],
                         ids=["avx2", "avx512", "amx"])
def test_fast_picks_on_every_cpu_kind(cli, tiny_cyclegan, tmp_path, monkeypatch, flags, expected):
    """What a user of --precision fast gets, with the CPU's flags faked and its timings too (each
    candidate as quick as it is where it is native): the same on any test machine. The flags decide
    what is measured; the figures, which is chosen."""
    pytest.importorskip("onnxruntime")
    from conftest import save_rgb

    from cyclegan_cli.infer import fastpath

    measured = []

    def measure(runners, **k):
        measured.append(sorted(runners))
        return {n: {"s": {"bf16": 0.1, "int8": 0.2}.get(n, 1.0), "db": 40.0} for n in runners}

    monkeypatch.setattr("cyclegan_cli.device.cpu_flags", lambda: set(flags))
    monkeypatch.setattr(fastpath, "measure", measure)
    save_rgb(tmp_path / "in" / "a.png", 32, 32)
    r = cli("translate", tmp_path / "in", "--model", tiny_cyclegan, "--out", tmp_path / "o", "--precision", "fast",
            "-v", "--json")
    assert r.code == 0, r.err
    assert f"--precision fast: {expected}" in r.err
    assert measured == [sorted(["bf16", "int8", "fp32"] if flags is AMX else ["int8", "fp32"])]  # bf16: native only
    # int8 runs its first images in fp32 while it calibrates
    assert json.loads(r.out)["precision"] == ("fp32" if expected == "int8" else expected)


def test_int8_shipped_photo2sketch_within_32db_on_real_photos(tmp_path):
    """The issue's accuracy target, as a user meets it: the shipped model, real photos at 512 px,
    calibrated on the first four photos of the job; the held-out three were not calibrated on."""
    pytest.importorskip("onnxruntime")
    from cyclegan_cli.infer.engine import Translator
    from cyclegan_cli.infer.quantize import CALIBRATION_IMAGES
    from cyclegan_cli.zoo.resolve import load

    model = load("photo2sketch-cyclegan")  # the README's figures: the narrowest (the others run 41-48 dB)
    fp32 = Translator(model.generator("AtoB"), model.config, device="cpu", backend="torch")
    q = Translator(model.generator("AtoB"), model.config, device="cpu", precision="int8", cache_dir=tmp_path)
    photos = [load_512(f) for f in PHOTOS]
    assert len(photos) >= CALIBRATION_IMAGES + 3
    for rgb in photos[:CALIBRATION_IMAGES]:  # these run in fp32 (ONNX Runtime) while they calibrate
        assert q.ran_as(*rgb.shape[:2]) == "fp32"
        assert psnr(q.run_image(rgb), fp32.run_image(rgb)) > 50
    assert q.backend.calibrated
    scores = []
    for rgb in photos:
        assert q.ran_as(*rgb.shape[:2]) == "int8"
        scores.append(psnr(q.run_image(rgb), fp32.run_image(rgb)))
    assert min(scores) >= 32, [round(s, 1) for s in scores]
    assert all(s < 60 for s in scores)  # it did run in int8: not the fp32 graph again


def test_int8_layers_kept_in_fp32(tmp_path):
    pytest.importorskip("onnxruntime")
    import onnx

    from cyclegan_cli.infer.engine import Translator
    from cyclegan_cli.models import build

    torch.manual_seed(0)
    net = build("resnet_generator", ngf=8, n_blocks=3)
    from cyclegan_cli.checkpoints import ModelConfig

    cfg = ModelConfig(kind="cyclegan", nets={})
    q = Translator(net, cfg, device="cpu", precision="int8", cache_dir=tmp_path)
    for i in range(4):
        q(photo_like(64, 64, i)[None])
    g = onnx.load(str(q.backend.path)).graph
    convs = [n for n in g.node if n.op_type in ("Conv", "ConvTranspose")]
    assert len(convs) == 3 + 2 * 3 + 3  # first, two down; 2 per block; two up, last
    produced_by_dq = {o for n in g.node if n.op_type == "DequantizeLinear" for o in n.output}
    quantized = [any(i in produced_by_dq for i in n.input[:2]) for n in convs]
    assert quantized == [False] * 3 + [True] * 6 + [False] * 3


def resnet_checkpoint(folder: Path, seed: int, blocks: int) -> Path:
    """A ResNet generator (ngf 8) with random weights, saved as a ganctl model."""
    from cyclegan_cli.checkpoints import ModelConfig, save_checkpoint
    from cyclegan_cli.models import build

    torch.manual_seed(seed)
    args = {"ngf": 8, "n_blocks": blocks}
    return save_checkpoint(folder, ModelConfig(kind="cyclegan", nets={"G_A": {"arch": "resnet_generator", "args": args}}),
                           {"G_A": build("resnet_generator", **args)})


def test_int8_cli_calibrates_then_reuses_and_says_so(cli, tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    from cyclegan_cli.checkpoints import load_model
    from cyclegan_cli.infer import fastpath

    # --precision fast measures; here int8 is made the quickest (how it is measured: test_cpu_precision.py)
    monkeypatch.setattr(fastpath, "measure", lambda runners, **k: {n: {"s": 0.1 if n == "int8" else 1.0, "db": 40.0}
                                                                   for n in runners})

    ck = resnet_checkpoint(tmp_path / "m", seed=0, blocks=3)
    src = tmp_path / "in"
    src.mkdir()
    for i in range(6):
        Image.fromarray(photo_like(96, 72, i)).save(src / f"{i}.png")
    # int8 asked for by name: what fast picks depends on the CPU (see test_fast_picks_on_every_cpu_kind)
    r = cli("translate", src, "--model", ck, "--out", tmp_path / "o1", "--precision", "int8", "--json", "-v")
    assert r.code == 0, r.err
    rows = [json.loads(line) for line in r.out.splitlines()]
    assert [row["precision"] for row in rows] == ["fp32"] * 4 + ["int8"] * 2
    assert "calibration on the first 4 image(s) of this job" in r.err
    # a second job: the stored calibration, int8 from its first image, same outputs as the first job's int8 ones
    r2 = cli("translate", src, "--model", ck, "--out", tmp_path / "o2", "--precision", "int8", "--json", "-v")
    assert r2.code == 0, r2.err
    assert [json.loads(line)["precision"] for line in r2.out.splitlines()] == ["int8"] * 6
    assert "int8 calibration from 4 earlier image(s)" in r2.err
    for name in ("4.png", "5.png"):
        assert np.array_equal(np.asarray(Image.open(tmp_path / "o1" / name)), np.asarray(Image.open(tmp_path / "o2" / name)))
    # and int8 stays close to the network run in fp32 by hand
    net = load_model(ck).generator()
    for i in range(6):
        ref = by_hand(net, photo_like(96, 72, i))
        assert psnr(np.asarray(Image.open(tmp_path / "o2" / f"{i}.png")), ref) > 30


def test_int8_short_job_keeps_its_calibration_for_the_next(cli, tmp_path):
    pytest.importorskip("onnxruntime")
    ck = resnet_checkpoint(tmp_path / "m", seed=1, blocks=2)
    for k in range(3):
        d = tmp_path / f"in{k}"
        d.mkdir()
        for i in range(2):
            Image.fromarray(photo_like(64, 64, 10 * k + i)).save(d / f"{i}.png")
    seen = []
    for k in range(3):  # two images per job: 2 + 2 calibrate, the third job runs int8
        r = cli("translate", tmp_path / f"in{k}", "--model", ck, "--out", tmp_path / f"o{k}", "--precision", "int8", "--json")
        assert r.code == 0, r.err
        seen.append([json.loads(line)["precision"] for line in r.out.splitlines()])
    assert seen == [["fp32", "fp32"], ["fp32", "fp32"], ["int8", "int8"]]


def test_int8_guard_keeps_fp32_when_int8_is_far_from_it(cli, tmp_path, monkeypatch):
    """A model int8 cannot hold (here: a floor no int8 graph reaches) runs in fp32, says so without
    -v, and the verdict is stored so the next job does not calibrate again."""
    pytest.importorskip("onnxruntime")
    import cyclegan_cli.infer.quantize as quantize

    monkeypatch.setattr(quantize, "MIN_PSNR_DB", 200.0)
    ck = resnet_checkpoint(tmp_path / "m", seed=2, blocks=2)
    src = tmp_path / "in"
    src.mkdir()
    for i in range(6):
        Image.fromarray(photo_like(64, 48, i)).save(src / f"{i}.png")
    r = cli("translate", src, "--model", ck, "--out", tmp_path / "o1", "--precision", "int8", "--json")
    assert r.code == 0, r.err
    assert [json.loads(line)["precision"] for line in r.out.splitlines()] == ["fp32"] * 6
    assert "dB from fp32 on the calibration images (below 200): this model goes on in fp32" in r.err
    stored = json.loads(next((tmp_path / "ganctl-home").rglob("*-int8-ranges.json")).read_text())
    assert stored["images"] == 4 and 20 < stored["worst_db"] < 200
    r2 = cli("translate", src, "--model", ck, "--out", tmp_path / "o2", "--precision", "int8", "--json", "-v")
    assert r2.code == 0, r2.err
    assert [json.loads(line)["precision"] for line in r2.out.splitlines()] == ["fp32"] * 6
    assert "fp32: int8 was" in r2.err
    for i in range(6):  # the fp32 outputs, both times
        assert np.array_equal(np.asarray(Image.open(tmp_path / "o1" / f"{i}.png")),
                              np.asarray(Image.open(tmp_path / "o2" / f"{i}.png")))


@pytest.mark.parametrize("extra, words", [
    (["--precision", "int8", "--backend", "torch"], "not with --backend torch"),
    (["--precision", "int9"], "--precision"),
])
def test_int8_usage_errors(cli, tiny_cyclegan, tmp_path, extra, words):
    from conftest import save_rgb

    save_rgb(tmp_path / "in" / "a.png", 32, 32)
    r = cli("translate", tmp_path / "in", "--model", tiny_cyclegan, "--out", tmp_path / "o", *extra)
    assert r.code == 2 and len(r.err_lines) == 1 and words in r.err, r.err
    assert not (tmp_path / "o" / "a.png").exists()


def test_int8_without_onnxruntime(cli, tiny_cyclegan, tmp_path, monkeypatch):
    from conftest import save_rgb

    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    save_rgb(tmp_path / "in" / "a.png", 32, 32)
    r = cli("translate", tmp_path / "in", "--model", tiny_cyclegan, "--out", tmp_path / "o", "--precision", "int8")
    assert r.code == 2 and len(r.err_lines) == 1 and "pip install 'ganctl[onnx]'" in r.err
    # on a CPU without AMX/AVX512-BF16 (faked, so that this holds on any CPU) fast falls back to fp32
    # and says why with -v
    monkeypatch.setattr("cyclegan_cli.device.cpu_flags", lambda: set(AVX2_ONLY))
    r = cli("translate", tmp_path / "in", "--model", tiny_cyclegan, "--out", tmp_path / "o", "--precision", "fast", "-v", "--json")
    assert r.code == 0, r.err
    assert json.loads(r.out.splitlines()[0])["precision"] == "fp32"
    assert "--precision fast: fp32" in r.err


def test_int8_calibration_sees_a_bounded_centre_of_large_images():
    """The calibration graph returns every intermediate tensor: a 12 Mpx photo fed whole would need
    tens of GB, so calibration takes a centre crop at the same scale, on the model's size grid."""
    from cyclegan_cli.infer.quantize import CALIBRATION_SIDE, _centre

    x = np.arange(3 * 3000 * 4000, dtype=np.float32).reshape(3, 3000, 4000)
    c = _centre(x, 4)
    assert c.shape == (3, CALIBRATION_SIDE, CALIBRATION_SIDE)
    assert c[0, 0, 0] == x[0, 1244, 1744]  # the centre, its corner on the grid
    assert _centre(x[:, :300, :200], 4).shape == (3, 300, 200)  # small ones whole
    assert _centre(x[:, :768, :1024], 256).shape == (3, 512, 512)  # a U-Net's 256 px grid
