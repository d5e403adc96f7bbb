"""ganctl translate: official compatibility, folders, formats, bad inputs, resume after SIGKILL."""

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from conftest import save_rgb


# --- the official generators, written out here from the official layout (models/networks.py) ---
def official_resnet(ngf, n_blocks, norm_kind="instance", dropout=False):
    if norm_kind == "instance":
        norm = lambda c: nn.InstanceNorm2d(c, affine=False, track_running_stats=False)  # noqa: E731
    else:
        norm = lambda c: nn.BatchNorm2d(c, affine=True, track_running_stats=True)  # noqa: E731
    bias = norm_kind == "instance"

    class Block(nn.Module):
        def __init__(self, dim):
            super().__init__()
            layers = [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=bias), norm(dim), nn.ReLU(True)]
            layers += [nn.Dropout(0.5)] if dropout else []
            layers += [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=bias), norm(dim)]
            self.conv_block = nn.Sequential(*layers)

        def forward(self, x):
            return x + self.conv_block(x)

    m = [nn.ReflectionPad2d(3), nn.Conv2d(3, ngf, 7, bias=bias), norm(ngf), nn.ReLU(True)]
    for i in range(2):
        c = ngf * 2**i
        m += [nn.Conv2d(c, 2 * c, 3, 2, 1, bias=bias), norm(2 * c), nn.ReLU(True)]
    m += [Block(ngf * 4) for _ in range(n_blocks)]
    for i in range(2):
        c = ngf * 2 ** (2 - i)
        m += [nn.ConvTranspose2d(c, c // 2, 3, 2, 1, output_padding=1, bias=bias), norm(c // 2), nn.ReLU(True)]
    m += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, 3, 7), nn.Tanh()]
    net = nn.Module()
    net.model = nn.Sequential(*m)
    net.forward = lambda x: net.model(x)
    return net


class OfficialUnetBlock(nn.Module):
    def __init__(self, outer, inner, input_nc=None, sub=None, outermost=False, innermost=False, dropout=False):
        super().__init__()
        self.outermost = outermost
        input_nc = input_nc or outer
        down = nn.Conv2d(input_nc, inner, 4, 2, 1, bias=False)
        if outermost:
            model = [down, sub, nn.ReLU(True), nn.ConvTranspose2d(inner * 2, outer, 4, 2, 1), nn.Tanh()]
        elif innermost:
            model = [nn.LeakyReLU(0.2, True), down, nn.ReLU(True), nn.ConvTranspose2d(inner, outer, 4, 2, 1, bias=False),
                     nn.BatchNorm2d(outer)]
        else:
            model = [nn.LeakyReLU(0.2, True), down, nn.BatchNorm2d(inner), sub, nn.ReLU(True),
                     nn.ConvTranspose2d(inner * 2, outer, 4, 2, 1, bias=False), nn.BatchNorm2d(outer)]
            model += [nn.Dropout(0.5)] if dropout else []
        self.model = nn.Sequential(*model)

    def forward(self, x):
        return self.model(x) if self.outermost else torch.cat([x, self.model(x)], 1)


def official_unet(num_downs, ngf, dropout=False):
    b = OfficialUnetBlock(ngf * 8, ngf * 8, innermost=True)
    for _ in range(num_downs - 5):
        b = OfficialUnetBlock(ngf * 8, ngf * 8, sub=b, dropout=dropout)
    b = OfficialUnetBlock(ngf * 4, ngf * 8, sub=b)
    b = OfficialUnetBlock(ngf * 2, ngf * 4, sub=b)
    b = OfficialUnetBlock(ngf, ngf * 2, sub=b)
    net = nn.Module()
    net.model = OfficialUnetBlock(3, ngf, input_nc=3, sub=b, outermost=True)
    net.forward = lambda x: net.model(x)
    return net


def official_pipeline(net, path):
    """The official test.py path: image -> [-1, 1] -> G -> (x + 1) / 2 * 255 -> uint8 (truncation).
    test.py never calls eval() (without --eval): batch norm uses the image's own statistics. Dropout
    is left off here, as ganctl runs it by default."""
    arr = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32)
    x = torch.from_numpy(arr).permute(2, 0, 1)[None] / 255.0 * 2 - 1
    net.train()
    for m in net.modules():
        if isinstance(m, nn.Dropout):
            m.eval()
    with torch.no_grad():
        y = net(x)[0]
    return ((y.permute(1, 2, 0).numpy() + 1) / 2.0 * 255.0).astype(np.uint8)


