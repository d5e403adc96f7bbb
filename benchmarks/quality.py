"""How good is the shipped photo2sketch? Held-out real photos at 512 px, three figures per photo.

    python benchmarks/quality.py [--model photo2sketch] [--json]
    python benchmarks/quality.py --choose photo2sketch-paired,photo2sketch-cut,photo2sketch-fast,photo2sketch-cyclegan [--set-alias photo2sketch]

For each photo (examples/photos and benchmarks/heldout: never trained on), the model's sketch is
compared with the pencil sketch that defines domain B (``cv2.pencilSketch(sigma_s=40,
sigma_r=0.07, shade_factor=0.04)``) of the same photo at the same size:

- mad: mean absolute difference in gray levels (0-255). Target <= 30.
- edges: correlation of edge magnitudes (Sobel after a Gaussian blur of sigma 1.5). Target >= 0.55.
- grid: spectral power at periods 2 and 4 in x and y over the power just beside those
  frequencies (the worst of the four); about 1 for clean images. Target <= 3.

References computed in the same run: an all-white image, and OpenCV's own sketch computed at half
the scale and scaled back (a "close but not identical" sketch). The reverse direction (sketch ->
photo) is reported as it is: mad and edge correlation against the original photo.

Which model the name ``photo2sketch`` (and ``sketch``) points to is decided here, by :func:`choose`:
``--choose A,B,...`` scores each model on the same photos, prints the README's table (the pick
first) and names the pick; ``--set-alias photo2sketch`` then points that alias entry of
pretrained/zoo.json at it (recording the model it named before, which ``ganctl`` mentions once when
the old name is used).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
PHOTOS = sorted((REPO / "examples" / "photos").glob("*.jpg")) + sorted((REPO / "benchmarks" / "heldout").glob("*.jpg"))
TARGETS = {"mad": 30.0, "edges": 0.55, "grid": 3.0}


def pencil(rgb: np.ndarray) -> np.ndarray:
    gray, _ = cv2.pencilSketch(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), sigma_s=40, sigma_r=0.07, shade_factor=0.04)
    return gray


def gray(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) if rgb.ndim == 3 else rgb


def edge_magnitude(g: np.ndarray) -> np.ndarray:
    b = cv2.GaussianBlur(g.astype(np.float32), (0, 0), 1.5)
    return np.hypot(cv2.Sobel(b, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(b, cv2.CV_32F, 0, 1, ksize=3))


def edge_correlation(a: np.ndarray, b: np.ndarray) -> float:
    ea, eb = edge_magnitude(gray(a)).ravel(), edge_magnitude(gray(b)).ravel()
    if ea.std() == 0 or eb.std() == 0:
        return 0.0
    return float(np.corrcoef(ea, eb)[0, 1])


def grid_score(img: np.ndarray) -> float:
    """max over axis in (x, y) and period in (2, 4) of P(f) / mean P(f +- 2..4), P the power
    spectrum summed over the other axis (a grid periodic in x puts its power at one x frequency,
    whatever it does along y)."""
    g = gray(img).astype(np.float64)
    g -= g.mean()
    power = np.abs(np.fft.fft2(g)) ** 2
    worst = 0.0
    for axis in (0, 1):
        profile = power.sum(axis=axis)  # axis 0 summed: a profile over x frequencies
        n = len(profile)
        for period in (2, 4):
            k = round(n / period)
            beside = [profile[(k + d) % n] for d in (-4, -3, -2, 2, 3, 4)]
            worst = max(worst, float(profile[k % n] / max(np.mean(beside), 1e-12)))
    return worst


def load_512(f: Path) -> np.ndarray:
    rgb = np.asarray(Image.open(f).convert("RGB"))
    s = 512 / max(rgb.shape[:2])
    if s != 1:
        rgb = np.asarray(Image.fromarray(rgb).resize((round(rgb.shape[1] * s), round(rgb.shape[0] * s)), Image.LANCZOS))
    return rgb


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def scores(out: np.ndarray, ref: np.ndarray) -> dict:
    return {"mad": float(np.abs(gray(out).astype(np.float32) - ref.astype(np.float32)).mean()),
            "edges": edge_correlation(out, ref), "grid": grid_score(out)}


def shortfall(mean: dict, worst_grid: float) -> float:
    """How far a model falls short of TARGETS: the mean mad above 30, the mean edge correlation
    below 0.55 and the worst photo's grid score above 3, each relative to its target, summed; 0 when
    all three are met. (examples/photo2sketch/pick.py picks a run's checkpoint by the same measure.)"""
    t = TARGETS
    return (max(0.0, mean["mad"] / t["mad"] - 1) + max(0.0, (t["edges"] - mean["edges"]) / t["edges"])
            + max(0.0, worst_grid / t["grid"] - 1))


def choose(shortfalls: dict[str, float]) -> str:
    """The rule for the default sketch model: the lowest shortfall on the held-out photos (a tie
    goes to the model named first)."""
    return min(shortfalls, key=lambda name: shortfalls[name])


def set_alias(alias: str, pick: str, why: str, manifest_file: Path | None = None) -> dict:
    """Point the alias entry ``alias`` of pretrained/zoo.json at ``pick``; where it named another
    model before, that one becomes its ``previously`` (what ganctl's one-line note names)."""
    manifest_file = manifest_file or REPO / "pretrained" / "zoo.json"
    manifest = json.loads(manifest_file.read_text())
    models = manifest["models"]
    old = models.get(alias, {"kind": "alias", "aliases": []})
    if old.get("kind") != "alias":
        sys.exit(f"{alias} is a model in {manifest_file}, not an alias: ship it under its method's name first")
    if pick not in models or models[pick].get("kind") == "alias":
        sys.exit(f"{pick} is not a model in {manifest_file}")
    previously = old.get("alias_of") if old.get("alias_of") not in (None, pick) else old.get("previously")
    models[alias] = {"kind": "alias", "alias_of": pick, "aliases": old.get("aliases", []),
                     "chosen_by": "benchmarks/quality.py", "previously": previously,
                     "description": f"the photo -> pencil sketch model that benchmarks/quality.py --choose scores best "
                                    f"on the held-out photos ({why})"}
    manifest_file.write_text(json.dumps(manifest, indent=2) + "\n")
    return models[alias]


def evaluate(spec: str, int8_too: bool = True, save: Path | None = None) -> dict:
    """Every figure for the model ``spec`` (a --model spec): per photo, means, targets met."""
    from cyclegan_cli.infer.engine import Translator
    from cyclegan_cli.zoo.resolve import load

    model = load(spec)
    fwd = Translator(model.generator("AtoB"), model.config, device="cpu", backend="torch")
    # the reverse direction, where the model has one (pix2pix translates one way)
    rev = (Translator(model.generator("BtoA"), model.config, device="cpu", backend="torch")
           if "G_B" in model.nets else None)
    int8 = None
    if int8_too:
        import importlib.util
        import tempfile

        if importlib.util.find_spec("onnxruntime") is not None:
            from cyclegan_cli.infer.quantize import CALIBRATION_IMAGES

            cache = tempfile.mkdtemp(prefix="ganctl-int8-")  # a fresh calibration, not a stored one
            int8 = Translator(model.generator("AtoB"), model.config, device="cpu", precision="int8", cache_dir=cache)
            for f in PHOTOS[:CALIBRATION_IMAGES]:  # calibrated on the first photos, as a job would be
                int8.run_image(load_512(f))
            assert int8.backend.calibrated
    rows = []
    for f in PHOTOS:
        rgb = load_512(f)
        ref = pencil(rgb)
        out = fwd.run_image(rgb)
        back = None if rev is None else rev.run_image(np.repeat(ref[:, :, None], 3, 2))  # sketch -> photo, from the true sketch
        half = cv2.resize(pencil(cv2.resize(rgb, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)),
                          (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_LINEAR)
        row = {"photo": f.name, "size": f"{rgb.shape[1]}x{rgb.shape[0]}", **scores(out, ref),
               "white": scores(np.full_like(ref, 255), ref), "opencv_half_scale": scores(half, ref),
               "int8_psnr": None if int8 is None else psnr(int8.run_image(rgb), out),
               "int8_calibrated_on_it": int8 is not None and f in PHOTOS[:CALIBRATION_IMAGES],
               "reverse": None if back is None else {"mad": float(np.abs(back.astype(np.float32) - rgb.astype(np.float32)).mean()),
                                                     "edges": edge_correlation(back, rgb)}}
        rows.append(row)
        if save:
            save.mkdir(parents=True, exist_ok=True)
            strip = np.concatenate([rgb, np.repeat(ref[:, :, None], 3, 2), out] + ([] if back is None else [back]), axis=1)
            Image.fromarray(strip).save(save / f"{f.stem}.jpg", quality=90)
    mean = {k: float(np.mean([r[k] for r in rows])) for k in ("mad", "edges", "grid")}
    worst_grid = max(r["grid"] for r in rows)
    met = {"mad": all(r["mad"] <= TARGETS["mad"] for r in rows), "edges": all(r["edges"] >= TARGETS["edges"] for r in rows),
           "grid": worst_grid <= TARGETS["grid"]}
    return {"model": spec, "photos": rows, "mean": mean, "worst_grid": worst_grid,
            "shortfall": shortfall(mean, worst_grid), "targets": TARGETS, "met": met, "int8": int8 is not None}


def cell(s: dict) -> str:
    return f"{s['mad']:.1f} / {s['edges']:.2f} / {s['grid']:.2f}"


def print_choice(results: dict[str, dict], pick: str) -> None:
    """The README's table: one column a model, the pick first, then OpenCV at half scale."""
    names = sorted(results, key=lambda n: (n != pick, results[n]["shortfall"]))
    first = results[names[0]]["photos"]
    print("| held-out photo | " + " | ".join(names) + " | OpenCV at half scale (a near miss, for scale) |")
    print("|---" * (len(names) + 2) + "|")
    for i, row in enumerate(first):
        print(f"| {row['photo']} | " + " | ".join(cell(results[n]["photos"][i]) for n in names)
              + f" | {cell(row['opencv_half_scale'])} |")
    half = {k: float(np.mean([r["opencv_half_scale"][k] for r in first])) for k in ("mad", "edges", "grid")}
    print("| mean | " + " | ".join(cell(results[n]["mean"]) for n in names) + f" | {cell(half)} |")
    print("| shortfall | " + " | ".join(f"{results[n]['shortfall']:.2f}" for n in names)
          + f" | {shortfall(half, max(r['opencv_half_scale']['grid'] for r in first)):.2f} |")
    print(f"rule: the lowest shortfall (how far the mean mad is above {TARGETS['mad']:g}, the mean edge correlation "
          f"below {TARGETS['edges']:g} and the worst grid above {TARGETS['grid']:g}, each relative to its target, summed) "
          f"-> {pick}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="photo2sketch")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--no-int8", action="store_true", help="skip the int8 (--precision int8) comparison")
    ap.add_argument("--save", type=Path, help="write each photo | reference | output | reverse strip here")
    ap.add_argument("--choose", help="score these models (comma-separated) and name the one with the lowest shortfall")
    ap.add_argument("--set-alias", metavar="NAME", help="with --choose: point the alias NAME of pretrained/zoo.json at the pick")
    a = ap.parse_args()
    import torch

    torch.set_num_threads(max(1, torch.get_num_threads()))
    if a.choose:
        results = {m: evaluate(m, int8_too=False) for m in a.choose.split(",")}
        pick = choose({m: r["shortfall"] for m, r in results.items()})
        if a.json:
            print(json.dumps({"models": results, "pick": pick}, indent=1))
        else:
            print_choice(results, pick)
        if a.set_alias:
            why = "shortfall " + ", ".join(f"{m} {r['shortfall']:.2f}" for m, r in sorted(results.items(), key=lambda x: x[1]["shortfall"]))
            set_alias(a.set_alias, pick, why)
            print(f"{a.set_alias} -> {pick} (pretrained/zoo.json)", file=sys.stderr)
        return
    if a.set_alias:
        sys.exit("--set-alias goes with --choose")
    res = evaluate(a.model, int8_too=not a.no_int8, save=a.save)
    rows, mean, met = res["photos"], res["mean"], res["met"]
    if a.json:
        print(json.dumps({k: res[k] for k in ("model", "photos", "mean", "targets", "met", "shortfall")}, indent=1))
        return
    print(f"photo2sketch quality on {len(rows)} held-out photos at 512 px ({a.model})")
    print(f"{'photo':<16}{'size':>9} {'mad':>6} {'edges':>6} {'grid':>6} | {'white mad/edges':>15} | "
          f"{'opencv@0.5 mad/edges/grid':>25} | {'reverse mad/edges':>17}")
    for r in rows:
        w, h, rv = r["white"], r["opencv_half_scale"], r["reverse"]
        print(f"{r['photo']:<16}{r['size']:>9} {r['mad']:6.1f} {r['edges']:6.2f} {r['grid']:6.2f} | "
              f"{w['mad']:7.1f} {w['edges']:7.2f} | {h['mad']:9.1f} {h['edges']:7.2f} {h['grid']:7.2f} | "
              + (f"{rv['mad']:8.1f} {rv['edges']:8.2f}" if rv else f"{'(one-way model)':>17}"))
    print(f"{'mean':<26}{mean['mad']:6.1f} {mean['edges']:6.2f} {mean['grid']:6.2f}   shortfall {res['shortfall']:.2f}")
    if res["int8"]:
        from cyclegan_cli.infer.quantize import CALIBRATION_IMAGES

        print("--precision int8 against fp32 (PSNR, dB; target >= 32), calibrated on the first "
              f"{CALIBRATION_IMAGES} photos (*):")
        print("  " + "  ".join(f"{x['photo'].split('.')[0]}{'*' if x['int8_calibrated_on_it'] else ''} {x['int8_psnr']:.1f}"
                               for x in rows)
              + f"   mean {np.mean([x['int8_psnr'] for x in rows]):.1f}, min {min(x['int8_psnr'] for x in rows):.1f}")
    print("targets: mad <= 30 on every photo: {}; edges >= 0.55 on every photo: {}; grid <= 3 on every photo: {}".format(
        *("met" if met[k] else "NOT met" for k in ("mad", "edges", "grid"))))


if __name__ == "__main__":
    main()
