"""Issue 34, the training side: --precision on a resume, the schedules in --help, each method's
initialisation, DiffAugment without a clamp, and what the shipped configs say."""

from __future__ import annotations

import json

from conftest import save_rgb

TINY = ["--size", "32", "--load-size", "32", "--ngf", "4", "--ndf", "4", "--blocks", "1"]


def _folders(tmp_path, n=2):
    for d, s in (("A", 0), ("B", 50)):
        for i in range(n):
            save_rgb(tmp_path / d / f"{i}.png", 32, 32, seed=s + i)
    return [str(tmp_path / "A"), str(tmp_path / "B")]


# ------------------------------------------------------------------------------- --precision on a resume

def test_resume_may_change_precision_a_process_setting(tmp_path, cli):
    folders = _folders(tmp_path)
    r = cli("train", *folders, "--name", "p", *TINY, "--max-steps", "2", "--save-every", "1", "-q")
    assert r.code == 0, r.err
    r = cli("train", "--resume", "p", "--precision", "fp32", "--max-steps", "3", "-q")  # saved with auto
    assert r.code == 0, r.err
    steps = [json.loads(line)["step"] for line in (tmp_path / "runs" / "p" / "stats.jsonl").read_text().splitlines()]
    assert steps[-1] == 3
    from cyclegan_cli.train.options import CycleGANOptions

    assert "precision" not in CycleGANOptions(precision="fp32").saved()  # this process's, as --device is


# ------------------------------------------------------------------------------- each method's recipe

def test_train_help_shows_each_methods_schedule(cli):
    from cyclegan_cli.train.options import RECIPES

    text = " ".join(cli("train", "--help").out.split())  # however the terminal wraps it
    for said in ("CycleGAN 100+100", "CUT 200+200", "FastCUT 150+50", "pix2pix 100+100", "DCGAN 25"):  # official
        assert said in text, said
    assert all(f"{r.label} {r.epochs}+{r.decay_epochs}" in text for r in RECIPES.values())


def _task(tmp_path, kind: str, **options):
    import torch

    from cyclegan_cli.data.datasets import scan_folder
    from cyclegan_cli.train.distributed import Dist
    from cyclegan_cli.train.options import CUTOptions, CycleGANOptions

    a, b = _folders(tmp_path)
    files_a, _ = scan_folder(tmp_path / "A")
    files_b, _ = scan_folder(tmp_path / "B")
    small = dict(size=32, load_size=32, ngf=8, ndf=8, blocks=2, domains=["A", "B"], **options)
    if kind == "cyclegan":
        from cyclegan_cli.train.cyclegan import CycleGANTask

        return CycleGANTask(files_a, files_b, CycleGANOptions(**small).resolved(), saved={}, dist=Dist(),
                            device=torch.device("cpu"))
    from cyclegan_cli.train.cut import CUTTask

    return CUTTask(files_a, files_b, CUTOptions(**small).resolved(), saved={}, dist=Dist(), device=torch.device("cpu"))


def _weights(net):
    from torch import nn

    return [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))]


def test_cut_and_fastcut_start_as_the_official_xavier_gain_002(tmp_path):
    import math

    for method in ("cut", "fastcut"):
        task = _task(tmp_path / method, "cut", method=method)
        assert sorted(task.nets) == ["D_A", "F", "G_A"]
        for name, net in task.nets.items():
            layers = _weights(net)
            assert layers, name
            for m in layers:
                w = m.weight.detach()
                field = math.prod(w.shape[2:])  # 1 for a linear layer
                fan_in, fan_out = w.shape[1] * field, w.shape[0] * field
                want = 0.02 * math.sqrt(2.0 / (fan_in + fan_out))  # Glorot & Bengio's normal, times the gain
                assert abs(float(w.std()) / want - 1) < 0.15, (method, name, tuple(w.shape), float(w.std()), want)
                assert float(w.std()) < 0.02 / 5  # N(0, 0.02) would be 7-48x larger
                assert m.bias is None or not m.bias.detach().any()


def test_cyclegan_still_starts_as_n_0_002(tmp_path):
    task = _task(tmp_path, "cyclegan")
    for name, net in task.nets.items():
        for m in _weights(net):
            assert abs(float(m.weight.detach().std()) / 0.02 - 1) < 0.15, (name, tuple(m.weight.shape))


# ------------------------------------------------------------------------------- DiffAugment's color

