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
        r = cli("interpolate", "--model", path, "--seeds", "3,17", "--steps", "6", "--method", method, "--out", out)
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


def test_arithmetic_with_single_seed_groups(netG, tmp_path, cli):
    from cyclegan_cli.infer.sample import latents_for_seeds

    g, path = netG
    r = cli("arithmetic", "--model", path, "--plus", "1", "--minus", "2", "--plus", "3", "--neighbours", "0",
            "--out", tmp_path / "a.png", "--json")
    assert r.code == 0, r.err
    z = latents_for_seeds([1, 2, 3], 16)
    expect = z[0] - z[1] + z[2]
    doc = json.loads(r.out)
    assert np.allclose(doc["z_result"], expect.numpy(), atol=1e-6)
    with torch.no_grad():
        ref = ((g(expect[None, :, None, None]) + 1) * 127.5).round().clamp(0, 255)[0].permute(1, 2, 0).numpy()
    grid = _png(tmp_path / "a.png")
    result_tile = grid[2:66, 2 + 3 * 66:2 + 3 * 66 + 64]  # means of 3 groups first, then the result
    assert np.abs(result_tile - ref).max() <= 1


def test_nearest_finds_the_training_copy(tmp_path, cli):
    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i in range(12):
        Image.fromarray((rng.random((24, 24, 3)) * 255).astype(np.uint8)).save(data / f"{i:02d}.png")
    query = tmp_path / "copy.png"
    query.write_bytes((data / "07.png").read_bytes())
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
