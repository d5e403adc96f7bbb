"""The model zoo: downloads against a local HTTP server, the --model resolver, pickle safety."""

import hashlib
import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch

from conftest import save_rgb


class Server:
    """Serves ``files`` with Range support; ``truncate`` paths send half the body; ``drop_once``
    paths break off half way the first time only."""

    def __init__(self, files):
        self.files, self.truncate, self.drop_once = files, set(), set()
        self.requests = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                owner.requests.append((self.path, self.headers.get("Range")))
                body = owner.files.get(self.path)
                if body is None:
                    self.send_error(404, "Not Found")
                    return
                start = 0
                rng = self.headers.get("Range")
                if rng:
                    start = int(rng.split("=")[1].split("-")[0])
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                part = body[start:]
                self.send_header("Content-Length", str(len(part)))
                self.end_headers()
                if self.path in owner.truncate or (self.path in owner.drop_once and not rng):
                    owner.drop_once.discard(self.path)
                    self.wfile.write(part[: len(part) // 2])
                    self.wfile.flush()
                    self.connection.shutdown(2)
                    return
                self.wfile.write(part)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()


def _official_pth(tmp_path) -> bytes:
    from cyclegan_cli.models import build

    torch.manual_seed(0)
    g = build("resnet_generator", ngf=4, n_blocks=1)
    p = tmp_path / "src.pth"
    torch.save(g.state_dict(), p)
    return p.read_bytes()


@pytest.fixture
def zoo(tmp_path, monkeypatch):
    body = _official_pth(tmp_path)
    srv = Server({"/m.pth": body, "/t.pth": body, "/r.pth": body})
    srv.truncate.add("/t.pth")
    pre = tmp_path / "pretrained"
    pre.mkdir()
    sha = hashlib.sha256(body).hexdigest()

    def entry(path, sha256=sha, **kw):
        return {"kind": "cyclegan", "url": srv.url + path, "sha256": sha256, "size": len(body),
                "format": "official-pth", "domains": ["horse", "zebra"], **kw}

    manifest = {"models": {
        "good": entry("/m.pth", aliases=["goody"]),
        "missing": entry("/nope.pth"),
        "truncated": entry("/t.pth"),
        "badsha": entry("/m.pth", sha256="0" * 64),
        "resumable": entry("/r.pth"),
        "unpinned": entry("/m.pth", sha256=None, size=None),
    }}
    (pre / "zoo.json").write_text(json.dumps(manifest))
    monkeypatch.setenv("GANCTL_PRETRAINED", str(pre))
    srv.body = body
    yield srv
    srv.close()


def _cache_files(home: Path):
    d = home / "cache" / "downloads"
    return sorted(p.name for p in d.iterdir() if not p.name.endswith(".lock")) if d.is_dir() else []


def test_good_download_then_translate(zoo, cli, isolated_home, tmp_path):
    r = cli("zoo", "download", "goody")
    assert r.code == 0, r.err
    assert Path(r.out.strip(), "config.json").is_file()
    assert _cache_files(isolated_home) == ["m.pth"]
    save_rgb(tmp_path / "a.png", 20, 20)
    t = cli("translate", "a.png", "--model", "good", "--to", "zebra", "--out", "o")
    assert t.code == 0 and Path(t.out.strip()).is_file()
    n = len(zoo.requests)
    assert cli("zoo", "download", "good").code == 0 and len(zoo.requests) == n  # cached: no new request


def test_404_truncated_and_bad_sha(zoo, cli, isolated_home):
    r = cli("zoo", "download", "missing")
    assert r.code == 5 and "HTTP 404" in r.err and len(r.err_lines) == 1
    r = cli("zoo", "download", "truncated")
    assert r.code == 5 and "truncated" in r.err
    r = cli("zoo", "download", "badsha")
    assert r.code == 5 and "sha256" in r.err
    assert "m.pth" not in _cache_files(isolated_home) and "m.pth.part" not in _cache_files(isolated_home)
    assert not (isolated_home / "cache" / "models" / "badsha").exists()


def test_interrupted_download_resumes_with_range(zoo, cli, isolated_home):
    zoo.drop_once.add("/r.pth")
    r = cli("zoo", "download", "resumable")
    assert r.code == 5 and "resume" in r.err
    assert _cache_files(isolated_home) == ["r.pth.part"]
    r = cli("zoo", "download", "resumable")
    assert r.code == 0, r.err
    ranges = [rng for p, rng in zoo.requests if p == "/r.pth"]
    assert ranges[0] is None and ranges[1] is not None and ranges[1].startswith("bytes=")
    assert (isolated_home / "cache" / "downloads" / "r.pth").read_bytes() == zoo.body


def test_unpinned_hash_is_pinned_at_first_download(zoo, cli, isolated_home):
    assert cli("zoo", "download", "unpinned").code == 0
    pins = json.loads((isolated_home / "pins.json").read_text())
    assert pins["unpinned"] == hashlib.sha256(zoo.body).hexdigest()
    shown = cli("zoo", "show", "unpinned")
    assert "pinned at first verified download" in shown.out


def test_two_processes_make_one_file(zoo, isolated_home):
    env = dict(os.environ)
    procs = [subprocess.Popen([sys.executable, "-m", "cyclegan_cli", "zoo", "download", "good", "-q"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    for p in procs:
        assert p.wait(timeout=120) == 0, p.stderr.read()
    assert _cache_files(isolated_home) == ["m.pth"]
    assert (isolated_home / "cache" / "downloads" / "m.pth").read_bytes() == zoo.body
    assert sum(1 for p, _ in zoo.requests if p == "/m.pth") == 1


def test_offline_refuses(zoo, cli, monkeypatch):
    monkeypatch.setenv("GANCTL_OFFLINE", "1")
    r = cli("zoo", "download", "good")
    assert r.code == 5 and "downloads are off" in r.err


def test_resolver_every_form(zoo, cli, tmp_path, tiny_cyclegan):
    from cyclegan_cli.errors import NotFoundError, UsageError
    from cyclegan_cli.zoo.resolve import resolve_model

    # paths: folder, .safetensors, .pth
    assert resolve_model(str(tiny_cyclegan)).origin == "path"
    assert resolve_model(str(tiny_cyclegan / "model.safetensors")).origin == "path"
    (tmp_path / "g.pth").write_bytes(zoo.body)
    assert resolve_model(str(tmp_path / "g.pth")).origin == "path"
    # zoo name and alias (downloads)
    assert resolve_model("good").origin == "zoo" and resolve_model("goody").name == "good"
    # the user's zoo
    assert cli("zoo", "import", tmp_path / "g.pth", "--name", "mine").code == 0
    assert resolve_model("mine").origin == "user"
    # runs: NAME, NAME:STEP, NAME:latest
    a, b = tmp_path / "A", tmp_path / "B"
    for i in range(2):
        save_rgb(a / f"{i}.png", 32, 32, seed=i)
        save_rgb(b / f"{i}.png", 32, 32, seed=10 + i)
    r = cli("train", a, b, "--name", "myrun", "--size", "32", "--load-size", "32", "--ngf", "4", "--ndf", "4",
            "--blocks", "1", "--max-steps", "4", "--save-every", "2", "--workers", "0", "-q")
    assert r.code == 0, r.err
    assert resolve_model("myrun").path.name == "step-00000004"
    assert resolve_model("myrun:2").path.name == "step-00000002"
    assert resolve_model("myrun:latest").path.name == "step-00000004"
    with pytest.raises(NotFoundError, match="no checkpoint at step 3"):
        resolve_model("myrun:3")
    # ambiguity: a user zoo model with a run's name
    assert cli("zoo", "import", tmp_path / "g.pth", "--name", "myrun").code == 0
    with pytest.raises(UsageError, match="ambiguous"):
        resolve_model("myrun")
    assert resolve_model("run:myrun").origin == "run" and resolve_model("user:myrun").origin == "user"
    # typo
    with pytest.raises(NotFoundError, match="did you mean good"):
        resolve_model("godo")
    r = cli("translate", tmp_path / "A", "--model", "myrun")
    assert r.code == 2 and len(r.err_lines) == 1


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_code_running_pickle_is_refused(cli, tmp_path):
    torch.save({"model.1.weight": torch.zeros(1), "x": _Evil()}, tmp_path / "evil.pth")
    save_rgb(tmp_path / "a.png", 16, 16)
    r = cli("translate", "a.png", "--model", tmp_path / "evil.pth")
    assert r.code == 4 and "refused" in r.err
    assert not (tmp_path / "pwned").exists()
    r = cli("zoo", "import", tmp_path / "evil.pth", "--name", "evil")
    assert r.code == 4 and not (tmp_path / "pwned").exists()


def test_verify_and_rm(zoo, cli, tmp_path, isolated_home):
    assert cli("zoo", "download", "good").code == 0
    (tmp_path / "g.pth").write_bytes(zoo.body)
    assert cli("zoo", "import", tmp_path / "g.pth", "--name", "mine").code == 0
    r = cli("zoo", "verify", "--json")
    rows = [json.loads(l) for l in r.out.splitlines()]
    assert r.code == 0 and {x["name"] for x in rows} >= {"good", "mine"} and all(x["ok"] for x in rows)
    weights = isolated_home / "zoo" / "mine" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    r = cli("zoo", "verify")
    assert r.code == 1 and "mine:" in r.out
    assert cli("zoo", "rm", "mine").code == 0 and not (isolated_home / "zoo" / "mine").exists()
    assert cli("zoo", "rm", "good").code == 0
    assert cli("zoo", "rm", "nothing").code == 3