def test_diffaugment_color_passes_the_full_gradient_on_near_white_images():
    import torch

    from cyclegan_cli.train.augment import diff_augment

    gen = torch.Generator().manual_seed(0)
    x = 1 - 0.02 * torch.rand(8, 3, 16, 16, generator=gen)  # sketch-like: mostly paper white
    x[:, :, 7:9, :] = -1  # a dark stroke
    x.requires_grad_(True)
    y = diff_augment(x, ("color",), torch.Generator().manual_seed(1))
    y.sum().backward()
    # brightness adds, saturation and contrast move values about their own means, so the sum of the
    # outputs is the sum of the inputs plus a constant: every pixel passes its whole gradient, also
    # where the brightening took it past +1 (a clamp there passes none)
    dead = float((x.grad.abs() < 0.5).float().mean())
    assert torch.allclose(x.grad, torch.ones_like(x), atol=1e-4), f"{dead:.0%} of the pixels pass no gradient"


# ------------------------------------------------------------------------------- also noticed

def test_dcgan_wgan_gp_penalises_the_augmented_images_d_sees(tmp_path, monkeypatch):
    import torch

    from cyclegan_cli.data.datasets import scan_folder
    from cyclegan_cli.train import dcgan
    from cyclegan_cli.train.distributed import Dist
    from cyclegan_cli.train.options import DCGANOptions

    for i in range(4):
        save_rgb(tmp_path / "faces" / f"{i}.png", 16, 16, seed=i)
    files, _ = scan_folder(tmp_path / "faces")
    o = DCGANOptions(size=16, ngf=4, ndf=4, nz=8, batch_size=4, loss="wgangp", augment="translation,cutout")
    task = dcgan.DCGANTask(files, o, saved={}, dist=Dist(), device=torch.device("cpu"), sample_count=4)
    seen, penalised = [], []
    task.nets["D"].register_forward_pre_hook(lambda m, args: seen.append(args[0].detach().clone()))

    def gp(d, real, fake, generator=None):  # what CycleGAN's penalty is given: the images D judged
        penalised.append((real.detach().clone(), fake.detach().clone()))
        return torch.zeros(())

    monkeypatch.setattr(dcgan, "gradient_penalty", gp)
    real = torch.stack([task.dataset[k] for k in task.epoch_keys(0)[:4]])
    task.train_step(real, 0)
    [(gp_real, gp_fake)] = penalised
    assert torch.equal(gp_real, seen[0]) and torch.equal(gp_fake, seen[1])  # D's real and fake inputs
    assert not torch.equal(gp_real, real)  # augmented, not the batch as it came


def test_patchnce_head_and_logits_are_fp32_under_autocast():
    """As the official code, which runs PatchNCE in fp32: under bf16 autocast a logit near
    1/0.07 = 14.3 is rounded by up to 0.06, which moves the loss by as much."""
    import torch

    from cyclegan_cli.models.cut import PatchNCEHead, patch_nce

    torch.manual_seed(0)
    head = PatchNCEHead(channels=(8, 16), nc=32)
    feats = [torch.randn(2, 8, 8, 8), torch.randn(2, 16, 4, 4)]
    ref, ids = head(feats, 16)  # fp32 throughout
    with torch.autocast("cpu", torch.bfloat16):
        got, _ = head([f.bfloat16() for f in feats], 16, ids)  # features as a bf16 encoder gives them
        loss = [patch_nce(q, k.roll(1, 1), 2) for q, k in zip(got, got)]
    for q, r in zip(got, ref):
        assert q.dtype == torch.float32 and torch.allclose(q, r, atol=2e-2)  # the features' own rounding only
    bf16_features = [patch_nce(q, k.roll(1, 1), 2) for q, k in zip(got, got)]  # the same inputs, no autocast
    for a, b in zip(loss, bf16_features):
        assert a.dtype == torch.float32 and torch.allclose(a, b, atol=1e-5), float((a - b).abs().max())


def _strings(obj):
    if isinstance(obj, dict):
        for v in obj.values():
            yield from _strings(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _strings(v)
    elif isinstance(obj, str):
        yield obj


def test_shipped_configs_name_their_training_folders_without_a_developers_paths():
    import os
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    configs = sorted((repo / "pretrained").glob("*/config.json"))
    assert len(configs) >= 4
    for f in configs:
        config = json.loads(f.read_text())
        paths = [s for s in _strings(config) if os.path.isabs(s) or s.startswith("~")]
        assert not paths, (f.parent.name, paths)
        training = config["training"]
        for key in ("folder", "folder_a", "folder_b"):
            assert key not in training or training[key] and "/" not in training[key], (f.parent.name, key)


def test_ship_keeps_each_folders_name_only():
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("ship", Path(__file__).resolve().parents[1] / "examples" / "ship.py")
    ship = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ship)
    run = {"folder_a": "/home/dev/data/photo2sketch/photo", "folder_b": "/home/dev/data/sketch", "lr": 0.0002,
           "name": "p2s", "domains": ["photo", "sketch"], "nce_layers": [0, 4]}
    assert ship.shipped_training(run) == {**run, "folder_a": "photo", "folder_b": "sketch"}