def test_resnet9_matches_official_facts():
    from cyclegan_cli.models import build

    sd = build("resnet_generator").state_dict()
    assert len(sd) == 48 and list(sd)[0] == "model.1.weight" and list(sd)[-1] == "model.26.bias"
    assert sum(v.numel() for v in sd.values()) == 11_378_179
    assert list(official_resnet(64, 9).state_dict()) == list(sd)


@pytest.mark.parametrize("kind", ["resnet9", "resnet6", "unet256"])
def test_official_pth_translates_like_official_code(kind, tmp_path, cli):
    torch.manual_seed(3)
    if kind == "unet256":
        net, size = official_unet(8, 4), (256, 256)
        with torch.no_grad():  # give batch norm real statistics
            net.train()(torch.randn(2, 3, 256, 256))
    else:
        net, size = official_resnet(8, 9 if kind == "resnet9" else 6), (64, 48)
    sd = net.state_dict()
    if kind == "resnet9":  # older official files carry InstanceNorm running stats and a DataParallel prefix
        sd = {("module." + k): v for k, v in sd.items()}
        sd["module.model.2.running_mean"] = torch.zeros(8)
        sd["module.model.2.running_var"] = torch.ones(8)
    torch.save(sd, tmp_path / "latest_net_G_A.pth")
    for i in range(2):
        save_rgb(tmp_path / "in" / f"im{i}.png", *size, seed=i)
    r = cli("translate", tmp_path / "in", "--model", tmp_path / "latest_net_G_A.pth", "--out", tmp_path / "out",
            "--backend", "torch")
    assert r.code == 0, r.err
    for i in range(2):
        ours = np.asarray(Image.open(tmp_path / "out" / f"im{i}.png"), dtype=np.int16)
        ref = official_pipeline(net, tmp_path / "in" / f"im{i}.png").astype(np.int16)
        assert ours.shape == ref.shape
        assert np.abs(ours - ref).max() <= 1


def test_unknown_architecture_is_clear(tmp_path, cli):
    torch.save({"foo.weight": torch.zeros(3)}, tmp_path / "x.pth")
    save_rgb(tmp_path / "a.png", 16, 16)
    r = cli("translate", "a.png", "--model", tmp_path / "x.pth")
    assert r.code == 4 and "cannot tell the architecture" in r.err


def _mixed_tree(root: Path):
    """About 40 images of mixed sizes, modes and formats, plus 3 bad files."""
    n = 0
    for i in range(37):
        sub = root / f"d{i % 3}" / (f"e{i % 2}" if i % 4 == 0 else "")
        w, h = 20 + (i * 7) % 41, 16 + (i * 5) % 37
        mode, ext = [("RGB", ".png"), ("L", ".jpg"), ("RGBA", ".png"), ("P", ".png"), ("RGB", ".webp"),
                     ("RGB", ".bmp"), ("LA", ".png"), ("RGB", ".tif")][i % 8]
        save_rgb(sub / f"img{i}{ext}", w, h, seed=i, mode=mode)
        n += 1
    (root / "d0" / "empty.jpg").write_bytes(b"")
    (root / "d1" / "text.jpg").write_text("this is not a picture")
    good = root / "d2" / "img_trunc.png"
    save_rgb(good, 64, 64, seed=99)
    good.write_bytes(good.read_bytes()[:200])
    return n


def test_folder_tree_with_bad_files(tmp_path, cli, tiny_cyclegan):
    n = _mixed_tree(tmp_path / "in")
    r = cli("translate", tmp_path / "in", "--model", tiny_cyclegan, "--out", tmp_path / "out")
    assert r.code == 1
    errors = [l for l in r.err_lines if l.startswith("ganctl: error:")]
    assert len(errors) == 3, r.err
    outs = r.out.split()
    assert len(outs) == n
    for src in (tmp_path / "in").rglob("img*"):
        if src.name == "img_trunc.png":
            continue
        dst = tmp_path / "out" / src.relative_to(tmp_path / "in")
        assert dst.is_file(), dst
        with Image.open(src) as a, Image.open(dst) as b:
            assert a.size == b.size
            if a.mode in ("RGBA", "LA"):
                assert "A" in b.getbands()
                assert np.array_equal(np.asarray(a.getchannel("A")), np.asarray(b.getchannel("A")))
    again = cli("translate", tmp_path / "in", "--model", tiny_cyclegan, "--out", tmp_path / "out")
    assert again.code == 1 and again.out == ""  # nothing new converted; the 3 bad files fail again


