"""The default sketch model (#35 item 3): every sketch model under its method's name, the name
photo2sketch (and sketch) for the one benchmarks/quality.py scores best, and the old meaning said
once where a script still uses it."""

import json
import subprocess
import sys
from contextlib import nullcontext

import pytest

from conftest import REPO, run_subprocess, save_rgb
from cyclegan_cli.zoo.download import sha256_file

MANIFEST = json.loads((REPO / "pretrained" / "zoo.json").read_text())["models"]
METHODS = {"photo2sketch-cut": "cut", "photo2sketch-cyclegan": "cyclegan", "photo2sketch-paired": "pix2pix"}
NOTE = ("ganctl: note: photo2sketch now names photo2sketch-paired (chosen by benchmarks/quality.py); "
        "the CUT model is photo2sketch-cut")


@pytest.fixture
def fresh_notes(monkeypatch):
    """A process that has said no note yet (the cli fixture runs ganctl in this process)."""
    from cyclegan_cli.zoo import resolve

    monkeypatch.setattr(resolve, "_said", set(), raising=False)


def quality():
    sys.path.insert(0, str(REPO / "benchmarks"))
    import quality

    return quality


@pytest.mark.parametrize("name", sorted(METHODS))
def test_each_method_name_resolves_to_its_model(name, fresh_notes):
    from cyclegan_cli.zoo.resolve import load, resolve_model

    r = resolve_model(name)
    assert r.path == REPO / "pretrained" / name and r.name == name
    assert sha256_file(r.path / "model.safetensors") == MANIFEST[name]["sha256"]
    assert load(name).config.kind == METHODS[name]


def test_photo2sketch_and_sketch_name_the_chosen_model(fresh_notes):
    from cyclegan_cli.zoo.resolve import NameMoved, resolve_model

    chosen = MANIFEST["photo2sketch"]["alias_of"]
    assert chosen == "photo2sketch-paired" and MANIFEST["photo2sketch"]["previously"] == "photo2sketch-cut"
    for name in ("photo2sketch", "sketch", "zoo:photo2sketch"):
        with pytest.warns(NameMoved) if name != "zoo:photo2sketch" else nullcontext():  # photo2sketch's said already
            r = resolve_model(name)
        assert (r.path, r.name, r.entry.kind) == (REPO / "pretrained" / chosen, chosen, "pix2pix"), name


def test_the_old_name_is_said_once_and_only_for_the_moved_name(cli, tmp_path, fresh_notes):
    save_rgb(tmp_path / "in" / "a.png", 40, 30)
    save_rgb(tmp_path / "in" / "b.png", 40, 30, seed=1)
    for name in ("photo2sketch-paired", "photo2sketch-cut", "photo2sketch-cyclegan"):
        r = cli("translate", tmp_path / "in", "--model", name, "--out", tmp_path / name)
        assert r.code == 0 and "note" not in r.err, (name, r.err)
    r = cli("translate", tmp_path / "in", "--model", "photo2sketch", "--out", tmp_path / "o", "-v")
    assert r.code == 0 and r.err_lines.count(NOTE) == 1 and sum("note" in x for x in r.err_lines) == 1, r.err
    assert f"model photo2sketch: {REPO / 'pretrained' / 'photo2sketch-paired'}" in r.err_lines
    r = cli("translate", tmp_path / "in", "--model", "photo2sketch", "--out", tmp_path / "o2")
    assert r.code == 0 and "note" not in r.err, r.err  # at most once a process
    r = cli("translate", tmp_path / "in", "--model", "sketch", "--out", tmp_path / "o3")
    assert r.code == 0 and r.err_lines.count(NOTE.replace("note: photo2sketch now", "note: sketch now")) == 1, r.err


def test_the_old_name_is_said_once_a_process_on_the_command_line_and_in_python(tmp_path):
    for i in range(3):
        save_rgb(tmp_path / "in" / f"{i}.png", 40, 30, seed=i)
    r = run_subprocess("translate", tmp_path / "in", "--model", "photo2sketch", "--out", tmp_path / "o")
    assert r.returncode == 0 and r.stderr.splitlines().count(NOTE) == 1 and r.stderr.count("note:") == 1, r.stderr
    # -q: results and errors only; the note was said even there (as other notes are not)
    r = run_subprocess("translate", tmp_path / "in", "--model", "photo2sketch", "--out", tmp_path / "o2", "-q")
    assert r.returncode == 0 and r.stderr == "", r.stderr
    code = "from cyclegan_cli.zoo.resolve import load\nload('photo2sketch'); load('photo2sketch'); load('photo2sketch-cut')"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stderr.count("photo2sketch now names photo2sketch-paired") == 1, r.stderr
    assert "NameMoved" in r.stderr  # a warning of its own kind, which an API user can filter


