"""translate --engine ray: against a Ray cluster started here on 127.0.0.1 with 2 CPUs."""

import os
import signal
import sys
import threading
import time

import numpy as np
import pytest
from PIL import Image

from conftest import save_rgb


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory):
    ray = pytest.importorskip("ray")
    os.environ["GANCTL_RAY_PID_DIR"] = str(tmp_path_factory.mktemp("ray-pids"))  # inherited by the workers
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR",
             _node_ip_address="127.0.0.1")
    yield ray
    ray.shutdown()


def tree(root, n=6):
    files = []
    for i in range(n):
        files.append(save_rgb(root / ("sub" if i % 2 else "") / f"{i}.png", 20 + 4 * i, 16 + 2 * i, seed=i))
    return files


def test_ray_matches_local_and_skips_on_rerun(cli, tmp_path, tiny_cyclegan, ray_cluster):
    tree(tmp_path / "in")
    r = cli("translate", tmp_path / "in", "--model", tiny_cyclegan, "--out", tmp_path / "local")
    assert r.code == 0, r.err
    local_lines = r.out.splitlines()
    r = cli("translate", tmp_path / "in", "--model", tiny_cyclegan, "--out", tmp_path / "ray", "--engine", "ray")
    assert r.code == 0, r.err
    local = sorted(p.relative_to(tmp_path / "local") for p in (tmp_path / "local").rglob("*.png"))
    remote = sorted(p.relative_to(tmp_path / "ray") for p in (tmp_path / "ray").rglob("*.png"))
    assert local == remote and len(local) == 6
    for rel in local:
        a = np.asarray(Image.open(tmp_path / "local" / rel)).astype(int)
        b = np.asarray(Image.open(tmp_path / "ray" / rel)).astype(int)
        assert np.abs(a - b).max() <= 1
    assert r.out.splitlines() == [l.replace(str(tmp_path / "local"), str(tmp_path / "ray")) for l in local_lines]
    again = cli("translate", tmp_path / "in", "--model", tiny_cyclegan, "--out", tmp_path / "ray", "--engine", "ray",
                "--json")
    assert again.code == 0 and again.out.count('"skipped"') == 6 and '"ok"' not in again.out


@pytest.mark.slow
def test_killed_worker_is_retried(cli, tmp_path, tiny_cyclegan, ray_cluster):
    for i in range(40):
        save_rgb(tmp_path / "in" / f"{i:02d}.png", 160, 120, seed=i)
    piddir = os.environ["GANCTL_RAY_PID_DIR"]
    before = set(os.listdir(piddir))
    killed = []

    def killer():
        deadline = time.time() + 120
        while time.time() < deadline and not killed:
            new = set(os.listdir(piddir)) - before
            if new and any((tmp_path / "out").glob("*.png")):
                for pid in sorted(int(x) for x in new):
                    try:  # an actor process dies mid-run (one that has already ended is passed over)
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        before.add(str(pid))
                        continue
                    killed.append(pid)
                    break
            time.sleep(0.01)

    t = threading.Thread(target=killer)
    t.start()
    r = cli("translate", tmp_path / "in", "--model", tiny_cyclegan, "--out", tmp_path / "out", "--engine", "ray")
    t.join()
    assert killed, "no actor was killed"
    assert r.code == 0, r.err
    names = sorted(p.name for p in (tmp_path / "out").iterdir() if not p.name.startswith("."))
    assert names == [f"{i:02d}.png" for i in range(40)]  # every file, no temporary leftovers
    for n in names:
        Image.open(tmp_path / "out" / n).load()  # and each one whole
    again = cli("translate", tmp_path / "in", "--model", tiny_cyclegan, "--out", tmp_path / "out", "--engine", "ray")
    assert again.code == 0 and again.out == ""  # nothing left to convert


def test_engine_ray_without_ray_is_one_line(cli, tmp_path, tiny_cyclegan, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    monkeypatch.setitem(sys.modules, "ray.data", None)
    save_rgb(tmp_path / "a.png", 16, 16)
    r = cli("translate", tmp_path / "a.png", "--model", tiny_cyclegan, "--engine", "ray")
    assert r.code == 2 and len(r.err_lines) == 1 and "ganctl[ray]" in r.err
    assert not (tmp_path / "translated").exists()


def test_python_api_on_a_dataset(tmp_path, tiny_cyclegan, ray_cluster):
    import ray

    from cyclegan_cli.infer.ray_engine import translate_dataset

    files = tree(tmp_path / "in", 3)
    ds = ray.data.from_items([{"src": str(f), "dst": str(tmp_path / "o" / f.name), "kind": "image"} for f in files])
    rows = translate_dataset(ds, str(tiny_cyclegan), workers=1).take_all()
    assert sorted(r["status"] for r in rows) == ["ok"] * 3 and all((tmp_path / "o" / f.name).is_file() for f in files)


def test_a_distilled_student_is_an_ordinary_model_zoo_ray_and_video(cli, tmp_path, tiny_cyclegan, ray_cluster):
    """A student imported into the user's zoo translates on Ray as it does locally, and a video with
    it keeps its frame count and size."""
    from test_distill import TINY, photos
    from test_video import make_video

    r = cli("distill", tiny_cyclegan, photos(tmp_path / "p"), "--name", "stu", *TINY, "--max-steps", "2", "-q")
    assert r.code == 0, r.err
    ckpt = sorted((tmp_path / "runs" / "stu" / "checkpoints").iterdir())[-1]
    r = cli("zoo", "import", ckpt, "--name", "stu-zoo")
    assert r.code == 0, r.err
    tree(tmp_path / "in")
    outs = {}
    for engine in ("local", "ray"):
        r = cli("translate", tmp_path / "in", "--model", "stu-zoo", "--out", tmp_path / engine, "--engine", engine)
        assert r.code == 0, r.err
        outs[engine] = {p.relative_to(tmp_path / engine): np.asarray(Image.open(p)).astype(int)
                        for p in (tmp_path / engine).rglob("*.png")}
    assert outs["local"].keys() == outs["ray"].keys() and len(outs["local"]) == 6
    assert all(np.abs(outs["local"][k] - outs["ray"][k]).max() <= 1 for k in outs["local"])
    video = make_video(tmp_path / "v" / "clip.mp4", seconds=1)
    r = cli("translate", video, "--model", "stu-zoo", "--out", tmp_path / "vo", "--json")
    assert r.code == 0, r.err
    import json
    from pathlib import Path

    from cyclegan_cli.data.video import read_frames

    row = json.loads(r.out.splitlines()[-1])
    src, made = list(read_frames(video)), list(read_frames(Path(row["output"])))
    assert len(made) == len(src) and made[0].shape == src[0].shape
