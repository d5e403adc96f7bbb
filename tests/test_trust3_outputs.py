"""translate's outputs (issue 34): a --frames-out folder is an output like any other (planned with
the input tree mirrored, written whole, recorded in its own folder's manifest)."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from conftest import save_rgb
from cyclegan_cli.data.video import write_frames_lossless


def clip(path: Path, n: int, seed: int, w: int = 32, h: int = 24) -> Path:
    """A lossless clip of ``n`` random frames (FFV1: decoded, exactly these)."""
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_frames_lossless([(rng.random((h, w, 3)) * 255).astype(np.uint8) for _ in range(n)], path)


def pngs(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("*.png"))


def rows(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


class Identity:
    """What translate_video needs of a Translator; each frame unchanged. ``interrupt_at``: the call
    (1-based) that raises KeyboardInterrupt, as a Ctrl-C would."""

    device = SimpleNamespace(type="cpu")

    def __init__(self, interrupt_at: int | None = None):
        self.calls, self.interrupt_at = 0, interrupt_at

    def needs_tiling(self, h, w):
        return False

    def __call__(self, batch):
        self.calls += 1
        if self.calls == self.interrupt_at:
            raise KeyboardInterrupt
        return batch.copy()


def test_frames_out_mirrors_the_input_tree(tmp_path, cli, tiny_cyclegan):
    """day1/clip.mkv and day2/clip.mkv: FRAMES/day1/clip and FRAMES/day2/clip, each with its own
    frames and its own result (they used to share FRAMES/clip, a mix of both, one result lost)."""
    clip(tmp_path / "in" / "day1" / "clip.mkv", 3, seed=1)
    clip(tmp_path / "in" / "day2" / "clip.mkv", 5, seed=2)
    frames = tmp_path / "F"
    r = cli("translate", tmp_path / "in", "--model", tiny_cyclegan, "--out", tmp_path / "o", "--frames-out", frames,
            "--device", "cpu", "--json")
    assert r.code == 0, r.err
    got = rows(r.out)
    assert [(row["output"], row["status"], row["frames"]) for row in got] == [
        (str(frames / "day1" / "clip"), "ok", 3), (str(frames / "day2" / "clip"), "ok", 5)], got
    assert len(pngs(frames / "day1" / "clip")) == 3 and len(pngs(frames / "day2" / "clip")) == 5
    assert not (frames / "clip").exists()


def test_frames_out_planned_like_any_output(tmp_path):
    """Two videos of one name given on their own collide, as under --out; a folder of frames may
    not hold another output (it is replaced whole), nor lie inside the input folder."""
    from cyclegan_cli.errors import UsageError
    from cyclegan_cli.infer.plan import plan_jobs

    a, b = clip(tmp_path / "day1" / "clip.mkv", 2, seed=1), clip(tmp_path / "day2" / "clip.mkv", 2, seed=2)
    jobs, problems = plan_jobs([a, b], tmp_path / "o", frames_out=tmp_path / "F")
    assert [j.dst for j in jobs] == [tmp_path / "F" / "clip"]
    assert len(problems) == 1 and "is also the output of" in problems[0]
    # --frames-out the same folder as --out: in/clip.mkv's frames would be the folder out/clip,
    # where in/clip/a.png's output goes
    clip(tmp_path / "in" / "clip.mkv", 2, seed=3)
    save_rgb(tmp_path / "in" / "clip" / "a.png", 8, 8)
    jobs, problems = plan_jobs([tmp_path / "in"], tmp_path / "out", frames_out=tmp_path / "out")
    assert [j.dst for j in jobs] == [tmp_path / "out" / "clip"]
    assert len(problems) == 1 and "inside" in problems[0] and "a.png" in problems[0], problems
    with pytest.raises(UsageError, match="--frames-out"):
        plan_jobs([tmp_path / "in"], tmp_path / "out", frames_out=tmp_path / "in" / "frames")


def test_frames_out_overwrite_keeps_no_old_tail(tmp_path, cli, tiny_cyclegan):
    """--overwrite with fewer frames than last time: only the new frames (the old tail used to
    stay, and ffmpeg -i frame_%06d.png joined it on)."""
    src = clip(tmp_path / "c.mkv", 5, seed=1)
    args = ("translate", src, "--model", tiny_cyclegan, "--out", tmp_path / "o", "--frames-out", tmp_path / "F",
            "--device", "cpu")
    assert cli(*args).code == 0
    assert len(pngs(tmp_path / "F" / "c")) == 5
    r = cli(*args, "--max-frames", "2", "--overwrite")
    assert r.code == 0, r.err
    assert pngs(tmp_path / "F" / "c") == ["frame_000001.png", "frame_000002.png"]
    assert sorted(p.name for p in (tmp_path / "F").iterdir()) == [".ganctl-manifest.json", "c"]  # nothing aside


def test_frames_out_overwrite_never_replaces_a_users_folder(tmp_path, cli, tiny_cyclegan):
    """A folder at FRAMES/c that FRAMES' manifest does not record, holding a user's file, is refused
    in one line even with --overwrite (it used to be replaced whole, the user's file deleted); one
    holding nothing but frame_*.png files is replaced."""
    src = clip(tmp_path / "c.mkv", 3, seed=1)
    folder = tmp_path / "F" / "c"
    folder.mkdir(parents=True)
    (folder / "frame_000001.png").write_bytes(b"old")
    (folder / "my-notes.txt").write_text("precious")
    args = ("translate", src, "--model", tiny_cyclegan, "--out", tmp_path / "o", "--frames-out", tmp_path / "F",
            "--device", "cpu", "--overwrite")
    r = cli(*args)
    assert r.code == 2, (r.out, r.err)
    assert len(r.err.strip().splitlines()) == 1 and str(folder) in r.err and "my-notes.txt" in r.err, r.err
    assert (folder / "my-notes.txt").read_text() == "precious" and (folder / "frame_000001.png").read_bytes() == b"old"
    (folder / "my-notes.txt").unlink()
    r = cli(*args)
    assert r.code == 0, r.err
    assert pngs(folder) == ["frame_000001.png", "frame_000002.png", "frame_000003.png"]
    assert (folder / "frame_000001.png").read_bytes() != b"old"


def test_frames_interrupted_leave_no_half_folder(tmp_path):
    """A run stopped half way leaves nothing at the folder's place, and an earlier folder there
    whole: the frames go to a temporary folder, renamed into place once complete."""
    from cyclegan_cli.infer.video import translate_video

    src = clip(tmp_path / "c.mkv", 6, seed=1)
    dst = tmp_path / "F" / "c"
    with pytest.raises(KeyboardInterrupt):
        translate_video(Identity(interrupt_at=3), src, dst, frames=True, batch_size=1, stabilize=False)
    assert not dst.exists() and list((tmp_path / "F").iterdir()) == []
    info = translate_video(Identity(), src, dst, frames=True, batch_size=1, stabilize=False, max_frames=4)
    assert info["frames"] == 4 and len(pngs(dst)) == 4
    with pytest.raises(KeyboardInterrupt):
        translate_video(Identity(interrupt_at=2), src, dst, frames=True, batch_size=1, stabilize=False)
    assert len(pngs(dst)) == 4 and [p.name for p in (tmp_path / "F").iterdir()] == ["c"]


def test_a_dead_writers_frames_folder_is_cleaned_up(tmp_path, cli, tiny_cyclegan):
    """A killed run's temporary folder of frames (this host, its pid gone) is removed by the next
    run; a live writer's is left alone."""
    from cyclegan_cli.files import TMP_SUFFIX, host_tag

    src = clip(tmp_path / "in" / "day1" / "c.mkv", 2, seed=1)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    day1 = tmp_path / "F" / "day1"
    stale = day1 / f".c.{host_tag()}.{dead.pid}{TMP_SUFFIX}"
    alive = day1 / f".d.{host_tag()}.{os.getppid()}{TMP_SUFFIX}"
    for folder in (stale, alive):
        folder.mkdir(parents=True)
        (folder / "frame_000001.png").write_bytes(b"half")
    r = cli("translate", src.parent.parent, "--model", tiny_cyclegan, "--out", tmp_path / "o", "--frames-out",
            tmp_path / "F", "--device", "cpu")
    assert r.code == 0, r.err
    assert not stale.exists() and alive.exists() and len(pngs(day1 / "c")) == 2


def test_frames_out_is_recorded_with_the_frames(tmp_path, cli, tiny_cyclegan, monkeypatch):
    """The folder of frames is recorded in --frames-out's manifest, not in --out's (which defaults
    to ./translated): from another folder, another maker's frames are refused, not "skipped (exist)"."""
    src = clip(tmp_path / "c.mkv", 3, seed=1)
    frames = tmp_path / "F"
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    monkeypatch.chdir(tmp_path / "a")
    r = cli("translate", src, "--model", tiny_cyclegan, "--frames-out", frames, "--device", "cpu")
    assert r.code == 0, r.err
    stamps = {p.name: p.stat().st_mtime_ns for p in (frames / "c").iterdir()}
    monkeypatch.chdir(tmp_path / "b")
    r = cli("translate", src, "--model", tiny_cyclegan, "--frames-out", frames, "--device", "cpu", "--direction", "BtoA")
    assert r.code == 2, (r.out, r.err)
    assert "made by another model or other options" in r.err and "--frames-out" in r.err, r.err
    assert {p.name: p.stat().st_mtime_ns for p in (frames / "c").iterdir()} == stamps  # untouched
    # the same maker, from yet another folder: skipped, as a rerun should be
    r = cli("translate", src, "--model", tiny_cyclegan, "--frames-out", frames, "--device", "cpu", "--json")
    assert r.code == 0 and [row["status"] for row in rows(r.out)] == ["skipped"], (r.out, r.err)
    r = cli("translate", src, "--model", tiny_cyclegan, "--frames-out", frames, "--device", "cpu", "--direction", "BtoA",
            "--overwrite")
    assert r.code == 0, r.err
    assert r.out.strip() == str(frames / "c") and len(pngs(frames / "c")) == 3


def test_image_outputs_are_keyed_on_image_options_only(tmp_path, cli, tiny_cyclegan):
    """A photo folder run again with only a video option changed (--crf, --no-stabilize) is skipped,
    not refused as "made by another model or other options"; a video with only --format or
    --quality changed likewise; an option of the output's own kind still refuses."""
    for i in range(2):
        save_rgb(tmp_path / "photos" / f"{i}.jpg", 16, 12, seed=i)
    clip(tmp_path / "videos" / "c.mkv", 2, seed=1)
    for folder in ("photos", "videos"):
        base = ("translate", tmp_path / folder, "--model", tiny_cyclegan, "--out", tmp_path / f"o-{folder}",
                "--device", "cpu", "--max-frames", "2")
        assert cli(*base).code == 0
        other_kind = ("--crf", "30", "--no-stabilize") if folder == "photos" else ("--format", "png", "--quality", "50")
        r = cli(*base, *other_kind, "--json")
        assert r.code == 0, (folder, r.err)
        assert {row["status"] for row in rows(r.out)} == {"skipped"}, (folder, r.out)
        own_kind = ("--quality", "50") if folder == "photos" else ("--crf", "30")
        r = cli(*base, *own_kind)
        assert r.code == 2 and "made by another model or other options" in r.err, (folder, r.err)


def test_outputs_recorded_before_the_makers_were_split_are_still_ours(tmp_path, cli, tiny_cyclegan):
    """A manifest written when one maker held image and video options together: a rerun with the
    same options skips its outputs."""
    save_rgb(tmp_path / "photos" / "a.jpg", 16, 12)
    args = ("translate", tmp_path / "photos", "--model", tiny_cyclegan, "--out", tmp_path / "o", "--device", "cpu")
    assert cli(*args).code == 0
    manifest = tmp_path / "o" / ".ganctl-manifest.json"
    data = json.loads(manifest.read_text())
    old = {"video": {"crf": 18, "preset": "medium", "codec": "libx264", "start": None, "end": None,
                     "max_frames": None, "stabilize": True}}
    data["makers"] = {"0123456789abcdef": {**maker, **old} for maker in data["makers"].values()}
    data["files"] = {rel: "0123456789abcdef" for rel in data["files"]}
    manifest.write_text(json.dumps(data))
    r = cli(*args, "--json")
    assert r.code == 0 and [row["status"] for row in rows(r.out)] == ["skipped"], (r.out, r.err)


def latin1_image(folder: Path) -> Path:
    """``caf\\xe9.jpg``: a file name in Latin-1 bytes, not UTF-8 (Python holds it as a surrogate escape)."""
    path = folder / os.fsdecode(b"caf\xe9.jpg")
    try:
        save_rgb(path, 16, 12)
    except (OSError, UnicodeError):  # file systems that take UTF-8 names only (APFS)
        pytest.skip("this file system refuses a name that is not UTF-8")
    return path


def test_html_page_shows_a_name_that_is_not_utf8(tmp_path, cli, tiny_cyclegan):
    """--html with caf\\xe9.jpg: the page is written (it exited 70 after all the work), links the
    file by its own bytes and shows the name with the byte escaped."""
    from urllib.parse import unquote_to_bytes

    latin1_image(tmp_path / "in")
    save_rgb(tmp_path / "in" / "plain.jpg", 16, 12)
    out = tmp_path / "o"
    r = cli("translate", tmp_path / "in", "--model", tiny_cyclegan, "--out", out, "--device", "cpu", "--html",
            "--json")
    assert r.code == 0, r.err
    assert [row["status"] for row in rows(r.out)] == ["ok", "ok"]
    page = (out / "index.html").read_bytes().decode("utf-8")
    assert '<div class="name">caf\\xe9.jpg</div>' in page and "plain.jpg" in page
    hrefs = {h for h in re.findall(r'href="([^"]+)"', page) if "caf" in h}
    assert hrefs == {"../in/caf%E9.jpg", "caf%E9.jpg"}, hrefs
    assert all((out / os.fsdecode(unquote_to_bytes(h))).is_file() for h in hrefs)  # each link finds its file


def test_a_name_that_is_not_utf8_is_printed_not_failed(tmp_path, tiny_cyclegan, monkeypatch):
    """Where stdout is strict UTF-8 (a UTF-8 locale other than C.UTF-8), caf\\xe9.jpg was translated
    and written, then counted failed when its path could not be printed: exit 1, its path missing.
    It is printed as its own bytes, so that `| xargs` opens it."""
    import io

    from cyclegan_cli.cli import main

    src = latin1_image(tmp_path / "in")
    stdout, stderr = io.BytesIO(), io.BytesIO()
    # Python's own streams in such a locale: stdout strict, stderr backslashreplace
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(stdout, encoding="utf-8", errors="strict", write_through=True))
    monkeypatch.setattr(sys, "stderr", io.TextIOWrapper(stderr, encoding="utf-8", errors="backslashreplace",
                                                        write_through=True))
    out = tmp_path / "o"
    try:
        main(["translate", str(tmp_path / "in"), "--model", str(tiny_cyclegan), "--out", str(out), "--device", "cpu"])
        code = 0
    except SystemExit as exc:
        code = exc.code
    err = stderr.getvalue().decode("utf-8")
    assert code in (0, None), err
    assert stdout.getvalue() == os.fsencode(str(out / src.name)) + b"\n"
    assert "1 converted, 0 skipped (exist), 0 failed" in err, err