def test_the_folder_shipped_as_photo2sketch_still_resolves(cli, tmp_path, fresh_notes):
    from cyclegan_cli.zoo.resolve import resolve_model

    old = REPO / "pretrained" / "photo2sketch"
    assert not old.exists()
    save_rgb(tmp_path / "a.png", 40, 30)
    r = cli("translate", tmp_path / "a.png", "--model", old, "--out", tmp_path / "o")
    assert r.code == 0 and r.err_lines[0] == f"ganctl: note: {old} is now {REPO / 'pretrained' / 'photo2sketch-cut'}", r.err
    assert sum("note" in x for x in r.err_lines) == 1
    assert resolve_model(str(old)).path == REPO / "pretrained" / "photo2sketch-cut"
    r = cli("translate", tmp_path / "a.png", "--model", REPO / "pretrained" / "sketch", "--out", tmp_path / "o2")
    assert r.code == 3  # only the folder that shipped


def test_zoo_list_shows_the_alias_and_the_method_names(cli):
    r = cli("zoo", "list")
    rows = {line.split("\t")[0]: line.split("\t") for line in r.out.splitlines()[1:]}
    assert rows["photo2sketch"] == ["photo2sketch", "alias", "photo -> sketch",
                                    "photo2sketch-paired (chosen by benchmarks/quality.py)", "", "sketch"]
    for name, kind in METHODS.items():
        assert rows[name][:4] == [name, kind, "photo -> sketch", "shipped"] and rows[name][5] == ""
    listed = {d["name"]: d for d in map(json.loads, cli("zoo", "list", "--json").out.splitlines())}
    assert listed["photo2sketch"]["alias_of"] == "photo2sketch-paired" and listed["photo2sketch"]["status"] == "alias"
    r = cli("zoo", "show", "sketch")
    assert {"name: photo2sketch", "alias_of: photo2sketch-paired", "previously: photo2sketch-cut"} <= set(r.out.splitlines())
    assert "format" not in r.out  # no file of its own
    r = cli("zoo", "verify")
    assert r.code == 0 and "photo2sketch-cut: ok" in r.out and "photo2sketch:" not in r.out


def test_the_rule_is_the_lowest_shortfall(tmp_path):
    q = quality()
    assert q.TARGETS == {"mad": 30.0, "edges": 0.55, "grid": 3.0}
    # by hand: (45/30 - 1) + (0.55 - 0.44)/0.55 + (4.5/3 - 1) = 0.5 + 0.2 + 0.5
    assert q.shortfall({"mad": 45.0, "edges": 0.44, "grid": 1.0}, 4.5) == pytest.approx(1.2)
    assert q.shortfall({"mad": 20.0, "edges": 0.9, "grid": 1.0}, 2.0) == 0
    assert q.choose({"a": 0.7, "b": 0.5, "c": 0.5}) == "b"
    # --set-alias records what the name meant before, and only a real change moves it
    f = tmp_path / "zoo.json"
    f.write_text(json.dumps({"models": {"p": {"kind": "alias", "alias_of": "x", "aliases": ["s"]},
                                        "x": {"kind": "cut"}, "y": {"kind": "pix2pix"}}}))
    assert q.set_alias("p", "y", "why", f)["previously"] == "x"
    assert q.set_alias("p", "y", "why", f)["previously"] == "x"
    e = json.loads(f.read_text())["models"]["p"]
    assert (e["alias_of"], e["aliases"], e["chosen_by"]) == ("y", ["s"], "benchmarks/quality.py")
    with pytest.raises(SystemExit):
        q.set_alias("x", "y", "why", f)  # a shipped model's name is not taken over


@pytest.mark.slow
def test_the_manifest_points_photo2sketch_where_quality_py_chooses():
    """benchmarks/quality.py --choose on the held-out photos, against what pretrained/zoo.json says."""
    q = quality()
    shortfalls = {m: q.evaluate(m, int8_too=False)["shortfall"] for m in METHODS}
    assert q.choose(shortfalls) == MANIFEST["photo2sketch"]["alias_of"], shortfalls


def test_int8_runs_the_default_sketch_model(cli, tmp_path):
    """--precision int8 quantizes a U-Net-128 (the pix2pix model photo2sketch names): its 7
    halvings take 128 px at least."""
    pytest.importorskip("onnxruntime")
    for i in range(5):
        save_rgb(tmp_path / "in" / f"{i}.png", 160, 128, seed=i)
    r = cli("translate", tmp_path / "in", "--model", "photo2sketch-paired", "--precision", "int8", "--out", tmp_path / "o",
            "--backend", "onnxruntime")
    assert r.code == 0, r.err
    assert len(list((tmp_path / "o").glob("*.png"))) == 5


def test_a_program_that_goes_on_after_main_gets_the_notes_back(tmp_path):
    """main() -q routes library notes through its quiet output while the command runs; a program that
    catches main()'s SystemExit and goes on with the Python API sees the note as the API shows it
    (a NameMoved warning on stderr), not silenced by the finished command's -q."""
    save_rgb(tmp_path / "in.png", 40, 30)
    code = (f"from cyclegan_cli.cli import main\n"
            f"try:\n    main(['translate', {str(tmp_path / 'in.png')!r}, '--model', 'photo2sketch-cut', '--out', "
            f"{str(tmp_path / 'o')!r}, '-q'])\nexcept SystemExit as e:\n    assert e.code == 0, e.code\n"
            "from cyclegan_cli.zoo.resolve import load\nload('photo2sketch')\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "photo2sketch now names photo2sketch-paired" in r.stderr and "NameMoved" in r.stderr, r.stderr
