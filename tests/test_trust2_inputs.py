"""Trust, second wave, part two (issue 25): image formats, linked folders, video colour, DDP with
batch norm, evaluating a U-Net, and the twins and dead code gone. Each test reproduces one reviewed
defect and fails on the code before its fix."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import save_rgb
from test_trust2 import two_folders


# ------------------------------------------------------------------------------- 5, 6. image formats

@pytest.mark.parametrize("mode", ["L", "RGB"])
def test_5_a_trns_colour_key_keeps_its_transparency(cli, tmp_path, tiny_cyclegan, mode):
    arr = np.full((16, 16), 200, np.uint8)
    arr[4:12, 4:12] = 7  # the keyed (transparent) colour
    im = Image.fromarray(arr, "L")
    key = 7
    if mode == "RGB":
        im, key = im.convert("RGB"), (7, 7, 7)
    im.save(tmp_path / "k.png", transparency=key)
    assert Image.open(tmp_path / "k.png").mode == mode and "transparency" in Image.open(tmp_path / "k.png").info
    r = cli("translate", tmp_path / "k.png", "--model", tiny_cyclegan, "--out", tmp_path / "o")
    assert r.code == 0, r.err
    out = Image.open(tmp_path / "o" / "k.png")
    assert out.mode == "RGBA"
    alpha = np.asarray(out.getchannel("A"))
    assert (alpha[4:12, 4:12] == 0).all() and (alpha[:4] == 255).all()


def test_6_an_animated_gif_is_one_failure_line_not_a_still(cli, tmp_path, tiny_cyclegan):
    frames = [Image.fromarray(np.full((16, 16, 3), v, np.uint8)) for v in (0, 120, 250)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    save_rgb(tmp_path / "still.png", 16, 16)
    r = cli("translate", tmp_path / "anim.gif", tmp_path / "still.png", "--model", tiny_cyclegan,
            "--out", tmp_path / "o", "--json")
    assert r.code == 1, r.err
    records = {Path(json.loads(l)["input"]).name: json.loads(l) for l in r.out.splitlines()}
    assert records["anim.gif"]["status"] == "failed" and "animated" in records["anim.gif"]["error"]
    assert records["still.png"]["status"] == "ok"
    errors = [l for l in r.err_lines if l.startswith("ganctl: error:")]
    assert len(errors) == 1 and "anim.gif" in errors[0]
    assert not list((tmp_path / "o").glob("anim*"))


# ------------------------------------------------------------------------------- 7. linked folders

def linked_tree(tmp_path):
    """data/ holds one image and a link to a folder of three more, plus a link back to itself."""
    data, other = tmp_path / "data", tmp_path / "elsewhere"
    save_rgb(data / "a.png", 32, 32, seed=0)
    for i in range(3):
        save_rgb(other / f"{i}.png", 32, 32, seed=1 + i)
    os.symlink(other, data / "more")
    os.symlink(data, data / "loop")
    return data


def test_7_translate_follows_linked_folders_and_says_what_it_skips(cli, tmp_path, tiny_cyclegan):
    data = linked_tree(tmp_path)
    r = cli("translate", data, "--model", tiny_cyclegan, "--out", tmp_path / "o")
    assert r.code == 0, r.err
    assert sorted(str(p.relative_to(tmp_path / "o")) for p in (tmp_path / "o").rglob("*.png")) == [
        "a.png", "more/0.png", "more/1.png", "more/2.png"]
    assert any("loop" in l and "skipped" in l for l in r.err_lines), r.err


def test_7_training_reads_images_in_linked_folders(tmp_path):
    from cyclegan_cli.data.datasets import scan_folder

    notes = []
    files, skipped = scan_folder(linked_tree(tmp_path), on_skip=notes.append)
    assert len(files) == 4 and skipped == 0
    assert len(notes) == 1 and "loop" in notes[0]


# ------------------------------------------------------------------------------- 4. video colour

class IdentityTranslator:
    """What translate_video needs of a Translator, returning each frame unchanged."""

    class device:
        type = "cpu"

    def needs_tiling(self, h, w):
        return False

    def __call__(self, batch):
        return batch


def bt709_clip(path: Path, rgb, w=64, h=48, n=4):
    import av

    out = av.open(str(path), mode="w")
    v = out.add_stream("libx264", rate=10)
    v.width, v.height, v.pix_fmt = w, h, "yuv420p"
    v.options = {"crf": "0"}
    cc = v.codec_context
    cc.colorspace, cc.color_primaries, cc.color_trc, cc.color_range = 1, 1, 1, 1  # BT.709, limited range
    img = np.zeros((h, w, 3), np.uint8) + np.array(rgb, np.uint8)
    for i in range(n):
        f = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p", dst_colorspace=1,
                                                                     dst_color_range=1)
        f.colorspace, f.color_range, f.pts = 1, 1, i
        for p in v.encode(f):
            out.mux(p)
    for p in v.encode(None):
        out.mux(p)
    out.close()
    return path


def test_4_a_bt709_clip_keeps_its_colours_and_tags(tmp_path):
    import av

    from cyclegan_cli.infer.video import translate_video

    src = tmp_path / "hd.mp4"
    bt709_clip(src, (198, 39, 60))
    with av.open(str(src)) as c:
        assert c.streams.video[0].codec_context.colorspace == 1
        before = next(c.decode(video=0)).to_ndarray(format="rgb24")[24, 32].astype(int)
    assert np.abs(before - (198, 39, 60)).max() <= 3
    translate_video(IdentityTranslator(), src, tmp_path / "out.mp4", batch_size=2)
    with av.open(str(tmp_path / "out.mp4")) as c:
        cc = c.streams.video[0].codec_context
        assert (cc.colorspace, cc.color_primaries, cc.color_trc, cc.color_range) == (1, 1, 1, 1)
        frame = next(c.decode(video=0))
        after = frame.to_ndarray(format="rgb24")[24, 32].astype(int)
        as709 = frame.reformat(format="rgb24", src_colorspace=1).to_ndarray()[24, 32].astype(int)
    assert np.abs(after - before).max() <= 3 and np.abs(as709 - before).max() <= 3, (before, after, as709)


# ------------------------------------------------------------------------------- 8. DDP with batch norm

@pytest.mark.slow
def test_8_ddp_training_of_a_batch_norm_model_finishes(tmp_path):
    import subprocess
    import sys

    for i in range(8):
        save_rgb(tmp_path / "faces" / f"{i}.png", 16, 16, seed=i)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m",
           "cyclegan_cli", "train", str(tmp_path / "faces"), "--runs-dir", str(tmp_path / "runs"), "--device", "cpu",
           "--size", "16", "--ngf", "4", "--ndf", "4", "--batch-size", "2", "--max-steps", "2", "--workers", "0", "-q"]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0 and "diverged" not in r.stderr, r.stderr[-2000:]
    assert (tmp_path / "runs" / "dcgan-001" / "checkpoints" / "step-00000002").is_dir()


# ------------------------------------------------------------------------------- 9. evaluating a U-Net

from test_eval import featnet  # noqa: E402,F401  (a tiny TorchScript feature network)


def test_9_training_a_unet_with_eval_every_evaluates(cli, tmp_path, featnet):
    a, b = two_folders(tmp_path)
    r = cli("train", a, b, "--generator", "unet", "--size", "32", "--load-size", "36", "--ngf", "4", "--ndf", "4",
            "--max-steps", "2", "--workers", "0", "--name", "u", "--eval-every", "1", "--eval-data", b,
            "--eval-num", "2", "--eval-metrics", "kid", "--eval-features", featnet, "-q")
    assert r.code == 0, r.err
    rows = [json.loads(l) for l in (tmp_path / "runs" / "u" / "stats.jsonl").read_text().splitlines()]
    assert [x["step"] for x in rows if "eval" in x] == [1, 2]


def test_9_evaluation_sees_what_translate_makes(tmp_path):
    """The evaluated sample of a ResNet at a size off its grid is the translate output (same padding,
    cropped back), not a 288 px image made from a 286 px one."""
    import torch

    from cyclegan_cli.models import build
    from cyclegan_cli.models.padding import run_padded

    torch.manual_seed(0)
    G = build("resnet_generator", input_nc=3, output_nc=3, ngf=4, n_blocks=1, norm="instance").eval()
    x = torch.rand(1, 3, 30, 34) * 2 - 1
    from cyclegan_cli.checkpoints import ModelConfig
    from cyclegan_cli.infer.engine import Translator

    t = Translator(G, ModelConfig(kind="cyclegan", nets={}), device="cpu", backend="torch")
    with torch.no_grad():
        y = run_padded(G, x)
        ref = t.forward(x)
    assert y.shape == (1, 3, 30, 34) and torch.allclose(y, ref, atol=1e-5)


# ------------------------------------------------------------------------------- twins and dead code

def test_one_upsample_check_for_generators_and_trainers(tmp_path):
    from cyclegan_cli.errors import UsageError
    from cyclegan_cli.models import build
    from cyclegan_cli.train.cyclegan import train_cyclegan

    with pytest.raises(UsageError, match="--upsample 'nearest': transpose or resize"):
        build("resnet_generator", input_nc=3, output_nc=3, ngf=4, n_blocks=1, upsample="nearest")
    a, b = two_folders(tmp_path)
    with pytest.raises(UsageError, match="--upsample"):
        train_cyclegan(a, b, runs_dir=tmp_path / "runs", upsample="nearest", max_steps=1)
    assert not (tmp_path / "runs").exists()


def test_twins_and_dead_code_are_gone():
    import ast

    pkg = Path(__file__).resolve().parents[1] / "cyclegan_cli"
    defined: dict[str, list[str]] = {}
    private_imports = []
    for f in pkg.rglob("*.py"):
        tree = ast.parse(f.read_text())
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.col_offset == 0:
                defined.setdefault(node.name, []).append(str(f.relative_to(pkg)))
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("cyclegan_cli"):
                private_imports += [f"{f.relative_to(pkg)}: {a.name}" for a in node.names
                                    if a.name.startswith("_") and not a.name.startswith("__")]
    assert defined["check_upsample"] == ["models/cyclegan.py"]
    assert not private_imports, private_imports
    for gone in ("all_entries", "SeedOpt"):
        assert gone not in defined
    from cyclegan_cli.cli import common
    from cyclegan_cli.train.loop import LoopState

    assert not hasattr(common, "SeedOpt") and "history" not in LoopState.__dataclass_fields__
