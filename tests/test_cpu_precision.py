"""Precision on the CPU decided by its flags (faked here): bf16 training only where it is native,
``--precision fast`` for translate measured and cached per CPU and weights, the int8 per-image guard
and its VNNI choice, and the OpenMP waiting policy the CLI sets."""

import numpy as np
import pytest
import torch

from test_train import TINY, make_domains

AVX2 = {"fpu", "sse2", "avx", "avx2", "fma"}
AMX = AVX2 | {"avx512f", "avx512_bf16", "avx512_vnni", "amx_tile", "amx_bf16", "amx_int8"}


def fake_flags(monkeypatch, flags):
    import cyclegan_cli.device as device

    monkeypatch.setattr(device, "cpu_flags", lambda: set(flags))


def test_bf16_training_without_fast_bf16_is_a_usage_error(cli, tmp_path, monkeypatch):
    fake_flags(monkeypatch, AVX2)
    a, b = make_domains(tmp_path, n=2)
    runs = tmp_path / "runs"
    r = cli("train", a, b, "--runs-dir", runs, "--name", "x", "--max-steps", "1", "--device", "cpu",
            "--precision", "bf16", *TINY)
    assert r.code == 2 and len(r.err_lines) == 1, r.err
    assert "no AMX or AVX512-BF16" in r.err and "--precision fp32" in r.err
    assert not (runs / "x").exists()  # refused before the run folder is made: the same --name works next
    r = cli("train", a, b, "--runs-dir", runs, "--name", "x", "--max-steps", "1", "--device", "cpu",
            "--precision", "fp32", *TINY)
    assert r.code == 0, r.err


def test_training_precision_by_cpu_flags():
    from cyclegan_cli.device import training_dtype
    from cyclegan_cli.errors import UsageError

    cpu = torch.device("cpu")
    assert training_dtype(cpu, "auto", AVX2) is None
    assert training_dtype(cpu, "auto", AVX2 | {"avx512f", "avx512_bf16"}) is None  # not measured to pay there
    assert training_dtype(cpu, "auto", AMX) == torch.bfloat16  # measured 0.69x the fp32 step (issue 27)
    assert training_dtype(cpu, "bf16", AVX2 | {"avx512_bf16"}) == torch.bfloat16
    assert training_dtype(cpu, "bf16", AMX) == torch.bfloat16
    assert training_dtype(cpu, "fp32", AMX) is None
    with pytest.raises(UsageError, match="no AMX or AVX512-BF16"):
        training_dtype(cpu, "bf16", AVX2)


def int8_translator(tmp_path, notes, seed=0):
    """A tiny ResNet generator in int8, calibrated on four images."""
    from test_fullres import photo_like

    from cyclegan_cli.checkpoints import ModelConfig
    from cyclegan_cli.infer.engine import Translator
    from cyclegan_cli.models import build

    torch.manual_seed(seed)
    net = build("resnet_generator", ngf=8, n_blocks=2)
    cfg = ModelConfig(kind="cyclegan", nets={})
    q = Translator(net, cfg, device="cpu", precision="int8", cache_dir=tmp_path / "onnx", on_notice=notes.append)
    for i in range(4):
        q(photo_like(64, 48, i)[None])
    assert q.backend.calibrated
    ref = Translator(net, cfg, device="cpu", precision="fp32", backend="onnxruntime", cache_dir=tmp_path / "onnx")
    return q, ref


def test_int8_guard_redoes_a_bad_image_in_fp32(tmp_path):
    """The int8 output of some images is spoiled on purpose: those the guard checks come back as
    fp32's, and the user is told once."""
    pytest.importorskip("onnxruntime")
    from test_fullres import photo_like

    from cyclegan_cli.infer.quantize import GUARD_EVERY

    notes = []
    q, ref = int8_translator(tmp_path, notes)
    real, calls = q.backend.session, []

    class Spoiled:  # the int8 graph, wrong by a wide margin on the images named in `bad`, never clipping
        def run(self, names, feed):
            y, *extremes = real.run(names, feed)
            calls.append(1)
            if len(calls) - 1 in bad:
                y = np.clip(y + 0.5, -1, 1)
            return [y, *(np.float32(0) for _ in extremes)]

    q.backend.session = Spoiled()
    n = 2 * GUARD_EVERY + 1
    bad = {0, 1, GUARD_EVERY}  # checked, not checked (one in GUARD_EVERY is), checked
    images = [photo_like(64, 48, 10 + i) for i in range(n)]
    outs = [q(im[None])[0] for im in images]
    refs = [ref(im[None])[0] for im in images]
    for i in range(n):
        same = np.array_equal(outs[i], refs[i])
        assert same == (i in (0, GUARD_EVERY)), i  # redone: fp32's output exactly; else int8 (spoiled or not)
    assert np.abs(outs[1].astype(int) - refs[1]).mean() > 20  # the unchecked one stays spoiled
    assert len(notes) == 1 and "redone in fp32" in notes[0] and "below 30" in notes[0], notes
    assert q.backend.redone == 2 and q.backend.ran_int8 == n - 2


