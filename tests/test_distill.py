"""``ganctl distill``: the teacher untouched, the adaptors' widths, the stability term, an exact resume
after SIGKILL, students of official-layout teachers through every backend, and the usage errors."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from conftest import save_rgb, smooth_image

TINY = ["--width", "4", "--blocks", "1", "--size", "32", "--batch-size", "2", "--epochs", "1", "--decay-epochs", "1"]


def photos(folder: Path, n: int = 4) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):  # awkward sizes, one smaller than a crop
        w, h = (45 + 13 * i, 37 + 7 * i) if i else (27, 30)
        Image.fromarray(smooth_image(w, h)[:, ::-1] if i % 2 else smooth_image(w, h)).save(folder / f"p{i}.png")
    return folder


def sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _task(teacher, tmp_path, size=32, **kw):
    from cyclegan_cli.train.distill import CropDataset, DistillTask
    from cyclegan_cli.train.distributed import Dist
    from cyclegan_cli.train.options import DistillOptions

    o = DistillOptions(size=size, batch_size=2, **kw)
    files = sorted(photos(tmp_path / "in").iterdir())
    data = CropDataset(files, [], size, True, 0)
    saved = {"student": {"ngf": 4, "n_blocks": 3, "n_down": 2, "conv": "dense"},
             "teacher": {"name": "t", "domains": ["a", "b"]}}
    return DistillTask(teacher, data, o, saved=saved, dist=Dist(), device=torch.device("cpu")), data


@pytest.mark.parametrize("teacher_kind", ["resnet", "unet"])
def test_teacher_untouched_and_adaptors_map_student_widths_to_the_teachers(tmp_path, teacher_kind):
    from cyclegan_cli.models import build
    from cyclegan_cli.train.distill import feature_layers

    torch.manual_seed(1)
    if teacher_kind == "resnet":
        teacher = build("resnet_generator", ngf=6, n_blocks=5)
    else:
        teacher = build("unet_generator", num_downs=7, ngf=4, norm="batch")  # as photo2sketch-paired: 1 px deep inside
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    task, data = _task(teacher, tmp_path, 32 if teacher_kind == "resnet" else 256, gan_weight=1.0, stable=True)
    for step in range(3):
        batch = torch.stack([data[(0, step * 2 + i, (step * 2 + i) % len(data), 0)] for i in range(2)])
        losses = task.train_step(batch, step)
    assert {"loss_L1", "loss_feat", "loss_stable", "loss_G_GAN", "loss_D"} <= set(losses)
    after = teacher.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # bit-identical
    assert all(p.grad is None for p in teacher.parameters())
    # the adaptors: one 1x1 conv per matched pair, from the student's width to the teacher's
    x = torch.zeros(1, 3, 256, 256)
    widths = []
    for net in (task.nets["G_A"], teacher):
        layers = feature_layers(net)
        seen = {}
        hooks = [m.register_forward_hook(lambda m, i, o: seen.__setitem__(m, o.shape[1])) for m in layers]
        with torch.no_grad():
            net(x)
        for h in hooks:
            h.remove()
        widths.append([seen[m] for m in layers])
    s_w, t_w = widths
    maps = task.nets["F"].maps
    assert len(maps) == len(task.points) >= 2
    for conv, (i, j) in zip(maps, task.points):
        assert conv.kernel_size == (1, 1)
        assert (conv.in_channels, conv.out_channels) == (s_w[i], t_w[j])
    assert task.points[-1] == (len(s_w) - 1, len(t_w) - 1)  # the deepest layers are paired
    if teacher_kind == "resnet":
        assert {c.out_channels for c in maps} == {24} and {c.in_channels for c in maps} == {16}


def test_stability_term_is_zero_for_a_network_that_commutes_with_the_warp():
    from cyclegan_cli.train.distill import stability_loss

    torch.manual_seed(0)
    x = torch.rand(2, 3, 40, 48) * 2 - 1
    pointwise = nn.Conv2d(3, 3, 1)
    spatial = nn.Conv2d(3, 3, 3, padding=1)
    g = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    with torch.no_grad():
        assert stability_loss(pointwise, x, g()).item() < 1e-5
        assert stability_loss(spatial, x, g()).item() > 1e-2
        with torch.autocast("cpu", dtype=torch.bfloat16):  # the warps stay fp32: only the network rounds
            assert stability_loss(pointwise, x, g()).item() < 2e-2
            assert stability_loss(spatial, x, g()).item() > 1e-2


def test_stability_noise_is_the_warped_crop_plus_seeded_noise():
    """--stable-noise: the term compares warp(net(x)) with net(warp(x) + noise) of the given standard
    deviation in 0-255 levels; against the same computed by hand, and positive even for a network
    that commutes with the warp. Noise 0 draws nothing more (older runs resume as they were)."""
    from cyclegan_cli.train.distill import random_warp, stability_loss, warp

    torch.manual_seed(0)
    x = torch.rand(2, 3, 40, 48) * 2 - 1
    pointwise = nn.Conv2d(3, 3, 1)
    g = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    with torch.no_grad():
        gen = g()
        theta = random_warp(2, gen)
        x_w, inside = warp(x, theta)
        noisy = (x_w + torch.randn(x_w.shape, generator=gen) * (4 / 127.5)).clamp(-1, 1)  # an image's range
        ref = ((warp(pointwise(x), theta)[0] - pointwise(noisy)).abs() * inside).sum() / (inside.sum() * 3)
        got = stability_loss(pointwise, x, g(), noise=4.0)
        assert torch.allclose(got, ref, rtol=1e-5) and got.item() > 1e-3
        assert stability_loss(pointwise, x, g(), noise=0.0).item() < 1e-5
    used, warp_only = g(), g()
    stability_loss(pointwise, x, used, noise=0.0)
    random_warp(2, warp_only)
    assert torch.equal(used.get_state(), warp_only.get_state())


def test_stable_noise_is_a_run_option(tmp_path, cli, tiny_cyclegan):
    """--stable-noise is kept in the run's options (a resume holds it); refused below 0, and without
    --stable (whose term it is part of)."""
    r = cli("distill", tiny_cyclegan, photos(tmp_path / "in"), "--name", "stu", *TINY, "--max-steps", "2",
            "--stable", "--stable-noise", "2", "--runs-dir", tmp_path / "runs", "-q")
    assert r.code == 0, r.err
    assert json.loads((tmp_path / "runs" / "stu" / "options.json").read_text())["stable_noise"] == 2
    # below 0; not a number; without --stable
    for bad in (["--stable", "--stable-noise", "-1"], ["--stable", "--stable-noise", "inf"], ["--stable-noise", "2"]):
        r = cli("distill", tiny_cyclegan, photos(tmp_path / "in"), "--name", "stu2", *TINY, *bad,
                "--runs-dir", tmp_path / "runs")
        assert r.code == 2 and len(r.err_lines) == 1 and not (tmp_path / "runs" / "stu2").exists(), r.err
    assert "add --stable" in r.err


def test_usage_errors_exit_2_before_any_work(tmp_path, cli, tiny_cyclegan):
    from cyclegan_cli.checkpoints import ModelConfig, save_checkpoint
    from cyclegan_cli.models import build

    inp = photos(tmp_path / "in")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no images here")
    cut_args = {"input_nc": 3, "output_nc": 3, "ngf": 4, "n_blocks": 1}
    cut = save_checkpoint(tmp_path / "cut", ModelConfig(kind="cut", nets={"G_A": {"arch": "resnet_generator", "args": cut_args}}),
                          {"G_A": build("resnet_generator", **cut_args)})
    dc_args = {"nz": 8, "ngf": 4, "image_size": 16}
    dcgan = save_checkpoint(tmp_path / "dc", ModelConfig(kind="dcgan", nets={"G": {"arch": "dcgan_generator", "args": dc_args}}),
                            {"G": build("dcgan_generator", **dc_args)})
    runs = tmp_path / "runs"
    cases = [
        ([tiny_cyclegan], "needs inputs"),
        ([dcgan, inp], "generates images from noise"),
        ([cut, inp, "--direction", "BtoA"], "A->B only"),
        ([tiny_cyclegan, inp, "--speedup", "1"], "--speedup 1"),
        ([tiny_cyclegan, inp, "--speedup", "0.5"], "--speedup 0.5"),
        ([tiny_cyclegan, tmp_path / "empty"], "no images"),
    ]
    for args, words in cases:
        r = cli("distill", *args, "--runs-dir", runs, "--name", "x")
        assert r.code == 2, (args, r.err)
        assert words in r.err and len(r.err.strip().splitlines()) == 1, r.err
        assert "Traceback" not in r.err
        assert not runs.exists()  # nothing was made


def test_student_is_an_ordinary_run_shape_recorded_and_translates(tmp_path, cli, tiny_cyclegan):
    inp = photos(tmp_path / "in")
    before = sha(tiny_cyclegan / "model.safetensors")
    runs = tmp_path / "runs"
    r = cli("distill", tiny_cyclegan, inp, "--direction", "BtoA", "--name", "stu", "--runs-dir", runs, *TINY,
            "--max-steps", "3", "--stable", "--gan-weight", "0.1", "--json")
    assert r.code == 0, r.err
    assert json.loads(r.out.strip().splitlines()[-1])["run"] == "stu"
    assert "1 of 4 input images are smaller than --size 32 px and are scaled up" in r.err, r.err  # 27x30 px
    assert sha(tiny_cyclegan / "model.safetensors") == before
    opts = json.loads((runs / "stu" / "options.json").read_text())
    assert opts["kind"] == "distill"
    assert opts["teacher"]["sha256"] == before and opts["teacher"]["direction"] == "BtoA"
    assert opts["teacher"]["domains"] == ["dog", "cat"]
    assert opts["student"] == {"input_nc": 3, "output_nc": 3, "ngf": 4, "n_blocks": 1, "n_down": 1, "conv": "dense",
                               "entry": "unshuffle", "up": "transpose"}  # as its (official-layout) teacher
    assert opts["student_choice"]["speedup"] > 0 and opts["student_choice"]["reason"]
    r = cli("runs", "show", "stu")
    assert "student" in r.out and "speed-up" in r.out, r.out
    r = cli("translate", inp, "--model", "stu", "--out", tmp_path / "out", "-q")
    assert r.code == 0, r.err
    assert len(list((tmp_path / "out").glob("*.png"))) == 4
    r = cli("translate", inp, "--model", "stu", "--direction", "BtoA", "--out", tmp_path / "o2")
    assert r.code == 2 and "translates the way its teacher did" in r.err


def mac_timer(net, size):
    """A CPU where depthwise convolutions run 4x slower than their MACs say (ms = MMACs)."""
    from cyclegan_cli.models.cost import macs

    slow = any(isinstance(m, nn.Conv2d) and m.groups > 1 for m in net.modules())
    return macs(net, 64, 64) / 1e6 * (4 if slow else 1)


def brute_force_best(teacher, need: float, timer=mac_timer, **knobs) -> int:
    """The reference: every candidate timed, the MACs of the largest that is fast enough."""
    from cyclegan_cli.models import build
    from cyclegan_cli.models.cost import macs
    from cyclegan_cli.train.student_shape import candidates

    t_ms = timer(teacher, 64)
    timed = [(macs(build("student_generator", **k.args()), 64, 64), t_ms / timer(build("student_generator", **k.args()), 64))
             for k in candidates(**knobs)]
    return max(m for m, r in timed if r >= need)


def test_chooser_picks_the_largest_student_that_meets_the_speedup_by_time_not_macs():
    from cyclegan_cli.models import build
    from cyclegan_cli.train.student_shape import HEADROOM, choose_student

    teacher = build("resnet_generator", ngf=32, n_blocks=6)
    c = choose_student(teacher, 6.0, blocks=2, down=2, size=64, timer=mac_timer)
    assert c.speedup >= 6.0 * HEADROOM
    assert c.student_macs == brute_force_best(teacher, 6.0 * HEADROOM, blocks=2, down=2, up="transpose")
    assert "10% headroom" in c.reason
    # wide depthwise students have the MACs of a 6x student and are timed, but are too slow: none is taken
    c = choose_student(teacher, 6.0, width=48, blocks=2, size=64, timer=mac_timer)
    assert all("depthwise" in t[0] and teacher_macs_ratio(c, t) >= 6.0 > t[3] for t in c.timed)
    assert "no timed candidate" in c.reason and c.speedup == max(t[3] for t in c.timed)


def test_chooser_bisects_once_its_timing_budget_is_spent():
    """Every shape costs the whole budget: one is timed largest-first, the rest are bisected, and the
    student found is still the brute-force one (time follows MACs on this CPU), after few timings."""
    from cyclegan_cli.models import build
    from cyclegan_cli.train.student_shape import HEADROOM, candidates, choose_student

    teacher = build("resnet_generator", ngf=32, n_blocks=6)

    def timer(net, size):  # students run at half the teacher's MACs per second: many that could be fast are not
        return mac_timer(net, size) * (1 if net is teacher else 2)

    ticks = iter(range(0, 10**6, 100))
    c = choose_student(teacher, 3.0, conv="dense", size=64, timer=timer, budget_s=50, clock=lambda: next(ticks))
    assert c.student_macs == brute_force_best(teacher, 3.0 * HEADROOM, timer, conv="dense", up="transpose")
    n = len(candidates(conv="dense"))  # in 4 families (down x entry) of n / 4, each bisected
    assert len(c.timed) <= 1 + 4 * (1 + (n // 4).bit_length()) < n, (len(c.timed), n)
    assert "by bisection" in c.reason
    # the same without a budget times them largest first until one is fast enough: the same student
    full = choose_student(teacher, 3.0, conv="dense", size=64, timer=timer, budget_s=float("inf"))
    assert full.student == c.student and len(full.timed) > len(c.timed) and "largest first" in full.reason


@pytest.mark.parametrize("speedup", [3.0, 4.0, 6.0])
def test_bisection_searches_each_family_on_its_own(speedup):
    """Depthwise shapes run 4x slower than their MACs: bisecting one list of every family by MACs
    would step below large dense shapes that are fast enough; per family it finds the brute-force
    student, and when nothing is fast enough it takes the fastest it timed."""
    from cyclegan_cli.models import build
    from cyclegan_cli.train.student_shape import HEADROOM, choose_student

    teacher = build("resnet_generator", ngf=32, n_blocks=6)
    ticks = iter(range(0, 10**6, 100))
    c = choose_student(teacher, speedup, blocks=2, size=64, timer=mac_timer, budget_s=50, clock=lambda: next(ticks))
    assert c.student_macs == brute_force_best(teacher, speedup * HEADROOM, blocks=2, up="transpose")
    ticks = iter(range(0, 10**6, 100))
    c = choose_student(teacher, 6.0, width=48, conv="depthwise", size=64, timer=mac_timer, budget_s=50,
                       clock=lambda: next(ticks))
    assert "no timed candidate" in c.reason and c.speedup == max(t[3] for t in c.timed) < 6.0


def test_a_student_up_samples_as_its_teacher_does():
    from cyclegan_cli.models import build
    from cyclegan_cli.train.student_shape import choose_student, describe, teacher_up

    official = build("resnet_generator", ngf=8, n_blocks=2)  # transposed convolutions (official)
    resize = build("resnet_generator", ngf=8, n_blocks=2, upsample="resize")
    unet = build("unet_generator", num_downs=7, ngf=8)
    assert [teacher_up(t) for t in (official, resize, unet)] == ["transpose", "bilinear", "transpose"]
    c = choose_student(resize, 2.0, width=8, blocks=2, size=64, timer=mac_timer)
    assert c.student["up"] == "bilinear" and "transposed" not in describe(c.student)
    c = choose_student(official, 2.0, width=8, blocks=2, size=64, timer=mac_timer)
    s = build("student_generator", **c.student)
    assert c.student["up"] == "transpose" and any(isinstance(m, nn.ConvTranspose2d) for m in s.modules())
    assert "transposed-conv up-sampling" in describe(c.student)


def teacher_macs_ratio(choice, row) -> float:
    return choice.teacher_macs / (row[1] * 1e9)


def _final(run: Path, step: int) -> dict:
    from safetensors.torch import load_file

    return load_file(str(run / "checkpoints" / f"step-{step:08d}" / "model.safetensors"))


def test_resume_after_sigkill_is_bit_exact(tmp_path, tiny_cyclegan):
    inp = photos(tmp_path / "in")
    runs = tmp_path / "runs"
    cmd = [sys.executable, "-m", "cyclegan_cli", "distill", str(tiny_cyclegan), str(inp), "--runs-dir", str(runs),
           *TINY, "--max-steps", "16", "--stable", "--gan-weight", "0.5", "--ema", "0.9", "-q"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run(cmd + ["--name", "once"], check=True, capture_output=True, env=env)
    p = subprocess.Popen(cmd + ["--name", "killed", "--save-every", "4"], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, env=env)
    ck = runs / "killed" / "checkpoints"
    while p.poll() is None and not (ck.is_dir() and any(n.startswith("step-") and int(n[5:]) >= 8 for n in os.listdir(ck))):
        time.sleep(0.005)
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert not (ck / "step-00000016").exists(), "it finished before the kill: nothing was resumed"
    subprocess.run(cmd + ["--name", "killed"], check=True, capture_output=True, env=env)
    a, b = _final(runs / "killed", 16), _final(runs / "once", 16)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])][:3]
    steps = [json.loads(l)["step"] for l in (runs / "killed" / "stats.jsonl").read_text().splitlines()
             if "loss_L1" in l]
    assert steps == sorted(set(steps))  # no step logged twice after the resume


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["resnet", "unet"])
def test_student_of_an_official_pth_translates_through_every_backend(tmp_path, cli, layout):
    from test_translate import official_resnet, official_unet

    torch.manual_seed(0)
    net = official_resnet(4, 2) if layout == "resnet" else official_unet(5, 4)
    pth = tmp_path / "latest_net_G.pth"
    torch.save(net.state_dict(), pth)
    inp = photos(tmp_path / "in")
    runs = tmp_path / "runs"
    r = cli("distill", pth, inp, "--name", "stu", "--runs-dir", runs, *TINY, "--max-steps", "2", "-q")
    assert r.code == 0, r.err
    photo = save_rgb(tmp_path / "one" / "odd.png", 53, 41)
    outs = {}
    for name, args in [("torch", ["--backend", "torch"]), ("onnxruntime", ["--backend", "onnxruntime"]),
                       ("fast", ["--precision", "fast"]), ("int8", ["--precision", "int8"]),
                       ("bf16", ["--precision", "bf16", "--backend", "torch"])]:
        r = cli("translate", photo, "--model", "stu", "--out", tmp_path / name, *args, "-q")
        assert r.code == 0, (name, r.err)
        out = np.asarray(Image.open(tmp_path / name / "odd.png"), dtype=np.float32)
        assert out.shape == (41, 53, 3)
        outs[name] = out
    assert np.abs(outs["onnxruntime"] - outs["torch"]).max() <= 2  # the same network, another runtime
    r = cli("export", "stu", "--onnx", tmp_path / "stu.onnx")
    assert r.code == 0, r.err


@pytest.mark.parametrize("entry,up", [("conv", "bilinear"), ("unshuffle", "bilinear"), ("conv", "transpose"),
                                      ("unshuffle", "transpose")])
def test_a_student_tiled_gives_the_untiled_image(entry, up):
    """Tiles carry one image's normalisation statistics and overlap by the student's reach."""
    from cyclegan_cli.checkpoints import ModelConfig
    from cyclegan_cli.infer.engine import Translator
    from cyclegan_cli.models import build

    torch.manual_seed(0)
    args = {"ngf": 4, "n_blocks": 2, "n_down": 1 if entry == "unshuffle" else 2, "entry": entry, "up": up}
    net = build("student_generator", **args).eval()
    cfg = ModelConfig(kind="distill", nets={"G_A": {"arch": "student_generator", "args": args}})
    untiled = Translator(net, cfg, device="cpu", backend="torch")
    t = untiled.min_tile
    rgb = smooth_image(2 * t + 37, 2 * t + 11)  # three tiles a side, awkward sizes
    whole = untiled.run_image(rgb)
    tiled = Translator(net, cfg, device="cpu", backend="torch", tile=t).run_image(rgb)
    assert np.abs(whole.astype(int) - tiled.astype(int)).max() <= 1


def test_a_teacher_that_is_a_run_is_pinned_to_its_checkpoint(tmp_path, cli):
    """A teacher named by its run goes on training: the student keeps the checkpoint it started
    from (its folder) and continues from it; if that checkpoint is gone, one line, exit 2; a student
    recorded before teachers were pinned whose teacher changed: one line, exit 2 (not a raw dict)."""
    import shutil

    from test_train import make_domains

    a, b = make_domains(tmp_path, n=2)
    teach = ["--name", "teach", "--size", "32", "--load-size", "32", "--ngf", "4", "--ndf", "4", "--blocks", "1",
             "--workers", "0", "--keep", "10", "-q"]
    assert cli("train", a, b, *teach, "--max-steps", "2").code == 0
    inp = photos(tmp_path / "in")
    r = cli("distill", "teach", inp, "--name", "stu", *TINY, "--max-steps", "2", "-q")
    assert r.code == 0, r.err
    opts = json.loads((tmp_path / "runs" / "stu" / "options.json").read_text())
    step2 = tmp_path / "runs" / "teach" / "checkpoints" / "step-00000002"
    assert opts["teacher"]["pinned"] == str(step2.resolve())
    r = cli("train", a, b, *teach, "--max-steps", "4")  # the teacher trains on: its latest is step 4
    assert r.code == 0, r.err
    r = cli("distill", "teach", "--name", "stu", "--max-steps", "4", "-q")
    assert r.code == 0, r.err
    after = json.loads((tmp_path / "runs" / "stu" / "options.json").read_text())
    assert after["teacher"] == opts["teacher"] and (tmp_path / "runs" / "stu" / "checkpoints" / "step-00000004").is_dir()
    # recorded before pinning: the teacher resolves to its latest, step 4, which is not the one it started from
    old = dict(after, teacher={k: v for k, v in after["teacher"].items() if k != "pinned"})
    (tmp_path / "runs" / "stu" / "options.json").write_text(json.dumps(old))
    r = cli("distill", "teach", "--name", "stu", "--max-steps", "6")
    assert r.code == 2 and len(r.err_lines) == 1 and "the teacher's weights changed" in r.err, r.err
    (tmp_path / "runs" / "stu" / "options.json").write_text(json.dumps(after))
    shutil.rmtree(step2)
    r = cli("distill", "teach", "--name", "stu", "--max-steps", "6")
    assert r.code == 2 and len(r.err_lines) == 1 and "the teacher is gone" in r.err and str(step2.resolve()) in r.err, r.err


def test_the_small_input_notice_counts_video_frames_and_is_said_once(tmp_path, cli, tiny_cyclegan):
    """Frames of a video smaller than --size are scaled up as images are, so they are counted in the
    notice; a resumed run (its inputs said when it started) does not say it again."""
    from test_video import make_video

    inp = photos(tmp_path / "in")  # one of the 4 is 27x30 px, under --size 32
    video = make_video(tmp_path / "v" / "small.mp4", w=24, h=20, seconds=1, audio=False)  # every frame under 32
    runs = tmp_path / "runs"
    r = cli("distill", tiny_cyclegan, inp, video, "--name", "stu", "--runs-dir", runs, *TINY, "--max-steps", "1")
    assert r.code == 0, r.err
    notes = [x for x in r.err_lines if "smaller than --size" in x]
    assert len(notes) == 1, r.err
    words = notes[0].split("note: ", 1)[-1].split()
    small, total = int(words[0]), int(words[2])
    assert words[3:7] == ["input", "images", "and", "video"]
    assert total > 4 and small == 1 + (total - 4)  # the small photo and every frame
    r = cli("distill", tiny_cyclegan, inp, video, "--name", "stu", "--runs-dir", runs, *TINY, "--max-steps", "2")
    assert r.code == 0, r.err
    assert "smaller than --size" not in r.err, r.err


def test_the_api_checks_the_name_before_it_reads_a_folder(tmp_path, tiny_cyclegan):
    """train_distill(name='../x') is refused as a name, before anything of the folder it points to
    (outside runs_dir) is read: that folder's options.json never decides what happens."""
    from cyclegan_cli.errors import UsageError
    from cyclegan_cli.train.distill import train_distill

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (tmp_path / "runs").mkdir()
    (outside / "options.json").write_text(json.dumps({  # a distill run there, whose teacher is gone
        "kind": "distill", "student": {"ngf": 4}, "teacher": {"spec": str(tmp_path / "gone"), "sha256": "0" * 64}}))
    with pytest.raises(UsageError, match="a name is letters"):
        train_distill(str(tiny_cyclegan), [str(photos(tmp_path / "in"))], runs_dir=tmp_path / "runs",
                      name="../elsewhere", width=4, blocks=1, size=32, max_steps=1)
    assert not any((tmp_path / "runs").iterdir())


