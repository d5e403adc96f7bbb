"""Issue 34, the training side: --precision on a resume, the schedules in --help, each method's
initialisation, DiffAugment without a clamp, and what the shipped configs say."""

from __future__ import annotations

import json

from conftest import save_rgb

TINY = ["--size", "32", "--load-size", "32", "--ngf", "4", "--ndf", "4", "--blocks", "1"]


def _folders(tmp_path, n=2):
    for d, s in (("A", 0), ("B", 50)):
        for i in range(n):
            save_rgb(tmp_path / d / f"{i}.png", 32, 32, seed=s + i)
    return [str(tmp_path / "A"), str(tmp_path / "B")]


# ------------------------------------------------------------------------------- --precision on a resume

def test_resume_may_change_precision_a_process_setting(tmp_path, cli):
    folders = _folders(tmp_path)
    r = cli("train", *folders, "--name", "p", *TINY, "--max-steps", "2", "--save-every", "1", "-q")
    assert r.code == 0, r.err
    r = cli("train", "--resume", "p", "--precision", "fp32", "--max-steps", "3", "-q")  # saved with auto
    assert r.code == 0, r.err
    steps = [json.loads(line)["step"] for line in (tmp_path / "runs" / "p" / "stats.jsonl").read_text().splitlines()]
    assert steps[-1] == 3
    from cyclegan_cli.train.options import CycleGANOptions

    assert "precision" not in CycleGANOptions(precision="fp32").saved()  # this process's, as --device is
