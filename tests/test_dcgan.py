"""DCGAN: pytorch/examples checkpoints, seed stability, walks, arithmetic, the memorisation check."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn


def examples_generator(nz=100, ngf=64, nc=3):
    """pytorch/examples dcgan/main.py Generator, written out from its layout."""
    class Generator(nn.Module):
        def __init__(self):
            super().__init__()
            self.ngpu = 1
            self.main = nn.Sequential(
                nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 8), nn.ReLU(True),
                nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True),
                nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
                nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),
                nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh())

        def forward(self, x):
            return self.main(x)

    return Generator()


@pytest.fixture
def netG(tmp_path):
    torch.manual_seed(0)
    g = examples_generator(nz=16, ngf=8)
    with torch.no_grad():
        for _ in range(3):
            g.train()(torch.randn(8, 16, 1, 1))  # running statistics that are not the defaults
    path = tmp_path / "netG.pth"
    torch.save(g.state_dict(), path)
    return g.eval(), path


@pytest.fixture
def vivid(tmp_path):
    """netG with its first and last layers scaled after its statistics were taken: images that
    differ from seed to seed (netG's are all within a few levels of grey)."""
    torch.manual_seed(0)
    g = examples_generator(nz=16, ngf=8)
    with torch.no_grad():
        for _ in range(3):
            g.train()(torch.randn(8, 16, 1, 1))
        g.main[0].weight.mul_(8)
        g.main[-2].weight.mul_(30)
    path = tmp_path / "vivid.pth"
    torch.save(g.state_dict(), path)
    return g.eval(), path


def _png(path):
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)


def test_examples_checkpoint_and_z_file(netG, tmp_path, cli):
    g, path = netG
    z = torch.randn(5, 16)
    np.save(tmp_path / "z.npy", z.numpy())
    r = cli("sample", "--model", path, "--z-file", tmp_path / "z.npy", "--out", tmp_path / "s")
    assert r.code == 0, r.err
    with torch.no_grad():
        ref = g(z[:, :, None, None])  # what the examples' code makes for the same z
    ref = ((ref + 1) / 2 * 255).clamp(0, 255).permute(0, 2, 3, 1).numpy()
    for i in range(5):
        assert np.abs(_png(tmp_path / "s" / f"z{i:04d}.png") - ref[i]).max() <= 1


def test_seed_is_stable_across_batch_sizes(netG, tmp_path, cli):
    _, path = netG
    assert cli("sample", "--model", path, "--seeds", "0-15", "--batch-size", "1", "--out", tmp_path / "b1").code == 0
    assert cli("sample", "--model", path, "--seeds", "0-15", "--batch-size", "16", "--out", tmp_path / "b16").code == 0
    assert cli("sample", "--model", path, "--seeds", "5", "--out", tmp_path / "one").code == 0
    for k in range(16):
        assert np.array_equal(_png(tmp_path / "b1" / f"seed{k:04d}.png"), _png(tmp_path / "b16" / f"seed{k:04d}.png"))
    assert np.array_equal(_png(tmp_path / "one" / "seed0005.png"), _png(tmp_path / "b16" / "seed0005.png"))
    r = cli("sample", "--model", path, "--seeds", "0-3", "--out", tmp_path / "b1")
    assert r.code == 2 and "exists" in r.err  # never overwrites without --overwrite


def test_interpolation_ends_on_the_seeds(netG, tmp_path, cli):
    _, path = netG
    cli("sample", "--model", path, "--seeds", "3,17", "--out", tmp_path / "s")
    for method in ("slerp", "lerp"):
        out = tmp_path / f"walk-{method}.png"
        r = cli("interpolate", "--model", path, "--seeds", "3,17", "--steps", "6", "--method", method, "--out", out,
                "--scale", "1")
        assert r.code == 0, r.err
        strip = _png(out)
        h = 64
        first = strip[2:2 + h, 2:2 + h]
        last = strip[2:2 + h, 2 + 5 * (h + 2):2 + 5 * (h + 2) + h]
        assert np.array_equal(first, _png(tmp_path / "s" / "seed0003.png"))
        assert np.array_equal(last, _png(tmp_path / "s" / "seed0017.png"))
    gif = tmp_path / "walk.gif"
    assert cli("interpolate", "--model", path, "--seeds", "3,17,4", "--steps", "4", "--loop", "--out", gif).code == 0
    assert Image.open(gif).n_frames == 9


