"""The runs registry commands, Ctrl-C handling and GANCTL_DEBUG."""

import json
import os
import signal
import subprocess
import sys

from conftest import as_in_a_terminal, run_subprocess, save_rgb


def _tiny_run(cli, tmp_path, name="r1"):
    for d, s in (("A", 0), ("B", 50)):
        for i in range(2):
            save_rgb(tmp_path / d / f"{i}.png", 32, 32, seed=s + i)
    r = cli("train", tmp_path / "A", tmp_path / "B", "--name", name, "--size", "32", "--load-size", "32", "--ngf",
            "4", "--ndf", "4", "--blocks", "1", "--max-steps", "4", "--save-every", "2", "--sample-every", "2", "-q")
    assert r.code == 0, r.err
    return tmp_path / "runs" / name


def test_runs_commands(tmp_path, cli, isolated_home):
    run = _tiny_run(cli, tmp_path)
    rows = [json.loads(line) for line in cli("runs", "list", "--json").out.splitlines()]  # one object per line
    assert [r["name"] for r in rows] == ["r1"] and rows[0]["last_step"] == 4
    show = json.loads(cli("runs", "show", "r1", "--json").out)
    assert show["checkpoints"] == [2, 4] and show["latest"]["step"] == 4 and show["latest_sample"].endswith(".png")
    assert cli("runs", "promote", "r1:2", "--as", "early").code == 0
    assert (isolated_home / "zoo" / "early" / "config.json").is_file()
    assert cli("zoo", "list").out.count("early") == 1
    assert cli("runs", "export", "r1", tmp_path / "exported").code == 0
    assert sorted(p.name for p in (tmp_path / "exported").iterdir()) == ["config.json", "model.safetensors"]
    (isolated_home / "runs.sqlite").unlink()  # the registry is rebuilt from the folders
    assert "r1" in cli("runs", "scan", tmp_path / "runs").out
    assert cli("runs", "rm", "r1").code == 0 and run.is_dir()
    r = cli("runs", "show", "r1x")
    assert r.code == 3


def test_starting_a_finished_run_again_says_so_and_writes_nothing(tmp_path, cli, isolated_home, monkeypatch):
    """The same command again after a run finished: "finished", nothing appended to its stats or log,
    nothing saved; the run is still found by name where the registry lost it."""
    run = _tiny_run(cli, tmp_path)
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and ".lock" not in p.name}
    (isolated_home / "runs.sqlite").unlink()
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")  # `runs list` finds it through the registry alone
    r = cli("train", "--resume", "r1", "--runs-dir", tmp_path / "runs")
    assert r.code == 0, r.err
    assert "run r1 is finished (step 4 of 4): nothing to train" in r.err and "resuming" not in r.err, r.err
    after = {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and ".lock" not in p.name}
    assert after == before
    assert [json.loads(line)["name"] for line in cli("runs", "list", "--json").out.splitlines()] == ["r1"]


def test_runs_scan_keeps_when_runs_changed_and_rm_is_quiet(tmp_path, cli):
    run = _tiny_run(cli, tmp_path)
    os.utime(run / "stats.jsonl", (1_600_000_000, 1_600_000_000))  # as if trained in 2020
    for f in [run / "options.json", *(run / "checkpoints").iterdir()]:
        os.utime(f, (1_500_000_000, 1_500_000_000))
    assert cli("runs", "scan", tmp_path / "runs").code == 0
    assert cli("runs", "scan", tmp_path / "runs").code == 0  # twice: still the folder's own time
    [row] = [json.loads(line) for line in cli("runs", "list", "--json").out.splitlines()]
    assert row["updated"] == 1_600_000_000
    r = cli("runs", "rm", "r1", "-q")
    assert r.code == 0 and r.out == "" and r.err == ""
    assert cli("runs", "list", "--json").out == ""


def test_loss_names_are_the_same_in_loss_png_and_on_the_terminal(tmp_path, monkeypatch):
    from cyclegan_cli.train import plot

    seen = {}
    monkeypatch.setattr(plot, "_chart", lambda series, *a, **k: seen.update(series))
    (tmp_path / "stats.jsonl").write_text(json.dumps({"step": 1, "loss_cycle_A": 1.0, "loss_G_A": 2.0}) + "\n")
    plot.plot_losses(tmp_path / "stats.jsonl", tmp_path / "loss.png")
    assert sorted(seen) == ["G_A", "cyc_A"] and plot.loss_label("loss_cycle_A") == "cyc_A"


def test_usage_lines_read_like_the_readme():
    for args, usage in ((["translate"], "INPUT..."), (["runs", "export"], "SPEC DEST"), (["train"], "[FOLDER...]")):
        r = run_subprocess(*args, "--help")
        line = next(l for l in r.stdout.splitlines() if l.startswith("Usage:"))
        assert line.endswith(f"[OPTIONS] {usage}") and "{" not in line, line


def test_ctrl_c_exits_130_without_partial_files(tmp_path, tiny_cyclegan):
    for i in range(40):
        save_rgb(tmp_path / "in" / f"{i:02d}.png", 256, 256, seed=i)
    p = subprocess.Popen([sys.executable, "-m", "cyclegan_cli", "translate", str(tmp_path / "in"), "--model",
                          str(tiny_cyclegan), "--out", str(tmp_path / "out"), "--backend", "torch"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=as_in_a_terminal)
    assert p.stdout.readline()
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 130
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("ganctl: error: interrupted")
    names = set(os.listdir(tmp_path / "out")) - {".ganctl-manifest.json", ".ganctl-manifest.json.lock"}
    assert names and all(n.endswith(".png") and not n.startswith(".") for n in names)  # no temporary files


def test_debug_shows_traceback(tmp_path):
    r = run_subprocess("translate", tmp_path / "nope.png", "--model", "x.pth", env={"GANCTL_DEBUG": "1"})
    assert r.returncode == 3 and "Traceback" in r.stderr


def test_device_choice():
    import torch

    from cyclegan_cli.device import autocast_dtype, pick_device
    from cyclegan_cli.errors import UsageError

    assert pick_device("cpu").type == "cpu"
    assert pick_device("auto").type == ("cuda" if torch.cuda.is_available() else pick_device("auto").type)
    assert autocast_dtype(torch.device("cpu"), "auto") is None
    assert autocast_dtype(torch.device("cpu"), "bf16") == torch.bfloat16
    for bad in ("gpu", "cuda:x"):
        try:
            pick_device(bad)
            raise AssertionError("accepted " + bad)
        except UsageError:
            pass