def test_int8_guard_checks_every_image_whose_activations_clip(tmp_path):
    """An image whose activations leave their calibrated range is checked against fp32 whether or not
    its turn has come; the int8 graph reports those ranges without changing its output."""
    pytest.importorskip("onnxruntime")
    from test_fullres import photo_like

    from cyclegan_cli.infer.backends import cpu_session
    from cyclegan_cli.models.padding import pad_to_multiple
    from cyclegan_cli.infer.quantize import went_out

    notes = []
    q, ref = int8_translator(tmp_path, notes)
    b = q.backend
    assert len(b.probes) >= 6
    x = pad_to_multiple(q.to_tensor(photo_like(64, 48, 0)[None]), 4, 8)[0].numpy()
    y, *extremes = b.session.run(None, {b.input_name: x})
    assert np.array_equal(y, cpu_session(b.path).run(None, {b.input_name: x})[0])  # the same output as without
    assert len(extremes) == 2 * len(b.probes)
    assert not went_out(b.probes, extremes)  # a calibration image stays within its ranges (margin 1.75)
    # a dark picture with one small bright spot: after InstanceNorm the spot is many deviations out
    spot = np.full_like(x, -1.0)
    spot[..., 20:23, 20:23] = 1.0
    assert went_out(b.probes, b.session.run(None, {b.input_name: spot})[1:])

    real, calls = b.session, []

    class Reported:  # int8 spoiled on images 1 and 2; clipping reported on images 1 and 3
        def run(self, names, feed):
            y, *extremes = real.run(names, feed)
            calls.append(1)
            k = len(calls) - 1
            if k in (1, 2):
                y = np.clip(y + 0.5, -1, 1)
            return [y, *(np.float32(1e6 if k in (1, 3) else 0) for _ in extremes)]

    b.session, b.guard_every = Reported(), 10**6  # no checks by turn after the first image
    images = [photo_like(64, 48, 20 + i) for i in range(5)]
    outs = [q(im[None])[0] for im in images]
    refs = [ref(im[None])[0] for im in images]
    assert [np.array_equal(o, r) for o, r in zip(outs, refs)] == [False, True, False, False, False]
    assert np.abs(outs[2].astype(int) - refs[2]).mean() > 20  # not clipped, not its turn: not checked
    assert len(notes) == 1 and b.redone == 1 and b.ran_int8 == 4


