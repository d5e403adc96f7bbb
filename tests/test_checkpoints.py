"""Checkpoint format: round trip, and one-line errors for every kind of damage."""

import json

import pytest
import torch

from cyclegan_cli.checkpoints import ModelConfig, load_model, save_checkpoint
from cyclegan_cli.errors import CheckpointError
from cyclegan_cli.models import build


def _nets():
    torch.manual_seed(1)
    g = build("resnet_generator", ngf=4, n_blocks=1, norm="batch")
    d = build("patch_discriminator", ndf=4, n_layers=2)
    with torch.no_grad():  # non-trivial running stats
        g.train()(torch.randn(2, 3, 16, 16))
    return {"G_A": g, "D_A": d}


def _config():
    return ModelConfig(kind="cyclegan", nets={
        "G_A": {"arch": "resnet_generator", "args": {"ngf": 4, "n_blocks": 1, "norm": "batch"}},
        "D_A": {"arch": "patch_discriminator", "args": {"ndf": 4, "n_layers": 2}}},
        image_size=16, domains=["x", "y"], training={"lr": 0.1})


def test_round_trip(tmp_path):
    nets = _nets()
    path = save_checkpoint(tmp_path / "ck", _config(), nets)
    assert sorted(p.name for p in path.iterdir()) == ["config.json", "model.safetensors"]
    m = load_model(path)
    assert m.config == _config()
    for name, net in nets.items():
        a, b = net.state_dict(), m.nets[name].state_dict()
        assert a.keys() == b.keys()
        for k in a:
            assert torch.equal(a[k], b[k]), k
    # the lone .safetensors file is self-describing too
    m2 = load_model(path / "model.safetensors")
    assert m2.config == _config()


def test_truncated_weights(tmp_path):
    path = save_checkpoint(tmp_path / "ck", _config(), _nets())
    f = path / "model.safetensors"
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="truncated") as e:
        load_model(path)
    assert "\n" not in str(e.value)


def test_missing_config(tmp_path):
    path = save_checkpoint(tmp_path / "ck", _config(), _nets())
    (path / "config.json").unlink()
    with pytest.raises(CheckpointError, match="no config.json"):
        load_model(path)


def test_renamed_key(tmp_path):
    from safetensors.torch import load_file, save_file

    path = save_checkpoint(tmp_path / "ck", _config(), _nets())
    t = load_file(path / "model.safetensors")
    t["G_A.model.1.weightX"] = t.pop("G_A.model.1.weight")
    save_file(t, str(path / "model.safetensors"))
    with pytest.raises(CheckpointError, match=r"net G_A: missing keys model\.1\.weight"):
        load_model(path)


def test_shape_mismatch_and_newer_version(tmp_path):
    path = save_checkpoint(tmp_path / "ck", _config(), _nets())
    cfg = json.loads((path / "config.json").read_text())
    cfg["nets"]["G_A"]["args"]["ngf"] = 8
    (path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="shape mismatch for model.1.weight"):
        load_model(path)
    cfg["format_version"] = 99
    (path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="newer than this ganctl"):
        load_model(path)


def test_save_is_atomic_on_failure(tmp_path, monkeypatch):
    path = save_checkpoint(tmp_path / "ck", _config(), _nets())
    before = (path / "model.safetensors").read_bytes()
    import safetensors.torch as st

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(st, "save", boom)  # the serialiser save_checkpoint uses
    with pytest.raises(RuntimeError):
        save_checkpoint(tmp_path / "ck", _config(), _nets())
    assert (path / "model.safetensors").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