def test_stdin_json_shard_and_out_inside_input(tmp_path, cli, tiny_cyclegan):
    import json

    files = [save_rgb(tmp_path / "in" / f"{i}.png", 16, 12, seed=i) for i in range(12)]
    r = cli("translate", "-", "--model", tiny_cyclegan, "--out", tmp_path / "o", "--json", "--relative-to",
            tmp_path / "in", stdin="\n".join(map(str, files)) + "\n")  # the paths below in/, as the folder's
    assert r.code == 0
    rows = [json.loads(l) for l in r.out.splitlines()]
    assert len(rows) == 12 and all(x["status"] == "ok" for x in rows)
    parts = []
    for k in (1, 2, 3):
        rr = cli("translate", tmp_path / "in", "--model", tiny_cyclegan, "--out", tmp_path / f"s{k}", "--shard", f"{k}/3")
        parts.append(set(Path(p).name for p in rr.out.split()))
    assert sum(len(p) for p in parts) == 12 and set.union(*parts) == {f"{i}.png" for i in range(12)}
    again = cli("translate", tmp_path / "in", "--model", tiny_cyclegan, "--out", tmp_path / "o", "--json")
    assert {json.loads(l)["status"] for l in again.out.splitlines()} == {"skipped"}
    redo = cli("translate", tmp_path / "in", "--model", tiny_cyclegan, "--out", tmp_path / "o", "--overwrite")
    assert redo.code == 0 and len(redo.out.split()) == 12
    bad = cli("translate", tmp_path / "in", "--model", tiny_cyclegan, "--out", tmp_path / "in" / "o")
    assert bad.code == 2 and "inside the input folder" in bad.err


