"""Benchmark rows on images: translate (per-image eager loop as reference), tiling, full resolution,
a folder's memory, the network against matmul, and the Ray engine."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from bench_common import lacks, photo, resnet_checkpoint


def bench_translate(tmp: Path, n: int):
    from cyclegan_cli.checkpoints import load_model
    from cyclegan_cli.infer.translate import translate

    src = tmp / "photos"
    src.mkdir()
    for i in range(n):
        Image.fromarray(photo(256, 256, i)).save(src / f"{i:03d}.jpg", quality=92)
    ck = resnet_checkpoint(tmp / "resnet9")
    model = load_model(ck)  # loaded once, outside the timings, for the naive loop and for ours
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    G = model.generator().eval().to(dev)

    def naive():  # PIL open -> tensor -> G -> save, one image at a time
        out = tmp / "naive"
        out.mkdir(exist_ok=True)
        t = time.perf_counter()
        with torch.no_grad():
            for f in sorted(src.iterdir()):
                x = torch.from_numpy(np.asarray(Image.open(f).convert("RGB")).copy()).permute(2, 0, 1)[None].to(dev)
                y = G(x.float() / 127.5 - 1)[0]
                Image.fromarray(((y + 1) * 127.5).clamp(0, 255).byte().permute(1, 2, 0).cpu().numpy()).save(out / f.name)
        return n / (time.perf_counter() - t)

    def ours(backend):
        out = tmp / f"ours-{backend}"
        t = time.perf_counter()
        s = translate(model, [src], out, backend=backend, skip_existing=False)
        assert s.converted == n, s
        return n / (time.perf_counter() - t)

    naive()  # warm-up (allocator, threads)
    ref = naive()
    rows = [("naive per-image eager loop (reference)", ref)]
    for backend in ("torch", "onnxruntime"):
        try:
            ours(backend)  # warm-up, exports the ONNX model once
            rows.append((f"ganctl translate --backend {backend}", ours(backend)))
        except Exception as exc:  # onnxruntime is an optional extra
            print(f"  (backend {backend} unavailable: {exc})")
    if dev.type == "cpu":  # the CPU fast path: a first run calibrates (its first 4 images in fp32), then int8
        from cyclegan_cli.infer.engine import measure_fast

        chosen, why = measure_fast(model.generator(), model.config)
        try:
            translate(model, [src], tmp / "ours-calibrate", precision="int8", skip_existing=False)
            t = time.perf_counter()
            translate(model, [src], tmp / "ours-int8", precision="int8", skip_existing=False)
            rows.append(("ganctl translate --precision int8", n / (time.perf_counter() - t)))
            print(f"  (--precision fast on this machine: {chosen}: {why}; its accuracy on real photos: "
                  "benchmarks/quality.py)")
        except Exception as exc:  # onnxruntime is an optional extra
            print(f"  (int8 unavailable: {exc})")
    # bf16: only where it is native (AMX / AVX512-BF16 / GPUs); elsewhere it is emulated and many times slower
    from cyclegan_cli.device import cpu_flags

    diff = None
    if dev.type == "cuda" or cpu_flags() & {"amx_bf16", "avx512_bf16"}:
        t = time.perf_counter()
        translate(model, [src], tmp / "ours-bf16", precision="bf16", skip_existing=False)
        rows.append(("ganctl translate --precision bf16", n / (time.perf_counter() - t)))
        diff = max(np.abs(np.asarray(Image.open(tmp / "ours-bf16" / f.name), dtype=int)
                          - np.asarray(Image.open(tmp / "ours-torch" / f.name), dtype=int)).max() for f in src.iterdir())
    print(f"translate, ResNet-9 ngf 64, 256x256 JPEG, {n} images:")
    for name, v in rows:
        print(f"  {name:<42} {v:7.3f} img/s   {v / ref:5.2f}x")
    if dev.type == "cuda":  # the GPU figures the issue asks for at 1024^2 too (nvJPEG decode, bf16, channels_last)
        big = tmp / "photos1024"
        big.mkdir()
        (src_small, n_small), (src, n) = (src, n), (big, max(4, n // 2))  # naive() and ours() read these
        for i in range(n):
            Image.fromarray(photo(1024, 1024, i)).save(big / f"{i:03d}.jpg", quality=92)
        naive()
        ref_big = naive()
        ours("torch")
        v_big = ours("torch")
        src, n = src_small, n_small
        print(f"  1024x1024: naive loop {ref_big:.3f} img/s, ganctl translate {v_big:.3f} img/s ({v_big / ref_big:.2f}x)")
    if diff is None:
        lacks("  translate --precision bf16", "AMX or AVX512-BF16 (bf16 is emulated and slower than fp32 elsewhere)")
    else:
        print(f"  (bf16 vs fp32 outputs: max difference {diff}/255)")
    if dev.type == "cpu" and not cpu_flags() & {"avx512_vnni", "avx_vnni", "amx_int8"}:
        lacks("  int8 with 8-bit weights (VNNI kernels, no reduce_range)", "AVX512-VNNI, AVX-VNNI or AMX-INT8")


def bench_tiling(tmp: Path, side: int):
    ck = resnet_checkpoint(tmp / "small", ngf=8, blocks=6)
    img = tmp / "huge.png"
    Image.fromarray(np.tile(photo(1024, 1024, 1), (side // 1024, side // 1024, 1))).save(img, compress_level=1)
    code = ("import sys;from cyclegan_cli.infer.translate import translate;"
            f"s=translate({str(ck)!r},[{str(img)!r}],{str(tmp / 'tiled')!r},backend='torch',max_memory=2);"
            "print(s.converted, [l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0])")
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    secs = time.perf_counter() - t
    converted, rss_kb = r.stdout.split()
    base = subprocess.run([sys.executable, "-c", "import torch,cyclegan_cli.infer.translate;"
                           "print([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0])"],
                          capture_output=True, text=True, check=True)
    print(f"tiling, {side}x{side} PNG, ResNet-6 ngf 8, --max-memory 2 (so that it tiles, as a full-size generator "
          "would at this size by default; the tiles' size, not the network's, sets the buffers):")
    print(f"  peak RSS {int(rss_kb) / 2**20:.2f} GiB  (interpreter + torch alone: {int(base.stdout) / 2**20:.2f} GiB;"
          f" the decoded image alone: {side * side * 3 / 2**30:.2f} GiB), {secs:.0f} s")


def _peak_rss_run(code: str) -> tuple[str, float, float]:
    """Run code in a fresh interpreter; (its stdout, peak RSS GiB, seconds)."""
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", code + "\nprint([l.split()[1] for l in open('/proc/self/status') "
                        "if l.startswith('VmHWM')][0])"], capture_output=True, text=True, check=True)
    *out, rss = r.stdout.split()
    return " ".join(out), int(rss) / 2**20, time.perf_counter() - t


def bench_fullres(tmp: Path, quick: bool):
    """One 1920x1080 photo through an official-size ResNet-9 (ngf 64): whole (the default now) against
    tiles under the former fixed 1 GiB budget (--max-memory 1), same run."""
    ck = resnet_checkpoint(tmp / "r9")
    img = tmp / "photo1080.png"
    Image.fromarray(photo(1920, 1080, 5)).save(img)
    rows = []
    for label, extra in (("whole image (default budget)", ""), ("tiled, 1 GiB budget (the old default)", ", max_memory=1")):
        code = ("from cyclegan_cli.infer.translate import translate\n"
                f"s = translate({str(ck)!r}, [{str(img)!r}], {str(tmp / ('fr' + str(len(rows))))!r}, backend='torch'{extra})")
        _, rss, secs = _peak_rss_run(code)
        rows.append((label, secs, rss))
    print("full resolution, one 1920x1080 photo, ResNet-9 ngf 64 (fresh process each, load included):")
    for label, secs, rss in rows:
        print(f"  {label:<40} {secs:6.1f} s  peak RSS {rss:.2f} GiB   {rows[1][1] / secs:4.2f}x the tiled time")


def bench_folder_rss(tmp: Path, n: int):
    """Peak RSS while translating a folder of n 1080p photos: flat when the queues are bounded."""
    src = tmp / "p1080"
    src.mkdir()
    base = photo(1920, 1080, 7)
    for i in range(n):
        Image.fromarray(np.roll(base, 37 * i, axis=1)).save(src / f"{i:03d}.jpg", quality=90)
    ck = resnet_checkpoint(tmp / "r9-small", ngf=8)
    code = f"""
