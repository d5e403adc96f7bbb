"""Videos: every frame translated, frame count, fps, duration and audio packets kept."""

import json
import math
import re
from pathlib import Path

import av
import numpy as np
import pytest

from conftest import save_rgb, smooth_image


def make_video(path: Path, w=96, h=64, fps=30, seconds=2, audio=True, rotation=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    out = av.open(str(path), mode="w")
    v = out.add_stream("libx264", rate=fps)
    v.width, v.height, v.pix_fmt = w + w % 2, h + h % 2, "yuv420p"
    v.options = {"crf": "10"}
    if rotation is not None:
        v.set_display_rotation(rotation)
    a = None
    if audio:
        a = out.add_stream("aac", rate=44100)
        a.layout = "mono"
    base = smooth_image(w + w % 2, h + h % 2)
    for i in range(fps * seconds):
        img = np.roll(base, i, axis=1)
        for p in v.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
            out.mux(p)
    for p in v.encode(None):
        out.mux(p)
    if a is not None:
        sr, n = 44100, 1024
        t = 0
        while t < sr * seconds:
            samples = (0.3 * np.sin(2 * math.pi * 440 * (np.arange(n) + t) / sr)).astype(np.float32)[None]
            frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
            frame.sample_rate, frame.pts = sr, t
            for p in a.encode(frame):
                out.mux(p)
            t += n
        for p in a.encode(None):
            out.mux(p)
    out.close()
    return path


def frames_of(path):
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        return [(f.to_ndarray(format="rgb24"), f.pts) for f in c.decode(s)], s.average_rate, float(
            c.duration / av.time_base) if c.duration else None


def audio_packets(path):
    with av.open(str(path)) as c:
        if not c.streams.audio:
            return []
        return [bytes(p) for p in c.demux(c.streams.audio[0]) if p.size]


@pytest.fixture
def gentle_model(tmp_path):
    """A tiny generator whose last layer is scaled down: outputs are as smooth as a trained model's,
    so what the comparison measures is codec loss, not 4:2:0 chroma subsampling of random texture."""
    import torch

    from cyclegan_cli.checkpoints import ModelConfig, save_checkpoint
    from cyclegan_cli.models import build

    torch.manual_seed(0)
    args = {"input_nc": 3, "output_nc": 3, "ngf": 4, "n_blocks": 1, "norm": "instance"}
    nets = {"G_A": build("resnet_generator", **args)}
    with torch.no_grad():
        nets["G_A"].model[-2].weight.mul_(0.1)
    cfg = ModelConfig(kind="cyclegan", nets={"G_A": {"arch": "resnet_generator", "args": args}}, image_size=32)
    return save_checkpoint(tmp_path / "gentle", cfg, nets)


def psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 99.0 if mse == 0 else 10 * math.log10(255**2 / mse)


def _translated_as_images(model_path, frames):
    from cyclegan_cli.checkpoints import load_model
    from cyclegan_cli.infer.engine import Translator

    m = load_model(model_path)
    t = Translator(m.generator(), m.config, device="cpu", backend="torch")
    return [t(f[None])[0] for f in frames]


def test_video_frames_fps_audio(tmp_path, cli, gentle_model):
    tiny_cyclegan = gentle_model
    src = make_video(tmp_path / "in" / "clip.mp4")
    save_rgb(tmp_path / "in" / "still.png", 20, 20)  # mixed with images in one folder
    r = cli("translate", tmp_path / "in", "--model", tiny_cyclegan, "--out", tmp_path / "out", "--crf", "8")
    assert r.code == 0, r.err
    out = tmp_path / "out" / "clip.mp4"
    assert out.is_file() and (tmp_path / "out" / "still.png").is_file()
    fin, rate_in, dur_in = frames_of(src)
    fout, rate_out, dur_out = frames_of(out)
    assert len(fin) == len(fout) == 60
    assert rate_in == rate_out
    assert abs(dur_in - dur_out) < 0.05
    assert [p for _, p in fin] == [p for _, p in fout]
    assert audio_packets(src) == audio_packets(out) and len(audio_packets(src)) > 50
    expect = _translated_as_images(tiny_cyclegan, [f for f, _ in fin])
    assert min(psnr(e, o) for e, (o, _) in zip(expect, fout)) >= 35


def test_odd_size_and_rotation(tmp_path, cli, gentle_model):
    tiny_cyclegan = gentle_model
    odd = make_video(tmp_path / "odd.mp4", w=97, h=63, audio=False)
    r = cli("translate", odd, "--model", tiny_cyclegan, "--out", tmp_path / "o1", "--crf", "8")
    assert r.code == 0, r.err
    fin, _, _ = frames_of(odd)
    fout, _, _ = frames_of(tmp_path / "o1" / "odd.mp4")
    assert len(fout) == len(fin)
    expect = _translated_as_images(tiny_cyclegan, [f for f, _ in fin])
    h, w = fin[0][0].shape[:2]
    assert min(psnr(e, o[:h, :w]) for e, (o, _) in zip(expect, fout)) >= 35
    rot = make_video(tmp_path / "rot.mp4", w=96, h=64, audio=False, rotation=90)
    r = cli("translate", rot, "--model", tiny_cyclegan, "--out", tmp_path / "o2")
    assert r.code == 0, r.err
    fout, _, _ = frames_of(tmp_path / "o2" / "rot.mp4")
    assert fout[0][0].shape[:2] == (96, 64)  # shown upright: the rotation was applied


def test_frames_out_trim_and_corrupt(tmp_path, cli, tiny_cyclegan):
    src = make_video(tmp_path / "c.mp4", audio=False)
    r = cli("translate", src, "--model", tiny_cyclegan, "--out", tmp_path / "o", "--frames-out", tmp_path / "fr",
            "--max-frames", "7")
    assert r.code == 0, r.err
    assert len(list((tmp_path / "fr" / "c").glob("*.png"))) == 7
    broken = tmp_path / "broken.mp4"
    data = src.read_bytes()
    broken.write_bytes(data[: len(data) // 2])
    r = cli("translate", broken, "--model", tiny_cyclegan, "--out", tmp_path / "ob")
    assert r.code == 1
    assert len([l for l in r.err_lines if l.startswith("ganctl: error:")]) == 1


def test_frames_out_rerun_skips_the_video_done(tmp_path, cli, tiny_cyclegan):
    """--frames-out: the video's output is its folder of frames, so a rerun of the same command
    skips it (as it skips a finished MP4) instead of translating it again."""
    src = make_video(tmp_path / "c.mp4", w=32, h=24, audio=False)
    args = ("translate", src, "--model", tiny_cyclegan, "--out", tmp_path / "o", "--frames-out", tmp_path / "fr",
            "--max-frames", "3", "--device", "cpu")
    r = cli(*args)
    assert r.code == 0, r.err
    pngs = sorted((tmp_path / "fr" / "c").glob("*.png"))
    assert len(pngs) == 3
    stamps = [p.stat().st_mtime_ns for p in pngs]
    r = cli(*args, "--json")
    assert r.code == 0, r.err
    (row,) = [json.loads(line) for line in r.out.splitlines() if line.strip()]
    assert row["status"] == "skipped" and row["output"] == str(tmp_path / "fr" / "c")
    assert [p.stat().st_mtime_ns for p in pngs] == stamps  # not written again


def test_a_single_video_progress_counts_its_frames_not_files(tmp_path, cli, tiny_cyclegan):
    """One video: the progress counts its frames ("c.mp4: 1/6 frames"), not a "0/1 files" that
    stands still until the end."""
    src = make_video(tmp_path / "c.mp4", w=32, h=24, fps=10, seconds=1, audio=False)
    r = cli("translate", src, "--model", tiny_cyclegan, "--out", tmp_path / "o", "--max-frames", "6",
            "--device", "cpu", "--batch-size", "1")
    assert r.code == 0, r.err
    lines = [line for line in r.err_lines if line.startswith("translate c.mp4: ")]
    assert lines and re.match(r"translate c\.mp4: [1-6]/6 frames", lines[0]), r.err
    assert not any("files" in line for line in r.err_lines), r.err


def test_video_progress_counts_frames_of_a_known_total(tmp_path, tiny_cyclegan):
    from cyclegan_cli.checkpoints import load_model
    from cyclegan_cli.infer.engine import Translator
    from cyclegan_cli.infer.video import translate_video

    src = make_video(tmp_path / "clip.mp4", w=32, h=24, fps=10, seconds=2)
    m = load_model(tiny_cyclegan)
    t = Translator(m.generator(), m.config, device="cpu", backend="torch")
    for options, n in (({}, 20), ({"max_frames": 7}, 7), ({"start": 1.0}, 10)):
        seen = []
        translate_video(t, src, tmp_path / "o.mp4", batch_size=4, on_progress=seen.append, **options)
        assert seen[-1]["frames"] == n and {e["total"] for e in seen} == {n}, (options, seen[-1])


def test_odd_sized_output_is_said(tmp_path, cli, tiny_cyclegan):
    src = make_video(tmp_path / "clip.mp4", w=96, h=64, fps=10, seconds=1, audio=False)
    r = cli("translate", src, "--model", tiny_cyclegan, "--out", tmp_path / "o", "--size", "33")  # 50x33
    assert r.code == 0, r.err
    assert r.err.count("50x33 frames, and H.264 (yuv420p) needs even sides: the video is 50x34") == 1, r.err
    fout, _, _ = frames_of(tmp_path / "o" / "clip.mp4")
    assert fout[0][0].shape[:2] == (34, 50)
    r = cli("translate", src, "--model", tiny_cyclegan, "--out", tmp_path / "o2")
    assert "even sides" not in r.err


def test_output_keeps_the_inputs_stream_order(tmp_path, cli, tiny_cyclegan):
    src = make_video(tmp_path / "clip.mp4", w=32, h=24, fps=10, seconds=1)
    r = cli("translate", src, "--model", tiny_cyclegan, "--out", tmp_path / "o")
    assert r.code == 0, r.err
    with av.open(str(src)) as a, av.open(str(tmp_path / "o" / "clip.mp4")) as b:
        assert [s.type for s in a.streams] == [s.type for s in b.streams] == ["video", "audio"]
