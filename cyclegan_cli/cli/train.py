"""``ganctl train``: two folders train a CycleGAN, one folder a DCGAN."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Annotated, List, Literal, Optional

import typer

from cyclegan_cli.cli.common import DeviceOpt, JsonOpt, Output, PrecisionOpt, QuietOpt, VerboseOpt
from cyclegan_cli.train.options import KINDS, PRESETS, all_fields, flag_of

_FIELDS = all_fields()


def _shared_default(name: str):
    """The default of option ``name`` when every kind that has it agrees, else None (the kind decides)."""
    defaults = []
    for cls in KINDS.values():
        for f in dataclasses.fields(cls):
            if f.name == name:
                defaults.append(f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default)
    return defaults[0] if all(d == defaults[0] for d in defaults) else None


def _o(name: str, **kw) -> typer.Option:
    """The Typer option for training option ``name``: its flag and help text from the dataclass."""
    return field_option(_FIELDS[name], **kw)


def field_option(f, **kw) -> typer.Option:
    """The Typer option of an options-dataclass field: its flag and help text (train and distill)."""
    return typer.Option(flag_of(f), help=f.metadata["help"], **kw)


def _d(name: str):
    """The option's default on the command line: the kinds' shared default (as text for a list),
    else None (each kind has its own, said in the help)."""
    v = _shared_default(name)
    if _FIELDS[name].metadata["negate"]:  # --no-flip: off unless given, whatever the kind
        assert v is not None, f"{name}: a negated flag needs the same default in every kind"
        return not v
    return ",".join(map(str, v)) if isinstance(v, (list, tuple)) else v


def _explicit(ctx, param: str) -> bool:
    from typer._click.core import ParameterSource

    src = ctx.get_parameter_source(param)
    return src in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)


def given_options(ctx, fields: dict) -> dict:
    """The options given on the command line (field name -> value), found by the flags of
    ``fields`` (name -> dataclass field); train's and distill's."""
    by_flag = {flag_of(f): f for f in fields.values()}
    given = {}
    for p in ctx.command.params:
        f = next((by_flag[x] for x in p.opts if x in by_flag), None)
        if f is not None and _explicit(ctx, p.name):
            v = ctx.params[p.name]
            given[f.name] = (not v) if f.metadata["negate"] else v
    return given


def _model_choice(value: Optional[str]) -> Optional[str]:
    """--model cyclegan or dcgan; the other kinds are chosen by --method and --paired, which the
    refusal names."""
    if value is None or value in ("cyclegan", "dcgan"):
        return value
    other = {"cut": "--method cut", "fastcut": "--method fastcut", "pix2pix": "--paired"}.get(value.lower())
    raise typer.BadParameter(f"{value!r} is not one of 'cyclegan', 'dcgan'" + (f": use {other}" if other else ""))


def train(
    ctx: typer.Context,
    folders: Annotated[Optional[List[Path]], typer.Argument(metavar="FOLDER...", help="A B (CycleGAN, CUT; with --paired, pix2pix) or one folder (DCGAN).", show_default=False)] = None,
    model: Annotated[Optional[str], typer.Option("--model", metavar="<cyclegan|dcgan>", callback=_model_choice, help="Which GAN (default: two folders CycleGAN, one DCGAN); CUT and FastCUT: --method, pix2pix: --paired.")] = None,
    name: Annotated[Optional[str], typer.Option("--name", metavar="NAME", help="Run name; the same name again resumes.")] = None,
    resume: Annotated[Optional[str], typer.Option("--resume", metavar="RUN", help="Continue the run RUN (a name or a run folder).")] = None,
    runs_dir: Annotated[Path, typer.Option("--runs-dir", help="Where run folders live.")] = Path("runs"),
    preset: Annotated[Literal[tuple(PRESETS)], _o("preset")] = _d("preset"),
    epochs: Annotated[Optional[int], _o("epochs", min=1)] = _d("epochs"),
    decay_epochs: Annotated[Optional[int], _o("decay_epochs", min=0)] = _d("decay_epochs"),
    max_steps: Annotated[Optional[int], _o("max_steps", min=1)] = _d("max_steps"),
    lr: Annotated[float, _o("lr", min=0.0)] = _d("lr"),
    batch_size: Annotated[Optional[int], _o("batch_size", min=1)] = _d("batch_size"),
    size: Annotated[Optional[int], _o("size", min=8)] = _d("size"),
    load_size: Annotated[Optional[int], _o("load_size")] = _d("load_size"),
    ngf: Annotated[int, _o("ngf", min=1)] = _d("ngf"),
    ndf: Annotated[int, _o("ndf", min=1)] = _d("ndf"),
    blocks: Annotated[int, _o("blocks", min=1)] = _d("blocks"),
    generator: Annotated[Literal["resnet", "unet"], _o("generator")] = _d("generator"),
    method: Annotated[Literal["cyclegan", "cut", "fastcut"], _o("method")] = "cyclegan",  # chooses the kind
    lambda_nce: Annotated[Optional[float], _o("lambda_nce", min=0.0, show_default=False)] = _d("lambda_nce"),
    nce_layers: Annotated[str, _o("nce_layers", metavar="LAYERS")] = _d("nce_layers"),
    augment: Annotated[str, _o("augment", metavar="POLICY")] = _d("augment"),
    ema: Annotated[float, _o("ema", metavar="DECAY")] = _d("ema"),
    paired: Annotated[bool, typer.Option("--paired", help="pix2pix on paired images: A/x.png goes with B/x.*, or one folder of A|B side-by-side images.")] = False,
    direction: Annotated[Literal["AtoB", "BtoA"], _o("direction")] = _d("direction"),
    lambda_l1: Annotated[float, _o("lambda_l1", min=0.0)] = _d("lambda_l1"),
    upsample: Annotated[Literal["transpose", "resize"], _o("upsample")] = _d("upsample"),
    nz: Annotated[int, _o("nz", min=1)] = _d("nz"),
    lambda_cycle: Annotated[float, _o("lambda_cycle", min=0.0)] = _d("lambda_cycle"),
    lambda_cycle_a: Annotated[Optional[float], _o("lambda_cycle_a", min=0.0, show_default=False)] = _d("lambda_cycle_a"),
    lambda_cycle_b: Annotated[Optional[float], _o("lambda_cycle_b", min=0.0, show_default=False)] = _d("lambda_cycle_b"),
    lambda_identity: Annotated[float, _o("lambda_identity", min=0.0)] = _d("lambda_identity"),
    loss: Annotated[Optional[Literal["lsgan", "minimax", "nonsat", "hinge", "wgangp"]], _o("loss")] = _d("loss"),
    no_flip: Annotated[bool, _o("flip")] = _d("flip"),
    seed: Annotated[int, _o("seed")] = _d("seed"),
    deterministic: Annotated[bool, _o("deterministic")] = _d("deterministic"),
    workers: Annotated[Optional[int], _o("workers", min=0)] = _d("workers"),
    log_every: Annotated[Optional[int], _o("log_every", min=1, show_default=False)] = _d("log_every"),
    log_seconds: Annotated[float, typer.Option("--log-seconds", min=1, help="Without a terminal: a progress line at least this often.")] = 30.0,
    sample_every: Annotated[Optional[int], _o("sample_every", min=1, show_default=False)] = _d("sample_every"),
    save_every: Annotated[Optional[int], _o("save_every", min=1, show_default=False)] = _d("save_every"),
    keep: Annotated[Optional[int], _o("keep_checkpoints", min=1, show_default=False)] = _d("keep_checkpoints"),
    no_tensorboard: Annotated[bool, _o("tensorboard")] = _d("tensorboard"),
    eval_every: Annotated[int, _o("eval_every", min=0, metavar="STEPS")] = _d("eval_every"),
    eval_data: Annotated[Optional[Path], _o("eval_data", metavar="FOLDER")] = _d("eval_data"),
    eval_metrics: Annotated[str, _o("eval_metrics")] = _d("eval_metrics"),
    eval_num: Annotated[int, _o("eval_num", min=2)] = _d("eval_num"),
    eval_features: Annotated[str, _o("eval_features", metavar="inception|PATH.pt")] = _d("eval_features"),
    compile_: Annotated[bool, _o("compile")] = _d("compile"),
    device: DeviceOpt = "auto",
    precision: PrecisionOpt = "auto",
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
    json_out: JsonOpt = False,
):
    """Train a CycleGAN, CUT or FastCUT (two folders), pix2pix (--paired) or a DCGAN (one folder). Resumable; prints the run folder.

    An existing run (--resume RUN, or the same --name) continues with every option it was started
    with; only options given here that differ from those are an error, and so is an option the
    model does not take (--lambda-l1 on a CycleGAN, --nz on pix2pix): it would change nothing.

    Examples:

    \b
      ganctl train horses zebras --name h2z              # CycleGAN, the official recipe
      ganctl train horses zebras --name h2z --preset cpu   # smaller (ngf 32, 6 blocks, 128 px), for a CPU
      ganctl train photos sketches --method cut --name p2s   # CUT: one generator, one way, cheaper
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
    given = given_options(ctx, _FIELDS)
    options = None
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
        if kind in KINDS:
            options, conflicts = KINDS[kind].continued(opts, given)
            if conflicts:
                raise UsageError(f"run {run_dir.name} was started with other options ({', '.join(conflicts)}); leave "
                                 "them out to continue it, or choose another --name")
        runs_dir, name, model = run_dir.parent, run_dir.name, kind
        method, paired = saved_method or "cyclegan", kind == "pix2pix"
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
    if kind not in KINDS:
        raise UsageError(f"--model {kind!r}: cyclegan or dcgan (or --paired for pix2pix)")
    if kind == "cyclegan" and len(folders) != 2:
        raise UsageError(f"CycleGAN training takes two folders (A B); {len(folders)} given")
    if kind == "dcgan" and len(folders) != 1:
        raise UsageError(f"DCGAN training takes one folder; {len(folders)} given (two folders train a CycleGAN)")
    options = options or KINDS[kind].of(given)
    from cyclegan_cli.device import pick_device, training_dtype

    training_dtype(pick_device(options.device), options.precision)  # before the run folder is made (the task checks it again)

    bar, cb = progress_callbacks(o, options, log_seconds, again=["train", "--resume"])
    import importlib

    train_kind = getattr(importlib.import_module(f"cyclegan_cli.train.{kind}"), f"train_{kind}")  # train.cut.train_cut, ...
    if kind == "pix2pix" and len(folders) == 1:
        folders.append(None)  # one folder of A|B images
    with bar:
        run_dir = train_kind(*folders, options, runs_dir=runs_dir, name=name, callbacks=cb)
    if os.environ.get("RANK", "0") == "0":
        o.emit(str(run_dir), {"event": "done", "run": run_dir.name, "path": str(run_dir)})


