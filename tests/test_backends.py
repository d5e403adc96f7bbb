"""The default backend as users meet it, with and without the optional extras: ONNX Runtime only
where the export can run too (onnxruntime and onnx), torch otherwise; an explicit ``--backend
onnxruntime`` without them is refused in one line. Each case runs ganctl in a child process whose
``sitecustomize`` hides packages as if they were absent."""

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import run_subprocess, save_rgb

# rembg, chromadb and faster-whisper install onnxruntime without onnx
EXTRAS = {"all extras": [], "onnxruntime without onnx": ["onnx"], "no extras": ["onnxruntime", "onnx"]}


def hiding(tmp_path, names) -> dict:
    """The environment of a child process in which ``import <name>`` fails for each of ``names``."""
    folder = tmp_path / "site-hiding"
    folder.mkdir(exist_ok=True)
    # None in sys.modules: `import name` raises ModuleNotFoundError and importlib.util.find_spec(name)
    # returns None, as where the package is absent
    (folder / "sitecustomize.py").write_text(f"import sys\nsys.modules.update(dict.fromkeys({sorted(names)!r}))\n")
    return {"PYTHONPATH": os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")])),
            "OMP_NUM_THREADS": "1"}


@pytest.mark.parametrize("extras", list(EXTRAS))
def test_default_backend_with_and_without_the_extras(tmp_path, tiny_cyclegan, extras):
    hidden = EXTRAS[extras]
    if not hidden:
        pytest.importorskip("onnxruntime")
        pytest.importorskip("onnx")
    save_rgb(tmp_path / "in" / "a.png", 40, 32)
    env = hiding(tmp_path, hidden)
    r = run_subprocess("translate", tmp_path / "in", "--model", tiny_cyclegan, "--out", tmp_path / "auto", "-v", env=env)
    assert r.returncode == 0, r.stderr
    chosen = "torch" if hidden else "onnxruntime"
    assert f"backend {chosen};" in r.stderr
    why = [line for line in r.stderr.splitlines() if "--backend auto: torch" in line]
    if hidden:  # said once, naming what is missing and how to get it
        assert len(why) == 1 and f"{hidden[0]} is not installed" in why[0] and "ganctl[onnx]" in why[0], r.stderr
    else:
        assert why == []
    ref = run_subprocess("translate", tmp_path / "in", "--model", tiny_cyclegan, "--out", tmp_path / "torch",
                         "--backend", "torch", env=env)
    assert ref.returncode == 0, ref.stderr
    a, b = (np.asarray(Image.open(tmp_path / d / "a.png"), dtype=int) for d in ("auto", "torch"))
    assert np.abs(a - b).max() <= 1


def translated_with_the_export_cached(tmp_path, model) -> tuple[dict, Path]:
    """in/a.png translated into first/ with every extra, in a home of its own: (that home's
    environment, the one ONNX export it cached)."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    save_rgb(tmp_path / "in" / "a.png", 40, 32)
    home = {"GANCTL_HOME": str(tmp_path / "home")}
    first = run_subprocess("translate", tmp_path / "in", "--model", model, "--out", tmp_path / "first",
                           env=hiding(tmp_path, []) | home)
    assert first.returncode == 0, first.stderr
    [cached] = (tmp_path / "home" / "cache" / "onnx").glob("*.onnx")
    return home, cached


@pytest.mark.parametrize("backend", ["auto", "onnxruntime"])
def test_a_cached_export_runs_without_importing_onnx(tmp_path, tiny_cyclegan, backend):
    """onnx only writes the export: once it is cached for these weights, translate runs it in ONNX
    Runtime without importing onnx (half a second of every run), and where onnx is absent."""
    home, _ = translated_with_the_export_cached(tmp_path, tiny_cyclegan)
    again = run_subprocess("translate", tmp_path / "in", "--model", tiny_cyclegan, "--out", tmp_path / "again",
                           "--backend", backend, "-v", env=hiding(tmp_path, ["onnx"]) | home)
    assert again.returncode == 0, again.stderr
    assert "backend onnxruntime;" in again.stderr and "not installed" not in again.stderr, again.stderr
    a, b = (np.asarray(Image.open(tmp_path / d / "a.png"), dtype=int) for d in ("first", "again"))
    assert np.array_equal(a, b)


@pytest.mark.parametrize("extras", ["all extras", "onnxruntime without onnx"])
def test_a_damaged_cached_export_is_written_again_or_passed_by(tmp_path, tiny_cyclegan, extras):
    """A cached export that ONNX Runtime cannot read (a copy cut short): exported again where onnx is
    installed, else the default backend runs torch and says why; the output is the same either way."""
    home, cached = translated_with_the_export_cached(tmp_path, tiny_cyclegan)
    cached.write_bytes(cached.read_bytes()[:100])
    again = run_subprocess("translate", tmp_path / "in", "--model", tiny_cyclegan, "--out", tmp_path / "again",
                           "-v", env=hiding(tmp_path, EXTRAS[extras]) | home)
    assert again.returncode == 0, again.stderr
    if extras == "all extras":
        assert "backend onnxruntime;" in again.stderr and cached.stat().st_size > 1000, again.stderr
    else:
        assert "backend torch;" in again.stderr and "cannot be read" in again.stderr, again.stderr
    a, b = (np.asarray(Image.open(tmp_path / d / "a.png"), dtype=int) for d in ("first", "again"))
    assert np.abs(a - b).max() <= 1


@pytest.mark.parametrize("extras", ["onnxruntime without onnx", "no extras"])
def test_explicit_onnxruntime_backend_without_the_extras_is_one_line(tmp_path, tiny_cyclegan, extras):
    save_rgb(tmp_path / "in" / "a.png", 40, 32)
    r = run_subprocess("translate", tmp_path / "in", "--model", tiny_cyclegan, "--out", tmp_path / "o",
                       "--backend", "onnxruntime", env=hiding(tmp_path, EXTRAS[extras]))
    assert r.returncode == 2
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "needs the onnx extra" in lines[0] and "Traceback" not in r.stderr, r.stderr
    assert not (tmp_path / "o" / "a.png").exists()


@pytest.mark.parametrize("extras", ["all extras", "no extras"])
def test_distill_times_students_on_the_backend_translate_will_use(tmp_path, tiny_cyclegan, extras):
    """The chooser ranks shapes by the time translate will take: through ONNX Runtime where the
    extras are installed (it ranks networks unlike torch), in torch where they are not; a student is
    distilled either way."""
    import subprocess
    import sys

    from test_distill import TINY, photos

    hidden = EXTRAS[extras]
    if not hidden:
        pytest.importorskip("onnxruntime")
        pytest.importorskip("onnx")
    env = dict(os.environ) | hiding(tmp_path, hidden)
    r = subprocess.run([sys.executable, "-c", "from cyclegan_cli.train.student_shape import translate_timer; "
                        "print(translate_timer().__name__)"], capture_output=True, text=True, env=env)
    assert r.stdout.strip() == ("time_forward" if hidden else "time_onnx"), r.stderr
    r = run_subprocess("distill", tiny_cyclegan, photos(tmp_path / "in"), "--name", "stu", "--runs-dir",
                       tmp_path / "runs", *TINY, env=env)
    assert r.returncode == 0, r.stderr
    assert "student: width" in r.stderr
