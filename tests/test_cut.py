"""CUT / FastCUT, DiffAugment and the generator EMA: the losses against references written out
here, resume after SIGKILL, official CUT generators, and the usage errors."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from conftest import save_rgb
from test_train import make_domains


# ------------------------------------------------------------------------------------ PatchNCE
def test_patch_nce_equals_cross_entropy_written_out():
    from cyclegan_cli.models.cut import patch_nce

    torch.manual_seed(0)
    n, p, d, t = 2, 5, 8, 0.07
    q = F.normalize(torch.randn(n * p, d), dim=1)
    k = F.normalize(torch.randn(n * p, d), dim=1)
    ours = patch_nce(q, k, n, t)
    ref = []
    for b in range(n):  # each query: its own key is the positive, the image's other keys negatives
        for i in range(p):
            qi = q[b * p + i].double()
            sims = [float(qi @ k[b * p + j].double()) for j in range(p)]
            logits = [sims[i]] + [(-10.0 if j == i else sims[j]) for j in range(p)]  # the official -10 on the diagonal
            logits = [x / t for x in logits]
            m = max(logits)
            ref.append(-(logits[0] - m - math.log(sum(math.exp(x - m) for x in logits))))
    assert torch.allclose(ours.double(), torch.tensor(ref, dtype=torch.float64), atol=1e-4)
    # matching patches cost less than shuffled ones: the loss is about correspondence
    assert patch_nce(q, q.clone(), n, t).mean() < patch_nce(q, k, n, t).mean()


def test_nce_head_samples_the_same_places_for_input_and_output():
    from cyclegan_cli.models.cut import PatchNCEHead

    torch.manual_seed(0)
    head = PatchNCEHead(channels=[3, 6], nc=4)
    feats = [torch.randn(2, 3, 4, 4), torch.randn(2, 6, 2, 2)]
    out, ids = head(feats, num_patches=5)
    assert [o.shape for o in out] == [(10, 4), (8, 4)]  # min(5, H*W) patches per image
    assert torch.allclose(out[0].norm(dim=1), torch.ones(10), atol=1e-5)
    again, ids2 = head(feats, num_patches=5, patch_ids=ids)
    assert all(torch.equal(a, b) for a, b in zip(ids, ids2)) and torch.allclose(out[0], again[0])


# ------------------------------------------------------------------------------------ EMA
def test_ema_equals_the_formula_after_n_steps():
    from cyclegan_cli.train.ema import add_ema, update_ema

    torch.manual_seed(0)
    net = nn.Linear(3, 2)
    nets, specs = {"G": net}, {"G": ("x", {})}
    add_ema(nets, specs, ["G"])
    p0 = net.weight.detach().clone()
    decay, seen, start = 0.9, [], 200  # past the warm-up: d = 0.9 at every step
    for n in range(7):
        with torch.no_grad():
            net.weight.add_(torch.randn_like(net.weight))
        seen.append(net.weight.detach().clone())
        update_ema(nets, ["G"], decay, start + n)
    # ema_N = d^N p0 + sum_k (1 - d) d^(N - k) p_k
    expect = decay ** len(seen) * p0 + sum((1 - decay) * decay ** (len(seen) - 1 - i) * w for i, w in enumerate(seen))
    assert torch.allclose(nets["G_ema"].weight, expect, atol=1e-6)
    assert "G_ema" in specs and not nets["G_ema"].weight.requires_grad


def test_ema_warm_up_forgets_the_initial_weights():
    from cyclegan_cli.train.ema import add_ema, update_ema

    net = nn.Linear(2, 2)
    nets = {"G": net}
    add_ema(nets, {"G": ("x", {})}, ["G"])
    with torch.no_grad():
        net.weight.fill_(1.0)
    ema = []
    for n in range(3):  # d = 1/10, 2/11, 3/12: the first steps mostly copy
        update_ema(nets, ["G"], 0.999, n)
        ema.append(nets["G_ema"].weight.clone())
    w0 = ema[0]  # after step 0: 0.1 * init + 0.9 * 1
    assert torch.allclose(nets["G_ema"].weight, 1 + (w0 - 1) * (2 / 11) * (3 / 12), atol=1e-6)


# ------------------------------------------------------------------------------------ DiffAugment
@pytest.mark.parametrize("policy", ["color", "translation", "cutout", "color,translation,cutout"])
def test_diff_augment_keeps_shape_and_changes_images(policy):
    from cyclegan_cli.train.augment import diff_augment
    from cyclegan_cli.train.options import parse_policy

    torch.manual_seed(1)
    x = torch.rand(4, 3, 21, 17) * 2 - 1  # odd sizes
    y = diff_augment(x, parse_policy(policy))
    assert y.shape == x.shape
    if "color" not in policy:  # color may pass [-1, 1]: not clamped, as the official code
        assert y.min() >= -1 and y.max() <= 1
    assert not torch.equal(x, y)
    # differentiable: G gets gradients through it
    x.requires_grad_(True)
    diff_augment(x, parse_policy(policy)).sum().backward()
    assert x.grad is not None


def test_diff_augment_none_is_the_identity_and_bad_names_fail():
    from cyclegan_cli.train.augment import diff_augment
    from cyclegan_cli.train.options import parse_policy

    x = torch.rand(2, 3, 8, 8)
    assert parse_policy("none") == () and torch.equal(diff_augment(x, parse_policy("none")), x)
    with pytest.raises(ValueError, match="blur"):
        parse_policy("color,blur")


def test_translation_moves_content_by_whole_pixels():
    from cyclegan_cli.train.augment import _translation

    torch.manual_seed(0)
    x = torch.zeros(8, 1, 16, 16)
    x[:, :, 8, 8] = 1.0
    y = _translation(x)
    for i in range(8):
        ys, xs = torch.nonzero(y[i, 0], as_tuple=True)
        assert len(ys) == 1 and abs(int(ys[0]) - 8) <= 2 and abs(int(xs[0]) - 8) <= 2  # at most 1/8 of 16


# ------------------------------------------------------------------------------------ training
TINY = ["--size", "32", "--load-size", "36", "--ngf", "4", "--ndf", "4", "--blocks", "1", "--workers", "0",
        "--deterministic", "--seed", "3", "-q"]


@pytest.mark.slow
@pytest.mark.parametrize("method", ["cut", "fastcut"])
def test_cut_resumes_bit_exactly_after_sigkill(tmp_path, method):
    import test_train as tt

    a, b = make_domains(tmp_path)
    extra = ["--method", method, "--ema", "0.9"] + (["--augment", "color,translation,cutout"] if method == "fastcut" else [])
    n = 12
    tt.subprocess.run(tt._train_cmd(a, b, tmp_path / "runs", "oneshot", n, "--save-every", "1000", *extra),
                      check=True, capture_output=True)
    ref = tt._final_state(tmp_path / "runs" / "oneshot", n)
    assert any(k.startswith("G_A_ema.") for k in ref[0]) and any(k.startswith("F.") for k in ref[0])
    cmd = tt._train_cmd(a, b, tmp_path / "runs", "killed", n, "--save-every", "2", *extra)
    run_dir = tmp_path / "runs" / "killed"
    for target in (3, 7):
        p = tt.subprocess.Popen(cmd, stdout=tt.subprocess.DEVNULL, stderr=tt.subprocess.DEVNULL)
        deadline = tt.time.time() + 120
        while tt.time.time() < deadline:
            names = tt.os.listdir(run_dir / "checkpoints") if (run_dir / "checkpoints").is_dir() else []
            done = [int(x[5:]) for x in names if x.startswith("step-")]
            if done and max(done) >= target:
                break
            tt.time.sleep(0.002)
        p.send_signal(tt.signal.SIGKILL)
        p.wait()
    from cyclegan_cli.zoo.runs import checkpoint_steps

    assert checkpoint_steps(run_dir)[-1] < n
    tt.subprocess.run(cmd, check=True, capture_output=True)
    tt._assert_same_state(tt._final_state(run_dir, n), ref)


def test_cut_trains_translates_with_ema_and_refuses_btoa(tmp_path, cli, monkeypatch):
    from safetensors.torch import load_file

    a, b = make_domains(tmp_path)
    r = cli("train", a, b, "--method", "cut", "--name", "c1", "--max-steps", "3", "--ema", "0.5", *TINY)
    assert r.code == 0, r.err
    ck = tmp_path / "runs" / "c1" / "checkpoints" / "step-00000003"
    w = load_file(ck / "model.safetensors")
    assert not torch.equal(w["G_A_ema.model.1.weight"], w["G_A.model.1.weight"])
    save_rgb(tmp_path / "in.png", 37, 29)  # an awkward size
    ema = cli("translate", tmp_path / "in.png", "--model", "c1", "--out", tmp_path / "ema", "-q")
    raw = cli("translate", tmp_path / "in.png", "--model", "c1", "--out", tmp_path / "raw", "--raw-weights", "-q")
    assert ema.code == 0 and raw.code == 0, ema.err + raw.err
    e = np.asarray(Image.open(tmp_path / "ema" / "in.png"))
    w_ = np.asarray(Image.open(tmp_path / "raw" / "in.png"))
    assert e.shape == w_.shape == (29, 37, 3) and not np.array_equal(e, w_)
    # the EMA output is what the EMA weights give, run by hand
    from cyclegan_cli.checkpoints import load_model

    m = load_model(ck)
    x = torch.from_numpy(np.asarray(Image.open(tmp_path / "in.png"), dtype=np.float32)).permute(2, 0, 1)[None] / 127.5 - 1
    xp = F.pad(x, (0, 3, 0, 3), mode="reflect")  # to a multiple of 4
    with torch.no_grad():
        y = m.nets["G_A_ema"](xp)[0, :, :29, :37]
    ref = ((y.permute(1, 2, 0).numpy() + 1) * 127.5).round().clip(0, 255)
    assert np.abs(ref - e.astype(np.float64)).max() <= 1
    from cyclegan_cli.cli.common import Output

    started, real = [], Output.progress  # a usage error comes before any work: no progress display first

    def progress(self, *a, **k):
        started.append(a)
        return real(self, *a, **k)

    monkeypatch.setattr(Output, "progress", progress)
    back = cli("translate", tmp_path / "in.png", "--model", "c1", "--out", tmp_path / "b", "--direction", "BtoA")
    assert back.code == 2 and "A->B only" in back.err and len(back.err_lines) == 1
    assert started == []


@pytest.mark.parametrize("args, says", [
    (["--method", "cut", "--paired"], "unpaired"),
    (["--method", "fastcut", "ONE"], "two folders"),
    (["--method", "cut", "--augment", "color,zoom"], "unknown augmentation zoom"),
    (["--method", "cut", "--ema", "1.0"], "between 0 and 1"),
    (["--ema", "-0.5"], "between 0 and 1"),
    (["--method", "cut", "--nce-layers", "4,x"], "comma-separated layer numbers"),
    (["--method", "cut", "--nce-layers", "4,99"], "layers of this generator are 0.."),
])
def test_usage_errors(tmp_path, cli, args, says):
    a, b = make_domains(tmp_path)
    folders = [a] if "ONE" in args else [a, b]
    args = [x for x in args if x != "ONE"]
    r = cli("train", *folders, "--name", "e", *args, *TINY)
    assert r.code == 2 and says in r.err and len(r.err_lines) == 1 and "Traceback" not in r.err
    assert not (tmp_path / "runs" / "e").exists()  # refused before any work


def test_resuming_with_another_method_is_refused(tmp_path, cli):
    a, b = make_domains(tmp_path)
    assert cli("train", a, b, "--method", "fastcut", "--name", "r", "--max-steps", "1", *TINY).code == 0
    r = cli("train", a, b, "--method", "cut", "--name", "r", "--max-steps", "2", *TINY)
    assert r.code == 2 and "fastcut run" in r.err
    assert cli("train", a, b, "--name", "cg", "--max-steps", "1", *TINY).code == 0
    r = cli("train", "--resume", "cg", "--method", "fastcut", "--max-steps", "2", "-q")
    assert r.code == 2 and "cyclegan run" in r.err


# ------------------------------------------------------------------------------------ official CUT files
def _binomial(a):
    f = np.outer(a, a)
    return torch.tensor(f / f.sum(), dtype=torch.float32)


class OfficialDownsample(nn.Module):  # the official CUT Downsample: reflect pad 1, [1 2 1]^2 blur, stride 2
    def __init__(self, c):
        super().__init__()
        self.register_buffer("filt", _binomial([1.0, 2.0, 1.0])[None, None].repeat(c, 1, 1, 1))

    def forward(self, x):
        return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), self.filt, stride=2, groups=x.shape[1])


class OfficialUpsample(nn.Module):  # the official CUT Upsample: replicate pad 1, [1 3 3 1]^2 * 4, crops
    def __init__(self, c):
        super().__init__()
        self.register_buffer("filt", (_binomial([1.0, 3.0, 3.0, 1.0]) * 4)[None, None].repeat(c, 1, 1, 1))

    def forward(self, x):
        y = F.conv_transpose2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), self.filt, stride=2, padding=2,
                               groups=x.shape[1])[:, :, 1:, 1:]
        return y[:, :, :-1, :-1]


def official_cut_resnet(ngf, n_blocks):
    """The official CUT ResnetGenerator with its default anti-aliased sampling, written out."""
    from test_translate import official_resnet

    base = official_resnet(ngf, n_blocks)  # for its ResNet blocks
    blocks = [m for m in base.model if m.__class__.__name__ == "Block"]
    norm = lambda c: nn.InstanceNorm2d(c, affine=False, track_running_stats=False)  # noqa: E731
    m = [nn.ReflectionPad2d(3), nn.Conv2d(3, ngf, 7), norm(ngf), nn.ReLU(True)]
    for i in range(2):
        c = ngf * 2**i
        m += [nn.Conv2d(c, 2 * c, 3, 1, 1), norm(2 * c), nn.ReLU(True), OfficialDownsample(2 * c)]
    m += blocks
    for i in range(2):
        c = ngf * 2 ** (2 - i)
        m += [OfficialUpsample(c), nn.Conv2d(c, c // 2, 3, 1, 1), norm(c // 2), nn.ReLU(True)]
    m += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, 3, 7), nn.Tanh()]
    net = nn.Module()
    net.model = nn.Sequential(*m)
    net.forward = lambda x: net.model(x)
    return net


@pytest.mark.parametrize("antialias", [True, False])
def test_official_cut_generator_translates_like_the_official_code(tmp_path, cli, antialias):
    from test_translate import official_pipeline, official_resnet

    torch.manual_seed(5)
    net = official_cut_resnet(8, 9) if antialias else official_resnet(8, 9)  # --no_antialias: CycleGAN's layout
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    sd = net.state_dict()
    assert any(k.endswith(".filt") for k in sd) == antialias
    torch.save(sd, tmp_path / "latest_net_G.pth")
    for i in range(2):
        save_rgb(tmp_path / "in" / f"im{i}.png", 64, 48, seed=i)
    r = cli("translate", tmp_path / "in", "--model", tmp_path / "latest_net_G.pth", "--out", tmp_path / "out",
            "--backend", "torch")
    assert r.code == 0, r.err
    for i in range(2):
        ours = np.asarray(Image.open(tmp_path / "out" / f"im{i}.png"), dtype=np.int16)
        ref = official_pipeline(net, tmp_path / "in" / f"im{i}.png").astype(np.int16)
        assert ours.shape == ref.shape
        assert np.abs(ours - ref).max() <= 1


@pytest.mark.slow
def test_fastcut_under_torchrun_two_processes(tmp_path):
    """DDP on the CPU (gloo): both ranks end with the same weights, and no warning reaches stderr."""
    import test_train as tt

    a, b = make_domains(tmp_path)
    cmd, env = tt._torchrun(a, b, tmp_path / "runs", "--method", "fastcut", "--ema", "0.9", "--augment", "translation",
                            "--name", "d", "--max-steps", "3")
    env["GANCTL_DDP_DUMP"] = str(tmp_path / "dump")
    r = tt.subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "Warning" not in r.stderr, r.stderr[-2000:]
    w0 = tt.load_file(tmp_path / "dump" / "rank0.safetensors")
    w1 = tt.load_file(tmp_path / "dump" / "rank1.safetensors")
    assert w0.keys() == w1.keys() and any(k.startswith("F.") for k in w0)
    assert all(torch.equal(w0[k], w1[k]) for k in w0)


def test_a_run_from_before_ema_and_augment_resumes_and_refuses_them(tmp_path, cli):
    """options.json of a run started before --ema and --augment existed: a plain resume works, asking
    for either is the usual one-line refusal (not a KeyError on the missing EMA weights)."""
    import json

    a, b = make_domains(tmp_path)
    assert cli("train", a, b, "--name", "old", "--max-steps", "1", *TINY).code == 0
    f = tmp_path / "runs" / "old" / "options.json"
    opts = json.loads(f.read_text())
    del opts["ema"], opts["augment"]
    f.write_text(json.dumps(opts))
    for extra in (["--ema", "0.9"], ["--augment", "cutout"]):
        r = cli("train", a, b, "--name", "old", "--max-steps", "2", *TINY, *extra)
        assert r.code == 2 and "other options" in r.err and len(r.err_lines) == 1, r.err
    assert cli("train", a, b, "--name", "old", "--max-steps", "2", *TINY).code == 0


def test_color_augments_each_image_of_a_pair_on_its_own():
    from cyclegan_cli.train.augment import diff_augment

    torch.manual_seed(0)
    x = torch.rand(2, 3, 8, 8) * 2 - 1
    y = torch.rand(2, 3, 8, 8) * 2 - 1
    g = torch.Generator().manual_seed(7)
    pair = diff_augment(torch.cat([x, y], 1), ("color",), g)
    g = torch.Generator().manual_seed(7)
    alone = diff_augment(x, ("color",), g)
    assert torch.allclose(pair[:, :3], alone, atol=1e-6)  # the output image does not leak into the input's