def test_a_failing_report_is_not_the_files_failure(tmp_path):
    """The pipeline counted an error raised while reporting a written file (printing its path) as
    that file's failure, and reported it a second time, failed: the error is the caller's."""
    from cyclegan_cli.checkpoints import ModelConfig
    from cyclegan_cli.infer.engine import Translator
    from cyclegan_cli.infer.plan import plan_jobs
    from cyclegan_cli.infer.pipeline import translate_images
    from cyclegan_cli.models import build

    save_rgb(tmp_path / "in" / "a.png", 16, 12)
    jobs, _ = plan_jobs([tmp_path / "in"], tmp_path / "out")
    t = Translator(build("resnet_generator", ngf=4, n_blocks=1), ModelConfig(kind="cyclegan", nets={}), device="cpu",
                   backend="torch")
    seen = []

    def report(r):
        seen.append(r["status"])
        if r["status"] == "ok":
            raise RuntimeError("the caller's own failure")

    with pytest.raises(RuntimeError, match="the caller's own failure"):
        translate_images(t, jobs, batch_size=1, workers=1, on_result=report)
    assert seen == ["ok"] and (tmp_path / "out" / "a.png").is_file()


def test_scene_cuts_are_counted_from_0_as_eval_temporal_json(tmp_path):
    """translate -v and its result count a scene cut by the index of the frame that starts the new
    shot, from 0, as eval --temporal --json does (translate counted from 1)."""
    from test_stabilize import panning

    from cyclegan_cli.infer.temporal import warping_error
    from cyclegan_cli.infer.video import translate_video

    first = panning(8, seed=1)
    second = [np.ascontiguousarray(f[::-1]) for f in panning(8, seed=2)]  # another scene, upside down
    src = write_frames_lossless(first + second, tmp_path / "cut.mkv")
    said = []
    info = translate_video(Identity(), src, tmp_path / "F" / "cut", frames=True, on_detail=said.append)
    assert info["cuts"] == warping_error(first + second, first + second)["cuts"] == [8]
    assert len(said) == 1 and "scene cut at frame 8 " in said[0], said
