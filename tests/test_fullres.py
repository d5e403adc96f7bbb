"""Full-resolution translate: untiled whenever the image fits, seamless when tiled, at awkward
sizes, on both backends; colour profiles and 16-bit inputs; batch-norm official ResNets.

The reference is always the network run by hand on the whole image (official pipeline: scale to
[-1, 1], reflect-pad bottom/right to the size grid, run, crop, round)."""

import sys

import numpy as np
import pytest
import torch
from PIL import Image, ImageCms, ImageDraw, ImageFilter

from test_translate import official_resnet


def photo_like(w: int, h: int, seed: int = 0) -> np.ndarray:
    """Texture at every scale plus hard-edged shapes: what a photo has and a smooth gradient has not."""
    rng = np.random.default_rng(seed)
    acc = np.zeros((h, w, 3), np.float32)
    for cell, amp in ((512, 90), (128, 50), (32, 30), (8, 20), (2, 12)):
        small = rng.normal(0, 1, (h // cell + 2, w // cell + 2, 3)).astype(np.float32)
        for c in range(3):
            upc = np.asarray(Image.fromarray(small[:, :, c]).resize((w + 2 * cell, h + 2 * cell), Image.BICUBIC))
            acc[:, :, c] += amp * upc[cell:cell + h, cell:cell + w]
    im = Image.fromarray(np.clip(acc + 128, 0, 255).astype(np.uint8))
    d = ImageDraw.Draw(im)
    for _ in range(40):
        x, y = rng.integers(0, w), rng.integers(0, h)
        r = int(rng.integers(10, max(11, min(w, h) // 4)))
        fill = tuple(int(v) for v in rng.integers(0, 256, 3))
        (d.ellipse if rng.random() < 0.5 else d.rectangle)([x - r, y - r, x + r, y + r], fill=fill)
    return np.asarray(im.filter(ImageFilter.GaussianBlur(0.6)))


def by_hand(net, rgb: np.ndarray, grid: int = 4) -> np.ndarray:
    """The official test pipeline, written out: [-1, 1], reflect pad to the size grid, net, crop,
    round. Like the official test.py (no --eval), batch norm runs in train mode on this one image;
    dropout is off."""
    h, w = rgb.shape[:2]
    x = torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None].float() / 127.5 - 1
    ph, pw = -h % grid, -w % grid
    x = torch.nn.functional.pad(x, (0, pw, 0, ph), mode="reflect")
    net.train()
    for m in net.modules():
        if isinstance(m, torch.nn.Dropout):
            m.eval()
    with torch.no_grad():
        y = net(x)[:, :, :h, :w]
    return ((y[0].permute(1, 2, 0).numpy() + 1) * 127.5).round().clip(0, 255).astype(np.uint8)


def seam_stats(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(mean |a - b| in gray levels, worst mean |a - b| over 16x16-pixel blocks)."""
    d = np.abs(a.astype(np.float32) - b.astype(np.float32)).mean(-1)
    h, w = (d.shape[0] // 16) * 16, (d.shape[1] // 16) * 16
    blocks = d[:h, :w].reshape(h // 16, 16, w // 16, 16).mean((1, 3))
    return float(d.mean()), float(blocks.max())


@pytest.fixture(params=["with-onnxruntime", "without-onnxruntime"])
def ort_installed(request, monkeypatch):
    """The default backend as users meet it: ONNX Runtime when the extra is installed, torch when not."""
    if request.param == "without-onnxruntime":
        monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` raises ImportError
    else:
        pytest.importorskip("onnxruntime")
    return request.param


def write_official(tmp_path, ngf, seed=0, **kw):
    torch.manual_seed(seed)
    net = official_resnet(ngf, 9, **kw)
    path = tmp_path / f"resnet9_ngf{ngf}.pth"
    torch.save(net.state_dict(), path)
    return net, path


def _check_fullres(cli, tmp_path, ngf, size, tiles):
    w, h = size
    net, pth = write_official(tmp_path, ngf)
    rgb = photo_like(w, h, seed=w)
    Image.fromarray(rgb).save(tmp_path / "photo.png")
    ref = by_hand(net, rgb)
    r = cli("translate", tmp_path / "photo.png", "--model", pth, "--out", tmp_path / "default", "-v")
    assert r.code == 0, r.err
    out = np.asarray(Image.open(tmp_path / "default" / "photo.png"))
    assert out.shape == rgb.shape
    assert np.abs(out.astype(int) - ref.astype(int)).max() <= 1, "default options must run untiled"
    for tile in tiles:
        folder = tmp_path / f"tile{tile}"
        r = cli("translate", tmp_path / "photo.png", "--model", pth, "--out", folder, "--tile", tile, "-v")
        assert r.code == 0, r.err
        tiled = np.asarray(Image.open(folder / "photo.png"))
        mean, worst = seam_stats(tiled, ref)
        assert mean <= 2 and worst <= 8, f"--tile {tile}: mean {mean:.2f}, worst 16x16 block {worst:.2f}"


@pytest.mark.parametrize("size", [(1400, 1048), (1920, 1080), (1402, 1050)])
def test_fullres_resnet9_untiled_and_seamless(cli, tmp_path, size, ort_installed):
    """ResNet-9 in the official layout (ngf 8: same depth, grid and receptive radius as ngf 64, 60x
    cheaper) at photo sizes. 1402x1050 is off the size grid: the old tiler's last origin (total -
    tile) fell off it and the whole last tile came out at another sampling phase."""
    _check_fullres(cli, tmp_path, 8, size, tiles=[512, 500] if size != (1402, 1050) else [512])


@pytest.mark.long
@pytest.mark.parametrize("size", [(1400, 1048), (1920, 1080)])
def test_fullres_resnet9_ngf64(cli, tmp_path, size, ort_installed):
    """The same at the official width (ngf 64, 11.4 M parameters): minutes on a 2-core CPU."""
    _check_fullres(cli, tmp_path, 64, size, tiles=[512, 500])


def test_default_budget_keeps_photos_untiled(monkeypatch):
    """On a machine like CI (24 GiB), 1920x1080 and 4000x3000 photos fit the derived memory budget
    of a ResNet-9 ngf 64; an explicit --max-memory is obeyed; tiles are rounded to the size grid."""
    from cyclegan_cli import device as device_mod
    from cyclegan_cli.checkpoints import ModelConfig
    from cyclegan_cli.infer.engine import Translator, bytes_per_pixel
    from cyclegan_cli.models import build

    # Free memory moves from one call to the next (the other test worker allocates): read it once,
    # and let the Translator see that same reading.
    free = device_mod.available_memory(torch.device("cpu"))
    seen = []
    monkeypatch.setattr(device_mod, "available_memory", lambda dev: seen.append(dev) or free)
    net = build("resnet_generator", ngf=64, n_blocks=9)
    cfg = ModelConfig(kind="cyclegan", nets={}, image_size=256)
    t = Translator(net, cfg, device="cpu", backend="torch")
    assert seen and t.memory_budget == free
    if free >= 14 * 2**30:
        assert not t.needs_tiling(1080, 1920)
        assert not t.needs_tiling(3000, 4000)
    small = Translator(net, cfg, device="cpu", backend="torch", max_memory=0.5)
    assert small.max_untiled_pixels == int(0.5 * 2**30) // bytes_per_pixel(net)
    assert small.needs_tiling(1080, 1920)
    rounded = Translator(net, cfg, device="cpu", backend="torch", tile=501)
    assert rounded.tile == 500 and rounded.notes and "rounded to 500" in rounded.notes[0]


def test_small_budget_tiles_seamlessly_at_odd_sizes(tmp_path, cli):
    """--max-memory small enough that odd-sized images must tile: still within the seam bounds."""
    net, pth = write_official(tmp_path, 8)
    for w, h in ((777, 501), (643, 1111)):
        rgb = photo_like(w, h, seed=h)
        Image.fromarray(rgb).save(tmp_path / f"odd{w}.png")
        r = cli("translate", tmp_path / f"odd{w}.png", "--model", pth, "--out", tmp_path / "o", "--max-memory", "0.05")
        assert r.code == 0, r.err
        out = np.asarray(Image.open(tmp_path / "o" / f"odd{w}.png"))
        assert out.shape == rgb.shape
        mean, worst = seam_stats(out, by_hand(net, rgb))
        assert mean <= 2 and worst <= 8, (w, h, mean, worst)


def test_tile_too_small_for_the_model_is_a_usage_error(tmp_path, cli):
    _, pth = write_official(tmp_path, 8)
    Image.fromarray(photo_like(64, 64)).save(tmp_path / "a.png")
    r = cli("translate", tmp_path / "a.png", "--model", pth, "--tile", "200")
    assert r.code == 2 and "at least" in r.err and len(r.err_lines) == 1
    r = cli("translate", tmp_path / "a.png", "--model", pth, "--tile", "7")
    assert r.code == 2 and len(r.err_lines) == 1


def gradient_reach(net, side: int) -> int:
    """How far into the input one output pixel reaches, measured: the support of its gradient, for
    each sampling phase of the size grid. Normalisation is left out (tiles run with frozen
    statistics, so only the layers that move pixels decide the reach)."""
    net = net.eval()
    for m in net.modules():
        if isinstance(m, (torch.nn.InstanceNorm2d, torch.nn.BatchNorm2d)):
            m.forward = lambda x: x
    grid, reach = getattr(net, "size_multiple", 4), 0
    for phase in range(min(grid, 8)):
        x = torch.randn(1, 3, side, side, requires_grad=True)
        c = side // 2 + phase
        net(x)[0, :, c, c].sum().backward()
        ys, xs = torch.nonzero(x.grad.abs().sum(1)[0], as_tuple=True)
        assert ys.min() > 0 and xs.min() > 0 and ys.max() < side - 1 and xs.max() < side - 1, "side too small"
        reach = max(reach, int((ys - c).abs().max()), int((xs - c).abs().max()))
    return reach


class RegisteredOutOfOrder(torch.nn.Module):
    """Its residual blocks registered before the down-sampling that runs first (as a module may list
    them): the reach is that of the order it runs in."""

    def __init__(self):
        super().__init__()
        self.size_multiple = 4
        self.blocks = torch.nn.Sequential(*[torch.nn.Conv2d(8, 8, 3, padding=1) for _ in range(3)])
        self.down = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, stride=2, padding=1), torch.nn.Conv2d(8, 8, 3, stride=2, padding=1))
        self.up = torch.nn.Sequential(torch.nn.Upsample(scale_factor=4, mode="bilinear"), torch.nn.Conv2d(8, 3, 3, padding=1))

    def forward(self, x):
        return self.up(self.blocks(self.down(x)))


@pytest.mark.parametrize("name", ["plain", "resize", "antialias", "unet", "registered out of order"])
def test_tile_overlap_covers_the_measured_reach(name):
    """The tile overlap's receptive radius against the gradient's support. The blurred stride-2
    layers of official CUT generators (antialias) were left out: 28 px counted against 93 measured;
    bilinear up-sampling's reach was undercounted too (87 against 90)."""
    from cyclegan_cli.infer.tiling import receptive_radius
    from cyclegan_cli.models import build

    torch.manual_seed(0)
    net = {"plain": lambda: build("resnet_generator", ngf=4, n_blocks=9),
           "resize": lambda: build("resnet_generator", ngf=4, n_blocks=9, upsample="resize"),
           "antialias": lambda: build("resnet_generator", ngf=4, n_blocks=9, antialias=True),
           "unet": lambda: build("unet_generator", num_downs=5, ngf=2, norm="instance", upsample="resize"),
           "registered out of order": RegisteredOutOfOrder}[name]()
    estimate = receptive_radius(net)
    measured = gradient_reach(net, side=320 if name == "unet" else 224)
    assert measured <= estimate <= measured + 4, (estimate, measured)


def test_batchnorm_official_resnet_loads_and_matches(tmp_path, cli):
    """An official ResNet generator trained with --norm batch: BatchNorm weights at conv_block.6
    were mistaken for a dropout model's second conv, and loading failed on conv_block.7 keys.
    It runs as the official test.py runs it: batch statistics of the image itself."""
    torch.manual_seed(1)
    net = official_resnet(8, 6, norm_kind="batch")
    with torch.no_grad():  # real running statistics
        net.train()(torch.randn(4, 3, 64, 64))
    torch.save(net.state_dict(), tmp_path / "bn.pth")
    rgb = photo_like(96, 80)
    Image.fromarray(rgb).save(tmp_path / "p.png")
    r = cli("translate", tmp_path / "p.png", "--model", tmp_path / "bn.pth", "--out", tmp_path / "o", "--backend", "torch")
    assert r.code == 0, r.err
    out = np.asarray(Image.open(tmp_path / "o" / "p.png"))
    assert np.abs(out.astype(int) - by_hand(net, rgb).astype(int)).max() <= 1
    # and the dropout variant still loads as one (its conv_block.6 is the second conv)
    torch.save(official_resnet(8, 6, dropout=True).state_dict(), tmp_path / "drop.pth")
    from cyclegan_cli.checkpoints import load_model

    m = load_model(tmp_path / "drop.pth")
    assert m.config.nets["G_A"]["args"]["use_dropout"] is True
    assert load_model(tmp_path / "bn.pth").config.nets["G_A"]["args"]["norm"] == "batch"


# ------------------------------------------------------------------------------------- colour

def test_icc_profiles_only_rgb_profiles_travel(tmp_path, cli, tiny_cyclegan):
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    (tmp_path / "in").mkdir()
    Image.fromarray(photo_like(40, 32)).save(tmp_path / "in" / "rgb.png", icc_profile=srgb)
    gray_profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()  # not an RGB profile
    Image.fromarray(photo_like(40, 32)[:, :, 0], "L").save(tmp_path / "in" / "gray.png", icc_profile=gray_profile)
    cmyk = Image.fromarray(photo_like(40, 32)).convert("CMYK")
    cmyk.save(tmp_path / "in" / "cmyk.jpg")
    r = cli("translate", tmp_path / "in", "--model", tiny_cyclegan, "--out", tmp_path / "o", "--format", "png")
    assert r.code == 0, r.err
    assert Image.open(tmp_path / "o" / "rgb.png").info.get("icc_profile") == srgb
    assert Image.open(tmp_path / "o" / "gray.png").info.get("icc_profile") is None
    out = Image.open(tmp_path / "o" / "cmyk.png")
    assert out.mode == "RGB" and out.info.get("icc_profile") is None


def test_16bit_pixel_values(tmp_path):
    """16-bit gray PNG: values scale to 8 bits by 255/65535, not truncated or wrapped."""
    from cyclegan_cli.data.images import read_picture

    ramp = (np.arange(64 * 16, dtype=np.uint32).reshape(16, 64) * 64).astype(np.uint16)  # 0 .. 65472
    Image.fromarray(ramp).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode.startswith("I")
    pic = read_picture(tmp_path / "g16.png")
    expected = np.rint(ramp.astype(np.float64) * 255 / 65535).astype(np.uint8)
    assert np.array_equal(pic.rgb[:, :, 0], expected) and np.array_equal(pic.rgb[:, :, 2], expected)
