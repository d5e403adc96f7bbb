"""A regular (non-editable) install carries the shipped models and the zoo manifest."""

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The wheel and sdist built from this checkout, offline, with the current environment's setuptools."""
    dist = tmp_path_factory.mktemp("dist")
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "--no-build-isolation",
                        "-w", str(dist), "-q"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    r = subprocess.run([sys.executable, "-c", "import setuptools.build_meta as b, sys; "
                        f"print(b.build_sdist({str(dist)!r}))"], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    return dist


def test_wheel_install_translates_and_samples_from_elsewhere(built, tmp_path):
    wheel = next(built.glob("ganctl-*.whl"))
    target = tmp_path / "site"
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q", "--target",
                        str(target), str(wheel)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert (target / "cyclegan_cli" / "pretrained" / "zoo.json").is_file()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target), "GANCTL_HOME": str(tmp_path / "home"), "GANCTL_OFFLINE": "1"}
    env.pop("GANCTL_PRETRAINED", None)

    def ganctl(*args):
        return subprocess.run([sys.executable, "-m", "cyclegan_cli", *map(str, args)], capture_output=True,
                              text=True, cwd=elsewhere, env=env, timeout=600)

    where = subprocess.run([sys.executable, "-c", "import cyclegan_cli; print(cyclegan_cli.__file__)"],
                           capture_output=True, text=True, cwd=elsewhere, env=env)
    assert where.stdout.startswith(str(target)), where.stdout  # the installed copy, not this checkout
    r = ganctl("translate", REPO / "examples" / "photos", "--model", "photo2sketch", "--out", "out", "--size", "96")
    assert r.returncode == 0, r.stderr
    photos = sorted(p.name for p in (REPO / "examples" / "photos").glob("*.jpg"))
    assert photos and sorted(p.name for p in (elsewhere / "out").glob("*.jpg")) == photos
    r = ganctl("sample", "--model", "emoji32", "--seeds", "0-3", "--out", "s")
    assert r.returncode == 0, r.stderr
    assert np.asarray(Image.open(elsewhere / "s" / "seed0000.png")).shape == (32, 32, 3)


def test_sdist_carries_the_shipped_models(built):
    sdist = next(built.glob("ganctl-*.tar.gz"))
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    shipped = [e["file"] for e in json.loads((REPO / "pretrained" / "zoo.json").read_text())["models"].values() if e.get("file")]
    assert {"photo2sketch-cut", "photo2sketch-paired", "emoji32"} <= set(shipped)
    for model in shipped:
        assert f"pretrained/{model}/model.safetensors" in names and f"pretrained/{model}/config.json" in names
    assert "pretrained/zoo.json" in names
