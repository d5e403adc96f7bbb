"""Training options as data: one dataclass per model kind (CycleGAN, CUT/FastCUT, pix2pix, DCGAN).

Each field carries its default, its help text, its command-line flag and what a resumed run may do
with it (``resume``):

- ``fixed``: what the networks and data are; saved in the run's options.json, restored on a
  resume, and an explicit different value is refused;
- ``length``: how long to train; saved, and free to change when a run continues;
- ``setting``: how a run reports and keeps itself (``--log-every``, ``--keep``...); saved when given,
  remembered when not (see :func:`cyclegan_cli.train.runfolder.run_settings`);
- ``process``: this process only (device, workers, evaluation); never saved.

No torch here: ``ganctl train --help`` builds its options from these classes.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar, Optional

from cyclegan_cli.errors import NotFoundError, UsageError

POLICIES = ("color", "translation", "cutout")  # DiffAugment's (train/augment.py)
NCE_LAYERS = [0, 4, 8, 12, 16]  # the official --nce_layers
METHODS = ("cut", "fastcut")


@dataclass(frozen=True)
class Recipe:
    """A method's official defaults: its schedule, its loss weights and how its networks start."""

    label: str  # the method as --help names it
    epochs: int  # at the full learning rate
    decay_epochs: int  # of linear decay to zero
    init: str  # the official --init_type: "normal" (N(0, init_gain)) or "xavier" (xavier_normal, gain init_gain)
    init_gain: float  # the official --init_gain
    lambda_nce: float = 0.0  # CUT/FastCUT: the PatchNCE weight
    nce_idt: bool = False  # CUT: the identity term NCE(G(B), B)
    flip_equivariance: bool = False  # FastCUT: the input flipped at random, the output's features flipped back


# junyanz/pytorch-CycleGAN-and-pix2pix and taesungp/contrastive-unpaired-translation, options/ and models/
RECIPES = {
    "cyclegan": Recipe("CycleGAN", 100, 100, "normal", 0.02),
    "cut": Recipe("CUT", 200, 200, "xavier", 0.02, lambda_nce=1.0, nce_idt=True),
    "fastcut": Recipe("FastCUT", 150, 50, "xavier", 0.02, lambda_nce=10.0, flip_equivariance=True),
    "pix2pix": Recipe("pix2pix", 100, 100, "normal", 0.02),
}
DCGAN_EPOCHS = 25  # pytorch/examples dcgan/main.py --niter; no decay


@dataclass(frozen=True)
class Preset:
    """Values a preset gives the options a command line leaves out: an option given always wins, a
    field left None keeps each kind's own default, and a kind without the option ignores it."""

    label: str  # what --help says the preset is for
    ngf: Optional[int] = None
    ndf: Optional[int] = None
    blocks: Optional[int] = None  # CycleGAN/CUT's ResNet blocks
    upsample: Optional[str] = None  # CycleGAN's ResNet, pix2pix's U-Net
    ema: Optional[float] = None
    crop: Optional[int] = None  # --size of the kinds that crop (CycleGAN, CUT, pix2pix); a DCGAN keeps its image size

    def values(self) -> dict:
        """field -> value, as the options name them (crop is --size)."""
        return {("size" if f.name == "crop" else f.name): getattr(self, f.name) for f in fields(self)
                if f.name != "label" and getattr(self, f.name) is not None}

    def values_for(self, cls: type) -> dict:
        """The values that apply to the options class ``cls``."""
        names = {f.name for f in fields(cls)}
        crops = issubclass(cls, ImageToImageOptions)
        return {k: v for k, v in self.values().items() if k in names and (k != "size" or crops)}


