"""What a distilled student is worth: speed against its teacher (same run), fidelity, quality, flicker.

    python benchmarks/distill.py [--official] [--pair TEACHER=STUDENT ...] [--clips DIR] [--cache DIR] [--json]

--official: an official-size teacher (ResNet-9, ngf 64, the official layout; random weights, as
  timing needs no training) against the student `ganctl distill` chooses for it by default
  (--speedup 8), timed on this CPU: per-image ms at 512 px in fp32 and with --precision fast,
  interleaved in one process, and the whole `ganctl translate` process on 24 such photos.
--pair TEACHER=STUDENT (repeatable): a trained student (a run or checkpoint) against its teacher
  (any --model spec; TEACHER:BtoA for a CycleGAN's other side):
  - MACs and parameters; per-image ms at 512 px, fp32 and --precision fast;
  - PSNR of the student to the teacher on the held-out photos of benchmarks/quality.py, and the
    teacher's PSNR to itself on the same photos shifted 1 px and 4 px or re-encoded as JPEG q95 (how consistent
    the teacher is with itself: a noisy teacher cannot be copied pixel for pixel);
  - quality.py's three figures (against pencilSketch) for both;
  - the warping error each adds per frame (no --stabilize) on the real clips of benchmarks/temporal.py
    (--clips DIR, made by benchmarks/clips.py), and the student's added error over the teacher's;
  - the CPU time the distillation took (kept in the run's resume state).
Each ratio is measured in this run; absolute figures name the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_common import machine  # noqa: E402
from quality import PHOTOS, load_512, pencil, psnr, scores  # noqa: E402

REPEATS = 3


def translators(net, config, precisions=("fp32", "fast")):
    from cyclegan_cli.infer.engine import Translator

    return {p: Translator(net, config, device="cpu", precision=p, cache_dir=tempfile.mkdtemp(prefix="ganctl-bench-"))
            for p in precisions}


def per_image_ms(runners: dict, images: list) -> dict:
    """Best per-image ms of each runner over REPEATS passes, the runners interleaved pass by pass."""
    for r in runners.values():  # warm-up (and int8 calibration, for fast)
        for im in images:
            r.run_image(im)
    best = {k: float("inf") for k in runners}
    for _ in range(REPEATS):
        for k, r in runners.items():
            t0 = time.perf_counter()
            for im in images:
                r.run_image(im)
            best[k] = min(best[k], (time.perf_counter() - t0) / len(images) * 1000)
    return best


def whole_process(model: Path, folder: Path, precision: str) -> float:
    """Seconds of `ganctl translate FOLDER --model MODEL` end to end (a fresh output folder)."""
    out = Path(tempfile.mkdtemp(prefix="ganctl-bench-out-"))
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "cyclegan_cli", "translate", str(folder), "--model", str(model), "--out",
                    str(out), "--precision", precision, "-q"], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def official(tmp: Path) -> dict:
    import torch

    from cyclegan_cli.checkpoints import ModelConfig, save_checkpoint
    from cyclegan_cli.models import build
    from cyclegan_cli.models.cost import macs, parameters
    from cyclegan_cli.train.student_shape import choose_student, describe

    torch.manual_seed(0)
    t_args = {"input_nc": 3, "output_nc": 3, "ngf": 64, "n_blocks": 9}
    teacher = build("resnet_generator", **t_args).eval()
    choice = choose_student(teacher, 8.0)
    student = build("student_generator", **choice.student).eval()
    t_dir = save_checkpoint(tmp / "teacher", ModelConfig(kind="cyclegan", nets={"G_A": {"arch": "resnet_generator", "args": t_args}}),
                            {"G_A": teacher})
    s_dir = save_checkpoint(tmp / "student", ModelConfig(kind="distill", nets={"G_A": {"arch": "student_generator", "args": choice.student}}),
                            {"G_A": student})
    rng = np.random.default_rng(0)
    photos = tmp / "photos"
    photos.mkdir()
    for i in range(24):
        Image.fromarray(rng.integers(0, 256, (512, 512, 3), dtype=np.uint8)).save(photos / f"p{i:02d}.png")
    images = [np.asarray(Image.open(p)) for p in sorted(photos.iterdir())[:2]]
    from cyclegan_cli.checkpoints import load_model

    lt, ls = load_model(t_dir), load_model(s_dir)
    ms = {f"teacher {k}": v for k, v in per_image_ms(translators(lt.generator("AtoB"), lt.config), images).items()}
    ms.update({f"student {k}": v for k, v in per_image_ms(translators(ls.generator("AtoB"), ls.config), images).items()})
    # each twice: the first run of --precision fast exports and calibrates the model into the cache
    # (GANCTL_HOME), the second finds it there, as every later run of a user's does
    proc = {f"{who} {p}{again}": whole_process(d, photos, p) for who, d in (("teacher", t_dir), ("student", s_dir))
            for p in ("fp32", "fast") for again in ("", " again")}
    return {"student": describe(choice.student), "chooser": choice.to_dict(),
            "macs_g": {"teacher": macs(teacher, 256, 256) / 1e9, "student": macs(student, 256, 256) / 1e9},
            "params_m": {"teacher": parameters(teacher) / 1e6, "student": parameters(student) / 1e6},
            "per_image_ms_512": ms, "whole_process_s_24": proc,
            "ratios": {"fp32 per image": ms["teacher fp32"] / ms["student fp32"],
                       "student fast vs teacher fp32": ms["teacher fp32"] / ms["student fast"],
                       "fast vs fast": ms["teacher fast"] / ms["student fast"],
                       "whole process fp32, 24 photos": proc["teacher fp32"] / proc["student fp32"],
                       "whole process, student fast vs teacher fp32 (first run)": proc["teacher fp32"] / proc["student fast"],
                       "whole process, student fast vs teacher fp32 (cached)": proc["teacher fp32 again"] / proc["student fast again"]}}


def distill_cpu_seconds(spec: str) -> float | None:
    from cyclegan_cli.checkpoints import load_resume
    from cyclegan_cli.zoo.resolve import resolve_model

    try:
        state = load_resume(resolve_model(spec).path)
    except Exception:
        return None
    return (state or {}).get("task", {}).get("cpu_s")


def clip_frames(clip: Path, limit: int | None):
    from cyclegan_cli.data.video import read_frames

    frames = []
    for f in read_frames(clip):
        frames.append(f)
        if limit and len(frames) >= limit:
            break
    return frames


SHIFTS, MARGIN = (1, 4), 16
SELF_KEYS = tuple(f"shift{s}" for s in SHIFTS) + ("jpeg95",)


def self_psnr(run, rgb: np.ndarray, out: np.ndarray) -> dict:
    """PSNR of a network's output to its own output on the same photo changed in ways no one sees: shifted
    diagonally by 1 px and by 4 px (crops of one size, compared on the overlap less MARGIN px at the
    borders) and re-encoded as a JPEG at quality 95. Low figures mean a noisy teacher, whose pixels no
    student can be expected to copy. Both shifts, because a texture locked to the network's
    down-sampling grid (a stride of 4) comes back whole after a 4 px shift and not after 1 px: only the
    1 px figure sees it."""
    import io

    # both crops of one size, 8 px short of the photo's (a multiple of the grid where the photo's is), so
    # that neither is padded and only the shift differs
    hh, ww = rgb.shape[0] - 8, rgb.shape[1] - 8
    base = run.run_image(np.ascontiguousarray(rgb[:hh, :ww]))
    res = {}
    for s in SHIFTS:
        moved = run.run_image(np.ascontiguousarray(rgb[s:s + hh, s:s + ww]))
        a = base[s + MARGIN:hh - MARGIN, s + MARGIN:ww - MARGIN]
        b = moved[MARGIN:hh - s - MARGIN, MARGIN:ww - s - MARGIN]
        res[f"shift{s}"] = psnr(a, b)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=95)
    again = run.run_image(np.asarray(Image.open(buf).convert("RGB")))
    return res | {"jpeg95": psnr(again, out)}


def pair(teacher_spec: str, student_spec: str, clips: list, cache: Path | None, frames_limit: int | None) -> dict:
    from cyclegan_cli.infer.temporal import warping_error
    from cyclegan_cli.models.cost import macs, parameters
    from cyclegan_cli.zoo.resolve import load

    name, _, direction = teacher_spec.partition(":")
    direction = direction or "AtoB"
    lt, ls = load(name), load(student_spec)
    t_net, s_net = lt.generator(direction), ls.generator("AtoB")
    t_run, s_run = translators(t_net, lt.config), translators(s_net, ls.config)
    held = [load_512(f) for f in PHOTOS]
    ms = per_image_ms({("teacher", k): v for k, v in t_run.items()} | {("student", k): v for k, v in s_run.items()},
                      held[:1])
    ms_t, ms_s = ({k: v for (who, k), v in ms.items() if who == w} for w in ("teacher", "student"))
    rows = []
    for f, rgb in zip(PHOTOS, held):
        ref = pencil(rgb)
        ot, os_ = t_run["fp32"].run_image(rgb), s_run["fp32"].run_image(rgb)
        rows.append({"photo": f.name, "psnr": psnr(os_, ot), "teacher": scores(ot, ref), "student": scores(os_, ref),
                     "teacher_self_psnr": self_psnr(t_run["fp32"], rgb, ot)})
    flicker = []
    for label, clip in clips:
        frames = clip_frames(clip, frames_limit)
        cached = cache / f"{name}-{clip.stem}-{len(frames)}.npz" if cache and direction == "AtoB" else None
        if cached is not None and cached.exists():
            with np.load(cached) as z:
                out_t = list(z["outputs"])
        else:
            out_t = [t_run["fp32"].run_image(f) for f in frames]
        out_s = [s_run["fp32"].run_image(f) for f in frames]
        et, es = warping_error(frames, out_t)["added"], warping_error(frames, out_s)["added"]
        flicker.append({"clip": label, "frames": len(frames), "teacher_added": et, "student_added": es,
                        "ratio": es / et if et > 0 else None})
    mean = lambda who, k: float(np.mean([r[who][k] for r in rows]))  # noqa: E731
    return {"teacher": teacher_spec, "student": student_spec,
            "macs_g_512": {"teacher": macs(t_net, 512, 512) / 1e9, "student": macs(s_net, 512, 512) / 1e9},
            "params_m": {"teacher": parameters(t_net) / 1e6, "student": parameters(s_net) / 1e6},
            "per_image_ms_512": {"teacher": ms_t, "student": ms_s},
            "speedup_fp32": ms_t["fp32"] / ms_s["fp32"], "speedup_student_fast_vs_teacher_fp32": ms_t["fp32"] / ms_s["fast"],
            "psnr_mean": float(np.mean([r["psnr"] for r in rows])), "psnr_worst": float(min(r["psnr"] for r in rows)),
            "teacher_self_psnr_mean": {k: float(np.mean([r["teacher_self_psnr"][k] for r in rows])) for k in SELF_KEYS},
            "quality": {who: {k: mean(who, k) for k in ("mad", "edges", "grid")} for who in ("teacher", "student")},
            "photos": rows, "flicker": flicker, "distill_cpu_s": distill_cpu_seconds(student_spec)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--official", action="store_true")
    ap.add_argument("--pair", action="append", default=[], metavar="TEACHER=STUDENT")
    ap.add_argument("--clips", type=Path, help="real clips (benchmarks/clips.py --out)")
    ap.add_argument("--cache", type=Path, help="benchmarks/temporal.py --cache: the teacher's per-frame outputs")
    ap.add_argument("--frames", type=int, help="frames a clip (default: all)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    import torch

    from temporal import real_clips

    torch.set_num_threads(max(1, torch.get_num_threads()))
    os.environ.setdefault("GANCTL_HOME", tempfile.mkdtemp(prefix="ganctl-home-"))
    out = {"machine": machine(), "threads": torch.get_num_threads()}
    if a.official:
        with tempfile.TemporaryDirectory() as d:
            out["official"] = official(Path(d))
    clips = real_clips(a.clips, []) if a.clips else []
    out["pairs"] = [pair(*p.split("=", 1), clips, a.cache, a.frames) for p in a.pair]
    if a.json:
        print(json.dumps(out, indent=1))
        return
    print(f"machine: {out['machine']}, {out['threads']} threads")
    if "official" in out:
        o = out["official"]
        print(f"official-size teacher (ResNet-9, ngf 64) against the default student ({o['student']}):")
        print(f"  GMAC at 256 px {o['macs_g']['teacher']:.1f} -> {o['macs_g']['student']:.2f}; "
              f"parameters {o['params_m']['teacher']:.2f} M -> {o['params_m']['student']:.2f} M")
        print("  per image at 512 px: " + ", ".join(f"{k} {v:.0f} ms" for k, v in o["per_image_ms_512"].items()))
        print("  whole process, 24 photos: " + ", ".join(f"{k} {v:.1f} s" for k, v in o["whole_process_s_24"].items()))
        print("  ratios: " + ", ".join(f"{k} {v:.1f}x" for k, v in o["ratios"].items()))
    for p in out["pairs"]:
        print(f"{p['student']} distilled from {p['teacher']}:")
        print(f"  GMAC at 512 px {p['macs_g_512']['teacher']:.1f} -> {p['macs_g_512']['student']:.2f}; parameters "
              f"{p['params_m']['teacher']:.2f} M -> {p['params_m']['student']:.2f} M")
        t, s = p["per_image_ms_512"]["teacher"], p["per_image_ms_512"]["student"]
        print(f"  per image at 512 px: teacher fp32 {t['fp32']:.0f} ms, fast {t['fast']:.0f} ms; student fp32 "
              f"{s['fp32']:.0f} ms, fast {s['fast']:.0f} ms; speed-up fp32 {p['speedup_fp32']:.1f}x, student fast vs "
              f"teacher fp32 {p['speedup_student_fast_vs_teacher_fp32']:.1f}x")
        print(f"  PSNR to the teacher on {len(p['photos'])} held-out photos: mean {p['psnr_mean']:.1f} dB, worst "
              f"{p['psnr_worst']:.1f} dB (" + ", ".join(f"{r['photo'].split('.')[0]} {r['psnr']:.1f}" for r in p["photos"]) + ")")
        ts = p["teacher_self_psnr_mean"]
        print("  the teacher to itself (its own consistency): mean "
              + ", ".join(f"{ts[f'shift{s}']:.1f} dB with the photo shifted {s} px" for s in SHIFTS)
              + f", {ts['jpeg95']:.1f} dB re-encoded as JPEG q95")
        q = p["quality"]
        print("  quality (mad / edges / grid): teacher {mad:.1f} / {edges:.2f} / {grid:.2f}".format(**q["teacher"])
              + ", student {mad:.1f} / {edges:.2f} / {grid:.2f}".format(**q["student"]))
        for c in p["flicker"]:
            print(f"  {c['clip']}: added warping error per frame, teacher {c['teacher_added']:.3f}, student "
                  f"{c['student_added']:.3f} ({c['ratio']:.2f}x)" if c["ratio"] is not None else f"  {c['clip']}: -")
        if p["distill_cpu_s"]:
            print(f"  distilled in {p['distill_cpu_s'] / 3600:.2f} h of CPU time")


if __name__ == "__main__":
    main()