def test_arithmetic_with_single_seed_groups(vivid, tmp_path, cli):
    from cyclegan_cli.infer.sample import latents_for_seeds

    g, path = vivid
    r = cli("arithmetic", "--model", path, "--plus", "1", "--minus", "2", "--plus", "3", "--neighbours", "0",
            "--out", tmp_path / "a.png", "--json")
    assert r.code == 0, r.err
    z = latents_for_seeds([1, 2, 3], 16)
    expect = z[0] - z[1] + z[2]
    doc = json.loads(r.out)
    assert np.allclose(doc["z_result"], expect.numpy(), atol=1e-6)
    with torch.no_grad():
        ref = ((g(expect[None, :, None, None]) + 1) * 127.5).round().clamp(0, 255)[0].permute(1, 2, 0).numpy()
    picture = _png(tmp_path / "a.png")
    assert len(find(picture, enlarge(ref[None], 2)[0])) == 1  # 64 px enlarged to 128 by default


def _noise_folder(tmp_path, side):
    """(12 noise images data/00.png..11.png, a copy of data/07.png outside it)."""
    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i in range(12):
        Image.fromarray((rng.random((side, side, 3)) * 255).astype(np.uint8)).save(data / f"{i:02d}.png")
    query = tmp_path / "copy.png"
    query.write_bytes((data / "07.png").read_bytes())
    return data, query


def test_nearest_finds_the_training_copy(tmp_path, cli):
    data, query = _noise_folder(tmp_path, 24)
    r = cli("nearest", "--data", data, "--images", query, "--k", "3", "--json", "--out", tmp_path / "nn.png")
    assert r.code == 0, r.err
    res = json.loads(r.out)["results"][0]["neighbours"]
    assert res[0]["file"].endswith("07.png") and res[0]["distance"] == 0.0
    assert res[1]["distance"] > 0
    assert (tmp_path / "nn.png").is_file()


def test_cyclegan_model_is_refused_by_sample(tiny_cyclegan, cli):
    r = cli("sample", "--model", tiny_cyclegan, "--seeds", "0")
    assert r.code == 2 and "translate" in r.err


def test_interpolate_mp4(netG, tmp_path, cli):
    import av

    _, path = netG
    out = tmp_path / "walk.mp4"
    r = cli("interpolate", "--model", path, "--seeds", "1,2", "--steps", "5", "--out", out, "--fps", "10")
    assert r.code == 0, r.err
    with av.open(str(out)) as c:
        assert sum(1 for _ in c.decode(video=0)) == 5


# ------------------------------------------------------------------------------- pictures worth showing

def enlarge(images, k):
    """(N, H, W, 3) -> each pixel a k x k block: what nearest-neighbour scaling makes."""
    return np.asarray(images).repeat(k, axis=1).repeat(k, axis=2)


def find(picture, tile, tol=1):
    """Every (y, x) where ``tile`` lies in ``picture``, each value within ``tol``."""
    from numpy.lib.stride_tricks import sliding_window_view

    h, w, _ = tile.shape
    tile = tile.astype(np.int16)
    hits = []
    for y in range(picture.shape[0] - h + 1):
        rows = sliding_window_view(picture[y].astype(np.int16), (w, 3))[:, 0]  # (W - w + 1, w, 3)
        for x in np.flatnonzero(np.abs(rows - tile[0]).max(axis=(1, 2)) <= tol):
            if np.abs(picture[y:y + h, x:x + w] - tile).max() <= tol:
                hits.append((y, int(x)))
    return hits


def _dark(region):
    return region.mean(axis=2) < 100


def _runs(flags):
    """The runs of consecutive True values: [(first, last), ...]."""
    out = []
    for i in np.flatnonzero(flags):
        if out and out[-1][1] == i - 1:
            out[-1][1] = i
        else:
            out.append([i, i])
    return out


def _sign(picture, y, x0, x1, h):
    """What is drawn between two tiles (rows y..y+h, columns x0..x1): '-', '+', '=' or ''."""
    dark = _dark(picture[y:y + h, x0:x1])
    if not dark.any():
        return ""
    rows, cols = _runs(dark.any(axis=1)), _runs(dark.any(axis=0))
    tall, wide = rows[-1][1] - rows[0][0] + 1, cols[-1][1] - cols[0][0] + 1
    if len(rows) == 2:
        return "="
    return "+" if tall > 0.6 * wide else "-"


def _caption_above(picture, y, x, w, band=12):
    """Dark (text) pixels in the ``band`` rows just above the tile at (y, x), w wide."""
    return int(_dark(picture[max(0, y - band - 2):y - 2, x:x + w]).sum())


