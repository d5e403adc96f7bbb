"""ganctl eval: each metric equal to its reference formula, computed here another way (numpy loops
and scipy's eigen-decomposition); a tiny random TorchScript feature network; memorisation on a
folder holding copies of training images; the Inception weights through the zoo, offline."""

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import run_subprocess


@pytest.fixture
def featnet(tmp_path) -> Path:
    """A tiny random feature network as TorchScript: (N, 3, 299, 299) in [0, 1] -> (N, 16)."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.AvgPool2d(13), torch.nn.Conv2d(3, 8, 3, stride=2), torch.nn.ReLU(),
                              torch.nn.AdaptiveAvgPool2d(2), torch.nn.Flatten(), torch.nn.Linear(32, 16))
    path = tmp_path / "feat.pt"
    torch.jit.script(net.eval()).save(str(path))
    return path


def blobs(folder: Path, n: int, seed: int, hue: int) -> list[Path]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        a = np.full((40 + i % 7, 48, 3), 128, np.uint8)
        a[:, :, hue] = rng.integers(60, 255)
        a += rng.integers(0, 60, a.shape, dtype=np.uint8)
        out.append(folder / f"{i:03d}.png")
        out[-1].parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(a).save(out[-1])
    return out


def features_by_hand(files, featnet) -> np.ndarray:
    net = torch.jit.load(str(featnet))
    x = np.stack([np.asarray(Image.open(f).convert("RGB").resize((299, 299), Image.BICUBIC)) for f in files])
    with torch.no_grad():
        return net(torch.from_numpy(x).permute(0, 3, 1, 2).float() / 255).double().numpy()


def fid_ref(a, b):
    """Fréchet distance with the square root of S1 S2 taken through eigenvalues: Tr sqrt(S1 S2) =
    sum of sqrt(eig(S1 S2)) (S1 S2 is similar to a PSD matrix)."""
    mu = a.mean(0) - b.mean(0)
    s1, s2 = np.cov(a.T), np.cov(b.T)
    eig = np.linalg.eigvals(s1 @ s2)
    return float(mu @ mu + np.trace(s1) + np.trace(s2) - 2 * np.sqrt(np.clip(eig.real, 0, None)).sum())


def kid_ref(a, b, subsets):
    vals = []
    d = a.shape[1]
    for ia, ib in subsets:
        x, y = a[ia], b[ib]
        m = len(x)
        k = lambda u, v: (u @ v / d + 1) ** 3  # noqa: E731
        sxx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j)
        syy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j)
        sxy = sum(k(x[i], y[j]) for i in range(m) for j in range(m))
        vals.append(sxx / (m * (m - 1)) + syy / (m * (m - 1)) - 2 * sxy / (m * m))
    return float(np.mean(vals)), float(np.std(vals))


def pr_ref(real, fake, k=3):
    def radii(x):
        return np.array([sorted(np.linalg.norm(x - x[i], axis=1))[k] for i in range(len(x))])  # [0] is itself

    rr, rf = radii(real), radii(fake)
    precision = np.mean([any(np.linalg.norm(f - real[i]) <= rr[i] for i in range(len(real))) for f in fake])
    recall = np.mean([any(np.linalg.norm(r - fake[j]) <= rf[j] for j in range(len(fake))) for r in real])
    return float(precision), float(recall)


def test_metrics_equal_their_reference_formulas(cli, tmp_path, featnet):
    from cyclegan_cli.infer.metrics import kid_subsets

    real = blobs(tmp_path / "real", 30, 1, 0)
    fake = blobs(tmp_path / "fake", 24, 2, 1)
    r = cli("eval", tmp_path / "real", tmp_path / "fake", "--features", featnet, "--json")
    assert r.code == 0, r.err
    got = json.loads(r.out)
    fr, ff = features_by_hand(real, featnet), features_by_hand(fake, featnet)
    assert got["n_real"] == 30 and got["n_fake"] == 24 and got["features"] == str(featnet) and got["dim"] == 16
    assert got["fid"] == pytest.approx(fid_ref(fr, ff), rel=0.01)
    kid, kid_std = kid_ref(fr, ff, kid_subsets(30, 24, 100, 1000, 0))
    assert got["kid"] == pytest.approx(kid, rel=0.01) and got["kid_std"] == pytest.approx(kid_std, rel=0.01)
    assert (got["precision"], got["recall"]) == pr_ref(fr, ff)
    assert "biased" in r.err  # FID at small N is warned about
    # the same folder against itself: FID ~ 0, precision and recall 1
    same = json.loads(cli("eval", tmp_path / "real", tmp_path / "real", "--features", featnet, "--json").out)
    assert abs(same["fid"]) < 1e-6 and same["precision"] == same["recall"] == 1.0


def test_memorisation_finds_copies(cli, tmp_path, featnet):
    train = blobs(tmp_path / "train", 20, 3, 2)
    blobs(tmp_path / "held", 10, 4, 2)
    gen = tmp_path / "gen"
    gen.mkdir()
    copies = {3: 7, 5: 12}  # generated file -> the training image it copies
    for i, f in enumerate(blobs(tmp_path / "gen-fresh", 8, 5, 2)):
        shutil.copy(train[copies[i]] if i in copies else f, gen / f"{i:03d}.png")
    r = cli("eval", tmp_path / "held", gen, "--train", tmp_path / "train", "--metrics", "memorisation",
            "--features", featnet, "--pairs-out", tmp_path / "pairs.png", "--json")
    assert r.code == 0, r.err
    mem = json.loads(r.out)["memorisation"]
    closest = mem["closest"][:2]
    assert {(c["fake"], c["train"]) for c in closest} == set(copies.items())
    assert all(c["distance"] < 1e-6 for c in closest) and mem["generated_to_train"]["min"] < 1e-6
    assert mem["held_out_to_train"]["min"] > 0
    assert Image.open(tmp_path / "pairs.png").size[0] > 0


def test_too_few_images_is_a_clear_error(cli, tmp_path, featnet):
    blobs(tmp_path / "a", 3, 1, 0)
    blobs(tmp_path / "b", 1, 2, 1)
    for metric in ("fid", "kid", "pr"):
        r = cli("eval", tmp_path / "a", tmp_path / "b", "--metrics", metric, "--features", featnet)
        assert r.code == 2 and "needs at least" in r.err and len(r.err_lines) == 1, r.err
    r = cli("eval", tmp_path / "a", tmp_path / "a", "--metrics", "pr", "--features", featnet)
    assert r.code == 2 and "at least 4" in r.err


def test_eval_a_model_generates_its_samples(cli, tmp_path, featnet):
    blobs(tmp_path / "real", 6, 1, 0)
    r = cli("eval", "--model", "emoji32", "--data", tmp_path / "real", "--num", "5", "--metrics", "kid,pr",
            "--features", featnet, "--json")
    assert r.code == 0, r.err
    got = json.loads(r.out)
    assert got["n_fake"] == 5 and got["n_real"] == 5 and "kid" in got and "precision" in got
    r = cli("eval", "--model", "photo2sketch", "--data", tmp_path / "real", "--source", tmp_path / "real",
            "--metrics", "kid", "--features", featnet, "--json")
    assert r.code == 0, r.err and json.loads(r.out)["n_fake"] == 6


def test_inception_weights_through_the_zoo(cli, tmp_path, monkeypatch):
    """The inception-fid entry downloads from its URL (a local server here), is checked against the
    published sha256 prefix and pinned, is refused offline, and imports from a file."""
    from test_zoo import Server

    from cyclegan_cli.zoo.catalog import load_manifest

    entry = load_manifest()["inception-fid"].to_dict()
    body = b"not really inception weights"
    digest = hashlib.sha256(body).hexdigest()
    srv = Server({"/good.pth": body, "/bad.pth": b"something else"})
    try:
        pre = tmp_path / "pre"
        pre.mkdir()

        def manifest(path, prefix):
            e = {k: v for k, v in entry.items() if k not in ("name", "origin", "path")}
            e.update(url=srv.url + path, sha256_prefix=prefix)
            (pre / "zoo.json").write_text(json.dumps({"models": {"inception-fid": e}}))

        monkeypatch.setenv("GANCTL_PRETRAINED", str(pre))
        manifest("/bad.pth", digest[:8])
        r = cli("zoo", "download", "inception-fid")
        assert r.code == 5 and "does not start with" in r.err
        manifest("/good.pth", digest[:8])
        monkeypatch.setenv("GANCTL_OFFLINE", "1")
        r = cli("zoo", "download", "inception-fid")
        assert r.code == 5 and "zoo import" in r.err
        monkeypatch.setenv("GANCTL_OFFLINE", "0")
        r = cli("zoo", "download", "inception-fid")
        assert r.code == 0, r.err
        assert Path(r.out.strip()).read_bytes() == body
        from cyclegan_cli.zoo.catalog import pinned_sha

        assert pinned_sha("inception-fid") == digest
        # an offline machine: import the file fetched elsewhere
        Path(r.out.strip()).unlink()
        (tmp_path / "w.pth").write_bytes(body)
        r = cli("zoo", "import", tmp_path / "w.pth", "--name", "inception-fid")
        assert r.code == 0, r.err
        (tmp_path / "x.pth").write_bytes(b"tampered")
        r = cli("zoo", "import", tmp_path / "x.pth", "--name", "inception-fid")
        assert r.code == 5
    finally:
        srv.close()


def test_inception_network_runs_when_its_weights_are_here(tmp_path, monkeypatch):
    """Weights shaped like the real ones (random values: the real file cannot be downloaded here),
    imported into the zoo as inception-fid: torch-fidelity's Inception gives 2048-d features for
    our uint8 299x299 images through ganctl's own loading path."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    from cyclegan_cli.infer.evaluate import Features
    from cyclegan_cli.zoo.catalog import load_manifest

    empty = tmp_path / "empty.pth"
    torch.save({}, empty)
    with monkeypatch.context() as m:
        m.setattr(FeatureExtractorInceptionV3, "load_state_dict", lambda self, sd, strict=True: None)
        torch.manual_seed(0)
        shaped = FeatureExtractorInceptionV3("x", ["2048"], feature_extractor_weights_path=str(empty)).state_dict()
    torch.save(shaped, tmp_path / "weights.pth")
    e = {k: v for k, v in load_manifest()["inception-fid"].to_dict().items() if k not in ("name", "origin", "path")}
    e["sha256_prefix"] = None
    pre = tmp_path / "pre"
    pre.mkdir()
    (pre / "zoo.json").write_text(json.dumps({"models": {"inception-fid": e}}))
    monkeypatch.setenv("GANCTL_PRETRAINED", str(pre))
    from cyclegan_cli.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["zoo", "import", str(tmp_path / "weights.pth"), "--name", "inception-fid"])
    assert exit_.value.code == 0
    monkeypatch.setenv("GANCTL_OFFLINE", "1")  # from the cache now, no network
    feats = Features("inception", device="cpu")
    x = np.random.default_rng(0).integers(0, 255, (2, 299, 299, 3), dtype=np.uint8)
    y = feats(x)
    assert y.shape == (2, 2048) and np.isfinite(y).all()


