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
    """Export a generator to ONNX: a CycleGAN's (image -> image, dynamic batch, height and width) or
    a DCGAN's (z (N, nz) -> image (N, 3, S, S) in [-1, 1], dynamic batch).

    Examples:

    \b
      ganctl export photo2sketch --onnx sketch.onnx
      ganctl export horse2zebra --direction BtoA --onnx z2h.onnx
    """
    from cyclegan_cli.checkpoints import TRANSLATION_KINDS
    from cyclegan_cli.errors import UsageError
    from cyclegan_cli.infer.backends import export_onnx
    from cyclegan_cli.zoo.resolve import load

    o = Output(quiet, False, json_out)
    if onnx.exists() and not overwrite:
        raise UsageError(f"{onnx} exists; pass --overwrite to replace it")
    loaded = load(model, offline=offline)
    net = loaded.generator(direction)
    if loaded.config.kind in TRANSLATION_KINDS:  # batch norm with per-image statistics, as translate runs it
        from cyclegan_cli.models.cyclegan import for_translation

        net = for_translation(net)
    export_onnx(net, onnx)
    o.emit(str(onnx), {"model": model, "onnx": str(onnx), "direction": direction})
