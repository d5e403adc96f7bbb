"""Official pix2pix generators (unet_256, batch norm, dropout) run as the paper and the official
test.py run them: batch statistics of each image, dropout off unless asked for."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from test_fullres import by_hand, photo_like
from test_translate import official_unet


@pytest.fixture
def pix2pix_pth(tmp_path):
    torch.manual_seed(5)
    net = official_unet(8, 4, dropout=True)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):  # a trained net's scale, shift and (stale) running stats
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.3, 0.3)
                m.running_mean.uniform_(-2, 2)
                m.running_var.uniform_(0.1, 4)
    path = tmp_path / "facades_label2photo.pth"
    torch.save(net.state_dict(), path)
    return net, path


def test_pix2pix_matches_the_official_pipeline(cli, tmp_path, pix2pix_pth):
    net, pth = pix2pix_pth
    images = {"square.png": photo_like(256, 256, 1), "wide.png": photo_like(512, 256, 2)}
    for i in range(3):  # same size: ganctl batches them
        images[f"b{i}.png"] = photo_like(256, 256, 10 + i)
    for name, rgb in images.items():
        Image.fromarray(rgb).save(tmp_path / name)
    for backend in ("torch", "auto"):
        out = tmp_path / f"out-{backend}"
        r = cli("translate", *[tmp_path / n for n in images], "--model", pth, "--out", out, "--batch-size", "3",
                "--backend", backend)
        assert r.code == 0, r.err
        for name, rgb in images.items():
            got = np.asarray(Image.open(out / name)).astype(int)
            ref = by_hand(net, rgb, grid=256).astype(int)
            assert got.shape == rgb.shape and np.abs(got - ref).max() <= 1, (backend, name, np.abs(got - ref).max())
    # the stored running statistics would give something else entirely: this test can fail
    with torch.no_grad():
        x = torch.from_numpy(images["square.png"].copy()).permute(2, 0, 1)[None].float() / 127.5 - 1
        stale = ((net.eval()(x)[0].permute(1, 2, 0).numpy() + 1) * 127.5).round().clip(0, 255)
    assert np.abs(stale - by_hand(net, images["square.png"], grid=256)).max() > 20


def test_dropout_on_request(cli, tmp_path, pix2pix_pth):
    _, pth = pix2pix_pth
    Image.fromarray(photo_like(256, 256)).save(tmp_path / "a.png")
    outs = []
    for i, extra in enumerate([[], [], ["--dropout"]]):
        r = cli("translate", tmp_path / "a.png", "--model", pth, "--out", tmp_path / f"o{i}", *extra)
        assert r.code == 0, r.err
        outs.append(np.asarray(Image.open(tmp_path / f"o{i}" / "a.png")).astype(int))
    assert np.array_equal(outs[0], outs[1])  # deterministic by default
    assert np.abs(outs[2] - outs[0]).max() > 0  # the paper's stochastic sampling when asked


def test_pix2pix_onnx_export_matches(cli, tmp_path, pix2pix_pth):
    ort = pytest.importorskip("onnxruntime")
    net, pth = pix2pix_pth
    r = cli("export", pth, "--onnx", tmp_path / "p.onnx")
    assert r.code == 0, r.err
    rgb = photo_like(256, 256, 3)
    x = (rgb.astype(np.float32) / 127.5 - 1).transpose(2, 0, 1)[None]
    y = ort.InferenceSession(str(tmp_path / "p.onnx"), providers=["CPUExecutionProvider"]).run(None, {"image": x})[0]
    got = ((y[0].transpose(1, 2, 0) + 1) * 127.5).round().clip(0, 255).astype(int)
    assert np.abs(got - by_hand(net, rgb, grid=256).astype(int)).max() <= 1


def test_official_pix2pix_zoo_entries_resolve_and_download(tmp_path, monkeypatch, cli, pix2pix_pth):
    """The five official pix2pix models are in the shipped manifest at the official URLs; served
    here by a local HTTP server in their place, each resolves, downloads, and translates."""
    import hashlib
    import json

    from test_zoo import Server

    from cyclegan_cli.zoo.catalog import load_manifest

    names = ["edges2shoes", "sat2map", "map2sat", "facades_label2photo", "day2night"]
    shipped = load_manifest()
    for n in names:
        e = shipped[f"pix2pix-{n}"]
        assert e.kind == "pix2pix" and e.url == f"http://efrosgans.eecs.berkeley.edu/pix2pix/models-pytorch/{n}.pth"
        assert len(e.domains) == 2 and e.license and e.format == "official-pth"
    net, pth = pix2pix_pth
    body = pth.read_bytes()
    srv = Server({f"/{n}.pth": body for n in names})
    try:
        manifest = {"models": {f"pix2pix-{n}": {**shipped[f"pix2pix-{n}"].to_dict(), "url": f"{srv.url}/{n}.pth",
                                                "sha256": hashlib.sha256(body).hexdigest()} for n in names}}
        for m in manifest["models"].values():
            m.pop("name"), m.pop("origin"), m.pop("path")
        pre = tmp_path / "pre"
        pre.mkdir()
        (pre / "zoo.json").write_text(json.dumps(manifest))
        monkeypatch.setenv("GANCTL_PRETRAINED", str(pre))
        Image.fromarray(photo_like(256, 256)).save(tmp_path / "a.png")
        r = cli("translate", tmp_path / "a.png", "--model", "pix2pix-day2night", "--out", tmp_path / "o")
        assert r.code == 0, r.err
        got = np.asarray(Image.open(tmp_path / "o" / "a.png")).astype(int)
        assert np.abs(got - by_hand(net, photo_like(256, 256), grid=256).astype(int)).max() <= 1
        from cyclegan_cli.zoo.resolve import load

        m = load("pix2pix-sat2map")
        assert m.config.kind == "pix2pix" and m.config.domains == ["satellite", "map"]
        r = cli("zoo", "list", "--json")
        kinds = {json.loads(l)["name"]: json.loads(l)["kind"] for l in r.out.splitlines()}
        assert all(kinds[f"pix2pix-{n}"] == "pix2pix" for n in names)
    finally:
        srv.close()


# ------------------------------------------------------------------------------- paired training

def paired_set(root, n, seed):
    """A: a coloured rectangle on a light background; B: the same picture with its colours inverted
    (a mapping to learn: an untrained generator's grey output is far from it)."""
    from PIL import ImageDraw

    rng = np.random.default_rng(seed)
    for d in ("A", "B"):
        (root / d).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        im = Image.new("RGB", (36, 36), tuple(int(c) for c in rng.integers(170, 255, 3)))
        x, y, s = (int(v) for v in rng.integers(2, 16, 3))
        ImageDraw.Draw(im).rectangle([x, y, x + s + 6, y + s + 6], fill=tuple(int(c) for c in rng.integers(0, 255, 3)))
        im.save(root / "A" / f"{i:02d}.png")
        Image.fromarray(255 - np.asarray(im)).save(root / "B" / f"{i:02d}.jpg", quality=98)  # another extension
    return root / "A", root / "B"


def held_out_l1(ck, a, b) -> float:
    from cyclegan_cli.checkpoints import load_model
    from cyclegan_cli.models.cyclegan import for_translation

    G = for_translation(load_model(ck).generator("AtoB"))
    errs = []
    for f in sorted(a.iterdir()):
        x = torch.from_numpy(np.asarray(Image.open(f).convert("RGB").resize((32, 32)))).permute(2, 0, 1)[None] / 127.5 - 1
        y = torch.from_numpy(np.asarray(Image.open(b / (f.stem + ".jpg")).convert("RGB").resize((32, 32)))).permute(2, 0, 1)[None] / 127.5 - 1
        with torch.no_grad():
            errs.append((G(x.float()) - y.float()).abs().mean().item())
    return float(np.mean(errs))


@pytest.mark.slow
def test_paired_training_learns_and_resumes_exactly(tmp_path, cli):
    import os
    import signal
    import subprocess
    import sys
    import time

    from test_train import _assert_same_state, _final_state

    a, b = paired_set(tmp_path / "train", 8, 0)
    ha, hb = paired_set(tmp_path / "held", 4, 1)
    (a / "lonely.png").write_bytes((a / "00.png").read_bytes())  # no partner in B: reported, skipped
    base = ["train", a, b, "--paired", "--runs-dir", tmp_path / "runs", "--size", "32", "--load-size", "36",
            "--ngf", "8", "--ndf", "8", "--workers", "0", "--log-every", "10", "--save-every", "20",
            "--epochs", "15", "--decay-epochs", "10", "-q"]
    r = cli(*base[:-1], "--name", "p", "--max-steps", "1")
    assert r.code == 0, r.err
    assert sum("unpaired" in l and "lonely.png" in l for l in r.err_lines) == 1
    first = held_out_l1(tmp_path / "runs" / "p" / "checkpoints" / "step-00000001", ha, hb)
    r = cli("train", "--name", "p", "--runs-dir", tmp_path / "runs", "-q", "--max-steps", "200")
    assert r.code == 0, r.err
    last = held_out_l1(tmp_path / "runs" / "p" / "checkpoints" / "step-00000200", ha, hb)
    assert last < first / 2, (first, last)
    grid = Image.open(sorted((tmp_path / "runs" / "p" / "samples").glob("*.png"))[-1])
    assert grid.size[1] > 3 * 32  # input | output | target rows
    # exact resume after SIGKILL
    cmd = [sys.executable, "-m", "cyclegan_cli", *map(str, base[:-1]), "--deterministic", "--seed", "2", "-q",
           "--max-steps", "24", "--save-every", "4"]
    subprocess.run(cmd + ["--name", "once", "--save-every", "1000"], check=True, capture_output=True)
    p = subprocess.Popen(cmd + ["--name", "killed"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ck = tmp_path / "runs" / "killed" / "checkpoints"
    deadline = time.time() + 120
    while time.time() < deadline and not (ck.is_dir() and any(n.startswith("step-") and int(n[5:]) >= 8 for n in os.listdir(ck))):
        time.sleep(0.005)
    p.send_signal(signal.SIGKILL)
    p.wait()
    subprocess.run(cmd + ["--name", "killed"], check=True, capture_output=True)
    _assert_same_state(_final_state(tmp_path / "runs" / "killed", 24), _final_state(tmp_path / "runs" / "once", 24))
    from cyclegan_cli.zoo.resolve import resolve_model

    assert resolve_model("killed").path.name == "step-00000024"  # the run registry, as for CycleGAN
    r = cli("translate", ha, "--model", "killed", "--out", tmp_path / "o")
    assert r.code == 0, r.err


def test_aligned_folder_trains(tmp_path, cli):
    a, b = paired_set(tmp_path / "src", 4, 3)
    ab = tmp_path / "AB"
    ab.mkdir()
    for f in sorted(a.iterdir()):
        pa, pb = Image.open(f), Image.open(b / (f.stem + ".jpg"))
        side = Image.new("RGB", (72, 36))
        side.paste(pa, (0, 0))
        side.paste(pb, (36, 0))
        side.save(ab / f.name)
    r = cli("train", ab, "--paired", "--direction", "BtoA", "--runs-dir", tmp_path / "runs", "--name", "al",
            "--size", "32", "--load-size", "36", "--ngf", "8", "--ndf", "8", "--workers", "0", "--max-steps", "2",
            "--epochs", "1", "--decay-epochs", "1", "-q")
    assert r.code == 0, r.err
    opts = json.loads((tmp_path / "runs" / "al" / "options.json").read_text())
    assert opts["kind"] == "pix2pix" and opts["direction"] == "BtoA" and opts["folder_b"] is None


def test_unet_resize_upsampling_draws_no_checkerboard_and_trains(tmp_path, cli):
    """--upsample resize for pix2pix's U-Net: on a smooth input a fresh transposed-conv U-Net
    already draws a period-2 pattern, the resize one a smooth picture; a run trained with it saves
    the choice, translates, and exports to ONNX with the same outputs."""
    import torch

    from cyclegan_cli.models.cyclegan import UnetGenerator, init_weights

    ramp = torch.linspace(-0.8, 0.8, 64)
    smooth = torch.stack([ramp[None, :] + 0 * ramp[:, None], ramp[:, None] + 0 * ramp[None, :],
                          ramp[None, :] * ramp[:, None]])[None]
    rough = {}  # second differences along x against the picture's spread: high for a period-2 pattern
    for kind in ("transpose", "resize"):
        torch.manual_seed(0)
        G = UnetGenerator(num_downs=6, ngf=8, upsample=kind)
        init_weights(G)
        assert any(isinstance(m, torch.nn.ConvTranspose2d) for m in G.modules()) == (kind == "transpose")
        with torch.no_grad():
            y = G.train()(smooth)[0, :, 8:-8, 8:-8]  # away from the borders (padding), batch statistics
        d2 = y[:, :, 2:] - 2 * y[:, :, 1:-1] + y[:, :, :-2]
        rough[kind] = float(d2.abs().mean() / y.std())
    assert rough["resize"] < rough["transpose"] / 3, rough
    a, b = paired_set(tmp_path / "src", 4, 5)
    r = cli("train", a, b, "--paired", "--runs-dir", tmp_path / "runs", "--name", "rz", "--size", "32",
            "--load-size", "36", "--ngf", "8", "--ndf", "8", "--upsample", "resize", "--workers", "0",
            "--max-steps", "2", "--epochs", "1", "--decay-epochs", "1", "-q")
    assert r.code == 0, r.err
    assert json.loads((tmp_path / "runs" / "rz" / "options.json").read_text())["upsample"] == "resize"
    r = cli("translate", a, "--model", "rz", "--out", tmp_path / "o")
    assert r.code == 0, r.err
    ort = pytest.importorskip("onnxruntime")
    from cyclegan_cli.zoo.resolve import load

    r = cli("export", "rz", "--onnx", tmp_path / "rz.onnx")
    assert r.code == 0, r.err
    rgb = photo_like(96, 64, 4)  # a multiple of the 32 px grid: no padding to tell apart
    x = (rgb.astype(np.float32) / 127.5 - 1).transpose(2, 0, 1)[None]
    y = ort.InferenceSession(str(tmp_path / "rz.onnx"), providers=["CPUExecutionProvider"]).run(None, {"image": x})[0]
    got = ((y[0].transpose(1, 2, 0) + 1) * 127.5).round().clip(0, 255).astype(int)
    assert np.abs(got - by_hand(load("rz").generator(), rgb, grid=32).astype(int)).max() <= 1
