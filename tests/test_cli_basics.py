"""Script-friendly CLI conventions: fast start, exit codes, one-line errors."""

import sys

from conftest import run_subprocess


def test_help_does_not_import_torch():
    code = ("import sys, runpy; sys.argv=['ganctl','--help'];\n"
            "try:\n runpy.run_module('cyclegan_cli', run_name='__main__')\n"
            "except SystemExit: pass\n"
            "bad=[m for m in ('torch','cv2','av','numpy') if m in sys.modules]\n"
            "print('IMPORTED', bad, file=sys.stderr)")
    import subprocess

    for argv in (["--help"], ["translate", "--help"], ["zoo", "--help"], ["--version"], ["zoo", "list"]):
        c = code.replace("['ganctl','--help']", repr(["ganctl", *argv]))
        r = subprocess.run([sys.executable, "-c", c], capture_output=True, text=True)
        assert "IMPORTED []" in r.stderr, (argv, r.stderr[-500:])


def test_version_and_help(cli):
    from cyclegan_cli import __version__

    r = cli("--version")
    assert r.code == 0 and r.out.strip() == f"ganctl {__version__}"
    r = cli("--help")
    assert r.code == 0 and "translate" in r.out


def test_missing_input_is_one_line_exit_3(cli, tiny_cyclegan):
    r = cli("translate", "does/not/exist.png", "--model", tiny_cyclegan)
    assert r.code == 3
    assert r.err_lines == ["ganctl: error: does/not/exist.png: no such file or folder"]
    assert r.out == ""


def test_unknown_model_suggests(cli, tmp_path):
    from conftest import save_rgb

    save_rgb(tmp_path / "a.png", 16, 16)
    r = cli("translate", "a.png", "--model", "horse2zebr")
    assert r.code == 3
    assert len(r.err_lines) == 1 and "did you mean horse2zebra" in r.err
    assert "Traceback" not in r.err


def test_usage_error_exit_2(cli):
    r = cli("translate", "--no-such-option")
    assert r.code == 2 and len(r.err_lines) == 1 and r.err.startswith("ganctl: error:")


def test_bad_device_exit_2(cli, tiny_cyclegan, tmp_path):
    from conftest import save_rgb

    save_rgb(tmp_path / "a.png", 16, 16)
    r = cli("translate", "a.png", "--model", tiny_cyclegan, "--device", "tpu")
    assert r.code == 2 and "unknown device" in r.err


def test_bad_checkpoint_exit_4(cli, tmp_path):
    from conftest import save_rgb

    save_rgb(tmp_path / "a.png", 16, 16)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{")
    r = cli("translate", "a.png", "--model", tmp_path / "broken")
    assert r.code == 4 and len(r.err_lines) == 1


def test_subprocess_error_has_no_traceback(tmp_path):
    r = run_subprocess("translate", tmp_path / "nope.png", "--model", "x.pth")
    assert r.returncode == 3
    assert "Traceback" not in r.stderr and r.stderr.count("\n") == 1


def test_runs_and_zoo_alone_list(cli):
    """`ganctl runs` and `ganctl zoo` with no subcommand list, as `... list` does (they printed the
    help and exited 2, which a new user read as an error)."""
    for group in ("runs", "zoo"):
        alone, listed = cli(group), cli(group, "list")
        assert alone.code == 0 and listed.code == 0, (alone.err, listed.err)
        assert alone.out == listed.out
    assert cli("zoo").out.strip()  # the shipped models at least


def test_translate_v_names_the_checkpoint_a_run_resolved_to(cli, tmp_path):
    """`--model RUN -v` says which checkpoint it loaded (the latest of the run), so that a user with
    runs of one name in several projects can see which one was used."""
    from conftest import save_rgb
    from test_train import make_domains

    a, b = make_domains(tmp_path, n=2)
    r = cli("train", a, b, "--name", "vrun", "--size", "32", "--load-size", "32", "--ngf", "4", "--ndf", "4",
            "--blocks", "1", "--max-steps", "2", "--workers", "0", "-q")
    assert r.code == 0, r.err
    save_rgb(tmp_path / "in.png", 20, 20)
    r = cli("translate", tmp_path / "in.png", "--model", "vrun", "--out", tmp_path / "o", "-v")
    assert r.code == 0, r.err
    assert f"model vrun: {tmp_path / 'runs' / 'vrun' / 'checkpoints' / 'step-00000002'}" in r.err, r.err
