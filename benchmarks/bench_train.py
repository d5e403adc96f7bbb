"""Benchmark rows on training (against the official CycleGAN step re-created here) and on a GPU."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from bench_common import lacks, photo, resnet_checkpoint
from cyclegan_cli.models import build  # noqa: E402  (bench_common puts the repository on sys.path)


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