def test_eval_during_training_and_best_kid(cli, tmp_path, featnet):
    """--eval-every writes figures into stats.jsonl and eval.png, RUN:best-kid resolves (and survives
    checkpoint pruning), and evaluating does not change what training does."""
    import json as _json

    from safetensors.torch import load_file

    from test_train import make_domains

    a, b = make_domains(tmp_path, n=4)
    base = ["train", a, b, "--runs-dir", tmp_path / "runs", "--size", "32", "--load-size", "32", "--ngf", "4",
            "--ndf", "4", "--blocks", "1", "--max-steps", "6", "--workers", "0", "--deterministic", "-q"]
    r = cli(*base, "--name", "with", "--eval-every", "2", "--eval-data", b, "--eval-num", "4",
            "--eval-metrics", "kid,fid", "--eval-features", featnet, "--keep", "1")
    assert r.code == 0, r.err
    assert cli(*base, "--name", "without").code == 0
    rows = [_json.loads(l) for l in (tmp_path / "runs" / "with" / "stats.jsonl").read_text().splitlines()]
    evals = [x for x in rows if "eval" in x]
    assert [x["step"] for x in evals] == [2, 4, 6] and all({"kid", "kid_std", "fid"} <= set(x["eval"]) for x in evals)
    assert (tmp_path / "runs" / "with" / "eval.png").is_file()
    best = min(evals, key=lambda x: x["eval"]["kid"])["step"]
    from cyclegan_cli.zoo.resolve import resolve_model

    assert resolve_model("with:best-kid").path.name == f"step-{best:08d}"
    r = cli("runs", "promote", "with:best-kid", "--as", "best-one")
    assert r.code == 0, r.err
    wa = load_file(tmp_path / "runs" / "with" / "checkpoints" / "step-00000006" / "model.safetensors")
    wb = load_file(tmp_path / "runs" / "without" / "checkpoints" / "step-00000006" / "model.safetensors")
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)  # same training either way
    r = cli("translate", a, "--model", "without:best-kid", "--out", tmp_path / "o")
    assert r.code == 3 and "--eval-every" in r.err


