"""train --preset: the defaults of the options not given, as data (train/options.py PRESETS). The CPU
preset's values are read here off the project's own CPU recipe, the script that trained the shipped
CUT model, not off PRESETS."""

import json
import re

import pytest

from cyclegan_cli.train.options import KINDS
from conftest import REPO, save_rgb


def _recipe() -> dict:
    """field -> value of the flags examples/photo2sketch/train-cut-cpu.sh gives (size: its crops)."""
    text = (REPO / "examples/photo2sketch/train-cut-cpu.sh").read_text()
    flags = dict(re.findall(r"--(ngf|ndf|blocks|upsample|ema|size) (\S+)", text))
    return {"ngf": int(flags["ngf"]), "ndf": int(flags["ndf"]), "blocks": int(flags["blocks"]),
            "upsample": flags["upsample"], "ema": float(flags["ema"]), "size": int(flags["size"])}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_cpu_preset_is_the_projects_cpu_recipe(kind):
    cls = KINDS[kind]
    official, cpu = cls.of({}), cls.of({"preset": "cpu"})
    assert official.preset == "official" and cpu.preset == "cpu"
    assert official == cls()  # the default preset changes nothing
    for name, value in _recipe().items():
        if not hasattr(official, name):
            continue  # a kind without the option (pix2pix's blocks)
        if kind == "dcgan" and name == "size":
            assert cpu.size == official.size == 64  # an image size, not a crop: the preset leaves it
        else:
            assert getattr(cpu, name) == value, (kind, name)
    cpu.validate()


def _folders(tmp_path):
    for side in ("A", "B"):
        for j in range(2):
            save_rgb(tmp_path / side / f"{j}.png", 24, 24, seed=j + (side == "B") * 7)
    return tmp_path / "A", tmp_path / "B"


def _options(run) -> dict:
    return json.loads((run / "options.json").read_text())


def test_explicit_options_win_the_preset_is_saved_shown_and_kept(cli, tmp_path):
    a, b = _folders(tmp_path)
    runs = tmp_path / "runs"
    r = cli("train", a, b, "--method", "cut", "--preset", "cpu", "--ngf", "8", "--size", "32", "--max-steps", "1",
            "--workers", "0", "--runs-dir", runs, "--name", "p", "-q")
    assert r.code == 0, r.err
    saved = _options(runs / "p")
    assert saved["preset"] == "cpu"
    assert (saved["ngf"], saved["size"]) == (8, 32)  # given: they win
    assert (saved["ndf"], saved["blocks"], saved["upsample"], saved["ema"]) == (32, 6, "resize", 0.999)  # the preset's

    r = cli("runs", "show", "p")
    assert r.code == 0 and re.search(r"^\s*preset: cpu$", r.out, re.M), r.out
    assert json.loads(cli("runs", "show", "p", "--json").out)["options"]["preset"] == "cpu"

    r = cli("train", "--resume", "p", "--max-steps", "2", "--runs-dir", runs, "-q")  # continued: keeps its preset
    assert r.code == 0, r.err
    assert _options(runs / "p") == {**saved, "max_steps": 2}
    r = cli("train", "--resume", "p", "--preset", "official", "--max-steps", "3", "--runs-dir", runs, "-q")
    assert r.code == 2 and "--preset cpu (given official)" in r.err, r.err


def test_the_python_api_takes_a_preset(tmp_path):
    from cyclegan_cli.train.cut import train_cut

    a, b = _folders(tmp_path)
    run = train_cut(a, b, runs_dir=tmp_path / "runs", name="api", preset="cpu", ngf=8, size=32, max_steps=1, workers=0)
    saved = _options(run)
    assert (saved["preset"], saved["ngf"], saved["ndf"], saved["blocks"]) == ("cpu", 8, 32, 6)


def test_an_unknown_preset_is_one_line(cli, tmp_path):
    a, b = _folders(tmp_path)
    r = cli("train", a, b, "--preset", "gpu", "--runs-dir", tmp_path / "runs")
    assert r.code == 2 and "official" in r.err and "cpu" in r.err and not (tmp_path / "runs").exists(), r.err


def test_the_cpu_notice_names_the_preset(cli, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present: the notice is about machines without one")
    save_rgb(tmp_path / "A" / "0.png", 20, 20)
    save_rgb(tmp_path / "A" / "1.png", 20, 20, seed=1)
    tiny = ["--size", "16", "--nz", "8", "--batch-size", "2", "--max-steps", "1", "--workers", "0",
            "--runs-dir", tmp_path / "runs"]
    r = cli("train", tmp_path / "A", "--name", "official", *tiny)  # ngf 64: the official width
    assert r.code == 0 and "no GPU found: training on the CPU" in r.err and "--preset cpu" in r.err, r.err
    r = cli("train", tmp_path / "A", "--name", "cpu", "--preset", "cpu", *tiny)
    assert r.code == 0 and "no GPU found: training on the CPU with --preset cpu" in r.err, r.err


@pytest.mark.parametrize("preset", ["official", "cpu"])
def test_the_time_left_hint_names_the_preset(capsys, preset):
    """After the first steps, a CPU run hours long is told what would make it shorter."""
    from cyclegan_cli.cli.common import Output
    from cyclegan_cli.cli.train import progress_callbacks

    options = KINDS["cut"].of({"preset": preset})
    bar, cb = progress_callbacks(Output(False, False, False), options, log_seconds=1e6)
    now = [0.0]
    bar.clock = lambda: now[0]
    with bar:
        cb.on_start({"run": "r", "device": "cpu", "world": 1, "step": 0, "total": 10_000})
        for step in range(1, 40):
            now[0] += 5.0  # 5 s a step: about 14 h for the schedule
            cb.on_tick(step, 10_000)
    said = [line for line in capsys.readouterr().err.splitlines() if "to go on cpu" in line]
    assert said, "no time-left line"
    if preset == "official":
        assert "try --preset cpu, --size 128 or a GPU" in said[0], said
    else:
        assert "--preset" not in said[0] and "try --size 64 or a GPU" in said[0], said