def test_ctrl_c_before_training_says_so(tmp_path, cli, tiny_cyclegan, monkeypatch):
    """Ctrl-C while the student's shape is being timed (before any step) is the same one line and exit
    130 as during training, not a silent exit (Typer turns KeyboardInterrupt into a bare Exit(130))."""
    from cyclegan_cli.train import student_shape

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(student_shape, "choose_student", interrupted)
    r = cli("distill", tiny_cyclegan, photos(tmp_path / "in"), "--name", "stu", "--runs-dir", tmp_path / "runs",
            "--size", "32", "--max-steps", "1")
    assert r.code == 130 and r.err_lines[-1] == "ganctl: error: interrupted", r.err


def test_a_conflict_with_a_chosen_width_says_not_set(tmp_path):
    """Continuing a run whose width the chooser picked (saved as unset) with --width 16 names the conflict
    in words, not 'None'."""
    from cyclegan_cli.train.options import DistillOptions

    saved = dataclasses.asdict(DistillOptions())
    assert saved["width"] is None
    _, conflicts = DistillOptions.continued(saved, {"width": 16})
    assert conflicts == ["--width not set (given 16)"]


@pytest.mark.parametrize("size, hinted", [(64, False), (128, True)])
def test_the_no_gpu_notice_hints_only_where_it_helps(tmp_path, cli, tiny_cyclegan, size, hinted, monkeypatch):
    """Without a GPU, distill says so; the 'slow at this size' hint comes at a large --size only (the ngf
    that distill's options inherit, unused by its student, no longer triggers it)."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # a machine without one, wherever this runs
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    r = cli("distill", tiny_cyclegan, photos(tmp_path / "in"), "--name", "stu", "--runs-dir", tmp_path / "runs",
            *TINY[:4], "--size", str(size), "--batch-size", "1", "--max-steps", "1")
    assert r.code == 0, r.err
    notice = next(x for x in r.err_lines if x.startswith("no GPU found"))
    assert notice == ("no GPU found: training on the CPU (slow at this size; see --size and --max-steps)" if hinted
                      else "no GPU found: training on the CPU"), notice


def test_a_video_that_cannot_be_read_is_refused_as_bad_input(tmp_path, cli, tiny_cyclegan):
    """A .mp4 that is not a video: one line in FFmpeg's words (no errno), exit 2 as other bad inputs,
    before any work (no run folder, no GPU notice)."""
    bad = tmp_path / "v" / "clip.mp4"
    bad.parent.mkdir()
    bad.write_text("not a video\n")
    runs = tmp_path / "runs"
    r = cli("distill", tiny_cyclegan, photos(tmp_path / "in"), bad, "--name", "stu", "--runs-dir", runs, *TINY,
            "--max-steps", "1")
    assert r.code == 2 and len(r.err_lines) == 1, r.err
    assert r.err_lines[0].startswith(f"ganctl: error: {bad}: cannot open video (") and "Errno" not in r.err, r.err
    assert not runs.exists()


def test_continuing_a_run_kept_elsewhere_says_where_it_is(tmp_path, cli, tiny_cyclegan, monkeypatch):
    """`distill TEACHER --name stu` with no inputs, from a folder whose runs/ lacks stu, names the folder
    where the registry has it (before: 'distill needs inputs')."""
    runs = tmp_path / "runs"
    r = cli("distill", tiny_cyclegan, photos(tmp_path / "in"), "--name", "stu", "--runs-dir", runs, *TINY,
            "--max-steps", "1")
    assert r.code == 0, r.err
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    r = cli("distill", tiny_cyclegan, "--name", "stu", "--max-steps", "2")
    assert r.code == 2 and r.err_lines == [f"ganctl: error: no run stu in runs; a distill run stu is at "
                                           f"{(runs / 'stu').resolve()}: add --runs-dir {runs.resolve()} to continue it"], r.err
    assert not (tmp_path / "elsewhere" / "runs").exists()


def test_zoo_import_of_a_run_points_to_its_checkpoints(tmp_path, cli, tiny_cyclegan, monkeypatch):
    """`zoo import RUN_FOLDER` and `zoo import RUN_NAME` say what works (a checkpoint folder, or runs
    promote), exit 2, and put nothing in the zoo; the checkpoint folder it names imports."""
    monkeypatch.chdir(tmp_path)
    r = cli("distill", tiny_cyclegan, photos(tmp_path / "in"), "--name", "stu", *TINY, "--max-steps", "2")
    assert r.code == 0, r.err
    run = Path("runs") / "stu"
    r = cli("zoo", "import", run, "--name", "mine")
    latest = run / "checkpoints" / sorted(p.name for p in (run / "checkpoints").iterdir())[-1]
    assert r.code == 2 and r.err_lines == [f"ganctl: error: {run} is a run folder, not a checkpoint: import one of its "
                                           f"checkpoints (the latest: {latest}), or `ganctl runs promote "
                                           f"{run.resolve()} --as mine`"], r.err
    r = cli("zoo", "import", "stu", "--name", "mine")
    assert r.code == 2 and r.err_lines == ["ganctl: error: stu is a run, not a file: `ganctl runs promote stu --as "
                                           "mine` copies its checkpoint into your zoo"], r.err
    assert "mine" not in cli("zoo", "list").out
    r = cli("zoo", "import", latest, "--name", "mine")
    assert r.code == 0, r.err
    # the student alone (and its EMA) goes into the zoo, not the untrained discriminator and adaptors
    from cyclegan_cli.checkpoints import load_model
    from cyclegan_cli.zoo import paths

    kept, run_nets = load_model(paths.user_zoo_dir() / "mine"), load_model(latest).nets
    assert set(run_nets) > set(kept.nets) and all(k.startswith("G_A") for k in kept.nets), kept.nets
    assert set(kept.config.nets) == set(kept.nets)
    for d, model in (("zoo", "mine"), ("run", latest)):
        assert cli("translate", tmp_path / "in", "--model", model, "--out", tmp_path / d, "-q").code == 0
    a, b = ([np.asarray(Image.open(f)) for f in sorted((tmp_path / d).rglob("*.png"))] for d in ("zoo", "run"))
    assert len(a) == len(b) > 0 and all(np.array_equal(x, y) for x, y in zip(a, b))


def test_the_words_for_one_block_and_one_step(tmp_path, cli, tiny_cyclegan):
    """'1 block', '1 step to go': the start lines a tiny run prints read as English."""
    from cyclegan_cli.train.student_shape import describe

    shape = {"ngf": 4, "n_down": 1, "entry": "unshuffle", "conv": "dense"}
    assert "1 block at 1/4 size" in describe(shape | {"n_blocks": 1}) and "4 blocks" in describe(shape | {"n_blocks": 4})
    r = cli("distill", tiny_cyclegan, photos(tmp_path / "in"), "--name", "one", *TINY, "--max-steps", "1",
            "--runs-dir", tmp_path / "runs")
    assert r.code == 0 and ": 1 step to go" in r.err and "1 blocks" not in r.err, r.err
