"""Precision on the CPU decided by its flags (faked here): bf16 training only where it is native,
``--precision fast`` for translate measured and cached per CPU and weights, the int8 per-image guard
and its VNNI choice."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

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
