"""``ganctl export``: a generator as ONNX for deployment elsewhere."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from cyclegan_cli.cli.common import JsonOpt, OfflineOpt, Output, QuietOpt


def export(
    model: Annotated[str, typer.Argument(help="Zoo name, run or path.")],
    onnx: Annotated[Path, typer.Option("--onnx", help="Write the generator as ONNX to FILE.")] = ...,
    direction: Annotated[Literal["AtoB", "BtoA"], typer.Option("--direction", help="Which generator of a CycleGAN.")] = "AtoB",
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace FILE if it exists.")] = False,
    offline: OfflineOpt = False,
    quiet: QuietOpt = False,
    json_out: JsonOpt = False,
):
    """Export a generator to ONNX: a CycleGAN's (image -> image of the same size, dynamic batch,
    height and width) or a DCGAN's (z (N, nz) -> image (N, 3, S, S) in [-1, 1], dynamic batch). The
    value range, direction and domains are in the model's metadata_props.

    Examples:

    \b
      ganctl export photo2sketch --onnx sketch.onnx
      ganctl export horse2zebra --direction BtoA --onnx z2h.onnx
    """
    from cyclegan_cli.checkpoints import TRANSLATION_KINDS
    from cyclegan_cli.errors import UsageError, writing
    from cyclegan_cli.infer.backends import export_onnx
    from cyclegan_cli.zoo.resolve import load

    o = Output(quiet, False, json_out)
    if onnx.exists() and not overwrite:
        raise UsageError(f"{onnx} exists; pass --overwrite to replace it")
    loaded = load(model, offline=offline)
    net = loaded.generator(direction)
    cfg = loaded.config
    mean, std = cfg.normalization["mean"], cfg.normalization["std"]
    rng = "[-1, 1]" if mean == [0.5] * 3 and std == [0.5] * 3 else f"(x / 255 - {mean}) / {std}"
    meta = {"producer": "ganctl export", "model": model, "kind": cfg.kind}
    if cfg.kind in TRANSLATION_KINDS:  # batch norm with per-image statistics, as translate runs it
        from cyclegan_cli.infer.backends import PadCrop
        from cyclegan_cli.models.cyclegan import for_translation

        multiple = getattr(net, "size_multiple", 4)
        net = PadCrop(for_translation(net), multiple)  # any size in, the same size out
        source, target = cfg.domains[:2] if direction == "AtoB" else cfg.domains[1::-1]
        meta.update(direction=direction, domains=f"{source} -> {target}",
                    input=f"image: float32 (N, 3, H, W), RGB {rng}; H and W of {multiple // 2 + 1} or more "
                          f"(reflected to a multiple of {multiple} inside the graph, the output cropped back)",
                    output=f"translated: float32 (N, 3, H, W), RGB {rng}, the input's size")
    else:
        meta.update(input=f"z: float32 (N, {getattr(net, 'nz', '?')}), standard normal",
                    output=f"image: float32 (N, 3, {cfg.image_size}, {cfg.image_size}), RGB {rng}")
    with writing(onnx, "--onnx"):
        export_onnx(net, onnx, metadata=meta)
    o.emit(str(onnx), {"model": model, "onnx": str(onnx), "direction": direction})
