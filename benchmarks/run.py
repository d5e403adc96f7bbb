"""ganctl benchmarks: each figure as a ratio against a reference measured in the same run.

    python benchmarks/run.py [--only translate,matmul,fullres,folder,tiling,video,stabilize,train,ray,gpu] [--quick]

(The quality of the shipped photo2sketch: python benchmarks/quality.py.)

References: a straightforward per-image eager PyTorch loop (translate), a naive OpenCV
read -> network -> write loop (video), the official CycleGAN training step re-created here with
the official network definitions and loss sequence (train). Absolute figures name the machine.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

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


def bench_video(tmp: Path, frames: int):
    import av
    import cv2

    from cyclegan_cli.checkpoints import load_model
    from cyclegan_cli.infer.translate import translate

    ck = resnet_checkpoint(tmp / "vid-model", ngf=32, blocks=6)
    src = tmp / "clip.mp4"
    out = av.open(str(src), mode="w")
    v = out.add_stream("libx264", rate=30)
    v.width, v.height, v.pix_fmt = 256, 256, "yuv420p"
    for i in range(frames):
        for p in v.encode(av.VideoFrame.from_ndarray(np.roll(photo(256, 256, 3), i, 1), format="rgb24")):
            out.mux(p)
    for p in v.encode(None):
        out.mux(p)
    out.close()
    model = load_model(ck)
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    G = model.generator().eval().to(dev)

    def naive():
        """OpenCV decode -> G -> H.264 (PyAV libx264, the same crf 18 / preset medium as ganctl), inline."""
        cap = cv2.VideoCapture(str(src))
        o = av.open(str(tmp / "naive.mp4"), mode="w")
        st = o.add_stream("libx264", rate=30)
        st.width, st.height, st.pix_fmt = 256, 256, "yuv420p"
        st.options = {"crf": "18", "preset": "medium"}
        t, n = time.perf_counter(), 0
        with torch.no_grad():
            while True:
                ok, bgr = cap.read()
                if not ok:
                    break
                x = torch.from_numpy(bgr[:, :, ::-1].copy()).permute(2, 0, 1)[None].to(dev).float() / 127.5 - 1
                y = ((G(x)[0] + 1) * 127.5).clamp(0, 255).byte().permute(1, 2, 0).cpu().numpy()
                for p in st.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(y), format="rgb24")):
                    o.mux(p)
                n += 1
        for p in st.encode(None):
            o.mux(p)
        o.close()
        return n / (time.perf_counter() - t)

    def ours(precision="auto"):
        t = time.perf_counter()
        translate(model, [src], tmp / "vid-out", skip_existing=False, precision=precision)
        return frames / (time.perf_counter() - t)

    frames_dir = tmp / "vid-frames"
    frames_dir.mkdir()
    with av.open(str(src)) as inp:
        for i, fr in enumerate(inp.decode(video=0)):
            Image.fromarray(fr.to_ndarray(format="rgb24")).save(frames_dir / f"{i:05d}.png", compress_level=1)

    def folder(precision="auto"):
        t = time.perf_counter()
        translate(model, [frames_dir], tmp / "vid-frames-out", skip_existing=False, precision=precision)
        return frames / (time.perf_counter() - t)

    naive()
    ours()  # warm-ups
    ref = naive()
    v = ours()
    f = folder()
    fast = None
    if dev.type == "cpu" and importlib.util.find_spec("onnxruntime") is not None:
        ours("int8")  # warm: the ONNX export and the calibration, cached for the timed runs
        fast = (ours("int8"), folder("int8"))
    print(f"video, 256x256, {frames} frames, ResNet-6 ngf 32, H.264 crf 18 preset medium on both sides:")
    print(f"  naive loop: OpenCV decode, G, libx264 inline (reference)  {ref:7.2f} frames/s   1.00x")
    print(f"  ganctl translate clip.mp4                                  {v:7.2f} frames/s   {v / ref:5.2f}x")
    print(f"  ganctl translate on the same frames as PNG files           {f:7.2f} frames/s   "
          f"(video / image folder: {v / f:.2f}x)")
    if fast:
        print(f"  ganctl translate clip.mp4 --precision int8                 {fast[0]:7.2f} frames/s   {fast[0] / ref:5.2f}x")
        print(f"  the PNG frames, --precision int8                           {fast[1]:7.2f} frames/s   "
              f"(video / image folder: {fast[0] / fast[1]:.2f}x)")


def bench_stabilize(tmp: Path, frames: int):
    """--stabilize (the default for videos) against --no-stabilize, 854x480, the shipped photo2sketch.
    Wall-clock time and the process's CPU time (all its threads): on a shared machine the second is
    the steadier figure, as long as the cores are not idle while waiting (one thread here, see below)."""
    import av

    from cyclegan_cli.infer.translate import translate
    from cyclegan_cli.zoo.resolve import load

    src = tmp / "clip480.mp4"
    out = av.open(str(src), mode="w")
    v = out.add_stream("libx264", rate=30)
    v.width, v.height, v.pix_fmt = 854, 480, "yuv420p"
    base = photo(854 + 2 * frames, 480, 5)
    for i in range(frames):
        for p in v.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(base[:, 2 * i:2 * i + 854]), format="rgb24")):
            out.mux(p)
    for p in v.encode(None):
        out.mux(p)
    out.close()
    model = load("photo2sketch")

    def run(stabilize: bool) -> tuple[float, float]:
        w, c = time.perf_counter(), time.process_time()
        translate(model, [src], tmp / "stab-out", skip_existing=False, video_options={"stabilize": stabilize})
        return (time.perf_counter() - w) / frames, (time.process_time() - c) / frames

    run(False)  # warm-up
    plain, stable = [], []
    for _ in range(2):  # interleaved: the load of a shared machine drifts
        plain.append(run(False))
        stable.append(run(True))
    pw, pc = min(t[0] for t in plain), min(t[1] for t in plain)
    sw, sc = min(t[0] for t in stable), min(t[1] for t in stable)
    print(f"video, 854x480, {frames} frames, the shipped photo2sketch (ResNet-6 ngf 32), H.264 crf 18, best of 2, "
          f"{torch.get_num_threads()} thread(s):")
    print(f"  ganctl translate clip.mp4 --no-stabilize (reference)  wall {pw:6.3f} s/frame  CPU {pc:6.3f} s/frame   1.00x")
    print(f"  ganctl translate clip.mp4 (--stabilize, the default)  wall {sw:6.3f} s/frame  CPU {sc:6.3f} s/frame   "
          f"time {sw / pw:4.2f}x wall, {sc / pc:4.2f}x CPU  (target <= 1.3x)")


def bench_train(tmp: Path, iters: int):
    import torch.nn.functional as F

    from cyclegan_cli.models.cyclegan import init_weights

    a, b = tmp / "A", tmp / "B"
    for d in (a, b):
        d.mkdir()
        for i in range(4):
            Image.fromarray(photo(300, 300, i + (10 if d == b else 0))).save(d / f"{i}.jpg")

    def official_step_time():
        """The official CycleGANModel.optimize_parameters order, nets built from the official layout."""
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        from test_translate import official_resnet

        torch.manual_seed(0)
        dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        G_A, G_B = official_resnet(64, 9), official_resnet(64, 9)
        D_A, D_B = build("patch_discriminator"), build("patch_discriminator")
        for n in (G_A, G_B, D_A, D_B):
            init_weights(n)
            n.to(dev)
        opt_G = torch.optim.Adam(list(G_A.parameters()) + list(G_B.parameters()), lr=2e-4, betas=(0.5, 0.999))
        opt_D = torch.optim.Adam(list(D_A.parameters()) + list(D_B.parameters()), lr=2e-4, betas=(0.5, 0.999))
        mse = torch.nn.MSELoss()
        times = []
        for it in range(iters + 1):
            t = time.perf_counter()
            real_A = torch.from_numpy(np.asarray(Image.open(a / f"{it % 4}.jpg").resize((286, 286)))).permute(2, 0, 1)[None].float()[:, :, :256, :256] / 127.5 - 1
            real_B = torch.from_numpy(np.asarray(Image.open(b / f"{it % 4}.jpg").resize((286, 286)))).permute(2, 0, 1)[None].float()[:, :, :256, :256] / 127.5 - 1
            real_A, real_B = real_A.to(dev), real_B.to(dev)
            fake_B, fake_A = G_A(real_A), G_B(real_B)
            rec_A, rec_B = G_B(fake_B), G_A(fake_A)
            for p in list(D_A.parameters()) + list(D_B.parameters()):
                p.requires_grad_(False)
            opt_G.zero_grad()
            pa, pb = D_A(fake_B), D_B(fake_A)
            loss = (F.l1_loss(G_A(real_B), real_B) * 5 + F.l1_loss(G_B(real_A), real_A) * 5
                    + mse(pa, torch.ones_like(pa)) + mse(pb, torch.ones_like(pb))
                    + F.l1_loss(rec_A, real_A) * 10 + F.l1_loss(rec_B, real_B) * 10)
            loss.backward()
            opt_G.step()
            for p in list(D_A.parameters()) + list(D_B.parameters()):
                p.requires_grad_(True)
            opt_D.zero_grad()
            for D, real, fake in ((D_A, real_B, fake_B), (D_B, real_A, fake_A)):
                pr, pf = D(real), D(fake.detach())
                ((mse(pr, torch.ones_like(pr)) + mse(pf, torch.zeros_like(pf))) * 0.5).backward()
            opt_D.step()
            if dev.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t)
        return float(np.mean(times[1:]))

    def ours_step_time():
        from cyclegan_cli.train.cyclegan import train_cyclegan

        t = time.perf_counter()
        run = train_cyclegan(a, b, runs_dir=tmp / "runs", name="bench", max_steps=iters + 1, log_every=1,
                             sample_every=10**9, save_every=10**9)
        import json

        rows = [json.loads(l) for l in (run / "stats.jsonl").read_text().splitlines()]
        del t
        return float(np.mean([r["sec_per_it"] for r in rows[1:]]))

    ref = official_step_time()
    ours = ours_step_time()
    print(f"train, CycleGAN ResNet-9 ngf 64, 256x256, batch 1, {iters} iterations after a warm-up:")
    print(f"  official step re-created (reference)       {ref:7.2f} s/it   1.00x")
    print(f"  ganctl train                               {ours:7.2f} s/it   {ours / ref:5.2f}x  (lower is better)")


def bench_gpu(tmp: Path, quick: bool):
    """The GPU rows: nvJPEG decode against Pillow, translate at 1024^2 in fp32 / bf16 / fp16, with and
    without channels_last, with CUDA graphs (--compile), and a one-GPU torchrun training run. Each row
    against its same-run reference; a row that fails says so in one line and the others still run."""
    if not torch.cuda.is_available():
        lacks("gpu rows (nvJPEG, bf16/fp16, channels_last, CUDA graphs, torchrun)", "a CUDA GPU")
        return
    from cyclegan_cli.checkpoints import load_model
    from cyclegan_cli.infer.engine import Translator

    n = 8 if quick else 32
    src = tmp / "gpu1024"
    src.mkdir()
    for i in range(n):
        Image.fromarray(photo(1024, 1024, i)).save(src / f"{i:03d}.jpg", quality=92)
    blobs = [f.read_bytes() for f in sorted(src.iterdir())]
    model = load_model(resnet_checkpoint(tmp / "gpu-r9"))
    print(f"gpu, {torch.cuda.get_device_name(0)}, ResNet-9 ngf 64, {n} 1024x1024 JPEGs:")

    def row(name, fn):
        try:
            fn()  # warm-up (cuDNN autotuning, graph capture)
            torch.cuda.synchronize()
            t = time.perf_counter()
            fn()
            torch.cuda.synchronize()
            return n / (time.perf_counter() - t)
        except Exception as exc:  # one line, the other rows go on
            print(f"  {name}: failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
            return None

    def show(name, v, ref, unit="img/s"):
        if v is not None and ref:
            print(f"  {name:<46} {v:8.2f} {unit}   {v / ref:5.2f}x")

    from torchvision.io import ImageReadMode, decode_jpeg

    def pil():
        for b in blobs:
            np.asarray(Image.open(__import__("io").BytesIO(b)).convert("RGB"))

    def nvjpeg():
        data = [torch.frombuffer(bytearray(b), dtype=torch.uint8) for b in blobs]
        decode_jpeg(data, mode=ImageReadMode.RGB, device="cuda")

    ref = row("Pillow decode", pil)
    show("Pillow decode (reference)", ref, ref)
    show("nvJPEG decode (batched, on the GPU)", row("nvJPEG decode", nvjpeg), ref)
    batch = np.stack([np.asarray(Image.open(f).convert("RGB")) for f in sorted(src.iterdir())[:4]])
    base = None
    for name, kw in (("fp32, contiguous (reference)", dict(precision="fp32", channels_last=False)),
                     ("fp32, channels_last", dict(precision="fp32", channels_last=True)),
                     ("bf16, channels_last", dict(precision="bf16", channels_last=True)),
                     ("fp16, channels_last", dict(precision="fp16", channels_last=True)),
                     ("bf16, channels_last, CUDA graphs (--compile)", dict(precision="bf16", channels_last=True, compile=True))):
        try:
            tr = Translator(model.generator(), model.config, device="cuda", backend="torch", **kw)
        except Exception as exc:
            print(f"  translate {name}: failed: {type(exc).__name__}: {exc}")
            continue
        v = row(name, lambda: [tr(batch) for _ in range(n // 4)])
        base = base or v
        show(f"translate 1024^2 {name}", v, base)
    a, b = tmp / "gA", tmp / "gB"
    for d in (a, b):
        d.mkdir()
        for i in range(4):
            Image.fromarray(photo(300, 300, i + (10 if d == b else 0))).save(d / f"{i}.jpg")
    cmd = ["torchrun", "--standalone", "--nproc_per_node", "1", "-m", "cyclegan_cli", "train", str(a), str(b),
           "--runs-dir", str(tmp / "gruns"), "--name", "tr1", "--max-steps", "20", "--size", "256", "--device", "cuda",
           "--log-every", "1", "-q"]
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    if r.returncode:
        print(f"  torchrun, 1 GPU: failed (exit {r.returncode}): {(r.stderr.strip().splitlines() or [''])[-1]}")
    else:
        import json

        rows = [json.loads(line) for line in (tmp / "gruns" / "tr1" / "stats.jsonl").read_text().splitlines()]
        secs = float(np.median([row["sec_per_it"] for row in rows[2:]])) if len(rows) > 2 else float("nan")
        print(f"  torchrun, 1 GPU, CycleGAN 256^2, 20 steps: {time.perf_counter() - t:.1f} s in all, "
              f"{secs:.3f} s/step after the first two")


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
