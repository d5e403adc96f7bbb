"""``ganctl train``: two folders train a CycleGAN, one folder a DCGAN."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, List, Optional

import typer

from cyclegan_cli.cli.common import DeviceOpt, JsonOpt, Output, PrecisionOpt, QuietOpt, VerboseOpt


def train(
    folders: Annotated[Optional[List[Path]], typer.Argument(help="A B (CycleGAN) or one folder (DCGAN).", show_default=False)] = None,
    model: Annotated[Optional[str], typer.Option("--model", help="cyclegan|dcgan (default: by folder count).")] = None,
    name: Annotated[Optional[str], typer.Option("--name", help="Run name; the same name again resumes.")] = None,
    resume: Annotated[Optional[str], typer.Option("--resume", help="Continue the run NAME (or a run folder).")] = None,
    runs_dir: Annotated[Path, typer.Option("--runs-dir", help="Where run folders live.")] = Path("runs"),
    epochs: Annotated[Optional[int], typer.Option("--epochs", help="CycleGAN: epochs at full lr (100); DCGAN: epochs (25).")] = None,
    decay_epochs: Annotated[int, typer.Option("--decay-epochs", help="CycleGAN: epochs of linear lr decay.")] = 100,
    max_steps: Annotated[Optional[int], typer.Option("--max-steps", help="Stop after N iterations from the run's start.")] = None,
    lr: Annotated[float, typer.Option("--lr")] = 2e-4,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", help="CycleGAN 1, DCGAN 64.")] = None,
    size: Annotated[Optional[int], typer.Option("--size", help="Crop size (CycleGAN 256) or image size (DCGAN 64).")] = None,
    load_size: Annotated[Optional[int], typer.Option("--load-size", help="CycleGAN: resize before crop (286 for 256).")] = None,
    ngf: Annotated[int, typer.Option("--ngf")] = 64,
    ndf: Annotated[int, typer.Option("--ndf")] = 64,
    blocks: Annotated[int, typer.Option("--blocks", help="CycleGAN ResNet blocks.")] = 9,
    upsample: Annotated[str, typer.Option("--upsample", help="CycleGAN generator up-sampling: transpose (official) or resize (bilinear + conv: no checkerboard).")] = "transpose",
    nz: Annotated[int, typer.Option("--nz", help="DCGAN latent size.")] = 100,
    lambda_cycle: Annotated[float, typer.Option("--lambda-cycle")] = 10.0,
    lambda_identity: Annotated[float, typer.Option("--lambda-identity")] = 0.5,
    loss: Annotated[Optional[str], typer.Option("--loss", help="CycleGAN: lsgan|minimax|nonsat|wgangp; DCGAN: nonsat|minimax|lsgan|hinge|wgangp.")] = None,
    no_flip: Annotated[bool, typer.Option("--no-flip", help="No random horizontal flips.")] = False,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    deterministic: Annotated[bool, typer.Option("--deterministic", help="Deterministic algorithms and data order.")] = False,
    workers: Annotated[Optional[int], typer.Option("--workers", min=0, help="DataLoader workers (default: 0 on CPU, 4 on GPU).")] = None,
    log_every: Annotated[int, typer.Option("--log-every", min=1)] = 50,
    sample_every: Annotated[int, typer.Option("--sample-every", min=1)] = 500,
    save_every: Annotated[int, typer.Option("--save-every", min=1)] = 1000,
    keep: Annotated[int, typer.Option("--keep", min=1, help="Keep the last K checkpoints.")] = 3,
    compile_: Annotated[bool, typer.Option("--compile", help="torch.compile the networks.")] = False,
    device: DeviceOpt = "auto",
    precision: PrecisionOpt = "auto",
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
    json_out: JsonOpt = False,
):
    """Train a CycleGAN (two folders) or a DCGAN (one folder). Resumable; prints the run folder."""
    from cyclegan_cli.errors import NotFoundError, UsageError
    from cyclegan_cli.zoo import runs as registry

    from cyclegan_cli.zoo.names import check_name

    o = Output(quiet, verbose, json_out)
    if name is not None:
        check_name(name, "--name")
    folders = list(folders or [])
    if resume:
        run = registry.find_run(resume) if not Path(resume).is_dir() else None
        run_dir = Path(run.path) if run else Path(resume)
        if not registry.is_run_dir(run_dir):
            raise NotFoundError(f"no run {resume!r} to resume")
        opts = registry.read_options(run_dir)
        kind = opts["kind"]
        folders = [Path(opts["folder_a"]), Path(opts["folder_b"])] if kind == "cyclegan" else [Path(opts["folder"])]
        runs_dir, name = run_dir.parent, run_dir.name
        # the saved options win, except how long to train
        epochs = opts.get("epochs")
        max_steps = max_steps or opts.get("max_steps")
        lr, size, ngf, ndf, seed = opts["lr"], opts.get("size", opts.get("image_size")), opts["ngf"], opts["ndf"], opts["seed"]
        batch_size, loss, deterministic = opts["batch_size"], opts["loss"], opts["deterministic"]
        no_flip = not opts.get("flip", True)
        if kind == "cyclegan":
            decay_epochs, load_size, blocks = opts["decay_epochs"], opts["load_size"], opts["blocks"]
            upsample = opts.get("upsample", "transpose")
            lambda_cycle, lambda_identity = opts["lambda_cycle"], opts["lambda_identity"]
        else:
            nz = opts["nz"]
    if not folders:
        raise UsageError("give one folder (DCGAN) or two folders (CycleGAN), or --resume RUN")
    for f in folders:
        if not f.exists():
            raise NotFoundError(f"{f}: no such folder")
    kind = model or ("cyclegan" if len(folders) == 2 else "dcgan")
    if kind not in ("cyclegan", "dcgan"):
        raise UsageError(f"--model {kind!r}: cyclegan or dcgan")
    if kind == "cyclegan" and len(folders) != 2:
        raise UsageError("CycleGAN training takes two folders: A B")
    if kind == "dcgan" and len(folders) != 1:
        raise UsageError("DCGAN training takes one folder")

    from cyclegan_cli.train.loop import Callbacks

    bar = o.progress("train", max_steps, "it")

    def on_start(info):
        bar.update(info["step"], info["total"])
        o.info(f"run {info['run']} on {info['device']}" + (f" x{info['world']}" if info["world"] > 1 else "")
               + (f", from step {info['step']}" if info["step"] else ""))

    def on_step(step, total, stats):
        losses = {k.replace("loss_", ""): v for k, v in stats.items() if k.startswith("loss")}
        bar.update(step, total, **losses)
        if o.json_mode:
            o.json({"event": "step", **stats})

    def on_checkpoint(path):
        o.detail(f"checkpoint {path}")
        if o.json_mode:
            o.json({"event": "checkpoint", "path": str(path)})

    def on_sample(path):
        o.detail(f"samples {path}")

    cb = Callbacks(on_start=on_start, on_step=on_step, on_sample=on_sample, on_checkpoint=on_checkpoint, on_notice=o.info)
    common = dict(runs_dir=runs_dir, name=name, max_steps=max_steps, lr=lr, seed=seed, deterministic=deterministic,
                  device=device, precision=precision, compile=compile_, workers=workers, log_every=log_every,
                  sample_every=sample_every, save_every=save_every, keep_checkpoints=keep, callbacks=cb,
                  flip=not no_flip, ngf=ngf, ndf=ndf)
    with bar:
        if kind == "cyclegan":
            from cyclegan_cli.train.cyclegan import train_cyclegan

            run_dir = train_cyclegan(folders[0], folders[1], epochs=epochs or 100, decay_epochs=decay_epochs,
                                     batch_size=batch_size or 1, size=size or 256, load_size=load_size, blocks=blocks,
                                     upsample=upsample, loss=loss or "lsgan", lambda_cycle=lambda_cycle, lambda_identity=lambda_identity,
                                     **common)
        else:
            from cyclegan_cli.train.dcgan import train_dcgan

            run_dir = train_dcgan(folders[0], epochs=epochs or 25, batch_size=batch_size or 64, image_size=size or 64,
                                  nz=nz, loss=loss or "nonsat", **common)
    o.emit(str(run_dir), {"event": "done", "run": run_dir.name, "path": str(run_dir)})