def again_command(words: list[str], run: Path) -> str:
    """What to type to carry on the run in folder ``run``: ``ganctl WORDS... NAME``, with
    ``--runs-dir`` where the run is not in ./runs."""
    import shlex

    parts = ["ganctl", *words, run.name]
    if run.parent.resolve() != Path("runs").resolve():
        parts += ["--runs-dir", str(run.parent)]
    return shlex.join(parts)


def progress_callbacks(o: Output, options, log_seconds: float, again: list[str] | None = None):
    """(the progress bar, the training loop's callbacks) that every training command reports
    through: the start line, a bar with the losses, the time left, checkpoints and samples.
    ``again``: the command's words before the run name that carry a run on (``train --resume``),
    said when it is interrupted."""
    from cyclegan_cli.cli.common import duration, eta_to_say, human_size
    from cyclegan_cli.train.loop import Callbacks

    # the first steps (allocation, kernel choice, caches) are not the pace: measured after them
    bar = o.progress("train", options.max_steps, "it", interval=log_seconds, warmup=(3, 60.0))
    started, said = {}, {}

    def on_start(info):
        started.update(info)
        left = info["total"] - info["step"]
        o.info(f"run {info['run']} on {info['device']}" + (f" x{info['world']}" if info["world"] > 1 else "")
               + f": {left:,} step{'' if left == 1 else 's'} to go" + (f" from step {info['step']:,}" if info["step"] else ""))
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
        px = options.size
        tries = ["--preset cpu"] if getattr(options, "preset", "cpu") != "cpu" else []  # distill has none
        tries += [f"--size {max(32, px // 2 // 4 * 4)}"] if px > 64 else []
        tries = ", ".join(tries) + " or " if tries else ""
        hint = f"; try {tries}a GPU" if started["device"] == "cpu" and eta > 3600 else ""
        o.info(f"≈{duration(eta)} to go on {started['device']} at {px} px ({pace}){hint}")

    def on_step(step, total, stats):
        from cyclegan_cli.train.plot import loss_label  # the names loss.png uses

        losses = {loss_label(k): v for k, v in stats.items() if k.startswith("loss")}
        bar.update(step, total, force=True, **losses)
        if o.json_mode:
            o.json({"event": "step", **stats})

    def on_checkpoint(path):
        o.detail(f"checkpoint {path}")
        if started.get("device") == "cpu" and "checkpoint" not in started:  # a CPU trial: what its disk goes to
            size = started["checkpoint"] = sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())
            keep = started.get("keep") or 1
            o.info(f"each checkpoint is {human_size(size)}; --keep {keep} keeps "
                   + (f"up to {human_size(keep * size)}, --keep 1 would save {human_size((keep - 1) * size)}"
                      if keep > 1 else "only the last"))
        if o.json_mode:
            o.json({"event": "checkpoint", "path": str(path)})

    def on_sample(path):
        o.detail(f"samples {path}")

    cb = Callbacks(on_start=on_start, on_step=on_step, on_sample=on_sample, on_checkpoint=on_checkpoint,
                   on_notice=o.info, on_tick=on_tick,
                   resume_command=lambda run: again_command(again, Path(run)) if again else "")
    return bar, cb
