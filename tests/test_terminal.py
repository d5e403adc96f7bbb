"""A person in a terminal piping results: stderr is a terminal (the live progress display runs), stdout
is a pipe, and every result still reaches the pipe, none of it the screen."""

import json
import os
import pty
import re
import subprocess
import sys
import threading
from pathlib import Path

from conftest import save_rgb

BAR = "━"  # Rich's bar: proof that the live display ran


def run_in_terminal(*args, timeout=300, stdout_file=None):
    """ganctl with a pseudo-terminal on stderr and a pipe on stdout (or the file ``stdout_file``):
    (exit code, stdout, screen)."""
    master, slave = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    env.update(TERM="xterm-256color", COLUMNS="80", LINES="24")
    sink = open(stdout_file, "w") if stdout_file else subprocess.PIPE
    p = subprocess.Popen([sys.executable, "-m", "cyclegan_cli", *map(str, args)], stdin=subprocess.DEVNULL,
                         stdout=sink, stderr=slave, env=env)
    os.close(slave)
    screen = bytearray()

    def drain():  # the child blocks once the terminal's buffer is full
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed its end
                return
            if not chunk:
                return
            screen.extend(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    out = p.stdout.read().decode() if not stdout_file else ""
    code = p.wait(timeout=timeout)
    if stdout_file:
        sink.close()
        out = Path(stdout_file).read_text()
    reader.join(timeout=30)
    os.close(master)
    return code, out, screen.decode(errors="replace")


def on_screen(text: str, screen: str) -> bool:
    """Whether ``text`` was drawn, wherever the 80-column terminal wrapped it (spaces ignored)."""
    return re.sub(r"\s", "", text) in re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|\s", "", screen)


CURSOR_UP = re.compile(r"\x1b\[\d*A")  # how a live display redraws the lines above it


def test_translate_results_reach_the_pipe_with_a_terminal_on_stderr(tmp_path, tiny_cyclegan):
    ins = [save_rgb(tmp_path / "in" / f"{i}.png", 16, 16, seed=i) for i in range(3)]
    base = ["translate", *ins, "--model", tiny_cyclegan, "--out", tmp_path / "o"]

    # stdout to a file: the live bar runs, and the results go to the file, not the screen
    code, out, screen = run_in_terminal(*base, "--dry-run", stdout_file=tmp_path / "out.txt")
    assert code == 0, screen
    assert BAR in screen
    assert out.splitlines() == [f"{p} -> {tmp_path / 'o' / p.name}" for p in ins]
    assert not on_screen(str(ins[0]), screen)

    # stdout to a pipe (`| cat`, `| tee`): its reader may print to this terminal, and a live
    # display that moves the cursor up would draw over those lines: plain progress lines instead
    code, out, screen = run_in_terminal(*base, "--dry-run")
    assert code == 0, screen
    assert BAR not in screen and not CURSOR_UP.search(screen), screen
    assert out.splitlines() == [f"{p} -> {tmp_path / 'o' / p.name}" for p in ins]
    assert not on_screen(str(ins[0]), screen)

    code, out, screen = run_in_terminal(*base, stdout_file=tmp_path / "out2.txt")
    assert code == 0, screen
    assert BAR in screen and out.splitlines() == [str(tmp_path / "o" / p.name) for p in ins]
    assert not on_screen(str(tmp_path / "o" / "0.png"), screen) and "3 converted" in screen

    code, out, screen = run_in_terminal(*base, "--json")
    assert code == 0, screen
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["status"] for r in rows] == ["skipped"] * 3 and '"status"' not in screen


def test_train_results_reach_the_pipe_with_a_terminal_on_stderr(tmp_path):
    from test_train import make_domains

    a, b = make_domains(tmp_path, n=2)
    base = ["train", a, b, "--runs-dir", tmp_path / "runs", "--size", "32", "--load-size", "32", "--ngf", "4",
            "--ndf", "4", "--blocks", "1", "--log-every", "2", "--workers", "0"]
    code, out, screen = run_in_terminal(*base, "--name", "plain", "--max-steps", "2", stdout_file=tmp_path / "o.txt")
    assert code == 0, screen
    assert BAR in screen
    assert out.strip() == str(tmp_path / "runs" / "plain")
    code, out, screen = run_in_terminal(*base, "--name", "piped", "--max-steps", "2")
    assert code == 0 and BAR not in screen and not CURSOR_UP.search(screen), screen
    assert out.strip() == str(tmp_path / "runs" / "piped")
    # nothing to train: said, and no empty bar left on the screen
    code, out, screen = run_in_terminal("train", "--resume", "plain", "--runs-dir", tmp_path / "runs", "--max-steps", "1",
                                        stdout_file=tmp_path / "o2.txt")
    assert code == 0 and on_screen("already at step 2, past --max-steps 1", screen) and BAR not in screen, screen

    code, out, screen = run_in_terminal(*base, "--name", "js", "--max-steps", "4", "--json", stdout_file=tmp_path / "o3.txt")
    assert code == 0, screen
    events = [json.loads(line)["event"] for line in out.splitlines()]
    # the step lines are printed while the live display runs
    assert events.count("step") == 2 and events[-1] == "done", out
    assert '"event"' not in screen


def test_other_files_are_skipped_with_a_reason_and_the_counts_agree(tmp_path, tiny_cyclegan):
    """A folder with two images and a text file, and a missing path: four inputs, four results;
    the bar's total, the --json rows and the summary count the same four."""
    save_rgb(tmp_path / "in" / "a.png", 16, 16)
    save_rgb(tmp_path / "in" / "b.png", 16, 16, seed=1)
    (tmp_path / "in" / "notes.txt").write_text("not a picture")
    args = ["translate", tmp_path / "in", tmp_path / "missing.png", "--model", tiny_cyclegan, "--out", tmp_path / "o"]
    code, out, screen = run_in_terminal(*args, "-v", stdout_file=tmp_path / "out.txt")  # the live bar
    assert code == 1, screen
    assert out.splitlines() == [str(tmp_path / "o" / "in" / "a.png"), str(tmp_path / "o" / "in" / "b.png")]
    assert "4/4" in screen, screen
    assert on_screen(f"skipped {tmp_path / 'in' / 'notes.txt'}: not an image or video", screen)
    assert on_screen("2 converted, 1 skipped (not an image or video), 1 failed", screen)
    code, out, screen = run_in_terminal(*args, "--json", stdout_file=tmp_path / "out2.txt")  # again: the images are there now
    assert code == 1, screen
    rows = {Path(r["input"]).name: r for r in map(json.loads, out.splitlines())}
    assert rows["notes.txt"]["status"] == "skipped" and rows["notes.txt"]["reason"] == "not an image or video"
    assert [rows[n]["status"] for n in ("a.png", "b.png", "missing.png")] == ["skipped", "skipped", "failed"]
    assert "4/4" in screen and on_screen("0 converted, 3 skipped (1 not an image or video, 2 exist), 1 failed", screen)


def test_video_progress_shows_frames_of_the_total(tmp_path, tiny_cyclegan):
    from test_video import make_video

    src = make_video(tmp_path / "clip.mp4", w=32, h=24, fps=10, seconds=2, audio=False)
    code, out, screen = run_in_terminal("translate", src, "--model", tiny_cyclegan, "--out", tmp_path / "o",
                                        stdout_file=tmp_path / "out.txt")
    assert code == 0, screen
    assert out.strip() == str(tmp_path / "o" / "clip.mp4")
    # one video: the bar counts its frames (not "0/1 files")
    assert on_screen("translate clip.mp4", screen) and "20/20" in screen and "0/1" not in screen, screen
