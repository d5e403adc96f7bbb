"""Time to quality: CycleGAN, CUT and FastCUT on the same photo and sketch domains, for the same
compute budget, scored on the held-out photos with benchmarks/quality.py's three figures.

    python benchmarks/train_quality.py [--budget 300] [--data work-data/photo2sketch] [--json]

Each row is one fresh ``ganctl train`` process on one thread, stopped (SIGTERM: it saves a
checkpoint) when it has used ``--budget`` seconds of CPU time. A CPU-time budget is wall-clock
time on a quiet core, and keeps the comparison fair when other work shares the machine. The rows:
cyclegan, cut and fastcut with the recipe's widths; then the best of those three (the lowest
shortfall against the quality targets, as examples/photo2sketch/pick.py) with ``--augment``, with
``--ema`` and with both. The augmentation is DiffAugment's ``translation,cutout``: ``color`` would
show the discriminator coloured "sketches" as real ones, and a sketch model must learn that
sketches are gray. Each row also gives s/step (the run's median) and the process's peak RSS.
The data is examples/photo2sketch/prepare.py's (``collect`` then ``crops``).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
import quality  # noqa: E402

WIDTHS = ["--size", "128", "--load-size", "144", "--ngf", "32", "--ndf", "32", "--blocks", "6", "--upsample", "resize"]
AUGMENT = "translation,cutout"
EMA = "0.999"


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def train_for(budget: float, data: Path, runs: Path, name: str, method: str, extra: list[str]) -> dict:
    cmd = [sys.executable, "-m", "cyclegan_cli", "train", str(data / "photo"), str(data / "sketch"), "--method", method,
           "--name", name, "--runs-dir", str(runs), *WIDTHS, "--epochs", "50", "--decay-epochs", "0",
           "--log-every", "10", "--sample-every", "1000000", "--save-every", "1000000", "--workers", "0", "-q", *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    t0 = time.time()
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    while p.poll() is None:
        try:
            if cpu_seconds(p.pid) >= budget:
                p.send_signal(signal.SIGTERM)  # saves a checkpoint and exits
                break
        except (FileNotFoundError, ProcessLookupError):
            break
        time.sleep(0.5)
    _, status, usage = os.wait4(p.pid, 0)
    err = p.stderr.read().decode(errors="replace")
    stats = runs / name / "stats.jsonl"
    rows = [json.loads(x) for x in stats.read_text().splitlines()] if stats.is_file() else []
    steps = [r for r in rows if "sec_per_it" in r]
    return {"steps": steps[-1]["step"] if steps else 0, "wall_s": time.time() - t0,
            "s_per_step": float(np.median([r["sec_per_it"] for r in steps[1:]] or [float("nan")])),
            "peak_rss_gib": usage.ru_maxrss / 2**20, "stderr": err.strip().splitlines()[-1:] if err.strip() else []}


def score(run_dir: Path) -> dict:
    from cyclegan_cli.checkpoints import load_model
    from cyclegan_cli.infer.engine import Translator
    from cyclegan_cli.zoo.runs import checkpoint_dir, checkpoint_steps

    model = load_model(checkpoint_dir(run_dir, checkpoint_steps(run_dir)[-1]), nets=["G_A", "G_A_ema"])
    fwd = Translator(model.generator("AtoB"), model.config, device="cpu", backend="torch")
    s = []
    for f in quality.PHOTOS:
        rgb = quality.load_512(f)
        s.append(quality.scores(fwd.run_image(rgb), quality.pencil(rgb)))
    mean = {k: float(np.mean([x[k] for x in s])) for k in ("mad", "edges", "grid")}
    return {**mean, "worst_mad": max(x["mad"] for x in s), "worst_edges": min(x["edges"] for x in s),
            "worst_grid": max(x["grid"] for x in s)}


def shortfall(q: dict) -> float:
    return quality.shortfall(q, q["worst_grid"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--budget", type=float, default=300.0, help="CPU seconds per row")
    ap.add_argument("--data", type=Path, default=REPO / "work-data" / "photo2sketch")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    sys.path.insert(0, str(REPO / "benchmarks"))
    from bench_common import machine

    if not (a.data / "photo").is_dir():
        sys.exit(f"no training data under {a.data} (run examples/photo2sketch/prepare.py collect, then crops)")
    import torch

    torch.set_num_threads(1)
    results = []
    with tempfile.TemporaryDirectory() as d:
        runs = Path(d) / "runs"
        os.environ.setdefault("GANCTL_HOME", str(Path(d) / "home"))

        def row(label, method, extra):
            r = train_for(a.budget, a.data, runs, f"r{len(results)}", method, extra)
            r.update(label=label, method=method, **score(runs / f"r{len(results)}"))
            results.append(r)
            print(f"  {label:<34} {r['steps']:>6} steps  {r['s_per_step']:5.2f} s/step  {r['peak_rss_gib']:4.2f} GiB  "
                  f"mad {r['mad']:5.1f}  edges {r['edges']:5.2f}  grid {r['grid']:5.2f} (worst {r['worst_grid']:5.2f})",
                  file=sys.stderr, flush=True)

        for method in ("cyclegan", "cut", "fastcut"):
            row(method, method, [])
        best = min(results, key=shortfall)["method"]
        row(f"{best} --augment {AUGMENT}", best, ["--augment", AUGMENT])
        row(f"{best} --ema {EMA}", best, ["--ema", EMA])
        row(f"{best} --augment {AUGMENT} --ema {EMA}", best, ["--augment", AUGMENT, "--ema", EMA])
    if a.json:
        print(json.dumps({"machine": machine(), "budget_cpu_s": a.budget, "rows": results}, indent=1))
        return
    print(f"machine: {machine()}")
    print(f"time to quality: {a.budget:.0f} CPU-seconds per row (one thread), {' '.join(WIDTHS)}; "
          f"held-out photos at 512 px ({len(quality.PHOTOS)})")
    print("| row | steps | s/step | peak RSS | mad (mean / worst) | edges (mean / worst) | grid (mean / worst) |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['label']} | {r['steps']} | {r['s_per_step']:.2f} | {r['peak_rss_gib']:.2f} GiB | "
              f"{r['mad']:.1f} / {r['worst_mad']:.1f} | {r['edges']:.2f} / {r['worst_edges']:.2f} | "
              f"{r['grid']:.2f} / {r['worst_grid']:.2f} |")


if __name__ == "__main__":
    main()
