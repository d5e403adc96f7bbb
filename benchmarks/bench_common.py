"""What every benchmark row uses: the machine's header line, a row the machine cannot run, a
synthetic photo, and a ResNet generator checkpoint made on the spot."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cyclegan_cli.checkpoints import ModelConfig, save_checkpoint  # noqa: E402
from cyclegan_cli.models import build  # noqa: E402


HEADER_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_tile", "avx512_vnni")  # what the fast paths turn on


def machine() -> str:
    """The CPU model and its flags that matter here (each said, present or not), cores, the GPU and
    the torch version."""
    from cyclegan_cli.device import cpu_flags, cpu_model

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    flags = cpu_flags()
    shown = " ".join(f"{f}{'' if f in flags else ':no'}" for f in HEADER_FLAGS)
    other = [f for f in ("avx_vnni", "amx_bf16", "amx_int8") if f in flags]
    return (f"{cpu_model()}\n  CPU flags: {shown}{' ' + ' '.join(other) if other else ''}\n"
            f"  {os.cpu_count()} cores, {gpu}, torch {torch.__version__}")


def lacks(what: str, needs: str) -> None:
    """A row this machine cannot run: one line saying so (not an error)."""
    print(f"{what}: not run, needs {needs}, which this machine has not")


def photo(w: int, h: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([128 + 100 * np.sin(x / (20 + seed)), 128 + 90 * np.cos(y / 17), 120 + 0 * x], -1)
    return (base + rng.normal(0, 8, base.shape)).clip(0, 255).astype(np.uint8)


def resnet_checkpoint(folder: Path, ngf=64, blocks=9) -> Path:
    torch.manual_seed(0)
    args = {"ngf": ngf, "n_blocks": blocks}
    g = build("resnet_generator", **args)
    cfg = ModelConfig(kind="cyclegan", nets={"G_A": {"arch": "resnet_generator", "args": args}})
    return save_checkpoint(folder, cfg, {"G_A": g})
