"""``ganctl sample | interpolate | arithmetic | nearest``: a DCGAN's images, walks and latent algebra."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, List, Literal, Optional

import typer

from cyclegan_cli.cli.common import MaxPixelsOpt, DeviceOpt, JsonOpt, ModelOpt, OfflineOpt, Output, QuietOpt

ScaleOpt = Annotated[int, typer.Option("--scale", min=1, max=64, help="Enlarge each image N times (nearest neighbour): DCGAN outputs are small.")]
TileScaleOpt = Annotated[Optional[int], typer.Option("--scale", min=1, max=64, show_default=False, help="Enlarge each image N times (nearest neighbour); default: enough for tiles of at least 128 px.")]
SeedsOpt = Annotated[Optional[str], typer.Option("--seeds", help="Seed list, e.g. 0-63 or 3,17,42.")]
ZFileOpt = Annotated[Optional[Path], typer.Option("--z-file", help="An N x nz .npy array instead of seeds.")]


def _generator(model: str, device: str, offline: bool, raw: bool = False):
    from cyclegan_cli.device import pick_device
    from cyclegan_cli.errors import UsageError
    from cyclegan_cli.zoo.resolve import load

    dev = pick_device(device)
    loaded = load(model, nets=["G", "G_ema"], device=dev, offline=offline)
    if loaded.config.kind != "dcgan":
        raise UsageError(f"{model} is a {loaded.config.kind} model; sample/interpolate need a DCGAN (use translate)")
    G = loaded.generator(raw=raw)  # the EMA of the weights where the run kept one
    return G, G.nz, dev


def _latents(seeds: Optional[str], z_file: Optional[Path], nz: int):
    from cyclegan_cli.errors import UsageError
    from cyclegan_cli.infer.sample import latents_for_seeds, load_z_file, parse_seeds

    if z_file is not None and seeds:
        raise UsageError("give --seeds or --z-file, not both")
    if z_file is not None:
        return None, load_z_file(z_file, nz)
    s = parse_seeds(seeds or "0-15")
    return s, latents_for_seeds(s, nz)


def _save(arr, path: Path):
    """Write the image ``arr`` to ``path`` (an --out); an OS error is one line naming it."""
    from cyclegan_cli.data.images import save_array
    from cyclegan_cli.errors import writing

    with writing(path, "--out"):
        save_array(arr, path)


def _refuse_existing(path: Path, overwrite: bool):
    from cyclegan_cli.errors import UsageError

    if path.exists() and not overwrite:
        raise UsageError(f"{path} exists; pass --overwrite to replace it")


def sample(
    model: ModelOpt = ...,
    seeds: SeedsOpt = None,
    z_file: ZFileOpt = None,
    grid: Annotated[Optional[str], typer.Option("--grid", help="CxR, e.g. 8x8: one grid image instead of files.")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder (one PNG per seed) or a .png file for --grid.")] = Path("samples"),
    save_z: Annotated[bool, typer.Option("--save-z", help="Also write the latents as z.npy.")] = False,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Latents per network call.")] = 64,
    scale: ScaleOpt = 1,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace existing outputs.")] = False,
    raw_weights: Annotated[bool, typer.Option("--raw-weights", help="Use the raw weights, not the moving average (--ema) a checkpoint may hold.")] = False,
    device: DeviceOpt = "auto",
    offline: OfflineOpt = False,
    quiet: QuietOpt = False,
    json_out: JsonOpt = False,
):
    """Images from a DCGAN: seed k is the same image at any batch size.

    Examples:

    \b
      ganctl sample --model emoji32 --seeds 0-63 --grid 8x8 --scale 2 --out grid.png
      ganctl sample --model faces --seeds 3,17,42 --out picks/ --save-z
    """
    import numpy as np

    from cyclegan_cli.errors import UsageError, writing
    from cyclegan_cli.infer.sample import generate
    from cyclegan_cli.infer.sample import grid as make_grid
    from cyclegan_cli.infer.sample import parse_seeds
    from cyclegan_cli.infer.sheet import enlarge

    o = Output(quiet, False, json_out)
    if grid:
        try:
            cols, rows = (int(v) for v in grid.lower().split("x"))
            assert cols >= 1 and rows >= 1
        except (ValueError, AssertionError):
            raise UsageError(f"--grid {grid!r}: expected CxR, e.g. 8x8") from None
        if seeds and z_file is None and len(parse_seeds(seeds)) > cols * rows:
            n = len(parse_seeds(seeds))
            side = int(-(-n ** 0.5 // 1))
            raise UsageError(f"--grid {grid} holds {cols * rows} images but --seeds gives {n}; "
                             f"use --grid {side}x{-(-n // side)} or fewer seeds")
    G, nz, dev = _generator(model, device, offline, raw_weights)
    seed_list, z = _latents(seeds, z_file, nz)
    if grid and len(z) > cols * rows:
        raise UsageError(f"--grid {grid} holds {cols * rows} images but --z-file gives {len(z)}")
    images = enlarge(generate(G, z, batch_size, dev), scale)
    written = []
    if grid:
        target = out if out.suffix else out.with_suffix(".png")
        _refuse_existing(target, overwrite)
        _save(make_grid(images, cols, rows), target)
        written.append(target)
    else:
        from cyclegan_cli.data.images import save_array

        names = [f"seed{s:04d}.png" for s in seed_list] if seed_list else [f"z{i:04d}.png" for i in range(len(z))]
        with writing(out, "--out", folder=True):  # the folder is named, as translate names its --out
            out.mkdir(parents=True, exist_ok=True)
            for n, im in zip(names, images):
                target = out / n
                _refuse_existing(target, overwrite)
                save_array(im, target)
                written.append(target)
    if save_z:
        from cyclegan_cli.files import atomic_write_bytes
        import io

        zpath = (out.parent if grid else out) / "z.npy"
        buf = io.BytesIO()
        np.save(buf, z.numpy())
        with writing(zpath):
            atomic_write_bytes(zpath, buf.getvalue())
    for p in written:
        o.emit(str(p), {"path": str(p)})


def interpolate(
    model: ModelOpt = ...,
    seeds: SeedsOpt = None,
    z_file: ZFileOpt = None,
    steps: Annotated[int, typer.Option("--steps", min=2, help="Frames per leg, both ends included.")] = 30,
    method: Annotated[Literal["slerp", "lerp"], typer.Option("--method", help="slerp (along the sphere, for Gaussian latents) or lerp.")] = "slerp",
    out: Annotated[Path, typer.Option("--out", "-o", help="walk.gif, walk.mp4 or strip.png.")] = Path("walk.gif"),
    loop: Annotated[bool, typer.Option("--loop", help="Return to the first seed.")] = False,
    fps: Annotated[int, typer.Option("--fps", min=1, max=120, help="Frames per second of a GIF or MP4.")] = 15,
    scale: TileScaleOpt = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace --out if it exists.")] = False,
    device: DeviceOpt = "auto",
    offline: OfflineOpt = False,
    quiet: QuietOpt = False,
    json_out: JsonOpt = False,
):
    """A latent walk through the given seeds as a GIF, an MP4 or a PNG strip.

    Examples:

    \b
      ganctl interpolate --model emoji32 --seeds 3,17,42 --steps 30 --loop --out walk.gif
      ganctl interpolate --model emoji32 --seeds 1,2 --method lerp --scale 8 --out walk.mp4
    """
    from cyclegan_cli.errors import UsageError, writing
    from cyclegan_cli.infer.sample import generate, walk
    from cyclegan_cli.infer.sample import grid as make_grid
    from cyclegan_cli.infer.sheet import enlarge, scale_for

    o = Output(quiet, False, json_out)
    ext = out.suffix.lower()
    if ext not in (".gif", ".mp4", ".png"):
        raise UsageError(f"--out {out}: use a .gif, .mp4 or .png name")
    _refuse_existing(out, overwrite)
    G, nz, dev = _generator(model, device, offline)
    _, z = _latents(seeds or "0,1", z_file, nz)
    frames = generate(G, walk(z, steps, method, loop), 64, dev)
    frames = enlarge(frames, scale or scale_for(frames.shape[1]))
    if ext == ".png":
        _save(make_grid(frames, len(frames), 1), out)
    elif ext == ".gif":
        from PIL import Image

        from cyclegan_cli.files import atomic_write_bytes
        import io

        ims = [Image.fromarray(f) for f in frames]
        buf = io.BytesIO()
        ims[0].save(buf, format="GIF", save_all=True, append_images=ims[1:], duration=int(1000 / fps), loop=0)
        with writing(out, "--out"):
            atomic_write_bytes(out, buf.getvalue())
    else:
        from cyclegan_cli.data.video import write_frames_mp4

        with writing(out, "--out"):
            write_frames_mp4(frames, out, fps)
    o.emit(str(out), {"path": str(out), "frames": len(frames)})


def arithmetic(
    model: ModelOpt = ...,
    plus: Annotated[List[str], typer.Option("--plus", help="A seed group added (averaged); repeatable.")] = [],
    minus: Annotated[List[str], typer.Option("--minus", help="A seed group subtracted (averaged); repeatable.")] = [],
    neighbours: Annotated[int, typer.Option("--neighbours", min=0, help="Extra images near the result.")] = 4,
    noise: Annotated[float, typer.Option("--noise", help="Std of the noise added for neighbours.")] = 0.25,
    out: Annotated[Path, typer.Option("--out", "-o", help="The strip: group means, the result, its neighbours, labelled.")] = Path("arithmetic.png"),
    scale: TileScaleOpt = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace --out if it exists.")] = False,
    device: DeviceOpt = "auto",
    offline: OfflineOpt = False,
    quiet: QuietOpt = False,
    json_out: JsonOpt = False,
):
    """Latent vector arithmetic: mean(plus groups) - mean(minus groups), e.g. smiling woman - woman + man.

    Groups are applied in the order given on the command line: --plus A --minus B --plus C.

    Examples:

    \b
      ganctl arithmetic --model faces --plus 11,23 --minus 4,8 --plus 16,42 --out result.png
      ganctl arithmetic --model emoji32 --plus 5 --minus 9 --plus 12 --json
    """
    import torch

    from cyclegan_cli.cli.argv import ARGV

    from cyclegan_cli.errors import UsageError
    from cyclegan_cli.infer.sample import arithmetic as combine
    from cyclegan_cli.infer.sample import generate, latents_for_seeds, parse_seeds
    from cyclegan_cli.infer.sheet import arithmetic_sheet, enlarge, scale_for

    o = Output(quiet, False, json_out)
    if not plus:
        raise UsageError("give at least one --plus group")
    _refuse_existing(out, overwrite)
    # keep the command line order of --plus/--minus groups
    order, pi, mi = [], 0, 0
    for a in ARGV:
        if a in ("--plus", "--minus") or a.startswith(("--plus=", "--minus=")):
            if a.startswith("--plus") and pi < len(plus):
                order.append((1, plus[pi]))
                pi += 1
            elif a.startswith("--minus") and mi < len(minus):
                order.append((-1, minus[mi]))
                mi += 1
    order += [(1, p) for p in plus[pi:]] + [(-1, m) for m in minus[mi:]]
    G, nz, dev = _generator(model, device, offline)
    groups = [(sign, latents_for_seeds(parse_seeds(spec), nz)) for sign, spec in order]
    means, result = combine(groups)
    gen = torch.Generator().manual_seed(0)
    near = result + noise * torch.randn(neighbours, nz, generator=gen) if neighbours else torch.zeros(0, nz)
    z = torch.cat([means, result[None], near])
    images = generate(G, z, 64, dev)
    labels = [(sign, spec, len(parse_seeds(spec))) for sign, spec in order]
    _save(arithmetic_sheet(labels, enlarge(images, scale or scale_for(images.shape[1])), noise), out)
    o.emit(str(out), {"path": str(out), "groups": [{"sign": s, "seeds": spec} for s, spec in order],
                      "z_result": result.tolist(), "z_means": means.tolist()})


def nearest(
    data: Annotated[Path, typer.Option("--data", help="The training image folder.")] = ...,
    model: Annotated[Optional[str], typer.Option("--model", "-m", help="A DCGAN whose samples are checked.")] = None,
    images: Annotated[Optional[List[Path]], typer.Option("--images", metavar="FILE...", help="Check these image files instead of samples (several may follow one --images).")] = None,
    more_images: Annotated[Optional[List[Path]], typer.Argument(metavar="[FILE...]", help="More files for --images.", show_default=False)] = None,
    seeds: SeedsOpt = None,
    k: Annotated[int, typer.Option("--k", min=1)] = 5,
    size: Annotated[int, typer.Option("--size", help="Compare at this size (pixels).")] = 32,
    out: Annotated[Path, typer.Option("--out", "-o", help="Each sample beside its nearest training images, labelled with their names and distances.")] = Path("nearest.png"),
    scale: TileScaleOpt = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace --out if it exists.")] = False,
    max_pixels: MaxPixelsOpt = 89_478_485,
    device: DeviceOpt = "auto",
    offline: OfflineOpt = False,
    quiet: QuietOpt = False,
    json_out: JsonOpt = False,
):
    """For each sample, the k nearest training images (pixel L2 on downscaled images): did the GAN memorise?

    Examples:

    \b
      ganctl nearest --data emoji/ --model emoji32 --seeds 0-15 --out nearest.png
      ganctl nearest --data emoji/ --images a.png b.png --k 3 --json
    """
    import numpy as np
    from PIL import Image

    from cyclegan_cli.data.datasets import load_rgb, scan_folder
    from cyclegan_cli.errors import UsageError
    from cyclegan_cli.infer.sample import generate, latents_for_seeds, parse_seeds
    from cyclegan_cli.infer.sample import nearest as knn
    from cyclegan_cli.infer.sheet import nearest_sheet, scale_for

    o = Output(quiet, False, json_out)
    images = [*(images or []), *(more_images or [])]
    if model is None and not images:
        raise UsageError("nothing to check: give --model M (check its samples) or --images FILE... (check these files)")
    if model is not None and images:
        raise UsageError("give --model (check its samples) or --images (check these files), not both")
    _refuse_existing(out, overwrite)
    from cyclegan_cli.errors import InputError

    files, _ = scan_folder(data, max_pixels, on_skip=o.warn)

    def small(im: Image.Image) -> np.ndarray:
        return np.asarray(im.convert("RGB").resize((size, size), Image.BILINEAR), dtype=np.uint8)

    train, kept = [], []
    for f in files:  # a file truncated past its header fails only here: one warning, and it is left out
        try:
            train.append(small(load_rgb(f, max_pixels)))
            kept.append(f)
        except InputError as exc:
            o.warn(f"skipped {exc}")
    if not train:
        raise UsageError(f"{data}: no readable images")
    files, train = kept, np.stack(train)
    if images:
        from cyclegan_cli.errors import NotFoundError

        for p in images:
            if not p.exists():
                raise NotFoundError(f"{p}: no such file")
        queries = np.stack([small(load_rgb(p, max_pixels)) for p in images])
        labels = [str(p) for p in images]
        shown = [p.name for p in images]
    else:
        G, nz, dev = _generator(model, device, offline)
        s = parse_seeds(seeds or "0-15")
        gen = generate(G, latents_for_seeds(s, nz), 64, dev)
        queries = np.stack([small(Image.fromarray(g)) for g in gen])
        labels = shown = [f"seed {x}" for x in s]
    idx, dist = knn(queries.reshape(len(queries), -1) / 255.0, train.reshape(len(train), -1) / 255.0, k)
    _save(nearest_sheet(queries, shown, train, [f.name for f in files], idx, dist, scale or scale_for(size)), out)
    result = [{"query": labels[q], "neighbours": [{"file": str(files[j]), "distance": float(d)}
                                                 for j, d in zip(idx[q], dist[q])]} for q in range(len(queries))]
    if json_out:
        o.json({"path": str(out), "results": result})
    else:
        o.result(str(out))
        for r in result:
            o.info(f"{r['query']}: nearest {r['neighbours'][0]['file']} at {r['neighbours'][0]['distance']:.4f}")
