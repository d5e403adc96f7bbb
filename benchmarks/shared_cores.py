"""How OpenMP's way of waiting changes a CPU-heavy torch loop when another CPU-heavy process shares
the cores: same-run ratios, settings interleaved round by round.

    python benchmarks/shared_cores.py [--iters 15] [--rounds 3]

Each setting runs the loop (a ResNet generator, ngf 16, 3 blocks, 128x128, forward + backward, fp32,
all cores) in a fresh process, once alone and once beside a neighbour (a torch matmul loop on all
cores, started 2 s before). torch's wheels use GNU OpenMP (libgomp), whose threads spin while they
wait unless OMP_WAIT_POLICY=PASSIVE: a spinning thread holds a core its neighbour, or its own
sibling thread, needs. (KMP_BLOCKTIME is Intel OpenMP's knob and does nothing to libgomp.)

Measured on the 2-core AMD EPYC (AVX2) this was written on, while other people's jobs also ran on it
(load average 6-10, so "alone" is not quiet), fp32, medians of 3 rounds, two runs of this script:
    default (spinning)        alone 1.764 / 1.261 s/it   with a neighbour 5.182 / 5.734 s/it
    OMP_WAIT_POLICY=PASSIVE   alone 0.178 / 0.094 s/it   with a neighbour 0.247 / 0.095 s/it
    torch.set_num_threads(1)  alone 0.205 / 0.213 s/it   with a neighbour 0.691 / 0.557 s/it
Passive waiting: 0.10x / 0.07x the default's time alone, 0.05x / 0.02x with the neighbour.
ONNX Runtime's own pool (session.intra_op.allow_spinning 0 or 1) made no difference beyond the noise.
The CLI now sets OMP_WAIT_POLICY=PASSIVE unless the user set it. What passive waiting costs on a quiet
machine could not be measured here.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SETTINGS = {
    "default (spinning)": {},
    "OMP_WAIT_POLICY=PASSIVE": {"OMP_WAIT_POLICY": "PASSIVE"},
    "torch.set_num_threads(1)": {"LOOP_THREADS": "1"},
}


def loop(iters: int) -> None:
    """The measured loop; prints its mean seconds per iteration (after one warm-up)."""
    import torch

    if os.environ.get("LOOP_THREADS"):
        torch.set_num_threads(int(os.environ["LOOP_THREADS"]))
    from cyclegan_cli.models import build

    torch.manual_seed(0)
    G, x, ts = build("resnet_generator", ngf=16, n_blocks=3), torch.randn(1, 3, 128, 128), []
    for _ in range(iters + 1):
        t = time.perf_counter()
        G(x).mean().backward()
        ts.append(time.perf_counter() - t)
    print(f"{statistics.mean(ts[1:]):.4f}")


def neighbour() -> None:
    import torch

    a, b = torch.randn(512, 512), torch.randn(512, 512)
    while True:
        a @ b


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--iters", type=int, default=15)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--role", choices=["loop", "neighbour"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.role == "loop":
        return loop(args.iters)
    if args.role == "neighbour":
        return neighbour()
    base = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    base["PYTHONPATH"] = str(REPO) + os.pathsep + base.get("PYTHONPATH", "")
    me = [sys.executable, __file__]

    def run(env):
        r = subprocess.run([*me, "--role", "loop", "--iters", str(args.iters)], env={**base, **env},
                           capture_output=True, text=True, check=True)
        return float(r.stdout.split()[-1])

    res = {k: ([], []) for k in SETTINGS}
    for _ in range(args.rounds):
        for name, env in SETTINGS.items():
            res[name][0].append(run(env))
            nb = subprocess.Popen([*me, "--role", "neighbour"], env=base)
            try:
                time.sleep(2)
                res[name][1].append(run(env))
            finally:
                nb.kill()
                nb.wait()
    ref_alone, ref_shared = (statistics.median(v) for v in res["default (spinning)"])
    print(f"{os.cpu_count()} cores; medians of {args.rounds} rounds, {args.iters} iterations each:")
    for name, (alone, shared) in res.items():
        a, s = statistics.median(alone), statistics.median(shared)
        print(f"  {name:<26} alone {a:.3f} s/it ({a / ref_alone:.2f}x default)   with a neighbour {s:.3f} s/it "
              f"({s / a:.2f}x its alone, {s / ref_shared:.2f}x default)")


if __name__ == "__main__":
    main()
