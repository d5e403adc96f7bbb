"""``--precision fast`` on the CPU: of bf16, int8 and fp32, the quickest that holds, measured here.

Candidates: bf16 only where the CPU multiplies bf16 natively (AMX or AVX512-BF16; emulated bf16 is
several times slower than fp32), int8 where ONNX Runtime is installed and its guard has not turned
these weights down before, and fp32. Each runs the same 256x256 photo-like probe, ``ROUNDS`` times
in turns (so a busy neighbour slows them alike); the quickest round of each counts. A candidate
further than ``MIN_PSNR_DB`` from fp32 on the probe is out. int8's time includes its guard's share
(an fp32 pass per ``GUARD_EVERY`` images).

The verdict is stored beside the ONNX export, named by the weights' hash and by a key of this
machine (CPU model and flags, threads, torch and ONNX Runtime versions): other weights, another CPU
or another thread count measure again.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Callable

import numpy as np

from cyclegan_cli.infer.quantize import MIN_PSNR_DB, psnr_db

PROBE_SIDE = 256
ROUNDS = 3
CANDIDATES = ("bf16", "int8", "fp32")  # the order ties are broken in


def fast_candidates(flags: set[str], have_onnxruntime: bool, int8_rejected: bool = False) -> list[str]:
    """What ``--precision fast`` may choose from on a CPU with these flags."""
    from cyclegan_cli.device import native_bf16

    out = ["bf16"] if native_bf16(flags) else []
    if have_onnxruntime and not int8_rejected:
        out.append("int8")
    return [*out, "fp32"]


def machine_key(flags: set[str]) -> str:
    """12 hex digits naming what the timings depend on besides the weights."""
    import torch

    from cyclegan_cli.device import cpu_model

    try:
        import onnxruntime

        ort = onnxruntime.__version__
    except ImportError:
        ort = "-"
    text = "|".join([cpu_model(), " ".join(sorted(flags)), str(torch.get_num_threads()), torch.__version__, ort])
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def verdict_path(folder: Path, weights: str, flags: set[str], onnx: bool = True) -> Path:
    """Where the verdict for these weights on this machine is kept (``onnx=False``: fp32 in torch, no int8)."""
    return Path(folder) / f"{weights[:24]}-fast{'' if onnx else '-torch'}-{machine_key(flags)}.json"


def probe_image(side: int = PROBE_SIDE) -> np.ndarray:
    """(side, side, 3) uint8: smooth shading, edges and noise, the same every time."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:side, 0:side].astype(np.float32)
    img = np.stack([128 + 90 * np.sin(x / 23) * np.cos(y / 31), 100 + 80 * (x / side), 90 + 70 * (y / side)], -1)
    img[side // 4: side // 2, side // 3: 2 * side // 3] = (30, 160, 220)  # a hard-edged block
    return (img + rng.normal(0, 10, img.shape)).clip(0, 255).astype(np.uint8)


def measure(runners: dict[str, Callable[[], np.ndarray]], rounds: int = ROUNDS) -> dict[str, dict]:
    """Each runner once (warm-up; its output compared with ``fp32``'s), then ``rounds`` timed turns.
    name -> {"s": the quickest turn in seconds, "db": PSNR from fp32}."""
    outputs = {name: run() for name, run in runners.items()}
    times: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(rounds):
        for name, run in runners.items():
            t = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - t)
    return {name: {"s": min(times[name]), "db": psnr_db(outputs[name], outputs["fp32"])} for name in runners}


def choose(results: dict[str, dict], allowed: list[str], min_db: float = MIN_PSNR_DB) -> tuple[str, str]:
    """(the quickest allowed candidate within ``min_db`` of fp32, the figures that decided it)."""
    def holds(name):
        return name == "fp32" or results[name]["db"] >= min_db

    ok = [n for n in CANDIDATES if n in allowed and n in results and holds(n)]
    best = min(ok, key=lambda n: results[n]["s"])
    figures = ", ".join(f"{n} {results[n]['s'] * 1000:.0f} ms" + ("" if holds(n) else f" but {results[n]['db']:.1f} dB from fp32")
                        for n in CANDIDATES if n in allowed and n in results)
    return best, f"{figures} per {PROBE_SIDE}x{PROBE_SIDE} image"


def read_verdict(path: Path) -> dict | None:
    try:
        data = json.loads(Path(path).read_text())
        results = data["results"]
        if all(isinstance(r.get("s"), (int, float)) and isinstance(r.get("db"), (int, float)) for r in results.values()):
            return data
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    return None


def write_verdict(path: Path, data: dict) -> None:
    from cyclegan_cli.files import atomic_write_bytes

    atomic_write_bytes(Path(path), json.dumps(data, indent=1).encode())
