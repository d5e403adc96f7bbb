"""``ganctl eval``: FID, KID, precision/recall and memorisation, for two folders or a model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Optional

import typer

from cyclegan_cli.cli.common import DeviceOpt, JsonOpt, MaxPixelsOpt, OfflineOpt, Output, QuietOpt


def evaluate(
    real: Annotated[Optional[Path], typer.Argument(metavar="REAL", help="Folder of real images.", show_default=False)] = None,
    fake: Annotated[Optional[Path], typer.Argument(metavar="FAKE", help="Folder of generated images.", show_default=False)] = None,
    temporal: Annotated[bool, typer.Option("--temporal", help="REAL and FAKE are an input video and its translation: their warping error (flicker) instead; --json lists the scene cuts by the index of the frame that starts each new shot, from 0, as translate -v says them.")] = False,
    metrics: Annotated[str, typer.Option("--metrics", help="Comma-separated: fid, kid, pr (precision/recall), memorisation.")] = "fid,kid,pr",
    features: Annotated[str, typer.Option("--features", metavar="inception|PATH.pt", help="The FID Inception network (zoo: inception-fid) or a TorchScript file: float32 (N,3,299,299) in [0,1] -> (N,D).")] = "inception",
    model: Annotated[Optional[str], typer.Option("--model", "-m", metavar="NAME", help="Generate the FAKE set with this model instead (DCGAN seeds 0..N-1, or translations of --source).")] = None,
    data: Annotated[Optional[Path], typer.Option("--data", metavar="FOLDER", help="With --model: the real images.")] = None,
    source: Annotated[Optional[Path], typer.Option("--source", metavar="FOLDER", help="With a translation --model: the images to translate.")] = None,
    direction: Annotated[Literal["AtoB", "BtoA"], typer.Option("--direction", help="With a translation --model: which way.")] = "AtoB",
    train: Annotated[Optional[Path], typer.Option("--train", metavar="FOLDER", help="For memorisation: the images the model was trained on (REAL serves as the held-out set).")] = None,
    num: Annotated[Optional[int], typer.Option("--num", min=1, help="At most N images per set (and N samples from --model; default: as many as REAL).")] = None,
    pairs_out: Annotated[Optional[Path], typer.Option("--pairs-out", metavar="PNG", help="For memorisation: write a PNG of the 16 closest (generated, training) pairs here (none unless asked).", show_default=False)] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace --pairs-out if it exists.")] = False,
    max_pixels: MaxPixelsOpt = 89_478_485,
    device: DeviceOpt = "auto",
    offline: OfflineOpt = False,
    quiet: QuietOpt = False,
    json_out: JsonOpt = False,
):
    """Compare generated images with real ones: FID, KID, precision/recall, memorisation.

    Images are resized to 299x299 with PIL bicubic (clean-fid's "clean" resize) before the features.

    Examples:

    \b
      ganctl eval real/ generated/ --json
      ganctl eval --model emoji32 --data emoji/ --num 1000 --metrics fid,kid,pr
      ganctl eval held-out/ samples/ --train train/ --metrics memorisation --features mynet.pt
      ganctl eval --temporal clip.mp4 translated/clip.mp4
    """
    if temporal:
        return _temporal(real, fake, Output(quiet, False, json_out))
    import numpy as np

    from cyclegan_cli.errors import UsageError, writing
    from cyclegan_cli.infer.evaluate import Features, evaluate as run, load_folder

    o = Output(quiet, False, json_out)
    wanted = [m.strip() for m in metrics.split(",") if m.strip()]
    unknown = [m for m in wanted if m not in ("fid", "kid", "pr", "memorisation")]
    if not wanted or unknown:
        raise UsageError(f"--metrics {metrics!r}: a comma-separated list of fid, kid, pr, memorisation")
    if model is None and (real is None or fake is None):
        raise UsageError("give two folders (REAL FAKE), or --model M --data REAL")
    if model is not None and (fake is not None or (data is None and real is None)):
        raise UsageError("with --model, give the real images (--data FOLDER) and no FAKE folder")
    if "memorisation" in wanted and pairs_out is not None and pairs_out.exists() and not overwrite:
        raise UsageError(f"--pairs-out {pairs_out} exists; pass --overwrite to replace it")
    real_dir = data or real
    _, real_imgs = load_folder(real_dir, num, max_pixels, on_skip=o.warn)
    if model is None:
        _, fake_imgs = load_folder(fake, num, max_pixels, on_skip=o.warn)
    else:
        fake_imgs = _generate(model, num or len(real_imgs), source, direction, device, offline, max_pixels, o)
    train_files, train_imgs = (None, None)
    if "memorisation" in wanted and train is not None:
        train_files, train_imgs = load_folder(train, None, max_pixels, on_skip=o.warn)
    from cyclegan_cli.infer.metrics import check_counts

    check_counts(wanted, len(real_imgs), len(fake_imgs))
    if "fid" in wanted and min(len(real_imgs), len(fake_imgs)) < 2000:
        o.warn(f"FID is biased at small sample sizes (here {len(real_imgs)} real, {len(fake_imgs)} generated): "
               "compare only figures computed with the same N, or use KID")
    feats = Features(features, device, offline)
    result = run(real_imgs, fake_imgs, feats, wanted, train_imgs, on_notice=o.info)
    if features != "inception":
        o.info(f"features from {features}, not the FID Inception network: these figures compare only with "
               "others from the same network, never with published FID/KID")
    if "memorisation" in result:
        from cyclegan_cli.data.images import save_array
        from cyclegan_cli.infer.sample import grid

        pairs = [im for c in result["memorisation"]["closest"] for im in (fake_imgs[c["fake"]], train_imgs[c["train"]])]
        for c in result["memorisation"]["closest"]:
            c["train_file"] = str(train_files[c["train"]])
        if pairs_out is not None:
            with writing(pairs_out, "--pairs-out"):
                save_array(grid(np.stack(pairs), 8), pairs_out)
            result["memorisation"]["pairs_png"] = str(pairs_out)
    if json_out:
        o.json(result)
        return
    rows = [("images", f"{result['n_real']} real, {result['n_fake']} generated"), ("features", f"{result['features']} ({result['dim']}-d)")]
    if "fid" in result:
        rows.append(("FID", f"{result['fid']:.3f}"))
    if "kid" in result:
        rows.append(("KID", f"{result['kid']:.3g} ± {result['kid_std']:.2g}"))  # significant digits: KID is often ~1e-4
    if "precision" in result:
        rows.append(("precision / recall", f"{result['precision']:.3f} / {result['recall']:.3f}"))
    if "memorisation" in result:
        g, h = result["memorisation"]["generated_to_train"], result["memorisation"]["held_out_to_train"]
        rows.append(("nearest training image", f"generated: median {g['median']:.3g}, min {g['min']:.3g}; "
                                               f"held-out real: median {h['median']:.3g}, min {h['min']:.3g}"))
        if pairs_out is not None:
            rows.append(("closest pairs", result["memorisation"]["pairs_png"]))
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        o.result(f"{k:<{width}}  {v}")


def _generate(model: str, n: int, source: Optional[Path], direction: str, device: str, offline: bool, max_pixels, o):
    """(n, 299, 299, 3) uint8 samples of ``model``: DCGAN seeds 0..n-1, or translations of ``source``."""
    import numpy as np
    from PIL import Image

    from cyclegan_cli.errors import UsageError
    from cyclegan_cli.infer.evaluate import clean_resize, dcgan_samples
    from cyclegan_cli.zoo.resolve import load

    loaded = load(model, offline=offline)
    if loaded.config.kind == "dcgan":
        from cyclegan_cli.device import pick_device

        return dcgan_samples(loaded.generator(), n, pick_device(device))
    if source is None:
        raise UsageError(f"{model} translates images: give --source FOLDER (the images to translate)")
    from cyclegan_cli.data.datasets import load_rgb, scan_folder
    from cyclegan_cli.infer.engine import Translator

    t = Translator(loaded.generator(direction), loaded.config, device=device)
    files, _ = scan_folder(source, max_pixels, on_skip=o.warn)
    out = []
    for f in files[:n]:
        rgb = np.asarray(load_rgb(f, max_pixels))
        out.append(clean_resize(Image.fromarray(t.run_image(rgb))))
    return np.stack(out)


def _temporal(input_video: Optional[Path], output_video: Optional[Path], o: Output) -> None:
    """The warping error of a translated video, of its input, and what the translation adds."""
    from cyclegan_cli.cli.common import check_paths_exist
    from cyclegan_cli.errors import UsageError
    from cyclegan_cli.infer.temporal import video_warping_error

    if input_video is None or output_video is None:
        raise UsageError("--temporal: give two videos, INPUT_VIDEO OUTPUT_VIDEO")
    check_paths_exist([input_video, output_video])
    for p in (input_video, output_video):
        if p.is_dir():
            raise UsageError(f"--temporal: {p} is a folder; give two video files")
    r = video_warping_error(input_video, output_video)
    if o.json_mode:
        o.json(r)
        return
    if r["output"] is None:
        o.result(f"frames  {r['frames']}: no pair of consecutive frames with reliable motion, no warping error")
        return
    cuts = f", {len(r['cuts'])} across a scene cut left out" if r["cuts"] else ""
    o.result(f"frames                     {r['frames']} ({r['pairs']} pairs with reliable motion{cuts})")
    o.result(f"warping error, output      {r['output']:.2f} gray levels")
    o.result(f"warping error, input       {r['input']:.2f}")
    o.result(f"added by the translation   {r['added']:+.2f}")