def test_offline_eval_names_both_ways_out(cli, tmp_path, monkeypatch, featnet):
    """No network: the Inception download fails with the two ways that need none (--features, zoo import)."""
    import socket

    from cyclegan_cli.zoo.catalog import load_manifest

    with socket.socket() as s:  # a port nobody listens on: the connection is refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    e = {k: v for k, v in load_manifest()["inception-fid"].to_dict().items() if k not in ("name", "origin", "path")}
    e["url"] = f"http://127.0.0.1:{port}/pt_inception.pth"
    pre = tmp_path / "pre"
    pre.mkdir()
    (pre / "zoo.json").write_text(json.dumps({"models": {"inception-fid": e}}))
    monkeypatch.setenv("GANCTL_PRETRAINED", str(pre))
    pytest.importorskip("torch_fidelity")
    blobs(tmp_path / "a", 4, 1, 0)
    blobs(tmp_path / "b", 4, 2, 1)
    for offline in ("0", "1"):
        monkeypatch.setenv("GANCTL_OFFLINE", offline)
        r = cli("eval", tmp_path / "a", tmp_path / "b", "--metrics", "kid")
        assert r.code == 5, r.err
        assert "--features" in r.err and "ganctl zoo import FILE --name inception-fid" in r.err, r.err
        assert len(r.err_lines) == 2  # the error and its hint