def test_direction_to_and_exif(tmp_path, cli, tiny_cyclegan):
    im = Image.fromarray(np.zeros((10, 30, 3), np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    im.save(tmp_path / "rot.jpg", exif=exif)
    r = cli("translate", tmp_path / "rot.jpg", "--model", tiny_cyclegan, "--to", "cat", "--out", tmp_path / "o",
            "--format", "png")
    assert r.code == 0, r.err
    assert Image.open(tmp_path / "o" / "rot.png").size == (10, 30)
    r = cli("translate", tmp_path / "rot.jpg", "--model", tiny_cyclegan, "--to", "bird", "--out", tmp_path / "o2")
    assert r.code == 2 and "cat and dog" in r.err


def test_sigkill_leaves_no_partial_files(tmp_path, tiny_cyclegan):
    for i in range(60):
        save_rgb(tmp_path / "in" / f"{i:02d}.png", 256, 256, seed=i)
    cmd = [sys.executable, "-m", "cyclegan_cli", "translate", str(tmp_path / "in"), "--model", str(tiny_cyclegan),
           "--batch-size", "1", "--backend", "torch"]
    p = subprocess.Popen(cmd + ["--out", str(tmp_path / "out")], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    first = p.stdout.readline()  # one file is done: we are in the middle of the run
    assert first
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    for f in (tmp_path / "out").iterdir():
        if f.suffix == ".png" and not f.name.startswith("."):
            Image.open(f).load()  # every file under a final name is complete
    subprocess.run(cmd + ["--out", str(tmp_path / "out")], check=True, capture_output=True)
    subprocess.run(cmd + ["--out", str(tmp_path / "ref")], check=True, capture_output=True)
    names = sorted(f.name for f in (tmp_path / "out").iterdir())
    assert names == sorted(f.name for f in (tmp_path / "ref").iterdir())  # no temporary files left either
    for n in names:
        if not n.startswith("."):  # .ganctl-manifest.json and its lock
            assert np.array_equal(np.asarray(Image.open(tmp_path / "out" / n)), np.asarray(Image.open(tmp_path / "ref" / n)))


def test_onnx_backend_and_export_match_torch(tmp_path, cli, tiny_cyclegan):
    import onnxruntime as ort

    for i in range(3):
        save_rgb(tmp_path / "in" / f"{i}.png", 40 + 8 * i, 36, seed=i)
    a = cli("translate", tmp_path / "in", "--model", tiny_cyclegan, "--out", tmp_path / "t", "--backend", "torch")
    b = cli("translate", tmp_path / "in", "--model", tiny_cyclegan, "--out", tmp_path / "o", "--backend", "onnxruntime")
    assert a.code == b.code == 0, b.err
    for i in range(3):
        x = np.asarray(Image.open(tmp_path / "t" / f"{i}.png"), dtype=int)
        y = np.asarray(Image.open(tmp_path / "o" / f"{i}.png"), dtype=int)
        assert np.abs(x - y).max() <= 1
    r = cli("export", tiny_cyclegan, "--onnx", tmp_path / "g.onnx")
    assert r.code == 0 and (tmp_path / "g.onnx").is_file()
    sess = ort.InferenceSession(str(tmp_path / "g.onnx"), providers=["CPUExecutionProvider"])
    assert sess.get_inputs()[0].name == "image"
    assert cli("export", tiny_cyclegan, "--onnx", tmp_path / "g.onnx").code == 2  # no silent overwrite


def test_formats_sizes_and_guards(tmp_path, cli, tiny_cyclegan):
    from PIL import ImageCms

    d = tmp_path / "in"
    d.mkdir()
    Image.fromarray((np.arange(40 * 30).reshape(30, 40) * 50).astype(np.uint16)).save(d / "deep.png")  # 16-bit
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    Image.fromarray(np.full((20, 24, 3), 90, np.uint8)).save(d / "icc.jpg", icc_profile=srgb)
    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(d / "dot.png")
    Image.fromarray(np.zeros((100, 100, 3), np.uint8)).save(d / "big.png")
    r = cli("translate", d, "--model", tiny_cyclegan, "--out", tmp_path / "o", "--suffix", "_x", "--format", "webp",
            "--quality", "80", "--max-pixels", "5000")
    assert r.code == 1
    errors = sorted(l for l in r.err_lines if l.startswith("ganctl: error:"))
    assert len(errors) == 2 and "too small" in " ".join(errors) and "pixel limit" in " ".join(errors)
    assert Image.open(tmp_path / "o" / "deep_x.webp").size == (40, 30)
    assert Image.open(tmp_path / "o" / "icc_x.webp").info.get("icc_profile") == srgb
    r = cli("translate", d / "icc.jpg", "--model", tiny_cyclegan, "--out", tmp_path / "s", "--size", "40")
    assert r.code == 0 and Image.open(tmp_path / "s" / "icc.jpg").size == (48, 40)


def test_manifest_lock_leaves_no_file_and_still_excludes(tmp_path, cli, tiny_cyclegan):
    """No empty .ganctl-manifest.json.lock left in the output folder, and claims made at the same
    moment (shards sharing a folder) all land in the one manifest."""
    import json
    import threading

    from cyclegan_cli.infer.translate import MANIFEST, Job, Manifest

    save_rgb(tmp_path / "in" / "a.png", 16, 16)
    r = cli("translate", tmp_path / "in", "--model", tiny_cyclegan, "--out", tmp_path / "o")
    assert r.code == 0, r.err
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == [MANIFEST, "a.png"]

    out = tmp_path / "shared"
    start = threading.Barrier(8)

    def shard(k):
        start.wait()
        for i in range(10):  # a job's two locked steps: claim before, commit (at close) after the write
            m = Manifest(out, {"shard": k})
            m.claim([Job(tmp_path / f"{k}-{i}.png", out / f"{k}-{i}.png")], overwrite=False)
            m.commit(out / f"{k}-{i}.png")
            m.close()

    threads = [threading.Thread(target=shard, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    data = json.loads((out / MANIFEST).read_text())
    assert len(data["files"]) == 80 and not data["pending"] and sorted(p.name for p in out.iterdir()) == [MANIFEST]


def test_onnx_export_keeps_odd_sizes_and_says_what_it_takes(tmp_path, cli, tiny_cyclegan):
    """The exported graph pads to the network's multiple and crops back, as ganctl translate does:
    an odd-sized image gives the same size and the same pixels; its metadata says the value range,
    the direction and the domains."""
    import onnx
    import onnxruntime as ort

    save_rgb(tmp_path / "in" / "odd.png", 51, 34, seed=3)  # neither side a multiple of 4
    r = cli("translate", tmp_path / "in" / "odd.png", "--model", tiny_cyclegan, "--out", tmp_path / "t",
            "--direction", "BtoA")
    assert r.code == 0, r.err
    r = cli("export", tiny_cyclegan, "--onnx", tmp_path / "g.onnx", "--direction", "BtoA")
    assert r.code == 0, r.err
    rgb = np.asarray(Image.open(tmp_path / "in" / "odd.png"), dtype=np.float32)
    x = (rgb / 127.5 - 1).transpose(2, 0, 1)[None]
    y = ort.InferenceSession(str(tmp_path / "g.onnx"), providers=["CPUExecutionProvider"]).run(None, {"image": x})[0]
    assert y.shape == (1, 3, 34, 51)
    got = ((y[0].transpose(1, 2, 0) + 1) * 127.5).round().clip(0, 255).astype(int)
    assert np.abs(got - np.asarray(Image.open(tmp_path / "t" / "odd.png"), dtype=int)).max() <= 1
    meta = {p.key: p.value for p in onnx.load(str(tmp_path / "g.onnx")).metadata_props}
    assert meta["direction"] == "BtoA" and meta["domains"] == "dog -> cat"
    assert "[-1, 1]" in meta["input"] and "[-1, 1]" in meta["output"]


def test_html_page_shows_inputs_beside_outputs(tmp_path, cli, tiny_cyclegan):
    """--html: OUT/index.html with each input beside its output, every link relative and leading to
    the file, nothing from the network (no Chromium here to take a screenshot: the structure is
    checked)."""
    from html.parser import HTMLParser
    from urllib.parse import unquote

    from test_video import make_video

    names = ["a b#1.png", "sub/c.jpg"]
    for i, n in enumerate(names):
        save_rgb(tmp_path / "in" / n, 24, 20, seed=i)
    make_video(tmp_path / "in" / "clip.mp4", w=32, h=24, fps=5, seconds=1, audio=False)
    (tmp_path / "in" / "notes.txt").write_text("x")
    out = tmp_path / "out"
    r = cli("translate", tmp_path / "in", "--model", tiny_cyclegan, "--out", out, "--html")
    assert r.code == 0, r.err
    assert f"page: {out / 'index.html'}" in r.err and "index.html" not in r.out  # stdout: the outputs only

    class Media(HTMLParser):
        def __init__(self):
            super().__init__()
            self.rows, self.tags, self.hrefs = [], set(), []

        def handle_starttag(self, tag, attrs):
            a = dict(attrs)
            self.tags.add(tag)
            if tag == "tr":
                self.rows.append([])
            if tag in ("img", "video"):
                self.rows[-1].append(unquote(a["src"]))
            if tag == "a":
                self.hrefs.append(unquote(a["href"]))

    page = (out / "index.html").read_text()
    p = Media()
    p.feed(page)
    rows = [r for r in p.rows if r]
    assert rows == [["../in/a b#1.png", "a b#1.png"], ["../in/clip.mp4", "clip.mp4"], ["../in/sub/c.jpg", "sub/c.jpg"]]
    assert all((out / src).is_file() for row in rows for src in row) and set(p.hrefs) <= {s for r in rows for s in r}
    links = re.sub(r'poster="data:image/jpeg;base64,[^"]*"', "", page)  # a first frame, inline: base64 may hold //
    assert not {"script", "link", "iframe"} & p.tags and "http" not in links and "//" not in links.replace("<!DOCTYPE", "")
    r = cli("translate", tmp_path / "in", "--model", tiny_cyclegan, "--out", out, "--html")  # all skipped: the same page
    assert r.code == 0 and (out / "index.html").read_text() == page


def test_json_ms_is_each_files_own_time_not_its_wait(tmp_path, monkeypatch):
    """`--json`'s "ms": the file's own reading, share of the network call and writing. Six files
    through a network that takes 0.25 s a call, one at a time: each reports 0.25 s, not the 0.25,
    0.5, 0.75 ... s it waited behind the files before it. No wall clock: the pipeline's clock is a
    fake one that only the network call moves, and its thread pools run each task as it is
    submitted, so that the reading order, and every figure, is fixed."""
    from concurrent.futures import Future

    from cyclegan_cli.checkpoints import ModelConfig
    from cyclegan_cli.infer import pipeline
    from cyclegan_cli.infer.engine import Translator
    from cyclegan_cli.infer.translate import plan_jobs, translate_images
    from cyclegan_cli.models import build

    for i in range(6):
        save_rgb(tmp_path / "in" / f"{i}.png", 16, 12, seed=i)
    t = Translator(build("resnet_generator", ngf=4, n_blocks=1), ModelConfig(kind="cyclegan", nets={}),
                   device="cpu", backend="torch")
    now = [0.0]

    class Slow:  # the translator, 0.25 s (of the fake clock) a call
        def __getattr__(self, name):
            return getattr(t, name)

        def __call__(self, batch):
            now[0] += 0.25
            return t(batch)

    class InLine:  # a ThreadPoolExecutor that runs each task when it is submitted
        def __init__(self, *args, **kwargs):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def submit(self, fn, *args):
            fut = Future()
            try:
                fut.set_result(fn(*args))
            except Exception as exc:
                fut.set_exception(exc)
            return fut

    monkeypatch.setattr(pipeline, "_now", lambda: now[0])
    monkeypatch.setattr(pipeline, "ThreadPoolExecutor", InLine)
    jobs, _ = plan_jobs([tmp_path / "in"], tmp_path / "out")
    results = []
    summary = translate_images(Slow(), jobs, batch_size=1, workers=2, on_result=results.append)
    assert summary.converted == 6 and now[0] == 6 * 0.25
    assert [r["ms"] for r in results] == [250.0] * 6
