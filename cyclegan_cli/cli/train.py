"""``ganctl train``: two folders train a CycleGAN, one folder a DCGAN."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, List, Literal, Optional

import typer

from cyclegan_cli.cli.common import DeviceOpt, JsonOpt, Output, PrecisionOpt, QuietOpt, VerboseOpt


# saved option key -> (CLI parameter, how the saved value maps back); None: the same value
_SAVED = {"epochs": "epochs", "decay_epochs": "decay_epochs", "max_steps": "max_steps", "lr": "lr",
          "batch_size": "batch_size", "size": "size", "image_size": "size", "load_size": "load_size", "ngf": "ngf",
          "ndf": "ndf", "blocks": "blocks", "generator": "generator", "upsample": "upsample", "nz": "nz", "lambda_cycle": "lambda_cycle",
          "lambda_cycle_a": "lambda_cycle_a", "lambda_cycle_b": "lambda_cycle_b",
          "lambda_identity": "lambda_identity", "loss": "loss", "flip": "no_flip", "seed": "seed",
          "deterministic": "deterministic", "precision": "precision", "direction": "direction",
          "lambda_l1": "lambda_l1", "paired": "paired", "method": "method", "lambda_nce": "lambda_nce", "nce_layers": "nce_layers",
          "augment": "augment", "ema": "ema"}


def _explicit(ctx, param: str) -> bool:
    from typer._click.core import ParameterSource

    src = ctx.get_parameter_source(param)
    return src in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)


def _restore(opts: dict, kind: str, values: dict, given: set) -> tuple[dict, list]:
    """(values restored from a run's options, one 'option saved -> given' text per explicit conflict)."""
    from cyclegan_cli.train.loop import LENGTH_OPTIONS  # how long to train may change when a run continues

    restored, conflicts = {}, []
    for key, param in _SAVED.items():
        if key not in opts or (key == "size" and kind == "dcgan"):
            continue
        saved = (not opts[key]) if key == "flip" else opts[key]
        if param in given and values[param] != saved and param not in LENGTH_OPTIONS:
            flag = "--" + param.replace("_", "-")
            conflicts.append(f"{flag} {saved} (given {values[param]})" if key != "flip" else "--no-flip")
            continue
        if param not in given or param not in LENGTH_OPTIONS:
            restored[param] = saved
    if "max_steps" in given:
        restored["max_steps"] = values["max_steps"]
    elif not ({"epochs", "decay_epochs"} & given):
        restored["max_steps"] = opts.get("max_steps")
    else:
        restored["max_steps"] = None  # recomputed from the new schedule
    return restored, conflicts


def train(
    ctx: typer.Context,
    folders: Annotated[Optional[List[Path]], typer.Argument(metavar="FOLDER...", help="A B (CycleGAN) or one folder (DCGAN).", show_default=False)] = None,
    model: Annotated[Optional[Literal["cyclegan", "dcgan"]], typer.Option("--model", help="Which GAN (default: two folders CycleGAN, one DCGAN).")] = None,
    name: Annotated[Optional[str], typer.Option("--name", metavar="NAME", help="Run name; the same name again resumes.")] = None,
    resume: Annotated[Optional[str], typer.Option("--resume", metavar="RUN", help="Continue the run RUN (a name or a run folder).")] = None,
    runs_dir: Annotated[Path, typer.Option("--runs-dir", help="Where run folders live.")] = Path("runs"),
    epochs: Annotated[Optional[int], typer.Option("--epochs", min=1, help="CycleGAN: epochs at full lr (100); DCGAN: epochs (25).")] = None,
    decay_epochs: Annotated[Optional[int], typer.Option("--decay-epochs", min=0, help="CycleGAN: epochs of linear lr decay to zero (100).")] = None,
    max_steps: Annotated[Optional[int], typer.Option("--max-steps", min=1, help="Stop after N iterations from the run's start (at most the schedule's length).")] = None,
    lr: Annotated[float, typer.Option("--lr", min=0.0, help="Adam learning rate (official 0.0002).")] = 2e-4,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", min=1, help="Images per step (CycleGAN 1, DCGAN 64).")] = None,
    size: Annotated[Optional[int], typer.Option("--size", min=8, help="Crop size (CycleGAN 256) or image size (DCGAN 64).")] = None,
    load_size: Annotated[Optional[int], typer.Option("--load-size", help="CycleGAN: resize before crop (286 for 256).")] = None,
    ngf: Annotated[int, typer.Option("--ngf", min=1, help="Generator filters in the first layer (official 64).")] = 64,
    ndf: Annotated[int, typer.Option("--ndf", min=1, help="Discriminator filters in the first layer (official 64).")] = 64,
    blocks: Annotated[int, typer.Option("--blocks", min=1, help="CycleGAN generator ResNet blocks (official 9).")] = 9,
    generator: Annotated[Literal["resnet", "unet"], typer.Option("--generator", help="CycleGAN generator: resnet (official default, --blocks) or unet (official --netG unet_128/unet_256; --size a power of two).")] = "resnet",
    method: Annotated[Literal["cyclegan", "cut", "fastcut"], typer.Option("--method", help="Unpaired method for two folders: cyclegan (official recipe), cut or fastcut (contrastive, one generator: faster, A->B only).")] = "cyclegan",
    lambda_nce: Annotated[Optional[float], typer.Option("--lambda-nce", min=0.0, help="CUT/FastCUT: PatchNCE weight (official: CUT 1, FastCUT 10).", show_default=False)] = None,
    nce_layers: Annotated[str, typer.Option("--nce-layers", metavar="LAYERS", help="CUT/FastCUT: generator layers PatchNCE compares (official 0,4,8,12,16; 0 is the image's own pixels, which ties the output's tones to the input's).")] = "0,4,8,12,16",
    augment: Annotated[str, typer.Option("--augment", metavar="POLICY", help="DiffAugment before the discriminator, on real and fake images alike: comma-separated color, translation, cutout; or none.")] = "none",
    ema: Annotated[float, typer.Option("--ema", metavar="DECAY", help="Keep an exponential moving average of the generator's weights with this decay (e.g. 0.999; 0: none); translate and sample use it unless --raw-weights.")] = 0.0,
    paired: Annotated[bool, typer.Option("--paired", help="pix2pix on paired images: A/x.png goes with B/x.*, or one folder of A|B side-by-side images.")] = False,
    direction: Annotated[Literal["AtoB", "BtoA"], typer.Option("--direction", help="pix2pix: translate A to B (default) or B to A.")] = "AtoB",
    lambda_l1: Annotated[float, typer.Option("--lambda-l1", min=0.0, help="pix2pix: L1 weight (official 100).")] = 100.0,
    upsample: Annotated[Literal["transpose", "resize"], typer.Option("--upsample", help="Generator up-sampling (CycleGAN's ResNet, pix2pix's U-Net): transpose (official) or resize (bilinear + conv: no checkerboard).")] = "transpose",
    nz: Annotated[int, typer.Option("--nz", min=1, help="DCGAN latent size.")] = 100,
    lambda_cycle: Annotated[float, typer.Option("--lambda-cycle", min=0.0, help="Cycle-consistency weight per direction (official 10).")] = 10.0,
    lambda_cycle_a: Annotated[Optional[float], typer.Option("--lambda-cycle-a", min=0.0, help="A->B->A cycle weight only (default --lambda-cycle; official lambda_A): lower it when B holds less than A (photo->sketch), where asking for A back at full weight gives the A->B generator a reason to hide A's detail in its B images.", show_default=False)] = None,
    lambda_cycle_b: Annotated[Optional[float], typer.Option("--lambda-cycle-b", min=0.0, help="B->A->B cycle weight only (default --lambda-cycle).", show_default=False)] = None,
    lambda_identity: Annotated[float, typer.Option("--lambda-identity", min=0.0, help="Identity loss, as a fraction of --lambda-cycle (official 0.5).")] = 0.5,
    loss: Annotated[Optional[Literal["lsgan", "minimax", "nonsat", "hinge", "wgangp"]], typer.Option("--loss", help="CycleGAN: lsgan (official), minimax, nonsat, wgangp; DCGAN: nonsat (default), minimax, lsgan, hinge, wgangp.")] = None,
    no_flip: Annotated[bool, typer.Option("--no-flip", help="No random horizontal flips.")] = False,
    seed: Annotated[int, typer.Option("--seed", help="Seeds weights, data order, augmentation and pools.")] = 0,
    deterministic: Annotated[bool, typer.Option("--deterministic", help="Deterministic algorithms and data order.")] = False,
    workers: Annotated[Optional[int], typer.Option("--workers", min=0, help="DataLoader workers (default: 0 on CPU, 4 on GPU).")] = None,
    log_every: Annotated[Optional[int], typer.Option("--log-every", min=1, help="A stats.jsonl line (and a progress line) every N steps (default 50; a resumed run keeps what it was given).", show_default=False)] = None,
    log_seconds: Annotated[float, typer.Option("--log-seconds", min=1, help="Without a terminal: a progress line at least this often.")] = 30.0,
    sample_every: Annotated[Optional[int], typer.Option("--sample-every", min=1, help="A sample grid in the run's samples/ every N steps (default 500; a resumed run keeps what it was given).", show_default=False)] = None,
    save_every: Annotated[Optional[int], typer.Option("--save-every", min=1, help="A checkpoint every N steps and at the end (default 1000; a resumed run keeps what it was given).", show_default=False)] = None,
    keep: Annotated[Optional[int], typer.Option("--keep", min=1, help="Keep the last K checkpoints (default 3; a resumed run keeps what it was given).", show_default=False)] = None,
    eval_every: Annotated[int, typer.Option("--eval-every", min=0, metavar="STEPS", help="Evaluate the generator every STEPS steps (figures in stats.jsonl and eval.png; then --model RUN:best-kid).")] = 0,
    eval_data: Annotated[Optional[Path], typer.Option("--eval-data", metavar="FOLDER", help="Real images to evaluate against (CycleGAN: domain B).")] = None,
    eval_metrics: Annotated[str, typer.Option("--eval-metrics", help="Comma-separated: kid, fid, pr.")] = "kid",
    eval_num: Annotated[int, typer.Option("--eval-num", min=2, help="Samples and real images per evaluation.")] = 500,
    eval_features: Annotated[str, typer.Option("--eval-features", metavar="inception|PATH.pt", help="Feature network, as for ganctl eval.")] = "inception",
    compile_: Annotated[bool, typer.Option("--compile", help="torch.compile the networks.")] = False,
    device: DeviceOpt = "auto",
    precision: PrecisionOpt = "auto",
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
    json_out: JsonOpt = False,
):
    """Train a CycleGAN (two folders) or a DCGAN (one folder). Resumable; prints the run folder.

    An existing run (--resume RUN, or the same --name) continues with every option it was started
    with; only options given here that differ from those are an error.

    Examples:

    \b
      ganctl train horses zebras --name h2z              # CycleGAN, the official recipe
      ganctl train horses zebras --name h2z --size 128 --ngf 32 --blocks 6   # smaller, for a CPU
      ganctl train --resume h2z                          # carry on after Ctrl-C or a crash
      ganctl train faces --size 64 --epochs 25           # DCGAN on one folder
    """
    from cyclegan_cli.errors import NotFoundError, UsageError
    from cyclegan_cli.zoo import runs as registry
    from cyclegan_cli.zoo.names import check_name

    if os.environ.get("RANK", "0") != "0":  # under torchrun only rank 0 speaks (progress, JSON, the result)
        quiet, verbose, json_out = True, False, False
    o = Output(quiet, verbose, json_out)
    if name is not None:
        check_name(name, "--name")
    folders = list(folders or [])
    values = dict(epochs=epochs, decay_epochs=decay_epochs, max_steps=max_steps, lr=lr, batch_size=batch_size,
                  size=size, load_size=load_size, ngf=ngf, ndf=ndf, blocks=blocks, generator=generator, upsample=upsample, nz=nz,
                  lambda_cycle=lambda_cycle, lambda_cycle_a=lambda_cycle_a, lambda_cycle_b=lambda_cycle_b,
                  lambda_identity=lambda_identity, loss=loss, no_flip=no_flip, seed=seed,
                  deterministic=deterministic, precision=precision, direction=direction, lambda_l1=lambda_l1,
                  paired=paired, method=method, lambda_nce=lambda_nce, nce_layers=nce_layers, augment=augment, ema=ema)
    given = {k for k in values if _explicit(ctx, k)}
    run_dir = None
    if resume:
        run = registry.find_run(resume, runs_dir) if not Path(resume).is_dir() else None
        run_dir = Path(run.path) if run else Path(resume)
        if not registry.is_run_dir(run_dir):
            raise NotFoundError(f"no run {resume!r} to resume")
    elif name and registry.is_run_dir(Path(runs_dir) / name):
        run_dir = Path(runs_dir) / name
    if run_dir is not None:
        opts = registry.read_options(run_dir)
        kind = opts.get("kind")
        saved_method = opts.get("method", "cyclegan" if kind == "cyclegan" else None)
        if "method" in given and method != saved_method:
            raise UsageError(f"run {run_dir.name} is a {saved_method or kind} run; it cannot continue with "
                             f"--method {method} (leave --method out, or choose another --name)")
        if kind == "pix2pix":
            saved_folders = [f for f in (opts.get("folder_a"), opts.get("folder_b")) if f]
        else:
            saved_folders = [opts.get("folder_a"), opts.get("folder_b")] if kind in ("cyclegan", "cut") else [opts.get("folder")]
        if folders and [str(Path(f).resolve()) for f in folders] != saved_folders:
            raise UsageError(f"run {run_dir.name} trains on {' '.join(map(str, saved_folders))}; give no folders "
                             "to continue it, or choose another --name")
        folders = [Path(f) for f in saved_folders]
        restored, conflicts = _restore(opts, kind, values, given)
        if conflicts:
            raise UsageError(f"run {run_dir.name} was started with other options ({', '.join(conflicts)}); leave "
                             "them out to continue it, or choose another --name")
        values.update(restored)
        runs_dir, name, model = run_dir.parent, run_dir.name, kind
    v = values
    epochs, decay_epochs, max_steps, lr, batch_size, size = (v[k] for k in ("epochs", "decay_epochs", "max_steps",
                                                                           "lr", "batch_size", "size"))
    load_size, ngf, ndf, blocks, upsample, nz = (v[k] for k in ("load_size", "ngf", "ndf", "blocks", "upsample", "nz"))
    generator = v["generator"]
    lambda_cycle, lambda_identity, loss, no_flip = (v[k] for k in ("lambda_cycle", "lambda_identity", "loss", "no_flip"))
    lambda_cycle_a, lambda_cycle_b = v["lambda_cycle_a"], v["lambda_cycle_b"]
    seed, deterministic, precision = v["seed"], v["deterministic"], v["precision"]
    direction, lambda_l1, paired = v["direction"], v["lambda_l1"], v["paired"] or model == "pix2pix"
    method, lambda_nce, ema = v["method"] or "cyclegan", v["lambda_nce"], v["ema"] or 0.0
    # a list when restored from a run's options, the option's text otherwise
    nce_layers = v["nce_layers"] if isinstance(v["nce_layers"], list) else v["nce_layers"].split(",")
    try:
        nce_layers = [int(x) for x in nce_layers if str(x).strip()]
    except ValueError:
        raise UsageError(f"--nce-layers {v['nce_layers']!r}: comma-separated layer numbers, e.g. 0,4,8,12,16") from None
    try:
        from cyclegan_cli.train.augment import parse_policy

        policy = parse_policy(v["augment"])
    except ValueError as exc:
        raise UsageError(f"--augment: {exc}") from None
    from cyclegan_cli.train.ema import check_decay

    check_decay(ema)
    if method != "cyclegan":
        if paired:
            raise UsageError(f"--method {method} is unpaired (two folders, no pairs); --paired trains pix2pix")
        if model not in (None, "cut"):
            raise UsageError(f"--method {method} trains a CUT model, not --model {model}")
        if len(folders) != 2:
            raise UsageError(f"--method {method} takes two folders (A B); {len(folders)} given")
        model = "cut"
    if not folders:
        raise UsageError("give one folder (DCGAN) or two folders (CycleGAN), or --resume RUN")
    if eval_every and eval_data is None:
        raise UsageError("--eval-every needs --eval-data FOLDER (real images to compare with)")
    if eval_data is not None and not eval_data.is_dir():
        raise NotFoundError(f"--eval-data {eval_data}: no such folder")
    for f in folders:
        if not f.exists():
            raise NotFoundError(f"{f}: no such folder")
    if paired:
        if len(folders) not in (1, 2):
            raise UsageError(f"--paired takes two folders (A B) or one folder of A|B images; {len(folders)} given")
        model = "pix2pix"
    if model is None and len(folders) > 2:
        raise UsageError(f"training takes one folder (DCGAN) or two (CycleGAN); {len(folders)} given")
    kind = model or ("cyclegan" if len(folders) == 2 else "dcgan")
    if kind not in ("cyclegan", "dcgan", "pix2pix", "cut"):
        raise UsageError(f"--model {kind!r}: cyclegan or dcgan (or --paired for pix2pix)")
    if kind == "cyclegan" and len(folders) != 2:
        raise UsageError(f"CycleGAN training takes two folders (A B); {len(folders)} given")
    if kind == "dcgan" and len(folders) != 1:
        raise UsageError(f"DCGAN training takes one folder; {len(folders)} given (two folders train a CycleGAN)")
    from cyclegan_cli.device import pick_device, training_dtype

    training_dtype(pick_device(device), precision)  # before the run folder is made (the task checks it again)

    from cyclegan_cli.cli.common import duration, eta_to_say
    from cyclegan_cli.train.loop import Callbacks

    # the first steps (allocation, kernel choice, caches) are not the pace: measured after them
    bar = o.progress("train", max_steps, "it", interval=log_seconds, warmup=(3, 60.0))
    started, said = {}, {}

    def on_start(info):
        started.update(info)
        o.info(f"run {info['run']} on {info['device']}" + (f" x{info['world']}" if info["world"] > 1 else "")
               + f": {info['total'] - info['step']:,} steps to go" + (f" from step {info['step']:,}" if info["step"] else ""))
        bar.update(info["step"], info["total"])

    def on_tick(step, total):
        bar.update(step, total)
        first = "eta" not in said
        eta = eta_to_say(bar, said)  # after the warm-up, then again when the pace has moved it
        if eta is None or (first and eta < 60):  # worth saying only when it is long
            return
        pace = f"{1 / max(bar.rate(), 1e-9):.2f} s/step"
        if not first:
            o.info(f"now ≈{duration(eta)} to go ({pace})")
            return
        px = size or (256 if kind == "cyclegan" else 64)
        smaller = f"--size {max(32, px // 2 // 4 * 4)} or " if px > 64 else ""
        hint = f"; try {smaller}a GPU" if started["device"] == "cpu" and eta > 3600 else ""
        o.info(f"≈{duration(eta)} to go on {started['device']} at {px} px ({pace}){hint}")

    def on_step(step, total, stats):
        from cyclegan_cli.train.plot import loss_label  # the names loss.png uses

        losses = {loss_label(k): v for k, v in stats.items() if k.startswith("loss")}
        bar.update(step, total, force=True, **losses)
        if o.json_mode:
            o.json({"event": "step", **stats})

    def on_checkpoint(path):
        o.detail(f"checkpoint {path}")
        if o.json_mode:
            o.json({"event": "checkpoint", "path": str(path)})

    def on_sample(path):
        o.detail(f"samples {path}")

    cb = Callbacks(on_start=on_start, on_step=on_step, on_sample=on_sample, on_checkpoint=on_checkpoint,
                   on_notice=o.info, on_tick=on_tick)
    common = dict(runs_dir=runs_dir, name=name, max_steps=max_steps, lr=lr, seed=seed, deterministic=deterministic,
                  device=device, precision=precision, compile=compile_, workers=workers, log_every=log_every,
                  sample_every=sample_every, save_every=save_every, keep_checkpoints=keep, callbacks=cb,
                  flip=not no_flip, ngf=ngf, ndf=ndf, eval_every=eval_every, eval_data=eval_data,
                  eval_metrics=[m.strip() for m in eval_metrics.split(",") if m.strip()], eval_num=eval_num,
                  eval_features=eval_features, augment=policy, ema=ema)
    with bar:
        if kind == "pix2pix":
            from cyclegan_cli.train.pix2pix import train_pix2pix

            common.pop("eval_every"), common.pop("eval_data"), common.pop("eval_metrics"), common.pop("eval_num")
            common.pop("eval_features")
            run_dir = train_pix2pix(folders[0], folders[1] if len(folders) == 2 else None, direction=direction,
                                    epochs=epochs or 100, decay_epochs=100 if decay_epochs is None else decay_epochs,
                                    batch_size=batch_size or 1, size=size or 256, load_size=load_size,
                                    upsample=upsample, loss=loss or "nonsat", lambda_l1=lambda_l1, **common)
        elif kind == "cut":
            from cyclegan_cli.train.cut import train_cut

            run_dir = train_cut(folders[0], folders[1], method=method, epochs=epochs, decay_epochs=decay_epochs,
                                batch_size=batch_size or 1, size=size or 256, load_size=load_size, blocks=blocks,
                                upsample=upsample, loss=loss or "lsgan", lambda_nce=lambda_nce, nce_layers=nce_layers, **common)
        elif kind == "cyclegan":
            from cyclegan_cli.train.cyclegan import train_cyclegan

            run_dir = train_cyclegan(folders[0], folders[1], epochs=epochs or 100, decay_epochs=100 if decay_epochs is None else decay_epochs,
                                     batch_size=batch_size or 1, size=size or 256, load_size=load_size, blocks=blocks,
                                     generator=generator, upsample=upsample, loss=loss or "lsgan", lambda_cycle=lambda_cycle,
                                     lambda_cycle_a=lambda_cycle_a, lambda_cycle_b=lambda_cycle_b,
                                     lambda_identity=lambda_identity, **common)
        else:
            from cyclegan_cli.train.dcgan import train_dcgan

            run_dir = train_dcgan(folders[0], epochs=epochs or 25, batch_size=batch_size or 64, image_size=size or 64,
                                  nz=nz, loss=loss or "nonsat", **common)
    if os.environ.get("RANK", "0") == "0":
        o.emit(str(run_dir), {"event": "done", "run": run_dir.name, "path": str(run_dir)})
