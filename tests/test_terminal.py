"""A person in a terminal piping results: stderr is a terminal (the live progress display runs), stdout
is a pipe, and every result still reaches the pipe, none of it the screen."""

import json
import os
import pty
import subprocess
import sys
import threading

from conftest import save_rgb

BAR = "━"  # Rich's bar: proof that the live display ran


def run_in_terminal(*args, timeout=300):
    """ganctl with a pseudo-terminal on stderr and a pipe on stdout: (exit code, stdout, screen)."""
    master, slave = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    env.update(TERM="xterm-256color", COLUMNS="80", LINES="24")
    p = subprocess.Popen([sys.executable, "-m", "cyclegan_cli", *map(str, args)], stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=slave, env=env)
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
    out = p.stdout.read().decode()
    code = p.wait(timeout=timeout)
    reader.join(timeout=30)
    os.close(master)
    return code, out, screen.decode(errors="replace")


def test_translate_results_reach_the_pipe_with_a_terminal_on_stderr(tmp_path, tiny_cyclegan):
    ins = [save_rgb(tmp_path / "in" / f"{i}.png", 16, 16, seed=i) for i in range(3)]
    base = ["translate", *ins, "--model", tiny_cyclegan, "--out", tmp_path / "o"]

    code, out, screen = run_in_terminal(*base, "--dry-run")
    assert code == 0, screen
    assert BAR in screen
    assert out.splitlines() == [f"{p} -> {tmp_path / 'o' / p.name}" for p in ins]
    assert str(ins[0]) not in screen

    code, out, screen = run_in_terminal(*base)
    assert code == 0, screen
    assert out.splitlines() == [str(tmp_path / "o" / p.name) for p in ins]
    assert str(tmp_path / "o" / "0.png") not in screen and "3 converted" in screen

    code, out, screen = run_in_terminal(*base, "--json")
    assert code == 0, screen
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["status"] for r in rows] == ["skipped"] * 3 and '"status"' not in screen


def test_train_results_reach_the_pipe_with_a_terminal_on_stderr(tmp_path):
    from test_train import make_domains

    a, b = make_domains(tmp_path, n=2)
    base = ["train", a, b, "--runs-dir", tmp_path / "runs", "--size", "32", "--load-size", "32", "--ngf", "4",
            "--ndf", "4", "--blocks", "1", "--log-every", "2", "--workers", "0"]
    code, out, screen = run_in_terminal(*base, "--name", "plain", "--max-steps", "2")
    assert code == 0, screen
    assert BAR in screen
    assert out.strip() == str(tmp_path / "runs" / "plain")

    code, out, screen = run_in_terminal(*base, "--name", "js", "--max-steps", "4", "--json")
    assert code == 0, screen
    events = [json.loads(line)["event"] for line in out.splitlines()]
    # the step lines are printed while the live display runs
    assert events.count("step") == 2 and events[-1] == "done", out
    assert '"event"' not in screen
