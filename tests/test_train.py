"""Training: exact resume after SIGKILL, learning on synthetic domains, DDP on CPU with gloo, DCGAN."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw
from safetensors.torch import load_file

from conftest import as_in_a_terminal

TINY = ["--size", "32", "--load-size", "36", "--ngf", "4", "--ndf", "4", "--blocks", "1", "--workers", "0",
        "--deterministic", "--seed", "3", "-q"]


def make_domains(root: Path, n: int = 6):
    """Red squares (A) and blue discs (B) at random places on grey."""
    rng = random.Random(0)
    for d, shape, color in (("A", "rectangle", (220, 30, 30)), ("B", "ellipse", (30, 30, 220))):
        (root / d).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            im = Image.new("RGB", (40, 40), (200, 200, 200))
            x, y, s = rng.randint(2, 18), rng.randint(2, 18), rng.randint(10, 18)
            getattr(ImageDraw.Draw(im), shape)([x, y, x + s, y + s], fill=color)
            im.save(root / d / f"{i}.png")
    return root / "A", root / "B"


def _train_cmd(a, b, runs, name, steps, *extra):
    return [sys.executable, "-m", "cyclegan_cli", "train", str(a), str(b), "--runs-dir", str(runs), "--name", name,
            "--max-steps", str(steps), *TINY, *extra]


def _final_state(run_dir: Path, step: int):
    ck = run_dir / "checkpoints" / f"step-{step:08d}"
    w = load_file(ck / "model.safetensors")
    r = torch.load(ck / "resume.pt", weights_only=True)
    return w, r


def _assert_same_state(x, y):
    wa, ra = x
    wb, rb = y
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k
    for opt in ("opt_G", "opt_D"):
        sa, sb = ra["task"][opt]["state"], rb["task"][opt]["state"]
        assert sa.keys() == sb.keys()
        for i in sa:
            for k in sa[i]:
                assert torch.equal(torch.as_tensor(sa[i][k]), torch.as_tensor(sb[i][k])), (opt, i, k)


@pytest.mark.slow
def test_exact_resume_after_sigkill(tmp_path):
    a, b = make_domains(tmp_path)
    n = 24
    subprocess.run(_train_cmd(a, b, tmp_path / "runs", "oneshot", n, "--save-every", "1000"), check=True,
                   capture_output=True)
    ref = _final_state(tmp_path / "runs" / "oneshot", n)
    # kill at random moments (the seeds make them reproducible), including during checkpoint writes
    rnd = random.Random(1)
    cmd = _train_cmd(a, b, tmp_path / "runs", "killed", n, "--save-every", "3")
    run_dir = tmp_path / "runs" / "killed"
    for attempt in range(3):
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 120
        target = rnd.randint(2, 6) + 3 * attempt
        while time.time() < deadline:
            names = os.listdir(run_dir / "checkpoints") if (run_dir / "checkpoints").is_dir() else []
            done = [int(x[5:]) for x in names if x.startswith("step-")]
            writing = any(x.startswith(".") for x in names)
            # the middle attempt is killed while a checkpoint is being written, the others between steps
            if (attempt == 1 and writing and done) or (attempt != 1 and done and max(done) >= target):
                break
            time.sleep(0.002)
        p.send_signal(signal.SIGKILL)
        p.wait()
    from cyclegan_cli.zoo.runs import checkpoint_steps

    assert checkpoint_steps(run_dir)[-1] < n  # the kills really happened mid-run
    subprocess.run(cmd, check=True, capture_output=True)
    _assert_same_state(_final_state(run_dir, n), ref)
    assert not [x for x in os.listdir(run_dir / "checkpoints") if x.startswith(".")]  # no half-written leftovers
    rows = [json.loads(l) for l in (run_dir / "stats.jsonl").read_text().splitlines()]
    stats = [r["step"] for r in rows if "event" not in r]
    assert stats == sorted(set(stats))  # no duplicated lines after resumes
    assert any(r.get("event") == "resume" for r in rows)  # loss.png marks them


@pytest.mark.slow
def test_cycle_loss_halves(tmp_path, cli):
    a, b = make_domains(tmp_path, n=8)
    r = cli("train", a, b, "--runs-dir", tmp_path / "runs", "--name", "learn", "--max-steps", "200",
            "--log-every", "1", "--sample-every", "100", "--size", "32", "--load-size", "36", "--ngf", "8",
            "--ndf", "8", "--blocks", "2", "--workers", "0", "--seed", "0", "-q")
    assert r.code == 0, r.err
    rows = [json.loads(l) for l in (tmp_path / "runs" / "learn" / "stats.jsonl").read_text().splitlines()]
    cyc = [x["loss_cycle_A"] + x["loss_cycle_B"] for x in rows]
    assert len(cyc) == 200
    assert np.mean(cyc[-10:]) < 0.5 * np.mean(cyc[:10])
    run = tmp_path / "runs" / "learn"
    assert (run / "samples" / "step-00000200.png").is_file() and (run / "loss.png").is_file()
    opts = json.loads((run / "options.json").read_text())
    assert opts["lambda_cycle"] == 10.0 and opts["loss"] == "lsgan"
    # the run is usable right away by name
    t = cli("translate", a, "--model", "learn", "--out", tmp_path / "out")
    assert t.code == 0 and len(t.out.split()) == 8


@pytest.mark.slow
def _torchrun(a, b, runs, *extra, **kw):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env.update(kw.pop("env", {}))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m",
           "cyclegan_cli", "train", str(a), str(b), "--runs-dir", str(runs), "--device", "cpu", *TINY, *extra]
    return cmd, env


@pytest.mark.slow
def test_ddp_two_processes_on_cpu(tmp_path):
    """torchrun, gloo: no --name (rank 0 names the run for both), one result line on stdout (rank 0
    only), identical weights on both ranks, and a resume as exact as one uninterrupted run."""
    a, b = make_domains(tmp_path)
    runs = tmp_path / "runs"
    cmd, env = _torchrun(a, b, runs, "--max-steps", "4", "--save-every", "2")
    env["GANCTL_DDP_DUMP"] = str(tmp_path / "dump")  # each rank writes its own weights, to compare them
    r = subprocess.run([c for c in cmd if c != "-q"], env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert [d.name for d in runs.iterdir()] == ["cyclegan-001"]
    assert r.stdout.strip().splitlines() == [str(runs / "cyclegan-001")]
    assert r.stderr.count("run ") == 1  # the start line, from rank 0 alone
    w0 = load_file(tmp_path / "dump" / "rank0.safetensors")
    w1 = load_file(tmp_path / "dump" / "rank1.safetensors")
    assert w0.keys() == w1.keys() and all(torch.equal(w0[k], w1[k]) for k in w0)
    assert json.loads((runs / "cyclegan-001" / "options.json").read_text())["world_size"] == 2
    assert (runs / "cyclegan-001" / "checkpoints" / "step-00000004" / "resume-rank1.pt").is_file()
    # exact multi-process resume: 3 steps, then on to 6, equals 6 in one go
    for name, stops in (("once", [6]), ("twice", [3, 6])):
        for n in stops:
            cmd, env = _torchrun(a, b, runs, "--name", name, "--max-steps", str(n), "--save-every", "1000")
            assert subprocess.run(cmd, env=env, capture_output=True, timeout=600).returncode == 0
    _assert_same_state(_final_state(runs / "once", 6), _final_state(runs / "twice", 6))
    # the same command once more: every rank finds nothing to train and ends cleanly
    cmd, env = _torchrun(a, b, runs, "--name", "once", "--max-steps", "6", "--save-every", "1000")
    r = subprocess.run([c for c in cmd if c != "-q"], env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0 and "run once is finished (step 6 of 6)" in r.stderr, r.stderr[-2000:]


@pytest.mark.slow
def test_ddp_ctrl_c_stops_every_rank_at_one_step(tmp_path):
    a, b = make_domains(tmp_path)
    runs = tmp_path / "runs"
    cmd, env = _torchrun(a, b, runs, "--name", "stop", "--max-steps", "600", "--save-every", "100000",
                         "--log-every", "1")
    p = subprocess.Popen([c for c in cmd if c != "-q"] + ["--json"], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, start_new_session=True,
                         preexec_fn=as_in_a_terminal)
    for line in p.stdout:  # wait for a few steps
        if '"step": 3' in line:
            break
    os.killpg(p.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole process group
    out, err = p.communicate(timeout=120)  # no rank hangs in a collective the other never enters
    assert p.returncode != 0
    ck = [d for d in (runs / "stop" / "checkpoints").iterdir() if not d.name.startswith(".")]
    assert len(ck) == 1 and (ck[0] / "resume.pt").is_file() and (ck[0] / "resume-rank1.pt").is_file()
    r0 = torch.load(ck[0] / "resume.pt", weights_only=True)
    r1 = torch.load(ck[0] / "resume-rank1.pt", weights_only=True)
    assert r0["step"] == r1["step"] == int(ck[0].name.split("-")[1])  # both ranks stopped at the same step


def test_dcgan_trains_and_resumes_by_name(tmp_path, cli):
    d = tmp_path / "faces"
    d.mkdir()
    for i in range(16):
        im = Image.new("RGB", (40, 40), (255, 255, 255))
        ImageDraw.Draw(im).ellipse([8, 8, 32, 32], fill=(40 + 10 * i, 120, 200 - 8 * i))
        im.save(d / f"{i}.png")
    (d / "broken.png").write_text("nope")
    args = ["train", d, "--runs-dir", tmp_path / "runs", "--name", "faces", "--size", "32", "--ngf", "8", "--ndf",
            "8", "--batch-size", "8", "--workers", "0", "--save-every", "5"]
    r = cli(*args, "--max-steps", "5")
    assert r.code == 0, r.err
    assert "skipped " in r.err and "broken.png" in r.err  # one line naming the file
    r = cli(*args, "--max-steps", "8")  # the same name again continues
    assert r.code == 0 and "resuming faces from step 5" in r.err
    ck = tmp_path / "runs" / "faces" / "checkpoints"
    assert sorted(p.name for p in ck.iterdir()) == ["step-00000005", "step-00000008"]
    s = cli("sample", "--model", tmp_path / "runs" / "faces" / "checkpoints" / "step-00000008", "--seeds", "0-3",
            "--out", tmp_path / "s")
    assert s.code == 0 and len(s.out.split()) == 4


def test_train_errors(tmp_path, cli):
    r = cli("train", tmp_path / "nope")
    assert r.code == 3
    (tmp_path / "empty").mkdir()
    r = cli("train", tmp_path / "empty")
    assert r.code == 2 and "no usable images" in r.err
    r = cli("train", tmp_path / "empty", tmp_path / "empty", tmp_path / "empty")
    assert r.code == 2


def test_same_name_with_other_options_is_refused(tmp_path, cli):
    a, b = make_domains(tmp_path, n=2)
    base = ["train", a, b, "--runs-dir", tmp_path / "runs", "--name", "x", "--size", "32", "--load-size", "32",
            "--ndf", "4", "--blocks", "1", "--max-steps", "2", "-q"]
    assert cli(*base, "--ngf", "4").code == 0
    r = cli(*base, "--ngf", "8")
    assert r.code == 2 and "--ngf 4 (given 8)" in r.err
    r = cli("train", "--resume", "x", "--max-steps", "3", "--runs-dir", tmp_path / "runs", "-q")
    assert r.code == 0, r.err


def test_max_steps_below_the_current_step_trains_nothing_and_saves_nothing(tmp_path, cli):
    """A run at step 4 asked for --max-steps 2: it is past it. Exit 0 (a script that asks for "train until
    step N" again after reaching it succeeds, as --max-steps N at step N does), say so, change nothing."""
    a, b = make_domains(tmp_path, n=2)
    r = cli("train", a, b, "--runs-dir", tmp_path / "runs", "--name", "p", "--size", "32", "--load-size", "32",
            "--ngf", "4", "--ndf", "4", "--blocks", "1", "--max-steps", "4", "--workers", "0", "-q")
    assert r.code == 0, r.err
    run = tmp_path / "runs" / "p"
    before = {p.relative_to(run): p.read_bytes() for p in run.rglob("*") if p.is_file()}
    r = cli("train", "--resume", "p", "--runs-dir", tmp_path / "runs", "--max-steps", "2")
    assert r.code == 0, r.err
    assert "already at step 4, past --max-steps 2" in r.err and "steps to go" not in r.err
    assert r.out.strip() == str(run)
    assert {p.relative_to(run): p.read_bytes() for p in run.rglob("*") if p.is_file()} == before
    assert json.loads((run / "options.json").read_text())["max_steps"] == 4


def test_cycle_weights_per_direction(tmp_path, cli):
    """--lambda-cycle-a weighs only the A->B->A cycle (and, as in the official code, the G_B(A) ~ A
    identity term); the choice is saved with the run and a resume that contradicts it is refused."""
    a, b = make_domains(tmp_path, n=2)
    base = ["train", a, b, "--runs-dir", tmp_path / "runs", "--name", "w", "--size", "32", "--load-size", "32",
            "--ngf", "4", "--ndf", "4", "--blocks", "1", "--log-every", "1", "-q"]
    r = cli(*base, "--max-steps", "2", "--lambda-cycle-a", "0")
    assert r.code == 0, r.err
    run = tmp_path / "runs" / "w"
    rows = [json.loads(l) for l in (run / "stats.jsonl").read_text().splitlines() if '"loss_cycle_A"' in l]
    assert len(rows) == 2
    for x in rows:
        assert x["loss_cycle_A"] == 0 and x["loss_idt_B"] == 0
        assert x["loss_cycle_B"] > 0 and x["loss_idt_A"] > 0
    opts = json.loads((run / "options.json").read_text())
    assert (opts["lambda_cycle_a"], opts["lambda_cycle_b"]) == (0.0, 10.0)
    r = cli(*base, "--max-steps", "3", "--lambda-cycle-a", "5")
    assert r.code == 2 and "--lambda-cycle-a 0.0 (given 5.0)" in r.err
    r = cli("train", "--resume", "w", "--max-steps", "3", "--runs-dir", tmp_path / "runs", "-q")
    assert r.code == 0, r.err
    last = json.loads((run / "stats.jsonl").read_text().splitlines()[-1])
    assert last["step"] == 3 and last["loss_cycle_A"] == 0


def test_resume_keeps_the_checkpoints_it_was_told_to_keep(tmp_path, cli):
    """--keep and --save-every are remembered: a resume that does not repeat them must neither
    prune the run to 3 checkpoints nor save less often."""
    a, b = make_domains(tmp_path, n=2)
    base = ["train", a, b, "--runs-dir", tmp_path / "runs", "--name", "k", "--size", "32", "--load-size", "32",
            "--ngf", "4", "--ndf", "4", "--blocks", "1", "--save-every", "1", "--epochs", "10", "--decay-epochs", "10", "-q"]
    ck = tmp_path / "runs" / "k" / "checkpoints"
    assert cli(*base, "--max-steps", "3", "--keep", "10").code == 0
    assert len(list(ck.iterdir())) == 3
    r = cli("train", "--resume", "k", "--runs-dir", tmp_path / "runs", "--max-steps", "6", "-q")
    assert r.code == 0, r.err
    assert sorted(p.name for p in ck.iterdir()) == [f"step-{i:08d}" for i in range(1, 7)]
    r = cli("train", "--resume", "k", "--runs-dir", tmp_path / "runs", "--max-steps", "8", "--keep", "2", "-q")
    assert r.code == 0, r.err
    assert sorted(p.name for p in ck.iterdir()) == ["step-00000007", "step-00000008"]
    opts = json.loads((tmp_path / "runs" / "k" / "options.json").read_text())
    assert (opts["keep_checkpoints"], opts["save_every"]) == (2, 1)


def test_cyclegan_with_the_unet_generator(tmp_path, cli):
    """--generator unet (the official --netG unet_*): trains, saves the choice, translates an image
    whose size is not a multiple of the U-Net's grid to its own size; a size the U-Net cannot take
    is one line."""
    a, b = make_domains(tmp_path, n=2)
    base = ["train", a, b, "--runs-dir", tmp_path / "runs", "--generator", "unet", "--ngf", "4", "--ndf", "4",
            "--max-steps", "2", "--workers", "0", "-q"]
    r = cli(*base, "--name", "u", "--size", "32", "--load-size", "36")
    assert r.code == 0, r.err
    assert json.loads((tmp_path / "runs" / "u" / "options.json").read_text())["generator"] == "unet"
    from cyclegan_cli.zoo.resolve import load

    G = load("u").generator("BtoA")
    assert type(G).__name__ == "UnetGenerator" and G.size_multiple == 32
    Image.new("RGB", (45, 37), (90, 140, 200)).save(tmp_path / "odd.png")
    r = cli("translate", tmp_path / "odd.png", "--model", "u", "--direction", "BtoA", "--out", tmp_path / "o")
    assert r.code == 0, r.err
    assert Image.open(tmp_path / "o" / "odd.png").size == (45, 37)
    r = cli(*base, "--name", "v", "--size", "36", "--load-size", "40")
    assert r.code == 2 and "power of two" in r.err and len(r.err_lines) == 1


def test_grid_labels_keep_their_spaces(tmp_path):
    """Sample grids' row labels and titles: a space is as wide as a letter ("-> A again", not "-> Aagain")."""
    from cyclegan_cli.train.grids import save_grid

    def ink_width(label):
        save_grid(torch.ones(3, 20, 200), tmp_path / "g.png", [label], title=label)
        a = np.asarray(Image.open(tmp_path / "g.png").convert("L"))
        label_cols = np.nonzero((a[16:, :] < 128).any(axis=0))[0]  # below the title line
        title_cols = np.nonzero((a[:16, :] < 128).any(axis=0))[0]
        return label_cols.max() - label_cols.min(), title_cols.max() - title_cols.min()

    spaced, joined = ink_width("-> A again"), ink_width("-> Aagain")
    assert all(s - j >= 5 for s, j in zip(spaced, joined)), (spaced, joined)
