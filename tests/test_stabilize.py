"""Temporally stable video translation (--stabilize, the default) and its measure, eval --temporal."""

import json
import math
from pathlib import Path
from types import SimpleNamespace

import av
import cv2
import numpy as np
import pytest
from PIL import Image

from cyclegan_cli.data.video import write_frames_lossless

SHIFT = 2  # pixels a frame: the known motion of the synthetic clips


def texture(h: int, w: int, seed: int) -> np.ndarray:
    """A smooth random texture in 60..190 (room for the flicker), something optical flow can follow."""
    rng = np.random.default_rng(seed)
    noise = cv2.GaussianBlur(rng.normal(0, 1, (h, w, 3)).astype(np.float32), (0, 0), 3)
    noise = (noise - noise.min()) / (noise.max() - noise.min())
    return (60 + 130 * noise).astype(np.uint8)


def panning(n: int, h: int = 64, w: int = 96, seed: int = 0, jitter: float = 2.0) -> list[np.ndarray]:
    """Frame t shows the texture from x = t * SHIFT: frame_t(x) = frame_{t-1}(x + SHIFT), plus a
    global brightness jitter of up to +-``jitter`` gray levels per frame (exposure noise)."""
    base = texture(h, w + n * SHIFT, seed)
    rng = np.random.default_rng(seed + 100)
    return [np.clip(base[:, t * SHIFT:t * SHIFT + w].astype(np.float32) + rng.uniform(-jitter, jitter), 0, 255)
            .astype(np.uint8) for t in range(n)]