import threading, time
from cyclegan_cli.infer.translate import translate
samples = []
def watch():
    while True:
        samples.append(int([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmRSS')][0]))
        time.sleep(0.25)
threading.Thread(target=watch, daemon=True).start()
translate({str(ck)!r}, [{str(src)!r}], {str(tmp / 'p1080-out')!r}, backend='torch', workers=2)
k = max(1, len(samples) // 5)
print(max(samples[:k]) / 2**20, max(samples[-k:]) / 2**20)"""
    out, rss, secs = _peak_rss_run(code)
    first, last = (float(x) for x in out.split())
    print(f"folder of {n} 1920x1080 JPEGs (ResNet-9 ngf 8, 2 workers): peak RSS {rss:.2f} GiB; RSS peak in the first "
          f"fifth of the run {first:.2f} GiB, in the last fifth {last:.2f} GiB (flat), {secs:.0f} s")


def bench_matmul(tmp: Path):
    """fp32 ResNet-9 at 256x256 (56.8 GMAC = 113.6 GFLOP per image) against this machine's fp32
    matrix-multiply rate, measured in the same run."""
    from cyclegan_cli.models import build

    G = build("resnet_generator", ngf=64, n_blocks=9).eval()
    x = torch.randn(1, 3, 256, 256)
    with torch.inference_mode():
        for _ in range(2):
            G(x)
        n, t = 0, time.perf_counter()
        while time.perf_counter() - t < 10 or n < 3:
            G(x)
            n += 1
        net = 113.6 * n / (time.perf_counter() - t)
        a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
        for _ in range(3):
            a @ b
        n, t = 0, time.perf_counter()
        while time.perf_counter() - t < 5:
            a @ b
            n += 1
        mm = 2 * 2048**3 * n / (time.perf_counter() - t) / 1e9
    print(f"fp32 ResNet-9 at 256^2: {net:.1f} GFLOP/s; torch.matmul 2048^2 fp32: {mm:.1f} GFLOP/s; ratio {net / mm:.2f} "
          f"({torch.get_num_threads()} threads)")


def bench_ray(tmp: Path, n: int):
    """--engine ray against the local engine on n small images, same run; where Ray's time goes."""
    from cyclegan_cli.infer.translate import translate

    try:
        import ray
    except ImportError:
        print("ray: not installed (pip install 'ganctl[ray]')")
        return
    src = tmp / "ray-small"
    src.mkdir()
    for i in range(n):
        Image.fromarray(photo(64, 64, i)).save(src / f"{i:03d}.png")
    ck = resnet_checkpoint(tmp / "ray-model", ngf=16, blocks=6)
    t = time.perf_counter()
    translate(str(ck), [src], tmp / "ray-local", backend="torch")
    local = time.perf_counter() - t
    t = time.perf_counter()
    ray.init(include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    t_init = time.perf_counter() - t
    first = []
    t = time.perf_counter()
    translate(str(ck), [src], tmp / "ray-out", backend="torch", engine="ray",
              on_result=lambda r: first.append(time.perf_counter() - t) if not first else None)
    total = time.perf_counter() - t
    ray.shutdown()
    print(f"ray, {n} 64x64 PNGs, ResNet-6 ngf 16, {os.cpu_count()} CPUs:")
    print(f"  local engine                                 {local:7.1f} s   1.00x")
    print(f"  --engine ray (cluster already up)            {total:7.1f} s   {local / total:5.2f}x")
    print(f"    of which: first result after {first[0]:.1f} s (actor start, model load, dataset planning); "
          f"starting the local cluster took {t_init:.1f} s more")
