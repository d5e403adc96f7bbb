"""The test suite leaves the user's ganctl home alone: fixtures of every scope see the test run's home."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

INNER = '''
import pytest

from cyclegan_cli.zoo import runs


def fake_run(root, name):
    d = root / name
    d.mkdir(parents=True)
    (d / runs.OPTIONS_FILE).write_text('{"name": "%s", "kind": "cyclegan"}' % name)
    return runs.register(d)


@pytest.fixture(scope="session")
def session_run(tmp_path_factory):
    return fake_run(tmp_path_factory.mktemp("s"), "from-a-session-fixture")


@pytest.fixture(scope="module")
def module_run(tmp_path_factory):  # as tests/test_fuzz.py's trained fixture: before any per-test fixture
    return fake_run(tmp_path_factory.mktemp("m"), "from-a-module-fixture")


def test_runs_are_registered(session_run, module_run, tmp_path):
    assert runs.find_run(fake_run(tmp_path, "from-a-test").name)
'''


def test_the_suite_leaves_the_users_home_untouched(tmp_path):
    """A small suite with this conftest, run as a user would (no GANCTL_HOME, a home of its own):
    the runs its fixtures register, whatever their scope, land outside that home."""
    suite = tmp_path / "suite"
    suite.mkdir()
    shutil.copy(HERE / "conftest.py", suite / "conftest.py")
    (suite / "test_inner.py").write_text(INNER)
    home = tmp_path / "user"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("GANCTL_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME")}
    env["HOME"] = str(home)
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(suite),
                        "--basetemp", str(tmp_path / "basetemp")], capture_output=True, text=True, cwd=suite,
                       env=env, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert list(home.rglob("*")) == []  # no ~/.local/share/ganctl/runs.sqlite, no cache
