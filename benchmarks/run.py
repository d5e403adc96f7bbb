"""ganctl benchmarks: each figure as a ratio against a reference measured in the same run.

    python benchmarks/run.py [--only translate,matmul,fullres,folder,tiling,video,stabilize,train,ray,gpu] [--quick]

(The quality of the shipped photo2sketch: python benchmarks/quality.py.)

References: a straightforward per-image eager PyTorch loop (translate), a naive OpenCV
read -> network -> write loop (video), the official CycleGAN training step re-created here with
the official network definitions and loss sequence (train). Absolute figures name the machine.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from bench_common import machine
from bench_images import bench_folder_rss, bench_fullres, bench_matmul, bench_ray, bench_tiling, bench_translate
from bench_train import bench_gpu, bench_train
from bench_video import bench_stabilize, bench_video


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default="translate,matmul,fullres,folder,tiling,video,stabilize,train,ray,gpu")
    ap.add_argument("--quick", action="store_true", help="fewer images/frames/iterations")
    args = ap.parse_args()
    only = set(args.only.split(","))
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        os.environ.setdefault("GANCTL_HOME", str(tmp / "home"))
        if "translate" in only:
            bench_translate(tmp, 6 if args.quick else 16)
        if "video" in only:
            bench_video(tmp, 30 if args.quick else 90)
        if "stabilize" in only:
            bench_stabilize(tmp, 8 if args.quick else 24)
        if "train" in only:
            bench_train(tmp, 2 if args.quick else 4)
        if "tiling" in only:
            bench_tiling(tmp, 4096 if args.quick else 8192)
        if "fullres" in only:
            bench_fullres(tmp, args.quick)
        if "folder" in only:
            bench_folder_rss(tmp, 20 if args.quick else 100)
        if "matmul" in only:
            bench_matmul(tmp)
        if "ray" in only:
            bench_ray(tmp, 50 if args.quick else 200)
        if "gpu" in only:
            bench_gpu(tmp, args.quick)


if __name__ == "__main__":
    main()
