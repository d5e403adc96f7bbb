"""What `--preset cpu` buys on a CPU: CUT on the photo2sketch data, the official settings (the default)
against `--preset cpu`, step time and the sample grid at the last step.

    python benchmarks/train_preset.py [--steps 120] [--data work-data/photo2sketch] [--grids docs]

Whole ``ganctl train --method cut`` processes on one thread each (``--threads``), on the photo2sketch
crops that examples/photo2sketch/prepare.py makes (``photo``, ``sketch``). A step's cost is the CPU
time of a run of 5 + N steps minus that of a run of 5 steps, over N: start-up and warm-up cancel out,
and CPU time does not grow when other work shares the machine (wall time is printed beside it). Each
figure is a ratio against the official settings' step of the same run. The runs of 5 + N steps write
their sample grid at step 5 + N (the EMA generator where the run keeps one, as training's grids
do); with --grids DIR they are copied there as preset-official-stepN.png and preset-cpu-stepN.png.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

PRESETS = ("official", "cpu")


def run(cmd: list[str], threads: int) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of a command, children included; exits with its error if it fails."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    start = time.monotonic()
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(p.pid, 0)
    if status:
        sys.exit(f"train failed: {p.stderr.read().decode(errors='replace').strip()[-300:]}")
    return usage.ru_utime + usage.ru_stime, time.monotonic() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=115, help="N: the timed steps (the grid is at step 5 + N)")
    ap.add_argument("--data", type=Path, default=REPO / "work-data/photo2sketch")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--grids", type=Path, default=None, help="copy each run's last grid here")
    a = ap.parse_args()
    from bench_common import machine

    folders = [a.data / "photo", a.data / "sketch"]
    if not all(f.is_dir() for f in folders):
        sys.exit(f"no {folders[0]} and {folders[1]}: make them with examples/photo2sketch/prepare.py")
    last = 5 + a.steps
    cpu: dict[str, list[float]] = {}
    wall: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        os.environ.setdefault("GANCTL_HOME", str(tmp / "home"))
        for n in (5, last):  # the short runs first: a long one interrupted leaves figures of both presets
            for preset in PRESETS:
                name = f"{preset}-{n}"
                c, w = run([sys.executable, "-m", "cyclegan_cli", "train", *map(str, folders), "--method", "cut",
                            "--preset", preset, "--name", name, "--runs-dir", str(tmp / "runs"), "--max-steps",
                            str(n), "--workers", "0", "-q", "--sample-every", str(last), "--save-every", "100000",
                            "--device", "cpu"], a.threads)
                cpu.setdefault(preset, []).append(c)
                wall[preset] = w
                if n == last and a.grids is not None:
                    a.grids.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(tmp / "runs" / name / "samples" / f"step-{last:08d}.png",
                                    a.grids / f"preset-{preset}-step{last}.png")
    per_step = {p: (cpu[p][1] - cpu[p][0]) / a.steps for p in PRESETS}
    ref = per_step["official"]
    print(f"machine: {machine()}")
    print(f"train --method cut on {folders[0].name} -> {folders[1].name} ({a.data}), {a.threads} thread(s); CPU "
          f"seconds per step (the CPU time of {last} steps minus that of 5, over {a.steps}); wall: the {last}-step run")
    for p in PRESETS:
        print(f"  --preset {p:<9} {per_step[p]:6.2f} s/step  {per_step[p] / ref:5.2f}x the official step  "
              f"(wall {wall[p] / last:5.2f} s/step over {last} steps, start-up included)")
    if a.grids is not None:
        print(f"grids at step {last}: " + ", ".join(str(a.grids / f"preset-{p}-step{last}.png") for p in PRESETS))


if __name__ == "__main__":
    main()
