"""What a training step costs per method: CycleGAN, CUT and FastCUT at the same size and widths.

    python benchmarks/train_methods.py [--steps 20] [--size 128 --ngf 32 --blocks 6]

Whole ``ganctl train`` processes on one thread each, on the same synthetic folders. A step's cost
is the CPU time of a run of 5 + N steps minus that of a run of 5 steps, over N: start-up and
warm-up cancel out, and CPU time (unlike wall time) does not grow when other work shares the
machine. The methods are interleaved (every method once, then again) and each figure is a ratio
against the CycleGAN step of the same run.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))


def cpu_of(cmd: list[str]) -> float:
    p = subprocess.Popen(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    _, status, usage = os.wait4(p.pid, 0)
    if status:
        sys.exit(f"train failed: {p.stderr.read().decode(errors='replace').strip()[-300:]}")
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--ngf", type=int, default=32)
    ap.add_argument("--blocks", type=int, default=6)
    a = ap.parse_args()
    from bench_common import machine, photo

    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        os.environ.setdefault("GANCTL_HOME", str(tmp / "home"))
        for name, off in (("A", 0), ("B", 10)):
            (tmp / name).mkdir()
            for i in range(8):
                Image.fromarray(photo(a.size + 16, a.size + 16, i + off)).save(tmp / name / f"{i}.png")
        widths = ["--size", str(a.size), "--ngf", str(a.ngf), "--ndf", str(a.ngf), "--blocks", str(a.blocks),
                  "--upsample", "resize", "--workers", "0", "-q", "--sample-every", "100000", "--save-every", "100000"]
        per_step: dict[str, list[float]] = {}
        for r in range(a.rounds):
            for method in ("cyclegan", "cut", "fastcut"):
                cpu = []
                for n in (5, 5 + a.steps):
                    run = f"{method}-{r}-{n}"
                    cpu.append(cpu_of([sys.executable, "-m", "cyclegan_cli", "train", str(tmp / "A"), str(tmp / "B"),
                                       "--method", method, "--name", run, "--runs-dir", str(tmp / "runs"),
                                       "--max-steps", str(n), *widths]))
                per_step.setdefault(method, []).append((cpu[1] - cpu[0]) / a.steps)
    ref = float(np.median(per_step["cyclegan"]))
    print(f"machine: {machine()}")
    print(f"train step, {a.size} px, ngf = ndf = {a.ngf}, ResNet-{a.blocks}, batch 1, one thread; "
          f"CPU seconds per step (median of {a.rounds} interleaved rounds of {a.steps} steps):")
    for method in ("cyclegan", "cut", "fastcut"):
        v = float(np.median(per_step[method]))
        spread = ", ".join(f"{x:.3f}" for x in per_step[method])
        print(f"  {method:<10} {v:7.3f} s/step  {v / ref:5.2f}x the CycleGAN step  (rounds: {spread})")


if __name__ == "__main__":
    main()