def test_eval_says_what_its_figures_mean_and_is_quiet_with_q(cli, tmp_path):
    torch.manual_seed(0)
    lin = torch.nn.Linear(12, 8)
    with torch.no_grad():  # half the features never change, as with dead units in a random network
        lin.weight[4:] = 0
        lin.bias[4:] = 0
    featnet = tmp_path / "dead.pt"
    torch.jit.script(torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(2), torch.nn.Flatten(), lin).eval()).save(str(featnet))
    blobs(tmp_path / "a", 10, 1, 0)
    blobs(tmp_path / "b", 10, 1, 0)  # the same images: FID and KID near zero
    r = cli("eval", tmp_path / "a", tmp_path / "b", "--features", featnet, "--metrics", "fid,kid")
    assert r.code == 0, r.err
    # another feature network than the FID Inception: said, as the figures compare only with its own
    assert "not the FID Inception" in r.err
    kid_line = next(l for l in r.out.splitlines() if l.startswith("KID"))
    assert "0.00000 ± 0.00000" not in kid_line
    # singular covariances: said in words, not as a SciPy warning, and not with -q
    assert "LinAlgWarning" not in r.err and ".py:" not in r.err
    assert "singular" in r.err
    # in a process of its own, where Python's warnings reach stderr (pytest collects them in-process)
    r = run_subprocess("eval", tmp_path / "a", tmp_path / "b", "--features", featnet, "--metrics", "fid,kid", "-q")
    assert r.returncode == 0 and "LinAlgWarning" not in r.stderr and "singular" not in r.stderr, r.stderr
    assert not (tmp_path / "closest-pairs.png").exists()


def test_memorisation_writes_its_picture_only_when_asked(cli, tmp_path, featnet):
    blobs(tmp_path / "train", 6, 3, 2)
    blobs(tmp_path / "held", 4, 4, 2)
    blobs(tmp_path / "gen", 4, 5, 2)
    r = cli("eval", tmp_path / "held", tmp_path / "gen", "--train", tmp_path / "train", "--metrics", "memorisation",
            "--features", featnet, "--json")
    assert r.code == 0, r.err
    assert list(tmp_path.glob("*.png")) == [] and "pairs_png" not in json.loads(r.out)["memorisation"]
