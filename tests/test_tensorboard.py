"""Issue 35, item 1: TensorBoard event files in every run folder (CycleGAN, DCGAN, distill), read back
with TensorBoard's own readers: the losses, the learning rate and the seconds per step at their steps,
the sample grids, the evaluation figures, the options as hparams; one stream, no step twice, after a
SIGKILL and a resume; and a run where the package is missing still trains."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import save_rgb, smooth_image
from test_eval import featnet  # noqa: F401  (a tiny TorchScript feature network)
from test_train import TINY, make_domains

pytest.importorskip("tensorboard")


def read(run: Path):
    """The run's events as TensorBoard shows them (purges applied), everything kept."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ea = EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    ea.Reload()
    return ea


def raw_events(run: Path) -> list:
    """Every event of every file, in the order readers read them (name order), nothing purged."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    return [e for f in sorted((run / "tensorboard").glob("events.out.tfevents.*")) for e in EventFileLoader(str(f)).Load()]


def raw_steps(run: Path, tag: str) -> list[int]:
    return [e.step for e in raw_events(run) for v in e.summary.value if v.tag == tag]


def scalars(ea, tag: str) -> tuple[list[int], list[float]]:
    events = ea.Scalars(tag)
    return [e.step for e in events], [e.value for e in events]


def hparams(ea) -> tuple[dict, list[str]]:
    """(the hparams of the run's session, the metric tags of its experiment)."""
    from tensorboard.plugins.hparams import plugin_data_pb2

    content = ea.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"]).session_start_info
    exp = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment
    values = {k: v.string_value if v.HasField("string_value") else v.number_value for k, v in start.hparams.items()}
    return values, [m.name.tag for m in exp.metric_infos]


def stats(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]


def check_losses_match_stats(ea, run: Path, steps: list[int]) -> None:
    """Every stats.jsonl figure is a scalar at its step, with its value: the losses, lr, s/step."""
    rows = [r for r in stats(run) if "lr" in r]
    assert [r["step"] for r in rows] == steps
    keys = [k for k in rows[0] if k.startswith("loss_")] + ["lr", "sec_per_it"]
    assert len(keys) > 2
    from cyclegan_cli.train.tensorboard import tag

    for k in keys:
        got_steps, values = scalars(ea, tag(k))
        assert got_steps == steps, k
        np.testing.assert_allclose(values, [r[k] for r in rows], rtol=1e-5, atol=1e-6, err_msg=k)


def check_images_are_the_grids(ea, run: Path, steps: list[int]) -> None:
    images = ea.Images("samples")
    assert [e.step for e in images] == steps
    for e in images:
        shown = np.asarray(Image.open(io.BytesIO(e.encoded_image_string)).convert("RGB"))
        saved = np.asarray(Image.open(run / "samples" / f"step-{e.step:08d}.png").convert("RGB"))
        assert np.array_equal(shown, saved), e.step


# ------------------------------------------------------------------------------------- every kind

def test_cyclegan_writes_losses_lr_seconds_samples_and_hparams(tmp_path, cli):
    a, b = make_domains(tmp_path)
    runs = tmp_path / "runs"
    r = cli("train", a, b, "--runs-dir", runs, "--name", "c", "--max-steps", "6", "--log-every", "2",
            "--sample-every", "3", *TINY)
    assert r.code == 0, r.err
    run = runs / "c"
    ea = read(run)
    check_losses_match_stats(ea, run, [2, 4, 6])
    assert {"loss/G_A", "loss/D_A", "loss/cycle_A", "loss/idt_B"} <= set(ea.Tags()["scalars"])
    check_images_are_the_grids(ea, run, [3, 6])
    values, metrics = hparams(ea)
    assert values["kind"] == "cyclegan" and values["ngf"] == 4 and values["lambda_cycle"] == 10
    assert values["folder_a"] == str(a.resolve()) and values["max_steps"] == 6
    assert "loss/G_A" in metrics and "lr" not in metrics
    # runs show gives the command that shows it; --json gives it too
    r = cli("runs", "show", "c")
    assert r.code == 0 and f"tensorboard: tensorboard --logdir {run.resolve() / 'tensorboard'}" in r.out.splitlines()
    r = cli("runs", "show", "c", "--json")
    assert json.loads(r.out)["tensorboard"] == f"tensorboard --logdir {run.resolve() / 'tensorboard'}"
    # --no-tensorboard: none written, and runs show says so
    r = cli("train", a, b, "--runs-dir", runs, "--name", "off", "--max-steps", "1", "--no-tensorboard", *TINY)
    assert r.code == 0, r.err
    assert not (runs / "off" / "tensorboard").exists()
    assert "tensorboard: no event files" in cli("runs", "show", "off").out


def test_dcgan_writes_its_evaluation_figures(tmp_path, cli, featnet):  # noqa: F811
    for i in range(4):
        save_rgb(tmp_path / "faces" / f"{i}.png", 20, 20, seed=i)
        save_rgb(tmp_path / "real" / f"{i}.png", 20, 20, seed=10 + i)
    runs = tmp_path / "runs"
    r = cli("train", tmp_path / "faces", "--runs-dir", runs, "--name", "d", "--size", "16", "--ngf", "4", "--ndf", "4",
            "--nz", "8", "--batch-size", "2", "--max-steps", "4", "--log-every", "1", "--sample-every", "2",
            "--eval-every", "2", "--eval-data", tmp_path / "real", "--eval-num", "4", "--eval-metrics", "kid",
            "--eval-features", featnet, "--workers", "0", "-q")
    assert r.code == 0, r.err
    run = runs / "d"
    ea = read(run)
    check_losses_match_stats(ea, run, [1, 2, 3, 4])
    check_images_are_the_grids(ea, run, [2, 4])
    evals = [x for x in stats(run) if "eval" in x]
    for k in ("kid", "kid_std"):
        steps, values = scalars(ea, f"eval/{k}")
        assert steps == [2, 4]
        np.testing.assert_allclose(values, [x["eval"][k] for x in evals], rtol=1e-5, atol=1e-9)
    values, metrics = hparams(ea)
    assert values["kind"] == "dcgan" and values["nz"] == 8
    assert {"eval/kid", "loss/G", "loss/D"} <= set(metrics)


def photos(folder: Path, n: int = 3) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(smooth_image(40 + 8 * i, 36)).save(folder / f"p{i}.png")
    return folder


def test_distill_writes_events_too(tmp_path, cli, tiny_cyclegan):
    inp = photos(tmp_path / "in")
    runs = tmp_path / "runs"
    tiny = ["--width", "4", "--blocks", "1", "--size", "32", "--batch-size", "2", "--epochs", "1", "--decay-epochs", "1",
            "--runs-dir", runs, "-q"]
    r = cli("distill", tiny_cyclegan, inp, "--name", "s", *tiny, "--max-steps", "4", "--log-every", "1",
            "--sample-every", "2")
    assert r.code == 0, r.err
    run = runs / "s"
    ea = read(run)
    check_losses_match_stats(ea, run, [1, 2, 3, 4])
    check_images_are_the_grids(ea, run, [2, 4])
    values, metrics = hparams(ea)
    assert values["kind"] == "distill" and values["teacher.spec"] == str(tiny_cyclegan) and values["l1_weight"] == 10
    assert any(m.startswith("loss/") for m in metrics)
    r = cli("distill", tiny_cyclegan, inp, "--name", "s-off", *tiny, "--max-steps", "1", "--no-tensorboard")
    assert r.code == 0, r.err
    assert (runs / "s-off" / "checkpoints").is_dir() and not (runs / "s-off" / "tensorboard").exists()


# ------------------------------------------------------------------------------------- resume

def test_a_resume_after_sigkill_goes_on_in_the_same_stream(tmp_path, cli):
    """Killed with events on disk past its last checkpoint, then resumed: each step once, in order, in
    TensorBoard's reader and in the raw files alike, and the values after the checkpoint are the
    resumed run's (stats.jsonl's), not the killed one's. Then continued again in this process at once
    (a new event file in the same second): still one stream, one hparams session."""
    a, b = make_domains(tmp_path)
    runs = tmp_path / "runs"
    run = runs / "k"
    cmd = [sys.executable, "-m", "cyclegan_cli", "train", str(a), str(b), "--runs-dir", str(runs), "--name", "k",
           *TINY, "--log-every", "1", "--sample-every", "5", "--save-every", "10"]
    p = subprocess.Popen(cmd + ["--max-steps", "400"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    from cyclegan_cli.zoo.runs import checkpoint_steps

    try:
        deadline = time.time() + 300
        while time.time() < deadline and p.poll() is None:  # a checkpoint, and events written after it
            done = checkpoint_steps(run) if (run / "checkpoints").is_dir() else []
            if done and (run / "tensorboard").is_dir() and max(raw_steps(run, "loss/G_A"), default=0) > done[-1]:
                break
            time.sleep(0.005)
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait()
    last = checkpoint_steps(run)[-1]
    killed = raw_steps(run, "loss/G_A")
    assert killed == list(range(1, max(killed) + 1)) and max(killed) > last  # past the checkpoint, on disk
    end = last + 7
    r = cli("train", "--resume", "k", "--runs-dir", runs, "--max-steps", str(end), "-q")
    assert r.code == 0, r.err

    def check(*ends):  # each continuation's end has a sample grid too
        end, grids = ends[-1], sorted({*range(5, ends[-1] + 1, 5), *ends})
        ea = read(run)
        check_losses_match_stats(ea, run, list(range(1, end + 1)))  # the killed run's values past `last` gone
        for tag in ea.Tags()["scalars"]:
            assert scalars(ea, tag)[0] == list(range(1, end + 1)), tag
        check_images_are_the_grids(ea, run, grids)
        assert raw_steps(run, "loss/G_A") == list(range(1, end + 1))  # cut from the files, not only hidden
        assert raw_steps(run, "samples") == grids
        assert raw_steps(run, "_hparams_/session_start_info") == [end]  # one session, the run's end
        assert hparams(ea)[0]["max_steps"] == end

    check(end)
    r = cli("train", "--resume", "k", "--runs-dir", runs, "--max-steps", str(end + 3), "-q")
    assert r.code == 0, r.err
    check(end, end + 3)
    assert len(list((run / "tensorboard").glob("events.out.tfevents.*"))) == 3  # one file a (re)start


def test_a_run_without_tensorboard_installed_still_trains(tmp_path):
    """The package hidden (a sitecustomize that makes its import fail): the run trains, writes no
    events, and runs show says how to get them."""
    a, b = make_domains(tmp_path)
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text(
        "import sys\nfor name in ('tensorboard', 'torch.utils.tensorboard'):\n    sys.modules[name] = None\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(hide), *filter(None, [os.environ.get("PYTHONPATH")])]),
           "OMP_NUM_THREADS": "1"}
    probe = subprocess.run([sys.executable, "-c", "from cyclegan_cli.train.tensorboard import available, installed; "
                            "print(available(), installed())"], env=env, capture_output=True, text=True)
    assert probe.stdout.split() == ["False", "False"], probe.stderr
    runs = tmp_path / "runs"
    r = subprocess.run([sys.executable, "-m", "cyclegan_cli", "train", str(a), str(b), "--runs-dir", str(runs),
                        "--name", "bare", "--max-steps", "2", "--sample-every", "1", *TINY], env=env,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert (runs / "bare" / "checkpoints" / "step-00000002").is_dir() and not (runs / "bare" / "tensorboard").exists()
    r = subprocess.run([sys.executable, "-m", "cyclegan_cli", "runs", "show", "bare"], env=env, capture_output=True,
                       text=True)
    assert r.returncode == 0 and "tensorboard: no event files (for the next runs: pip install 'ganctl[tensorboard]')" \
        in r.stdout, r.stdout + r.stderr


def test_a_new_event_file_sorts_after_the_last_one(tmp_path):
    """Readers read event files in name order, and a name starts with the second its writer was made:
    a file made in the same second as the last one (here one named after a host and pid that sort
    after ours) must still come after it."""
    from cyclegan_cli.train.tensorboard import TENSORBOARD_DIR, Events

    folder = tmp_path / TENSORBOARD_DIR
    folder.mkdir()
    last = folder / f"events.out.tfevents.{int(time.time()):010d}.zzzz.99999.0"
    last.write_bytes(b"")
    events = Events(folder, 0)
    events.close()
    assert sorted(folder.iterdir())[-1].name != last.name and len(list(folder.iterdir())) == 2