def _generated(g, z):
    with torch.no_grad():
        return ((g(z[:, :, None, None]) + 1) * 127.5).round().clamp(0, 255).permute(0, 2, 3, 1).numpy()


def test_interpolate_and_arithmetic_default_to_tiles_a_person_can_see(vivid, tmp_path, cli):
    """The tiles are at least 128 px by default, enlarged by nearest neighbour (the 64 px test
    generator 2x, the shipped 32 px emoji32 4x); --scale still chooses."""
    from cyclegan_cli.infer.sample import latents_for_seeds

    g, path = vivid
    ends = _generated(g, latents_for_seeds([3, 17], 16))
    r = cli("interpolate", "--model", path, "--seeds", "3,17", "--steps", "4", "--out", tmp_path / "w.png")
    assert r.code == 0, r.err
    strip = _png(tmp_path / "w.png")
    assert strip.shape[0] >= 128
    assert [x for _, x in find(strip, enlarge(ends[:1], 2)[0])] == [2]  # the first frame, first
    assert len(find(strip, enlarge(ends[1:], 2)[0])) == 1
    r = cli("interpolate", "--model", "emoji32", "--seeds", "1,2", "--steps", "3", "--out", tmp_path / "w.gif")
    assert r.code == 0, r.err
    assert Image.open(tmp_path / "w.gif").size == (128, 128)
    r = cli("arithmetic", "--model", "emoji32", "--plus", "1", "--neighbours", "0", "--out", tmp_path / "a.png")
    assert r.code == 0, r.err
    assert _png(tmp_path / "a.png").shape[0] > 128
    r = cli("interpolate", "--model", "emoji32", "--seeds", "1,2", "--steps", "3", "--scale", "1",
            "--out", tmp_path / "w1.gif")
    assert r.code == 0 and Image.open(tmp_path / "w1.gif").size == (32, 32), r.err


def test_arithmetic_png_is_labelled(vivid, tmp_path, cli):
    """Each group, the result and the neighbours under a caption, and the - + = between the groups."""
    from cyclegan_cli.infer.sample import latents_for_seeds

    g, path = vivid
    r = cli("arithmetic", "--model", path, "--plus", "1", "--minus", "2,5", "--plus", "3", "--neighbours", "2",
            "--out", tmp_path / "a.png")
    assert r.code == 0, r.err
    z = latents_for_seeds([1, 2, 5, 3], 16)
    means = torch.stack([z[0], z[1:3].mean(0), z[3]])
    result = means[0] - means[1] + means[2]
    near = result + 0.25 * torch.randn(2, 16, generator=torch.Generator().manual_seed(0))
    tiles = enlarge(_generated(g, torch.cat([means, result[None], near])), 2)
    picture = _png(tmp_path / "a.png")
    found = [find(picture, t) for t in tiles]
    assert all(len(f) == 1 for f in found), found
    (y, _), = found[0]
    xs = [f[0][1] for f in found]
    assert all(f[0][0] == y for f in found) and xs == sorted(xs)  # one row, in order
    assert y >= 12 and all(_caption_above(picture, y, x, 128) > 20 for x in xs)  # a caption over each tile
    signs = [_sign(picture, y, a + 128, b, 128) for a, b in zip(xs, xs[1:])]
    assert signs[:3] == ["-", "+", "="], signs
    assert not _dark(picture[y:y + 128, xs[3] + 128:xs[4]]).any() and (picture[y:y + 128, xs[3] + 128:xs[4]] < 250).any()


def test_nearest_png_is_labelled(tmp_path, cli):
    """Each sample, then its neighbours, each at 128 px under a caption (the sample's, each file's name
    and distance)."""
    data, query = _noise_folder(tmp_path, 32)
    r = cli("nearest", "--data", data, "--images", query, "--k", "2", "--out", tmp_path / "nn.png")
    assert r.code == 0, r.err
    picture = _png(tmp_path / "nn.png")
    seven = enlarge(np.asarray(Image.open(data / "07.png"))[None], 4)[0]  # 32 px compared, shown 4x
    hits = find(picture, seven)
    assert len(hits) == 2 and hits[0][0] == hits[1][0], hits  # the sample and its copy, side by side
    (y, x0), (_, x1) = hits
    assert _caption_above(picture, y, x0, 128) > 20 and _caption_above(picture, y, x1, 128) > 20
    assert picture.shape[0] > y + 128 > 128 + 2 * 12  # captions of two lines above the tiles