def test_int8_weights_keep_8_bits_where_the_cpu_has_vnni(tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    import onnxruntime.quantization as oq

    from cyclegan_cli.infer.quantize import reduce_range_for

    assert reduce_range_for(AVX2) is True  # VPMADDUBSW saturates 16-bit sums: 7-bit weights
    for vnni in ("avx512_vnni", "avx_vnni", "amx_int8"):
        assert reduce_range_for(AVX2 | {vnni}) is False
    seen = []
    real = oq.quantize_static
    monkeypatch.setattr(oq, "quantize_static", lambda *a, **k: seen.append(k["reduce_range"]) or real(*a, **k))
    for flags, name in ((AVX2, "0"), (AMX, "1")):
        fake_flags(monkeypatch, flags)
        q, _ = int8_translator(tmp_path / name, [])
        assert q.backend.path.name.endswith("-int8.onnx" if flags is AVX2 else "-int8-vnni.onnx")
    assert seen == [True, False]


def test_fast_choice_by_cpu_flags_and_measurement():
    from cyclegan_cli.infer.fastpath import choose, fast_candidates

    assert fast_candidates(AVX2, True) == ["int8", "fp32"]  # emulated bf16 is not even tried
    assert fast_candidates(AVX2 | {"avx512_bf16"}, True) == ["bf16", "int8", "fp32"]
    assert fast_candidates(AMX, False) == ["bf16", "fp32"]
    assert fast_candidates(AMX, True, int8_rejected=True) == ["bf16", "fp32"]
    assert fast_candidates(AVX2, False) == ["fp32"]
    res = {"fp32": {"s": 1.0, "db": 999.0}, "int8": {"s": 0.4, "db": 41.0}, "bf16": {"s": 0.5, "db": 52.0}}
    assert choose(res, ["bf16", "int8", "fp32"])[0] == "int8"  # the quickest, not the one the flags suggest
    assert choose(res, ["bf16", "fp32"])[0] == "bf16"
    res["int8"]["db"] = 25.0  # further from fp32 than the guard allows
    best, why = choose(res, ["bf16", "int8", "fp32"])
    assert best == "bf16" and "int8 400 ms but 25.0 dB from fp32" in why
    res["bf16"]["s"] = 1.5  # slower than fp32 (emulated, or a poor kernel)
    assert choose(res, ["bf16", "int8", "fp32"])[0] == "fp32"


def test_fast_is_measured_once_per_cpu_and_weights(tmp_path, monkeypatch):
    """The verdict is kept by the weights' hash and the CPU: the same weights again read it; changed
    weights, or another CPU, measure again."""
    pytest.importorskip("onnxruntime")
    from cyclegan_cli.checkpoints import ModelConfig
    from cyclegan_cli.infer import fastpath
    from cyclegan_cli.infer.engine import Translator
    from cyclegan_cli.models import build

    measured = []
    real = fastpath.measure
    monkeypatch.setattr(fastpath, "measure", lambda runners, **k: measured.append(sorted(runners)) or real(runners, **k))
    fake_flags(monkeypatch, AVX2)
    torch.manual_seed(0)
    net = build("resnet_generator", ngf=8, n_blocks=2)
    cfg = ModelConfig(kind="cyclegan", nets={})

    def fast(allowed=("int8", "fp32")):
        t = Translator(net, cfg, device="cpu", precision="fast", cache_dir=tmp_path)
        assert t.precision in allowed
        return t.precision, t.notes[0]

    first, note = fast()
    assert measured == [["fp32", "int8"]] and "measured on this CPU" in note and "int8" in note and "fp32" in note
    again, note2 = fast()
    assert again == first and "measured before on this CPU for these weights: " in note2
    assert note2.split("weights: ")[1] == note.split("weights: ")[1]  # the same figures
    assert len(measured) == 1
    with torch.no_grad():
        next(net.parameters()).add_(0.01)  # other weights
    fast()
    assert len(measured) == 2
    fast()
    assert len(measured) == 2
    fake_flags(monkeypatch, AMX)  # another CPU: bf16 is a candidate there (and wins on a real AMX CPU)
    fast(("bf16", "int8", "fp32"))
    assert measured[2] == ["bf16", "fp32", "int8"]
    assert len(list(tmp_path.glob("*-fast-*.json"))) == 3


def test_cli_makes_openmp_threads_wait_passively(cli, monkeypatch):
    """Spinning OpenMP threads slow every process sharing the cores (see cyclegan_cli/cli/__init__.py):
    the CLI asks for passive waiting before torch starts, unless the user chose otherwise."""
    import os

    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    assert cli("--version").code == 0
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    assert cli("--version").code == 0
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"


@pytest.mark.parametrize("flags", [AVX2, AMX], ids=["avx2", "amx"])
def test_int8_guard_reads_a_clipped_activation_at_its_range_edge(tmp_path, monkeypatch, flags):
    """A probe read after quantization (a convolution fused with its QuantizeLinear) cannot pass its
    range, only reach its end: reaching it counts as clipping; an ordinary probe must pass it by half
    a step. A small exported generator has probes of both kinds, with 7-bit weights (AVX2) or 8-bit
    (VNNI)."""
    from cyclegan_cli.infer.quantize import went_out

    lo, hi, step = -2.0, 2.0, 4.0 / 255
    after, before = (lo, hi, step, True), (lo, hi, step, False)
    assert went_out([after], [hi, 0.0]) and went_out([after], [0.0, lo])  # at the edge: clipped
    assert went_out([after], [hi - step / 4, 0.0])  # within half a step of it (rounding): clipped too
    assert not went_out([after], [hi - step, lo + step])  # a step inside: not
    assert not went_out([before], [hi, lo])  # an ordinary probe at its edge: within range
    assert went_out([before], [hi + step, 0.0]) and went_out([before], [0.0, lo - step])
    # an edge of a one-sided range (a ReLU's, 0..hi) reached at 0 is no clipping
    assert not went_out([(0.0, hi, step, True)], [1.0, 0.0])
    assert not went_out([(-hi, 0.0, step, True)], [0.0, -1.0])  # and the other side's 0

    pytest.importorskip("onnxruntime")
    fake_flags(monkeypatch, flags)
    q, _ = int8_translator(tmp_path, [])
    assert q.backend.reduce_range == (flags == AVX2)
    kinds = {bool(p[3]) for p in q.backend.probes}
    assert kinds == {True, False}, kinds
