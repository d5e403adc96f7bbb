"""Training options as data (cyclegan_cli/train/options.py): every field has help text, and a resumed
run of each kind restores every saved field and refuses an explicit different one. The cases are read
off the dataclasses, so a field added later is covered without touching these tests."""

import json
from dataclasses import fields

import pytest

from cyclegan_cli.train.options import KINDS, flag_of
from conftest import save_rgb


def test_every_option_has_help_text():
    for kind, cls in KINDS.items():
        for f in fields(cls):
            help_text = f.metadata.get("help", "")
            assert help_text and help_text.strip()[-1] in ".)", (kind, f.name, help_text)


def test_train_help_is_built_without_torch():
    import subprocess
    import sys

    code = ("import sys, runpy; sys.argv = ['ganctl', 'train', '--help']\n"
            "try:\n runpy.run_module('cyclegan_cli', run_name='__main__')\n"
            "except SystemExit: pass\n"
            "print('IMPORTED', [m for m in ('torch', 'numpy') if m in sys.modules], file=sys.stderr)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "IMPORTED []" in r.stderr and "--lambda-cycle-a" in r.stdout, r.stderr[-500:]


def _other(value):
    """A value of the same kind as ``value`` that differs from it."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value + 0.5
    if isinstance(value, list):
        return value[:-1] if len(value) > 1 else ["x", "y"]
    if isinstance(value, str):
        return {"none": "cutout", "cutout": "none"}.get(value, value + "x")  # augment takes policy names only
    return 7 if value is None else None


def _fixed(cls):
    return [f for f in fields(cls) if f.metadata["resume"] == "fixed"]


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_continued_options_restore_every_field_and_refuse_changes(kind):
    cls = KINDS[kind]
    # every fixed field away from its default (but the method, which chooses the recipe's defaults)
    start = cls(**{f.name: _other(getattr(cls(), f.name)) for f in _fixed(cls) if f.name != "method"})
    start = start.resolved()
    saved = json.loads(json.dumps(start.saved()))  # as options.json keeps it
    back, conflicts = cls.continued(saved, {})
    assert not conflicts and back.saved() == start.saved()
    for f in _fixed(cls):
        value = getattr(start, f.name)
        _, conflicts = cls.continued(saved, {f.name: value})  # the same value again is no conflict
        assert not conflicts, f.name
        _, conflicts = cls.continued(saved, {f.name: _other(value)})
        assert len(conflicts) == 1 and conflicts[0].startswith(flag_of(f)), (f.name, conflicts)
    for f in fields(cls):
        if f.metadata["resume"] == "length":
            now, conflicts = cls.continued(saved, {f.name: 99})
            assert not conflicts and getattr(now, f.name) == 99


def test_old_option_names_still_load():
    from cyclegan_cli.train.options import DCGANOptions

    old = {"image_size": 32, "flip": False, "epochs": 3, "max_steps": 6, "name": "d", "kind": "dcgan", "folder": "/x"}
    o = DCGANOptions.from_saved(old)
    assert (o.size, o.flip, o.epochs, o.max_steps, o.ema, o.augment) == (32, False, 3, 6, 0.0, "none")


# ------------------------------------------------------------------------------- through `ganctl train`

def _cli_value(param, saved):
    """A command-line value for ``param`` that differs from the run's ``saved`` one (None: a flag)."""
    if param.is_flag:
        return None
    choices = getattr(param.type_descriptor, "choices", None)  # a Literal's
    if choices:
        return next(c for c in choices if c != saved)
    if isinstance(saved, list):
        return ",".join(map(str, saved[:-1]))
    if saved == "none":
        return "cutout"
    return str(_other(saved))


def _train_params():
    import typer

    from cyclegan_cli.cli import app

    return {p.opts[0]: p for p in typer.main.get_command(app).commands["train"].params}


KIND_ARGS = {
    "cyclegan": ["--size", "32", "--load-size", "36", "--ngf", "4", "--ndf", "4", "--blocks", "1", "--upsample", "resize"],
    "cut": ["--method", "fastcut", "--size", "32", "--ngf", "4", "--ndf", "4", "--blocks", "1", "--nce-layers", "0,4"],
    "pix2pix": ["--paired", "--size", "32", "--ngf", "4", "--ndf", "4", "--direction", "BtoA"],
    "dcgan": ["--size", "16", "--ngf", "4", "--ndf", "4", "--nz", "8", "--no-flip"],
}


@pytest.mark.parametrize("kind", sorted(KIND_ARGS))
def test_resume_of_each_kind_restores_every_saved_option_and_refuses_each_change(kind, cli, tmp_path):
    folders = [tmp_path / "A"] if kind == "dcgan" else [tmp_path / "A", tmp_path / "B"]
    for i, f in enumerate(folders):
        for j in range(2):
            save_rgb(f / f"{j}.png", 40, 40, seed=10 * i + j)
    runs = ["--runs-dir", tmp_path / "runs"]
    r = cli("train", *folders, "--name", "r", "--max-steps", "1", "--workers", "0", "-q", *runs, *KIND_ARGS[kind])
    assert r.code == 0, r.err
    opts_file = tmp_path / "runs" / "r" / "options.json"
    first = json.loads(opts_file.read_text())
    assert first["kind"] == kind
    params = _train_params()
    cls = KINDS[kind]
    checked = []
    for f in _fixed(cls):
        if not f.metadata["cli"]:
            continue
        saved = first.get(f.name)
        value = _cli_value(params[flag_of(f)], (not saved) if f.metadata["negate"] else saved)
        if value is None and (not saved if f.metadata["negate"] else saved):
            continue  # a flag that is already on cannot be turned off on the command line
        given = [flag_of(f)] + ([] if value is None else [value])
        r = cli("train", "--resume", "r", "--max-steps", "2", "-q", *runs, *given)
        assert r.code == 2 and flag_of(f) in r.err and len(r.err_lines) == 1, (f.name, given, r.err)
        checked.append(f.name)
    assert len(checked) >= 10, checked
    same = []  # every option given again with the value the run has: no conflict
    for f in _fixed(cls):
        saved = first.get(f.name)
        if not f.metadata["cli"]:
            continue
        if params[flag_of(f)].is_flag:
            same += [flag_of(f)] if (not saved if f.metadata["negate"] else saved) else []
        else:
            same += [flag_of(f), ",".join(map(str, saved)) if isinstance(saved, list) else str(saved)]
    r = cli("train", "--resume", "r", "--max-steps", "2", "--workers", "0", "-q", *runs, *same)
    assert r.code == 0, (same, r.err)
    r = cli("train", "--resume", "r", "--max-steps", "3", "--workers", "0", "-q", *runs)  # nothing given: all restored
    assert r.code == 0, r.err
    after = json.loads(opts_file.read_text())
    assert {k: v for k, v in after.items() if k != "max_steps"} == {k: v for k, v in first.items() if k != "max_steps"}
    assert after["max_steps"] == 3 and (tmp_path / "runs" / "r" / "checkpoints" / "step-00000003").is_dir()


@pytest.mark.parametrize("kind", sorted(KIND_ARGS))
def test_an_option_of_another_kind_is_one_line_and_exit_2(kind, cli, tmp_path):
    """--lambda-l1 on a CycleGAN, --nz on pix2pix, --eval-every on pix2pix: each option the kind does
    not take is refused before any work (it used to be ignored without a word), for a new run and a
    resumed one. The foreign options are read off the dataclasses."""
    from cyclegan_cli.train.options import all_fields

    folders = [tmp_path / "A"] if kind == "dcgan" else [tmp_path / "A", tmp_path / "B"]
    for i, f in enumerate(folders):
        for j in range(2):
            save_rgb(f / f"{j}.png", 40, 40, seed=10 * i + j)
    runs = ["--runs-dir", tmp_path / "runs"]
    params = _train_params()
    own = {f.name for f in fields(KINDS[kind])}
    foreign = [f for name, f in all_fields().items() if name not in own and f.metadata["cli"] and name != "method"]
    assert foreign
    for f in foreign:
        p = params[flag_of(f)]
        given = [flag_of(f)] + ([] if p.is_flag else [_cli_value(p, p.default)])
        r = cli("train", *folders, "--name", "new", "--max-steps", "1", "-q", *runs, *KIND_ARGS[kind], *given)
        assert r.code == 2 and len(r.err_lines) == 1 and flag_of(f) in r.err and "does not apply" in r.err, (f.name, r.err)
    assert not (tmp_path / "runs" / "new").exists()  # refused before the run folder was made
    r = cli("train", *folders, "--name", "r", "--max-steps", "1", "--workers", "0", "-q", *runs, *KIND_ARGS[kind])
    assert r.code == 0, r.err
    f = foreign[0]
    p = params[flag_of(f)]
    r = cli("train", "--resume", "r", "--max-steps", "2", "-q", *runs,
            *([flag_of(f)] + ([] if p.is_flag else [_cli_value(p, p.default)])))
    assert r.code == 2 and "does not apply" in r.err, r.err
    if kind == "cyclegan":  # --method picks the kind: its own default given again is no foreign option
        r = cli("train", "--resume", "r", "--max-steps", "2", "-q", "--method", "cyclegan", *runs)
        assert r.code == 0, r.err


def test_the_python_api_still_takes_the_old_keyword_names(tmp_path):
    """train_dcgan(folder, image_size=16) was the API before the options became dataclasses: the old
    name is still taken (and saved as the field it became)."""
    from cyclegan_cli import train_dcgan

    for j in range(2):
        save_rgb(tmp_path / "A" / f"{j}.png", 20, 20, seed=j)
    run = train_dcgan(tmp_path / "A", runs_dir=tmp_path / "runs", name="api", image_size=16, ngf=4, ndf=4, nz=8,
                      max_steps=1, workers=0)
    assert json.loads((run / "options.json").read_text())["size"] == 16
    with pytest.raises(TypeError):
        train_dcgan(tmp_path / "A", runs_dir=tmp_path / "runs", name="api2", no_such_option=1)


def test_the_python_api_trains_in_a_thread(tmp_path):
    """A script may train from a worker thread (a notebook, a job server): signal handlers can only be
    set in the main thread, so there the run trains without them, to the end."""
    import threading

    from cyclegan_cli import train_dcgan

    for j in range(2):
        save_rgb(tmp_path / "A" / f"{j}.png", 20, 20, seed=j)
    result = {}

    def work():
        try:
            result["run"] = train_dcgan(tmp_path / "A", runs_dir=tmp_path / "runs", name="threaded", size=16, ngf=4,
                                        ndf=4, nz=8, max_steps=2, workers=0)
        except BaseException as e:  # noqa: BLE001 - reported below, in the test's thread
            result["error"] = e

    t = threading.Thread(target=work)
    t.start()
    t.join()
    assert "error" not in result, result.get("error")
    assert [json.loads(line)["step"] for line in (result["run"] / "stats.jsonl").read_text().splitlines()][-1] == 2


def test_the_no_gpu_notice_fits_what_was_asked(cli, tmp_path):
    """--device cpu asked for the CPU: no "no GPU found"; tiny settings: no hint to make them
    smaller (a new user was told to shrink --size 32 --ngf 8)."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present: the notice is about machines without one")
    for j in range(2):
        save_rgb(tmp_path / "A" / f"{j}.png", 20, 20, seed=j)
    tiny = ["--size", "16", "--ngf", "4", "--ndf", "4", "--nz", "8", "--max-steps", "1", "--workers", "0",
            "--runs-dir", tmp_path / "runs"]
    r = cli("train", tmp_path / "A", "--name", "auto", *tiny)
    assert r.code == 0 and "no GPU found: training on the CPU" in r.err and "--size" not in r.err, r.err
    r = cli("train", tmp_path / "A", "--name", "cpu", "--device", "cpu", *tiny)
    assert r.code == 0 and "no GPU found" not in r.err, r.err