def decoded(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


class FlickerNet:
    """A stand-in generator whose output brightness follows the frame's global mean, amplified (as
    an InstanceNorm generator's does): a +-2 exposure jitter becomes a flicker of tens of levels."""

    device = SimpleNamespace(type="cpu")

    def needs_tiling(self, h, w):
        return False

    def one(self, f: np.ndarray) -> np.ndarray:
        x = f.astype(np.float32)
        return np.clip(0.5 * x + 64 + 8 * (x.mean() - 125), 0, 255).astype(np.uint8)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return np.stack([self.one(f) for f in batch])


def known_motion_error(frames: list[np.ndarray], margin: int = 6) -> float:
    """Warping error with the true motion (an exact shift), away from the borders: no flow at all."""
    errs = []
    for prev, cur in zip(frames, frames[1:]):
        a = cur[margin:-margin, margin:-margin - SHIFT].astype(np.float32)
        b = prev[margin:-margin, margin + SHIFT:-margin].astype(np.float32)
        errs.append(np.abs(a - b).mean())
    return float(np.mean(errs))


def translated_frames(tmp_path: Path, src: Path, stabilize: bool, name: str, **kw) -> list[np.ndarray]:
    from cyclegan_cli.infer.video import translate_video

    info = translate_video(FlickerNet(), src, tmp_path / name / src.stem, frames=True, stabilize=stabilize, **kw)
    files = sorted((tmp_path / name / src.stem).glob("frame_*.png"))
    assert len(files) == info["frames"]
    return [np.asarray(Image.open(f).convert("RGB")) for f in files]


def test_stabilised_flicker_far_below_per_frame(tmp_path):
    src = write_frames_lossless(panning(24), tmp_path / "pan.mkv")
    frames = decoded(src)
    per_frame = translated_frames(tmp_path, src, False, "pf")
    stable = translated_frames(tmp_path, src, True, "st")
    e_in, e_pf, e_st = (known_motion_error(f) for f in (frames, per_frame, stable))
    added_pf, added_st = e_pf - e_in, e_st - e_in
    assert added_pf > 5  # the stand-in really flickers
    assert added_st <= added_pf / 4, (e_in, e_pf, e_st)
    # no smearing bought with it: each frame stays close to its own per-frame output, away from the border
    # where new content enters
    mad = [np.abs(s.astype(np.float32) - p.astype(np.float32))[4:-4, 4:-4 - SHIFT].mean() for s, p in zip(stable, per_frame)]
    assert np.mean(mad) < added_pf


class IdentityNet(FlickerNet):
    """A "translation" that returns each frame unchanged: it has no flicker at all, so whatever its
    stabilised output differs by is the stabiliser's own doing."""

    def one(self, f: np.ndarray) -> np.ndarray:
        return f


@pytest.mark.parametrize("fade", ["to black", "to white"])
def test_a_fade_is_followed_not_lagged(tmp_path, fade):
    """A 1 s fade (25 fps) over a pan, through translate_video with an identity model. A fade moves
    each pixel by less than the input-change test lets through, so the previous, brighter output
    used to be carried over at 85 %: the fade to black ended 28 levels gray. The carried-over
    frame now changes as the network's own output did, where the input's light keeps changing:
    within 2 levels at every frame."""
    frames = fade_clip(fade)
    stable = stabilised(tmp_path, frames, IdentityNet())
    off = [float(np.abs(s.astype(np.float32) - f.astype(np.float32)).mean()) for s, f in zip(stable, frames)]
    assert off[-1] <= 2 and max(off) <= 2, [round(o, 1) for o in off]


class NormalisingNet(FlickerNet):
    """A "translation" whose output ignores the input's global light, as an InstanceNorm generator's
    nearly does (a sketch stays a sketch on white paper while the photo under it fades)."""

    def one(self, f: np.ndarray) -> np.ndarray:
        x = f.astype(np.float32)
        return np.clip((x - x.mean()) / max(float(x.std()), 1e-3) * 40 + 128, 0, 255).astype(np.uint8)


def test_a_fade_the_model_ignores_is_not_pushed_onto_its_output(tmp_path):
    """The carried-over output follows the network's own output, not the input's light: given the
    input's gain and offset instead, a model that ignores the fade was darkened with it (the shipped
    photo2sketch: 30 levels from its own output on a 1 s fade). Away from the last frames, where the
    input is too dark for the model to see much, it stays with its own output."""
    frames = fade_clip("to black")
    net = NormalisingNet()
    stable = stabilised(tmp_path, frames, net)
    off = [float(np.abs(s.astype(np.float32) - net.one(f).astype(np.float32)).mean()) for s, f in zip(stable, frames)]
    assert max(off[:20]) <= 3, [round(o, 1) for o in off]


def fade_clip(fade: str, n: int = 26) -> list[np.ndarray]:
    """1 s at 25 fps of the pan fading to black (or white): the last frame all black (or white)."""
    out = []
    for t, p in enumerate(panning(n, jitter=0)):
        f = p.astype(np.float32)
        f = f * (1 - t / (n - 1)) if fade == "to black" else f + (255.0 - f) * t / (n - 1)
        out.append(np.clip(np.rint(f), 0, 255).astype(np.uint8))
    return out


def stabilised(tmp_path: Path, frames: list[np.ndarray], net) -> list[np.ndarray]:
    """``frames`` as a lossless video, through translate_video with ``net``, stabilised."""
    from cyclegan_cli.infer.video import translate_video

    src = write_frames_lossless(frames, tmp_path / "fade.mkv", fps=25)
    info = translate_video(net, src, tmp_path / "st" / "fade", frames=True, stabilize=True)
    out = [np.asarray(Image.open(f).convert("RGB")) for f in sorted((tmp_path / "st" / "fade").glob("frame_*.png"))]
    assert info["frames"] == len(out) == len(frames) and not info.get("cuts")
    return out


def test_scene_cut_starts_afresh(tmp_path):
    shot_a, shot_b = panning(8, seed=1), panning(8, seed=2)
    shot_b = [np.ascontiguousarray(f[::-1]) for f in shot_b]  # another scene, upside down
    src = write_frames_lossless(shot_a + shot_b, tmp_path / "cut.mkv")
    frames = decoded(src)
    said = []
    stable = translated_frames(tmp_path, src, True, "st", on_detail=said.append)
    net = FlickerNet()
    assert np.array_equal(stable[8], net.one(frames[8]))  # the first frame of the new shot: its own output
    assert np.array_equal(stable[0], net.one(frames[0]))
    assert not np.array_equal(stable[7], net.one(frames[7]))  # within a shot the blend is at work
    assert not np.array_equal(stable[9], net.one(frames[9]))
    assert len(said) == 1 and "scene cut at frame 8 (0.32 s)" in said[0], said  # frame index 8, from 0


def test_one_frame_video(tmp_path):
    src = write_frames_lossless(panning(1), tmp_path / "one.mkv")
    out = translated_frames(tmp_path, src, True, "st")
    assert len(out) == 1 and np.array_equal(out[0], FlickerNet().one(decoded(src)[0]))


def test_small_and_wide_frames():
    """OpenCV's DIS crashes the process on small or very wide frames (20x300); they must not."""
    from cyclegan_cli.infer.stabilize import Stabilizer

    for h, w in [(2, 2), (8, 40), (20, 300), (300, 20), (24, 500)]:
        stab = Stabilizer()
        frames = [np.roll(texture(h, w, 0), t, axis=1) for t in range(3)]
        outs = [stab.apply(f, stab.motion(f)) for f in frames]
        assert [o.shape for o in outs] == [(h, w, 3)] * 3


def test_no_stabilize_is_the_per_frame_output(tmp_path, cli, tiny_cyclegan):
    from cyclegan_cli.checkpoints import load_model
    from cyclegan_cli.infer.engine import Translator

    src = write_frames_lossless(panning(6), tmp_path / "pan.mkv")
    r = cli("translate", src, "--model", tiny_cyclegan, "--out", tmp_path / "o", "--frames-out", tmp_path / "fr",
            "--no-stabilize", "--device", "cpu")
    assert r.code == 0, r.err
    m = load_model(tiny_cyclegan)
    t = Translator(m.generator(), m.config, device="cpu")  # the CLI's own defaults: batch 1, backend auto
    expect = [t(f[None])[0] for f in decoded(src)]
    got = [np.asarray(Image.open(f).convert("RGB")) for f in sorted((tmp_path / "fr" / "pan").glob("*.png"))]
    assert len(got) == len(expect) == 6
    assert all(np.array_equal(a, b) for a, b in zip(got, expect))
    # and the default is the stabilised output, a different one (same model, a new output folder)
    r = cli("translate", src, "--model", tiny_cyclegan, "--out", tmp_path / "o2", "--frames-out", tmp_path / "fr2",
            "--device", "cpu")
    assert r.code == 0, r.err
    stable = [np.asarray(Image.open(f).convert("RGB")) for f in sorted((tmp_path / "fr2" / "pan").glob("*.png"))]
    assert np.array_equal(stable[0], expect[0]) and not all(np.array_equal(a, b) for a, b in zip(stable, expect))


def test_eval_temporal_matches_the_known_motion(tmp_path, cli):
    frames = panning(12, jitter=0)
    rng = np.random.default_rng(5)
    # an "output": the input with a per-frame brightness offset and per-pixel noise, i.e. flicker
    outs = [np.clip(f.astype(np.float32) + rng.choice([-12, 12]) + rng.normal(0, 4, f.shape), 0, 255).astype(np.uint8)
            for f in frames]
    src, dst = write_frames_lossless(frames, tmp_path / "in.mkv"), write_frames_lossless(outs, tmp_path / "out.mkv")
    r = cli("eval", "--temporal", src, dst, "--json")
    assert r.code == 0, r.err
    got = json.loads(r.out)
    assert got["frames"] == 12 and got["pairs"] == 11
    expect_out, expect_in = known_motion_error(outs), known_motion_error(frames)
    assert got["output"] == pytest.approx(expect_out, rel=0.05)
    assert got["input"] < 1 and expect_in == 0  # the flow is not exact: a fraction of a level
    assert got["added"] == pytest.approx(got["output"] - got["input"])
    r = cli("eval", "--temporal", src, dst)
    assert r.code == 0 and "warping error, output" in r.out and f"{got['output']:.2f}" in r.out


def test_warping_error_with_another_flow_method():
    """``flow=`` swaps the measuring flow (benchmarks/temporal.py --measure): with the exact global
    shift, found by an exhaustive search, the error is the plain difference along it, the input's 0."""
    from cyclegan_cli.infer.temporal import warping_error

    frames = panning(8, jitter=0)
    rng = np.random.default_rng(2)
    outs = [np.clip(f.astype(np.float32) + rng.normal(0, 6, f.shape), 0, 255).astype(np.uint8) for f in frames]
    calls = []

    def shift(a, b):  # (H, W, 2): where each pixel of a is in b, the best whole-pixel horizontal shift
        w = a.shape[1]
        cost = {d: np.abs(a[:, max(0, -d):w - max(0, d)].astype(np.float32)
                          - b[:, max(0, d):w - max(0, -d)].astype(np.float32)).mean() for d in range(-4, 5)}
        d = min(cost, key=cost.get)
        calls.append((d, 0))
        return np.broadcast_to(np.float32([d, 0]), a.shape + (2,)).copy()

    got = warping_error(frames, outs, flow=shift)
    assert calls and {abs(c[0]) for c in calls} == {SHIFT} and {c[1] for c in calls} == {0}
    assert got["input"] == 0 and got["pairs"] == 7
    # the whole frame but the SHIFT columns that come from outside it, against the margin-free reference
    ref = np.mean([np.abs(c[:, :-SHIFT].astype(np.float32) - p[:, SHIFT:].astype(np.float32)).mean()
                   for p, c in zip(outs, outs[1:])])
    assert got["output"] == pytest.approx(ref, rel=1e-4)


def audio_only(path: Path) -> Path:
    with av.open(str(path), mode="w") as out:
        a = out.add_stream("aac", rate=44100)
        a.layout = "mono"
        for i in range(20):
            samples = (0.3 * np.sin(2 * math.pi * 440 * (np.arange(1024) + 1024 * i) / 44100)).astype(np.float32)[None]
            frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 44100, 1024 * i
            for p in a.encode(frame):
                out.mux(p)
        for p in a.encode(None):
            out.mux(p)
    return path


@pytest.mark.parametrize("case", ["missing", "audio-only", "unreadable"])
def test_one_line_errors(tmp_path, cli, tiny_cyclegan, case):
    good = write_frames_lossless(panning(3), tmp_path / "good.mkv")
    bad = tmp_path / "bad.mp4"
    if case == "audio-only":
        audio_only(bad)
    elif case == "unreadable":
        bad.write_bytes(b"\x00\x00\x00\x18ftypisom" + bytes(range(256)) * 8)
    expect = {"missing": "no such file", "audio-only": "no video stream", "unreadable": "cannot open video"}[case]
    for args in (("eval", "--temporal", good, bad), ("eval", "--temporal", bad, good),
                 ("translate", bad, "--model", tiny_cyclegan, "--out", tmp_path / "o")):
        r = cli(*args)
        assert r.code == (3 if case == "missing" else 1), (args, r.err)  # 3: not found, as everywhere in ganctl
        assert len(r.err_lines) in (1, 2) and "Traceback" not in r.err, r.err  # translate adds its summary line
        assert r.err_lines[0].startswith("ganctl: error:") and expect in r.err_lines[0], r.err


def test_warping_error_leaves_out_the_pair_across_a_scene_cut(tmp_path, cli):
    from cyclegan_cli.infer.temporal import warping_error

    first = panning(6, seed=0, jitter=0)
    second = [(f // 2 + 20).astype(np.uint8) for f in panning(6, seed=7, jitter=0)]  # another shot, darker
    frames = first + second
    # the output is the input, only brighter in the second shot: nothing added within a shot; the
    # cut pair (a new picture, so no motion explains it) would count the output's jump, not the input's
    outs = first + [f + 40 for f in second]
    r = warping_error(frames, outs)
    assert r["frames"] == 12 and r["cuts"] == [6] and r["pairs"] == 10
    assert r["added"] == pytest.approx(0, abs=1e-6)
    src, dst = write_frames_lossless(frames, tmp_path / "in.mkv"), write_frames_lossless(outs, tmp_path / "out.mkv")
    r = cli("eval", "--temporal", src, dst)
    assert r.code == 0 and "10 pairs with reliable motion, 1 across a scene cut left out" in r.out, r.out
    # one shot: no cut, every pair counted
    r = warping_error(first, first)
    assert r["cuts"] == [] and r["pairs"] == 5
