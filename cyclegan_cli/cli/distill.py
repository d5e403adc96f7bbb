"""``ganctl distill``: a small, fast student of a trained generator."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, List, Literal, Optional

import typer

from cyclegan_cli.cli.common import DeviceOpt, JsonOpt, Output, PrecisionOpt, QuietOpt, VerboseOpt
from cyclegan_cli.train.options import DistillOptions, flag_of

_FIELDS = {f.name: f for f in dataclasses.fields(DistillOptions)}


def _o(name: str, **kw) -> typer.Option:
    from cyclegan_cli.cli.train import field_option

    return field_option(_FIELDS[name], **kw)


def _d(name: str):
    f = _FIELDS[name]
    v = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
    return (not v) if f.metadata["negate"] else v


def distill(
    ctx: typer.Context,
    teacher: Annotated[str, typer.Argument(metavar="TEACHER", help="The model to distil: a zoo name, a run, a checkpoint or an official .pth.")],
    inputs: Annotated[Optional[List[Path]], typer.Argument(metavar="INPUT...", help="Folders, images or videos from the teacher's input domain (your own photos).", show_default=False)] = None,
    name: Annotated[Optional[str], typer.Option("--name", metavar="NAME", help="Run name; the same name again resumes.")] = None,
    runs_dir: Annotated[Path, typer.Option("--runs-dir", help="Where run folders live.")] = Path("runs"),
    direction: Annotated[Literal["AtoB", "BtoA"], _o("direction")] = _d("direction"),
    speedup: Annotated[float, _o("speedup")] = _d("speedup"),
    width: Annotated[Optional[int], _o("width", min=1, show_default=False)] = _d("width"),
    blocks: Annotated[Optional[int], _o("blocks", min=1, show_default=False)] = _d("blocks"),
    epochs: Annotated[int, _o("epochs", min=1)] = _d("epochs"),
    decay_epochs: Annotated[int, _o("decay_epochs", min=0)] = _d("decay_epochs"),
    max_steps: Annotated[Optional[int], _o("max_steps", min=1, show_default=False)] = _d("max_steps"),
    size: Annotated[int, _o("size", min=32)] = _d("size"),
    batch_size: Annotated[int, _o("batch_size", min=1)] = _d("batch_size"),
    lr: Annotated[float, _o("lr", min=0.0)] = _d("lr"),
    l1_weight: Annotated[float, _o("l1_weight", min=0.0)] = _d("l1_weight"),
    feature_weight: Annotated[float, _o("feature_weight", min=0.0)] = _d("feature_weight"),
    gan_weight: Annotated[float, _o("gan_weight", min=0.0)] = _d("gan_weight"),
    stable: Annotated[bool, _o("stable")] = _d("stable"),
    stable_weight: Annotated[float, _o("stable_weight", min=0.0)] = _d("stable_weight"),
    stable_noise: Annotated[float, _o("stable_noise", min=0.0)] = _d("stable_noise"),
    ema: Annotated[float, _o("ema", metavar="DECAY")] = _d("ema"),
    no_flip: Annotated[bool, _o("flip")] = _d("flip"),
    seed: Annotated[int, _o("seed")] = _d("seed"),
    log_every: Annotated[Optional[int], _o("log_every", min=1, show_default=False)] = _d("log_every"),
    log_seconds: Annotated[float, typer.Option("--log-seconds", min=1, help="Without a terminal: a progress line at least this often.")] = 30.0,
    sample_every: Annotated[Optional[int], _o("sample_every", min=1, show_default=False)] = _d("sample_every"),
    save_every: Annotated[Optional[int], _o("save_every", min=1, show_default=False)] = _d("save_every"),
    keep: Annotated[Optional[int], _o("keep_checkpoints", min=1, show_default=False)] = _d("keep_checkpoints"),
    no_tensorboard: Annotated[bool, _o("tensorboard")] = _d("tensorboard"),
    device: DeviceOpt = "auto",
    precision: PrecisionOpt = "auto",
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
    json_out: JsonOpt = False,
):
    """Distil a generator into a small student that runs --speedup times faster on this CPU; prints the run folder.

    The student's shape is chosen by timing candidates against the teacher on this machine (see
    `ganctl runs show NAME`). It trains on random crops of INPUT at their own scale; the teacher's
    output for each crop is its target. The student is an ordinary run: `--model NAME` for
    translate, export and the zoo; the same --name again resumes it.

    Examples:

    \b
      ganctl distill photo2sketch-cut ~/Pictures --name sketch-fast     # 8x faster, the default
      ganctl distill horse2zebra horses/ --direction AtoB --speedup 4 --name h2z-fast
      ganctl distill photo2sketch-cut photos/ clip.mp4 --stable --stable-noise 3 --name sketch-video   # steadier video
      ganctl translate photos/ --model sketch-fast
    """
    from cyclegan_cli.errors import UsageError
    from cyclegan_cli.train.distill import train_distill
    from cyclegan_cli.zoo import runs as registry
    from cyclegan_cli.zoo.names import check_name

    o = Output(quiet, verbose, json_out)
    if name is not None:
        check_name(name, "--name")
    from cyclegan_cli.cli.train import given_options

    given = {**given_options(ctx, _FIELDS), "precision": precision, "device": device}
    inputs = list(inputs or [])
    run_dir = Path(runs_dir) / name if name else None
    opts = registry.read_options(run_dir) if run_dir is not None and registry.is_run_dir(run_dir) else {}
    if opts:  # the same --name again: the run continues with what it was started with
        if opts.get("kind") != "distill":
            raise UsageError(f"run {name} exists and is a {opts.get('kind')} run; choose another --name")
        if teacher != opts["teacher"]["spec"]:
            raise UsageError(f"run {name} distils {opts['teacher']['spec']}; give that teacher to continue it, or "
                             "choose another --name")
        if inputs and [str(p.resolve()) for p in inputs] != opts["inputs"]:
            raise UsageError(f"run {name} trains on {' '.join(opts['inputs'])}; give no inputs to continue it, or "
                             "choose another --name")
        inputs = [Path(p) for p in opts["inputs"]]
        options, conflicts = DistillOptions.continued(opts, given)
        if conflicts:
            raise UsageError(f"run {name} was started with other options ({', '.join(conflicts)}); leave them out to "
                             "continue it, or choose another --name")
    else:
        if name and not inputs:  # a run to continue, perhaps, kept in another runs folder
            import shlex

            try:
                elsewhere = registry.find_run(name, runs_dir)
            except UsageError:  # several: the registry's own words would suggest a path, which --name refuses
                raise UsageError(f"no run {name} in {runs_dir}; several runs named {name} are registered elsewhere "
                                 "(ganctl runs list): add the --runs-dir of the one to continue") from None
            if (elsewhere is not None and Path(elsewhere.path).name == name  # (a moved run's folder may differ)
                    and registry.read_options(Path(elsewhere.path)).get("kind") == "distill"):
                raise UsageError(f"no run {name} in {runs_dir}; a distill run {name} is at {elsewhere.path}: add "
                                 f"--runs-dir {shlex.quote(str(Path(elsewhere.path).parent))} to continue it")
        options = DistillOptions(**given)
    from cyclegan_cli.cli.train import progress_callbacks

    bar, cb = progress_callbacks(o, options, log_seconds, again=["distill", teacher, "--name"])
    with bar:
        run_dir = train_distill(teacher, inputs, options, runs_dir=runs_dir, name=name, callbacks=cb)
    o.emit(str(run_dir), {"event": "done", "run": run_dir.name, "path": str(run_dir)})