# official: each kind's defaults, the papers' GPU settings. cpu: what the project's own CPU recipes use
# (examples/photo2sketch/train-cut-cpu.sh, train-cpu.sh; pretrained/TRAINING.md): about 1.2 s a CUT step
# on a 2-core CPU against 5 s for the official settings (docs/benchmarks.md)
PRESETS = {
    "official": Preset("the official settings, for a GPU"),
    "cpu": Preset("the project's CPU recipe", ngf=32, ndf=32, blocks=6, upsample="resize", ema=0.999, crop=128),
}
SCHEDULES = ", ".join(f"{r.label} {r.epochs}+{r.decay_epochs}" for r in RECIPES.values())  # as --help says them
DCGAN_LOSSES = ("nonsat", "minimax", "lsgan", "hinge", "wgangp")
DCGAN_SIZES = (16, 32, 64, 128, 256)  # what the generator builds (4x4 doubled 2 to 6 times)
LENGTH_OPTIONS = ("max_steps", "epochs", "decay_epochs")  # may change when a run is continued


def opt(default: Any, help: str, resume: str = "fixed", *, flag: str | None = None, negate: bool = False,
        cli: bool = True, old: tuple = ()) -> Any:
    """A field: ``flag`` defaults to --NAME; ``negate``: the flag sets the field False (--no-flip);
    ``cli``: False for options only the Python API sets; ``old``: the keys older runs saved it under."""
    meta = {"help": help, "resume": resume, "flag": flag, "negate": negate, "cli": cli, "old": old}
    if isinstance(default, (list, tuple)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


def again(cls: type, name: str, default: Any) -> Any:
    """The field ``name`` of ``cls`` (help, flag, ...) with another default, for a kind whose
    recipe differs (DCGAN's 25 epochs)."""
    meta = {f.name: f for f in fields(cls)}[name].metadata
    return opt(default, **meta)


def flag_of(f: dataclasses.Field) -> str:
    return f.metadata["flag"] or "--" + f.name.replace("_", "-")


def parse_policy(text: str | tuple | list | None) -> tuple[str, ...]:
    """``"color,translation"`` -> ("color", "translation"); ``none`` or empty -> (). Raises
    ValueError naming the unknown ones."""
    if isinstance(text, (tuple, list)):
        text = ",".join(text)
    if text is None or text.strip().lower() in ("", "none"):
        return ()
    names = tuple(dict.fromkeys(t.strip().lower() for t in text.split(",") if t.strip()))
    bad = [n for n in names if n not in POLICIES]
    if bad:
        raise ValueError(f"unknown augmentation {', '.join(bad)}: choose from {', '.join(POLICIES)} (comma-separated) or none")
    return names


def check_decay(decay: float) -> None:
    if decay and not 0.0 < decay < 1.0:
        raise UsageError(f"--ema {decay}: the decay must be between 0 and 1 (e.g. 0.999), or 0 for none")


@dataclass
class TrainOptions:
    """What every kind of training takes."""

    epochs: Optional[int] = opt(None, f"Epochs at the full learning rate; each method's schedule is epochs + decay "
                                f"epochs: {SCHEDULES}; DCGAN {DCGAN_EPOCHS}, no decay.", "length")
    max_steps: Optional[int] = opt(None, "Stop after N iterations from the run's start (at most the schedule's length).",
                                   "length")
    lr: float = opt(2e-4, "Adam learning rate (official 0.0002).")
    beta1: float = opt(0.5, "Adam beta1 (official 0.5; beta2 0.999).", cli=False)
    batch_size: int = opt(1, "Images per step (CycleGAN 1, DCGAN 64).")
    size: int = opt(256, "Crop size (CycleGAN 256) or image size (DCGAN 64).", old=("image_size",))
    ngf: int = opt(64, "Generator filters in the first layer (official 64).")
    ndf: int = opt(64, "Discriminator filters in the first layer (official 64).")
    flip: bool = opt(True, "No random horizontal flips.", flag="--no-flip", negate=True)
    loss: str = opt("lsgan", "CycleGAN: lsgan (official), minimax, nonsat, wgangp; DCGAN: nonsat (default), minimax, "
                    "lsgan, hinge, wgangp.")
    seed: int = opt(0, "Seeds weights, data order, augmentation and pools.")
    deterministic: bool = opt(False, "Deterministic algorithms and data order.")
    # this process's: weights and optimizer state are fp32 whatever autocast ran in, so a resume may change it
    precision: str = opt("auto", "auto (bf16 on GPUs that have it), fp16 (GradScaler), bf16, fp32.", "process")
    augment: str = opt("none", "DiffAugment before the discriminator, on real and fake images alike: comma-separated "
                       "color, translation, cutout; or none.")
    ema: float = opt(0.0, "Keep an exponential moving average of the generator's weights with this decay (e.g. 0.999; "
                     "0: none); translate and sample use it unless --raw-weights.")
    device: str = opt("auto", "auto|cpu|cuda|cuda:N|mps.", "process")
    workers: Optional[int] = opt(None, "DataLoader workers (default: 0 on CPU, 4 on GPU).", "process")
    compile: bool = opt(False, "torch.compile the networks.", "process")
    channels_last: Optional[bool] = opt(None, "Channels-last memory format (default: on for CUDA).", "process", cli=False)
    log_every: Optional[int] = opt(None, "A stats.jsonl line (and a progress line) every N steps (default 50; a resumed "
                                   "run keeps what it was given).", "setting")
    sample_every: Optional[int] = opt(None, "A sample grid in the run's samples/ every N steps (default 500; a resumed "
                                      "run keeps what it was given).", "setting")
    save_every: Optional[int] = opt(None, "A checkpoint every N steps and at the end (default 1000; a resumed run keeps "
                                    "what it was given).", "setting")
    keep_checkpoints: Optional[int] = opt(None, "Keep the last K checkpoints (default 3; a resumed run keeps what it "
                                          "was given).", "setting", flag="--keep")
    tensorboard: bool = opt(True, "No TensorBoard event files in the run's tensorboard/ (written by default where the "
                            "tensorboard package is installed: pip install 'ganctl[tensorboard]').", "process",
                            flag="--no-tensorboard", negate=True)

    def __post_init__(self):
        try:
            self.augment = ",".join(parse_policy(self.augment)) or "none"
        except ValueError as exc:
            raise UsageError(f"--augment: {exc}") from None

    # ------------------------------------------------------------------ what a kind takes
    @property
    def policy(self) -> tuple[str, ...]:
        """The DiffAugment policy as train/augment.py takes it."""
        return parse_policy(self.augment)

    def validate(self) -> None:
        """One-line usage errors for values no run can use (before any work is done)."""
        check_decay(self.ema)

    def resolved(self) -> "TrainOptions":
        """The options with the defaults that depend on others filled in: what a run saves."""
        return self

    # ------------------------------------------------------------------ saving and resuming
    @classmethod
    def fields_to(cls, *kinds: str) -> list[dataclasses.Field]:
        return [f for f in fields(cls) if f.metadata["resume"] in kinds]

    def saved(self) -> dict:
        """The fields a run keeps in its options.json (the fixed and the length ones)."""
        return {f.name: getattr(self, f.name) for f in self.fields_to("fixed", "length")}

    @classmethod
    def from_saved(cls, saved: dict) -> "TrainOptions":
        """The options a run was saved with (any version's options.json): a field the run did not
        save (an option added after it was started) is its default, as it was then."""
        values = {}
        for f in cls.fields_to("fixed", "length"):
            for key in (f.name, *f.metadata["old"]):
                if key in saved:
                    values[f.name] = saved[key]
                    break
        return cls(**values)

    @classmethod
    def build(cls, options: "TrainOptions | None" = None, overrides: dict | None = None) -> "TrainOptions":
        """``options`` (or the defaults, with those of ``overrides["preset"]``) with keyword
        ``overrides`` of its fields, the Python API's way; the names older versions took (DCGAN's
        ``image_size``) still work."""
        old = {o: f.name for f in fields(cls) for o in f.metadata["old"]}
        overrides = {old.get(k, k): v for k, v in (overrides or {}).items()}
        return dataclasses.replace(options or cls(**cls.defaults(overrides)), **overrides)

    @classmethod
    def own(cls, given: dict) -> dict:
        """``given`` (field -> value) cut to this kind's fields; an option of another kind (--lambda-l1
        on a CycleGAN, --nz on pix2pix) is a usage error: ignored, it would let a user believe it acted.
        --method picks the kind and is no field of it."""
        names = {f.name for f in fields(cls)}
        every = all_fields()
        foreign = [flag_of(every[k]) for k in given if k not in names and k in every and k != "method"]
        if foreign:
            what, it = ("does", "it") if len(foreign) == 1 else ("do", "them")
            raise UsageError(f"{', '.join(foreign)} {what} not apply to {LABELS.get(cls.__name__, 'this training')}; "
                             f"leave {it} out")
        return {k: v for k, v in given.items() if k in names}

    @classmethod
    def of(cls, given: dict) -> "TrainOptions":
        """The defaults (a preset's, where ``given`` names one) with ``given`` (field -> value) over them;
        an option of another kind is an error."""
        given = cls.own(given)
        return cls(**{**cls.defaults(given), **given})

    @classmethod
    def defaults(cls, given: dict) -> dict:
        """The values that replace the fields' own defaults: the preset's that ``given`` names."""
        return cls.preset_values(given.get("preset")) if issubclass(cls, PresetOptions) else {}

    @classmethod
    def continued(cls, saved: dict, given: dict) -> tuple["TrainOptions", list[str]]:
        """(the options a saved run continues with, one 'flag saved (given value)' text per explicit
        conflict). Every saved field is restored; a given field replaces it where a resume may change
        it (length, settings, this process), or where it is the same value."""
        given = cls.own(given)
        old = cls.from_saved(saved)
        new = dataclasses.replace(old, **given)  # given values in the fields' own form
        conflicts = []
        for f in cls.fields_to("fixed"):
            if f.name in given and getattr(new, f.name) != getattr(old, f.name):
                was = getattr(old, f.name)
                was = "not set" if was is None else was  # (distill's --width, chosen by --speedup)
                conflicts.append(flag_of(f) if f.metadata["negate"] else f"{flag_of(f)} {was} (given {given[f.name]})")
        if "max_steps" not in given and {"epochs", "decay_epochs"} & set(given):
            new.max_steps = None  # recomputed from the new schedule
        return new, conflicts

    def changes_from(self, old: "TrainOptions") -> list[str]:
        """'name old -> new' per fixed field that differs (both resolved)."""
        return [f"{f.name} {getattr(old, f.name)} -> {getattr(self, f.name)}" for f in self.fields_to("fixed")
                if getattr(old, f.name) != getattr(self, f.name)]


@dataclass
class EvalOptions:
    """Evaluation during training (the kinds that have it)."""

    eval_every: int = opt(0, "Evaluate the generator every STEPS steps (figures in stats.jsonl and eval.png; then "
                          "--model RUN:best-kid).", "process")
    eval_data: Optional[Path] = opt(None, "Real images to evaluate against (CycleGAN: domain B).", "process")
    eval_metrics: tuple = opt(("kid",), "Comma-separated: kid, fid, pr.", "process")
    eval_num: int = opt(500, "Samples and real images per evaluation.", "process")
    eval_features: str = opt("inception", "Feature network, as for ganctl eval.", "process")

    def check_eval(self) -> None:
        if isinstance(self.eval_metrics, str):
            self.eval_metrics = tuple(m.strip() for m in self.eval_metrics.split(",") if m.strip())
        if self.eval_every and self.eval_data is None:
            raise UsageError("--eval-every needs --eval-data FOLDER (real images to compare with)")
        if self.eval_data is not None and not Path(self.eval_data).is_dir():
            raise NotFoundError(f"--eval-data {self.eval_data}: no such folder")


def preset_help() -> str:
    """--preset's help, read off PRESETS."""
    say = lambda k, v: f"{v} px crops" if k == "size" else f"{k} {v}"  # noqa: E731 (a DCGAN keeps its size)
    said = [f"{n} ({p.label}" + (": " + ", ".join(say(*kv) for kv in p.values().items()) if p.values() else "") + ")"
            for n, p in PRESETS.items()]
    return ("Defaults for the options not given: " + "; ".join(said) + ". An option given always wins; a run keeps "
            "its preset.")


@dataclass
class PresetOptions:
    """The kinds that ``ganctl train`` makes: their defaults may come from a preset (PRESETS)."""

    preset: str = opt("official", preset_help())

    def check_preset(self) -> None:
        self.preset_values(self.preset)

    @classmethod
    def preset_values(cls, name: Optional[str]) -> dict:
        """The values preset ``name`` (None: official) gives this kind's options."""
        name = name or "official"
        if name not in PRESETS:
            raise UsageError(f"--preset {name!r}: {' or '.join(PRESETS)}")
        return PRESETS[name].values_for(cls)


@dataclass
class ImageToImageOptions(TrainOptions, PresetOptions):
    """What the kinds that translate images (CycleGAN, CUT, pix2pix) add."""

    epochs: Optional[int] = again(TrainOptions, "epochs", RECIPES["cyclegan"].epochs)  # pix2pix's are the same
    decay_epochs: Optional[int] = opt(RECIPES["cyclegan"].decay_epochs, "Epochs of linear learning-rate decay to zero "
                                      f"after --epochs ({SCHEDULES}).", "length")
    load_size: Optional[int] = opt(None, "CycleGAN: resize before crop (286 for 256).")
    upsample: str = opt("transpose", "Generator up-sampling (CycleGAN's ResNet, pix2pix's U-Net): transpose (official) "
                        "or resize (bilinear + conv: no checkerboard).")
    domains: Optional[list] = opt(None, "Domain names (default: the folder names).", cli=False)

    def check_load_size(self) -> None:
        load = self.load_size or round(self.size * 286 / 256)
        if load < self.size:
            raise UsageError(f"--load-size {load} is smaller than --size {self.size}")

    def validate(self) -> None:
        from cyclegan_cli.models.cyclegan import check_upsample  # the one check, beside the generators

        check_upsample(self.upsample)
        self.check_preset()
        super().validate()

    def resolved(self):
        return dataclasses.replace(self, load_size=self.load_size or round(self.size * 286 / 256))


@dataclass
class UnpairedOptions(ImageToImageOptions):
    """Two unpaired folders (CycleGAN, CUT): a ResNet generator and a PatchGAN."""

    blocks: int = opt(9, "CycleGAN generator ResNet blocks (official 9).")
    d_layers: int = opt(3, "PatchGAN layers: 3 = 70x70 receptive field (official basic D).", cli=False)
    norm: str = opt("instance", "Normalisation layers (official for CycleGAN: instance).", cli=False)

    def validate(self) -> None:
        super().validate()
        if self.size % 4:
            raise UsageError(f"--size {self.size}: must be a multiple of 4")
        self.check_generator()
        need = 2 ** (self.d_layers + 2)
        if self.size < need:
            raise UsageError(f"--size {self.size}: the {self.d_layers}-layer PatchGAN needs at least {need} px")
        self.check_load_size()

    def check_generator(self) -> None:
        pass


@dataclass
class CycleGANOptions(UnpairedOptions, EvalOptions):
    """CycleGAN, the official recipe by default (junyanz/pytorch-CycleGAN-and-pix2pix ``options/``)."""

    generator: str = opt("resnet", "CycleGAN generator: resnet (official default, --blocks) or unet (official --netG "
                         "unet_128/unet_256; --size a power of two).")
    lambda_cycle: float = opt(10.0, "Cycle-consistency weight per direction (official 10).")
    lambda_cycle_a: Optional[float] = opt(None, "A->B->A cycle weight only (default --lambda-cycle; official lambda_A): "
                                          "lower it when B holds less than A (photo->sketch), where asking for A back at "
                                          "full weight gives the A->B generator a reason to hide A's detail in its B images.")
    lambda_cycle_b: Optional[float] = opt(None, "B->A->B cycle weight only (default --lambda-cycle).")
    lambda_identity: float = opt(0.5, "Identity loss, as a fraction of --lambda-cycle (official 0.5).")
    pool_size: int = opt(50, "Image history pool for the discriminators (official 50).", cli=False)

    def validate(self) -> None:
        from cyclegan_cli.train.losses import LOSSES

        if self.loss not in LOSSES or self.loss == "hinge":
            raise UsageError(f"unknown --loss {self.loss!r} for CycleGAN: lsgan, minimax, nonsat or wgangp")
        super().validate()
        resolved = self.resolved()
        for name in ("lambda_cycle", "lambda_cycle_a", "lambda_cycle_b"):
            v = getattr(resolved, name)
            if not v >= 0:
                raise UsageError(f"--{name.replace('_', '-')} {v}: must be 0 or more")
        self.check_eval()

    def check_generator(self) -> None:
        if self.generator not in ("resnet", "unet"):
            raise UsageError(f"--generator {self.generator!r}: resnet or unet")
        if self.generator == "unet" and (self.size < 32 or self.size & (self.size - 1)):
            raise UsageError(f"--size {self.size}: the U-Net generator takes a power of two, at least 32")

    def resolved(self):
        a = self.lambda_cycle if self.lambda_cycle_a is None else self.lambda_cycle_a
        b = self.lambda_cycle if self.lambda_cycle_b is None else self.lambda_cycle_b
        return dataclasses.replace(super().resolved(), lambda_cycle_a=a, lambda_cycle_b=b)


@dataclass
class CUTOptions(UnpairedOptions, EvalOptions):
    """CUT and FastCUT (taesungp/contrastive-unpaired-translation): defaults per method in RECIPES."""

    epochs: Optional[int] = again(TrainOptions, "epochs", None)
    decay_epochs: Optional[int] = again(ImageToImageOptions, "decay_epochs", None)
    method: str = opt("cut", "Unpaired method for two folders: cyclegan (official recipe), cut or fastcut "
                      "(contrastive, one generator: faster, A->B only).")
    lambda_nce: Optional[float] = opt(None, "CUT/FastCUT: PatchNCE weight (official: CUT "
                                      f"{RECIPES['cut'].lambda_nce:g}, FastCUT {RECIPES['fastcut'].lambda_nce:g}).")
    nce_layers: list = opt(NCE_LAYERS, "CUT/FastCUT: generator layers PatchNCE compares (official 0,4,8,12,16; 0 is "
                           "the image's own pixels, which ties the output's tones to the input's).")

    def __post_init__(self):
        super().__post_init__()
        layers = self.nce_layers.split(",") if isinstance(self.nce_layers, str) else self.nce_layers
        try:
            self.nce_layers = sorted({int(x) for x in layers if str(x).strip()})
        except ValueError:
            raise UsageError(f"--nce-layers {self.nce_layers!r}: comma-separated layer numbers, e.g. 0,4,8,12,16") from None

    def validate(self) -> None:
        if self.method not in METHODS:
            raise UsageError(f"--method {self.method!r}: cyclegan, cut or fastcut")
        if self.loss not in ("lsgan", "minimax", "nonsat"):
            raise UsageError(f"unknown --loss {self.loss!r} for CUT: lsgan, minimax or nonsat")
        super().validate()
        from cyclegan_cli.models import build

        depth = len(build("resnet_generator", ngf=1, n_blocks=self.blocks, upsample=self.upsample).model)
        layers = self.nce_layers
        if not layers or layers[0] < 0 or layers[-1] >= depth:
            raise UsageError(f"--nce-layers {','.join(map(str, layers))}: layers of this generator are 0..{depth - 1}")
        self.check_eval()

    def resolved(self):
        recipe = RECIPES[self.method]
        pick = lambda v, d: d if v is None else v  # noqa: E731
        return dataclasses.replace(super().resolved(), lambda_nce=pick(self.lambda_nce, recipe.lambda_nce),
                                   epochs=pick(self.epochs, recipe.epochs),
                                   decay_epochs=pick(self.decay_epochs, recipe.decay_epochs))


@dataclass
class Pix2PixOptions(ImageToImageOptions):
    """pix2pix on paired images, the official recipe by default (``--model pix2pix``)."""

    loss: str = again(TrainOptions, "loss", "nonsat")
    direction: str = opt("AtoB", "pix2pix: translate A to B (default) or B to A.")
    lambda_l1: float = opt(100.0, "pix2pix: L1 weight (official 100).")

    def validate(self) -> None:
        from cyclegan_cli.train.losses import LOSSES

        if self.loss not in LOSSES:
            raise UsageError(f"unknown --loss {self.loss!r}: {', '.join(LOSSES)}")
        if self.direction not in ("AtoB", "BtoA"):
            raise UsageError(f"--direction {self.direction!r}: AtoB or BtoA")
        if self.size < 32 or self.size & (self.size - 1):
            raise UsageError(f"--size {self.size}: pix2pix's U-Net takes a power of two, at least 32")
        self.check_load_size()
        super().validate()

    def saved(self) -> dict:
        return {**super().saved(), "paired": True}


@dataclass
class DCGANOptions(TrainOptions, EvalOptions, PresetOptions):
    """DCGAN (pytorch/examples ``dcgan/main.py``)."""

    epochs: Optional[int] = again(TrainOptions, "epochs", DCGAN_EPOCHS)
    batch_size: int = again(TrainOptions, "batch_size", 64)
    size: int = again(TrainOptions, "size", 64)
    loss: str = again(TrainOptions, "loss", "nonsat")
    nz: int = opt(100, "DCGAN latent size.")

    def validate(self) -> None:
        if self.loss not in DCGAN_LOSSES:
            raise UsageError(f"unknown --loss {self.loss!r} for DCGAN: {', '.join(DCGAN_LOSSES)}")
        if self.size not in DCGAN_SIZES:
            sizes = ", ".join(map(str, DCGAN_SIZES[:-1])) + f" or {DCGAN_SIZES[-1]}"
            raise UsageError(f"--size {self.size}: DCGAN takes {sizes}")
        self.check_preset()
        super().validate()
        self.check_eval()


def student_grid_ok(down: int, entry: str) -> bool:
    """A student's blocks run at 1/4 to 1/8 size: ``down`` stride-2 convolutions, after the
    unshuffle entry's own halving."""
    return 2 <= down + (entry == "unshuffle") <= 3


@dataclass
class DistillOptions(TrainOptions):
    """A small student of a trained generator (``ganctl distill``; GAN Compression's recipe: the
    teacher's output as a paired target, its activations as a feature target)."""

    cpu_knobs: ClassVar[str] = "--size and --max-steps"  # what the no-GPU notice points to (no --ngf here)
    uses_ngf: ClassVar[bool] = False  # ngf/ndf are inherited and unused: the student has --width

    epochs: Optional[int] = opt(10, "distill: epochs at full lr (an epoch is 200 crops).", "length")
    decay_epochs: Optional[int] = opt(10, "distill: epochs of linear lr decay to zero.", "length")
    batch_size: int = opt(4, "Crops per step.")
    size: int = opt(256, "Crop size: random crops of the inputs at their own scale (translate runs at full "
                    "resolution).")
    direction: str = opt("AtoB", "The teacher's side to distil (a CycleGAN's AtoB or BtoA).")
    speedup: float = opt(8.0, "How much faster than the teacher the student must run, measured on this CPU at 512 px "
                         "(fp32, as translate runs it): the largest student found that meets it with 10% headroom is chosen.")
    width: Optional[int] = opt(None, "The student's width (first-layer filters) instead of choosing it by --speedup.")
    blocks: Optional[int] = opt(None, "The student's residual blocks instead of choosing them by --speedup.")
    down: Optional[int] = opt(None, "The student's stride-2 down-samplings (1 to 3; the blocks run at 1/4 to 1/8 "
                              "size with the entry's own halving) instead of choosing them.", cli=False)
    conv: Optional[str] = opt(None, "The student's convolutions (dense or depthwise) instead of choosing them.",
                              cli=False)
    entry: Optional[str] = opt(None, "The student's first and last layers (conv: 7x7 at full resolution; unshuffle: "
                               "pixel-unshuffle to half size) instead of choosing them.", cli=False)
    l1_weight: float = opt(10.0, "Weight of the L1 distance to the teacher's output.")
    feature_weight: float = opt(1.0, "Weight of the feature term: the teacher's intermediate activations through "
                                "learned 1x1 adaptors (0: none).")
    gan_weight: float = opt(0.0, "Weight of an adversarial term (a PatchGAN that sees the teacher's outputs as real; "
                            "0: none).")
    stable: bool = opt(False, "Add the stability term: the output of a slightly warped crop must be the warped output "
                       "(less flicker per frame in video, with no flow at run time).")
    stable_weight: float = opt(10.0, "Weight of the --stable term.")
    stable_noise: float = opt(0.0, "--stable: also add Gaussian noise of this standard deviation (in 0-255 levels) to "
                              "the warped crop, so that the output holds still through a video's grain and "
                              "compression too (0: the warp alone).")
    time_size: int = opt(512, "The image side the student's speed is measured at.", cli=False)

    def validate(self) -> None:
        from cyclegan_cli.models.student import CONVS

        if self.ngf != 64 or self.ndf != 64:
            raise UsageError("--ngf/--ndf do not apply to distill: --width sets the student's width")
        if not self.speedup > 1:
            raise UsageError(f"--speedup {self.speedup:g}: must be more than 1 (the student must be faster)")
        if self.direction not in ("AtoB", "BtoA"):
            raise UsageError(f"--direction {self.direction!r}: AtoB or BtoA")
        if self.loss not in ("lsgan", "nonsat"):
            raise UsageError(f"--loss {self.loss!r} for distill: lsgan or nonsat")
        for flag, v in (("--width", self.width), ("--blocks", self.blocks)):
            if v is not None and v < 1:
                raise UsageError(f"{flag} {v}: at least 1")
        if self.down is not None and self.down not in (1, 2, 3):
            raise UsageError(f"down {self.down}: 1, 2 or 3")
        from cyclegan_cli.models.student import ENTRIES

        if self.entry is not None and self.entry not in ENTRIES:
            raise UsageError(f"entry {self.entry!r}: {' or '.join(ENTRIES)}")
        if self.down is not None and self.entry is not None and not student_grid_ok(self.down, self.entry):
            raise UsageError(f"down {self.down} with entry {self.entry}: the blocks must run at 1/4 to 1/8 size")
        if self.conv is not None and self.conv not in CONVS:
            raise UsageError(f"conv {self.conv!r}: {' or '.join(CONVS)}")
        for flag, v in (("--l1-weight", self.l1_weight), ("--feature-weight", self.feature_weight),
                        ("--gan-weight", self.gan_weight), ("--stable-weight", self.stable_weight),
                        ("--stable-noise", self.stable_noise)):
            if not 0 <= v < float("inf"):
                raise UsageError(f"{flag} {v}: must be 0 or more, and finite")
        if self.size < 32 or self.size % 8:
            raise UsageError(f"--size {self.size}: a multiple of 8, at least 32")
        if self.stable_noise and not self.stable:
            raise UsageError(f"--stable-noise {self.stable_noise:g} is part of the --stable term: add --stable")
        super().validate()


LABELS = {"CycleGANOptions": "a CycleGAN", "CUTOptions": "CUT/FastCUT (--method cut|fastcut)",
          "Pix2PixOptions": "pix2pix (--paired)", "DCGANOptions": "a DCGAN (one folder)"}  # as errors name them
KINDS = {"cyclegan": CycleGANOptions, "cut": CUTOptions, "pix2pix": Pix2PixOptions, "dcgan": DCGANOptions}


def all_fields() -> dict[str, dataclasses.Field]:
    """Every option of every kind, by name (the first kind's field where kinds share one)."""
    out: dict[str, dataclasses.Field] = {}
    for cls in KINDS.values():
        for f in fields(cls):
            out.setdefault(f.name, f)
    return out

