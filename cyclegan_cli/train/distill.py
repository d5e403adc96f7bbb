"""``ganctl distill``: a small student of a trained generator, shaped for this CPU's time.

GAN Compression's recipe (Li et al. 2020), in our words:
1. the frozen teacher translates each training crop on the fly: its output is a paired target, so an
   unpaired model (CycleGAN, CUT) is distilled as easily as a paired one;
2. the student learns that output through an L1 term, and the teacher's intermediate activations
   through learned 1x1 adaptors (a feature term), optionally with an adversarial term whose
   discriminator sees the teacher's outputs as real;
3. with ``stable``, a stability term: the student's output for a slightly warped crop must be its
   output for the crop, warped the same way (less flicker per frame in video, no flow at run time).

The teacher is never written to and gets no gradients. The student is a normal run: resumable,
in ``runs list``, a ``--model`` for translate. Its shape is chosen by
:mod:`~cyclegan_cli.train.student_shape` before the first step and kept with the run.
"""

from __future__ import annotations

import hashlib
import math
import random
import time
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image

from cyclegan_cli.checkpoints import ModelConfig
from cyclegan_cli.data.datasets import ImageStore, center, epoch_order, to_tensor
from cyclegan_cli.errors import InputError, UsageError
from cyclegan_cli.models.cyclegan import ResnetBlock, UnetSkipBlock, for_translation, init_weights
from cyclegan_cli.train import loop
from cyclegan_cli.train.ema import add_ema, update_ema
from cyclegan_cli.train.grids import save_grid
from cyclegan_cli.train.losses import d_loss, g_loss
from cyclegan_cli.train.options import DistillOptions
from cyclegan_cli.train.runfolder import schedule_length
from cyclegan_cli.train.task import GANTask

EPOCH_CROPS = 200  # crops per epoch, whatever the number of inputs
FEATURE_POINTS = 3  # pairs of (student, teacher) layers the feature term compares, at most
VIDEO_FRAMES = 60  # frames taken from each input video, evenly spaced


# ---------------------------------------------------------------------------------------------
# the teacher and the student's features


def feature_layers(net: torch.nn.Module) -> list[torch.nn.Module]:
    """The layers whose outputs the feature term reads: a ResNet generator's residual blocks (ours,
    the official CycleGAN and CUT ones, the student's), or a U-Net's skip blocks at 1/4 and 1/8
    of the input's size."""
    blocks = [m for m in net.modules() if isinstance(m, ResnetBlock)]
    if blocks:
        return blocks
    student = getattr(net, "blocks", None)
    if isinstance(student, torch.nn.ModuleList) and len(student):
        return list(student)
    skips = [m for m in net.modules() if isinstance(m, UnetSkipBlock)]
    return skips[2:4]  # outer to inner: [0] gives the output, [1] 1/2, [2] 1/4, [3] 1/8


def matched_points(n_student: int, n_teacher: int) -> list[tuple[int, int]]:
    """(student layer, teacher layer) pairs at the same fraction of each network's depth, the last
    layers always paired."""
    k = min(FEATURE_POINTS, n_student, n_teacher)
    return [(round((j + 1) * n_student / k) - 1, round((j + 1) * n_teacher / k) - 1) for j in range(k)]


class Taps:
    """Forward hooks that keep the outputs of some layers of a network during one call."""

    def __init__(self, layers: list[torch.nn.Module]):
        self.out: list = [None] * len(layers)
        self.hooks = [m.register_forward_hook(self._keep(i)) for i, m in enumerate(layers)]

    def _keep(self, i):
        def hook(module, inputs, output):
            self.out[i] = output

        return hook


def teacher_sha256(path: Path) -> str:
    """The teacher's identity: sha256 of its weights file (a checkpoint folder's model.safetensors)."""
    from cyclegan_cli.checkpoints import WEIGHTS_FILE

    p = Path(path)
    f = p / WEIGHTS_FILE if p.is_dir() else p
    h = hashlib.sha256()
    with open(f, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def pinned_spec(spec: str, resolved) -> str:
    """A spec that names this very checkpoint later: a run's latest (or best) checkpoint moves on as
    the run trains, and a run's name may mean another run from another folder, so a teacher that is
    a run is kept as its checkpoint folder's absolute path (as a run keeps its inputs)."""
    if resolved.origin != "run":
        return str(spec)
    return str(Path(resolved.path).resolve())


def load_teacher(spec: str, direction: str, pinned: dict | None = None):
    """(the teacher's generator for ``direction``, frozen and set up as translate runs it; its
    identity for the student's config). One-line errors for a model that cannot be a teacher.
    ``pinned``: the identity a run being continued recorded: that very checkpoint is loaded, and
    refused in one line if it is gone or its weights changed."""
    from cyclegan_cli.checkpoints import TRANSLATION_KINDS
    from cyclegan_cli.errors import GanctlError, NotFoundError
    from cyclegan_cli.zoo.resolve import load_resolved, resolve_model

    if pinned and pinned.get("pinned"):
        where = f"{pinned['spec']} as it was when this student started ({pinned['pinned']})"
        try:
            resolved = resolve_model(pinned["pinned"])
        except NotFoundError:
            raise UsageError(f"the teacher is gone: {where}; choose another --name") from None
        except GanctlError as e:
            raise UsageError(f"the teacher cannot be loaded: {where}: {e}; choose another --name") from None
    else:
        resolved = resolve_model(str(spec))
        where = f"{spec} as it was when this student started"
    if pinned and teacher_sha256(resolved.path) != pinned.get("sha256"):  # a run recorded before pinning, too
        raise UsageError(f"the teacher's weights changed since this student started: {where}; choose another --name")
    loaded = load_resolved(resolved)
    kind = loaded.config.kind
    if kind not in TRANSLATION_KINDS:
        raise UsageError(f"{spec} is a {kind} model: it generates images from noise; distill takes a model that "
                         "translates images (CycleGAN, CUT, pix2pix)")
    net = for_translation(loaded.generator(direction))
    net.requires_grad_(False)
    domains = list(loaded.config.domains or ["A", "B"])
    if direction == "BtoA":
        domains = domains[::-1]
    info = {"spec": str(spec), "pinned": (pinned or {}).get("pinned") or pinned_spec(spec, resolved),
            "name": (pinned or {}).get("name") or resolved.name, "path": str(Path(resolved.path).resolve()),
            "sha256": teacher_sha256(resolved.path), "kind": kind, "direction": direction,
            "arch": getattr(net, "arch_name", type(net).__name__), "domains": domains,
            "image_size": loaded.config.image_size}
    if pinned is not None and "pinned" not in pinned:  # a run started before teachers were pinned
        del info["pinned"]
    return net, info


# ---------------------------------------------------------------------------------------------
# the stability term


def random_warp(n: int, gen: torch.Generator, shift: float = 0.03, scale: float = 0.03,
                degrees: float = 2.0) -> torch.Tensor:
    """(n, 2, 3) affine matrices for ``affine_grid``: a small shift (fraction of the half-size), zoom
    and rotation each, drawn from ``gen``."""
    u = torch.rand(n, 4, generator=gen) * 2 - 1
    angle = u[:, 0] * math.radians(degrees)
    s = 1 + u[:, 1] * scale
    cos, sin = torch.cos(angle) * s, torch.sin(angle) * s
    return torch.stack([torch.stack([cos, -sin, u[:, 2] * shift], 1), torch.stack([sin, cos, u[:, 3] * shift], 1)], 1)


def warp(x: torch.Tensor, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(``x`` resampled by ``theta``, a mask of the pixels that came from inside ``x``), in fp32
    whatever autocast says: an input and an output warped on grids of two precisions would differ
    by the rounding alone."""
    with torch.autocast(x.device.type, enabled=False):
        grid = F.affine_grid(theta.float(), list(x.shape), align_corners=False)
        inside = (grid.abs() <= 1).all(-1, keepdim=True).permute(0, 3, 1, 2).float()
        return F.grid_sample(x.float(), grid, mode="bilinear", padding_mode="border", align_corners=False), inside


def stability_loss(net, x: torch.Tensor, gen: torch.Generator, out: torch.Tensor | None = None,
                   noise: float = 0.0) -> torch.Tensor:
    """Mean |warp(net(x)) - net(warp(x) + noise)| over the pixels that stay inside the crop: zero for
    a network that commutes with the warp (a 1x1 convolution) when ``noise`` is 0, positive for one
    that does not. ``noise``: the standard deviation, in 0-255 levels, of Gaussian noise added to the
    warped crop (x is in [-1, 1]). ``out``: net(x) when the caller has it already."""
    theta = random_warp(x.shape[0], gen).to(x.device)
    x_w, inside = warp(x, theta)
    if noise:  # drawn after the warp, so that noise 0 draws as before (a run's resume stays exact)
        x_w = (x_w + torch.randn(x_w.shape, generator=gen).to(x_w.device) * (noise / 127.5)).clamp(-1, 1)
    out = net(x) if out is None else out
    out_w, _ = warp(out, theta)
    diff = (out_w - net(x_w).float()).abs() * inside
    return diff.sum() / (inside.sum() * out.shape[1]).clamp(min=1)


# ---------------------------------------------------------------------------------------------
# data: random crops of the inputs at their own scale


class CropDataset(torch.utils.data.Dataset):
    """Random ``size`` crops (and flips) of images at their own scale; an image smaller than a crop
    is scaled up to it. Keys (epoch, i, index, 0), seeded per (seed, epoch, i) as every dataset."""

    def __init__(self, files, frames, size: int, flip: bool, seed: int, on_skip=None):
        self.size, self.flip, self.seed = size, flip, seed
        self.images = ImageStore(files, lambda im: im, on_skip=on_skip)
        self.frames = frames  # decoded video frames, PIL images

    def __len__(self):
        return len(self.images) + len(self.frames)

    def image(self, idx: int) -> Image.Image:
        im = self.images.get(idx) if idx < len(self.images) else self.frames[idx - len(self.images)]
        short = min(im.size)
        if short < self.size:
            f = self.size / short
            im = im.resize((max(self.size, round(im.width * f)), max(self.size, round(im.height * f))), Image.BICUBIC)
        return im

    def __getitem__(self, key):
        epoch, i, idx, _ = key
        rng = random.Random(hash((self.seed, epoch, i)) & 0xFFFFFFFF)
        im = self.image(idx)
        x, y = rng.randint(0, im.width - self.size), rng.randint(0, im.height - self.size)
        im = im.crop((x, y, x + self.size, y + self.size))
        if self.flip and rng.random() < 0.5:
            im = im.transpose(Image.FLIP_LEFT_RIGHT)
        return to_tensor(im)


def scan_inputs(inputs, on_skip=None) -> tuple[list[Path], list[Path]]:
    """(image files, video files) under the given folders and files. One-line errors: no inputs, a
    missing path, nothing usable."""
    from cyclegan_cli.data.datasets import scan_folder
    from cyclegan_cli.data.images import is_image_name
    from cyclegan_cli.data.names import VIDEO_EXTENSIONS
    from cyclegan_cli.errors import NotFoundError

    if not inputs:
        raise UsageError("distill needs inputs: folders, images or videos from the teacher's input domain")
    images, videos = [], []
    for p in map(Path, inputs):
        if not p.exists():
            raise NotFoundError(f"{p}: no such file or folder")
        if p.is_dir():
            vids = sorted(f for f in p.rglob("*") if f.suffix.lower() in VIDEO_EXTENSIONS and f.is_file())
            try:
                found, _ = scan_folder(p, on_skip=on_skip)
            except UsageError:
                if not vids:
                    raise UsageError(f"{p}: no images or videos") from None
                found = []
            images += found
            videos += vids
        elif p.suffix.lower() in VIDEO_EXTENSIONS:
            videos.append(p)
        elif is_image_name(p):
            images.append(p)
        else:
            raise UsageError(f"{p}: not an image or a video")
    return images, videos


def count_smaller(images: list[Path], size: int) -> int:
    """How many of the images have a side under ``size`` (read from their headers; unreadable ones
    are left to the loader, which skips them with a notice)."""
    n = 0
    for f in images:
        try:
            with Image.open(f) as im:
                n += min(im.size) < size
        except (OSError, ValueError, Image.DecompressionBombError):
            pass
    return n


def read_video_frames(videos: list[Path], per_video: int = VIDEO_FRAMES) -> list[Image.Image]:
    """Up to ``per_video`` frames of each video, evenly spaced: video frames count as images. Two
    passes, the first only counting, so a long video never sits in memory whole."""
    from cyclegan_cli.data.video import read_frames

    out = []
    for v in videos:
        total = sum(1 for _ in read_frames(v))
        step = max(1, total // per_video)
        out += [Image.fromarray(f) for i, f in enumerate(read_frames(v)) if i % step == 0][:per_video]
    return out


# ---------------------------------------------------------------------------------------------
# the task


class DistillTask(GANTask):
    def __init__(self, teacher, dataset: CropDataset, o: DistillOptions, *, saved: dict, dist, device):
        """``teacher``: the frozen generator; ``saved``: the run's options.json (the student's shape
        under "student", the teacher's identity under "teacher")."""
        # the CPU time the distillation has taken, over every process that worked on it (benchmarks/distill.py)
        self.cpu_before, self.cpu_t0 = 0.0, time.process_time()
        self.device, self.dist, self.seed, self.options = device, dist, o.seed, saved
        self.lr, self.epochs, self.decay_epochs, self.size = o.lr, o.epochs, o.decay_epochs, o.size
        self.l1_weight, self.feature_weight, self.gan_weight = o.l1_weight, o.feature_weight, o.gan_weight
        self.stable_weight, self.stable_noise = (o.stable_weight if o.stable else 0.0), o.stable_noise
        self.loss_kind, self.ema = o.loss, o.ema
        self.teacher = teacher.to(device).eval().requires_grad_(False)  # frozen: a target, never trained
        student_args = dict(saved["student"])
        # 1. which layers the feature term pairs, and the adaptors' widths (student -> teacher)
        probe_student = _build("student_generator", student_args)
        t_layers, s_layers = feature_layers(self.teacher), feature_layers(probe_student)
        self.points = matched_points(len(s_layers), len(t_layers)) if o.feature_weight else []
        widths = _widths(probe_student, s_layers, self.teacher, t_layers, self.points)
        specs = {"G_A": ("student_generator", student_args),
                 "D_A": ("patch_discriminator", {"input_nc": 6, "ndf": 32, "n_layers": 3, "norm": "instance"}),
                 "F": ("feature_adaptors", {"widths": widths or [[1, 1]]})}
        self._build_nets(specs, lambda net: init_weights(net, 0.02), device, o.precision, o.channels_last, o.seed)
        if o.ema:
            add_ema(self.nets, self.specs, ["G_A"])
        self.G = self.nets["G_A"]
        self.teacher_taps = Taps([t_layers[j] for _, j in self.points])
        self.student_taps = Taps([feature_layers(self.G)[i] for i, _ in self.points])
        self._optimizers(o.lr, o.beta1, list(self.G.parameters()) + list(self.nets["F"].parameters()),
                         self.nets["D_A"].parameters())
        self.dataset = dataset
        n = min(4, len(dataset))
        self.fixed_in = torch.stack([center(dataset.image(i), self.size) for i in range(0, n)])

    def extra_state(self) -> dict:
        return {"cpu_s": self.cpu_before + time.process_time() - self.cpu_t0}

    def load_extra_state(self, s: dict) -> None:
        self.cpu_before, self.cpu_t0 = float(s.get("cpu_s", 0.0)), time.process_time()

    def epoch_keys(self, epoch: int) -> list:
        n = len(self.dataset)
        order = [j for k in range(math.ceil(EPOCH_CROPS / n)) for j in epoch_order(n, self.seed, epoch, salt=k)]
        return [(epoch, i, order[i], 0) for i in range(EPOCH_CROPS)]

    def train_step(self, batch, step: int) -> dict:
        from cyclegan_cli.device import autocast

        x = batch.contiguous(memory_format=self.mem)
        # 1. the teacher's output and activations: the targets (no gradients, never written to)
        with torch.no_grad(), autocast(self.device, self.amp):
            target = self.teacher(x).float()
            t_feats = [f.float() for f in self.teacher_taps.out]
        # 2. the student: L1 to the teacher's output, features through the adaptors
        self.opt_G.zero_grad(set_to_none=True)
        with autocast(self.device, self.amp):
            out = self.G(x)
            s_feats = list(self.student_taps.out)
        losses = {"loss_L1": F.l1_loss(out.float(), target) * self.l1_weight}
        if self.points:
            mapped = self.nets["F"]([F.interpolate(s.float(), size=t.shape[-2:], mode="bilinear", align_corners=False)
                                     if s.shape[-2:] != t.shape[-2:] else s.float() for s, t in zip(s_feats, t_feats)])
            # each layer's error relative to its own spread, so wide and narrow activations count alike
            feat = sum(F.mse_loss(m, t) / t.var().clamp(min=1e-6) for m, t in zip(mapped, t_feats)) / len(t_feats)
            losses["loss_feat"] = feat * self.feature_weight
        if self.stable_weight:
            with autocast(self.device, self.amp):
                losses["loss_stable"] = stability_loss(self.G, x, self.step_generator(step), out,
                                                       self.stable_noise).float() * self.stable_weight
        if self.gan_weight:
            D = self.nets["D_A"]
            D.requires_grad_(False)
            with autocast(self.device, self.amp):
                losses["loss_G_GAN"] = g_loss(self.loss_kind, D(torch.cat([x, out], 1))).float() * self.gan_weight
            D.requires_grad_(True)
        total = sum(losses.values())
        self.scaler.scale(total).backward()
        self.scaler.step(self.opt_G)
        # 3. the discriminator, only with an adversarial term: the teacher's outputs are the real ones
        if self.gan_weight:
            self.opt_D.zero_grad(set_to_none=True)
            with autocast(self.device, self.amp):
                loss_D = d_loss(self.loss_kind, self.nets["D_A"](torch.cat([x, target.to(out.dtype)], 1)),
                                self.nets["D_A"](torch.cat([x, out.detach()], 1))) * 0.5
            self.scaler.scale(loss_D).backward()
            self.scaler.step(self.opt_D)
            losses["loss_D"] = loss_D.float()
        self.scaler.update()
        if self.ema:
            update_ema(self.nets, ["G_A"], self.ema, step)
        return {k: v.detach() for k, v in losses.items()}

    @torch.no_grad()
    def save_samples(self, path: Path) -> None:
        """Rows: input | teacher | student."""
        from torchvision.utils import make_grid

        G = self.nets.get("G_A_ema", self.G).eval()
        x = self.fixed_in.to(self.device)
        rows = torch.cat([x, self.teacher(x), G(x)]).float().cpu()
        self.G.train()
        save_grid(make_grid(rows.add(1).div(2).clamp(0, 1), nrow=len(x), padding=2, pad_value=1.0), path,
                  ["input", "teacher", "student"])

    def config(self) -> ModelConfig:
        teacher = self.options["teacher"]
        return ModelConfig(kind="distill", nets={k: {"arch": a, "args": dict(v)} for k, (a, v) in self.specs.items()},
                           image_size=self.size, domains=list(teacher["domains"]), training=self.options,
                           source=f"ganctl distill {teacher['name']} ({self.options.get('name', '')})")


def _build(arch: str, args: dict):
    from cyclegan_cli.models import build

    return build(arch, **args)


@torch.no_grad()
def _widths(student, s_layers, teacher, t_layers, points) -> list[list[int]]:
    """[student channels, teacher channels] per matched pair, read off one small forward pass each."""
    if not points:
        return []
    side = max(64, getattr(teacher, "size_multiple", 4))  # a U-Net-7 takes multiples of 128
    x = torch.randn(1, 3, side, side, generator=torch.Generator().manual_seed(0))
    s_taps, t_taps = Taps([s_layers[i] for i, _ in points]), Taps([t_layers[j] for _, j in points])
    student.eval()(x)
    teacher(x.to(next(teacher.parameters()).device))
    for taps in (s_taps, t_taps):
        for h in taps.hooks:
            h.remove()
    return [[s.shape[1], t.shape[1]] for s, t in zip(s_taps.out, t_taps.out)]


def train_distill(teacher: str, inputs, options: DistillOptions | None = None, *, runs_dir="runs", name=None,
                  callbacks=None, **overrides) -> Path:
    """Distil ``teacher`` (any ``--model`` spec of a translation model) into a student trained on
    ``inputs`` (folders, images, videos of the teacher's input domain); returns the run folder.
    ``options`` (or keyword ``overrides``) as :class:`DistillOptions`."""
    from cyclegan_cli.train.distributed import start_process
    from cyclegan_cli.train.student_shape import choose_student, describe
    from cyclegan_cli.zoo.names import check_name
    from cyclegan_cli.zoo.runs import OPTIONS_FILE, read_options

    o = DistillOptions.build(options, overrides)
    o.validate()
    cb = callbacks or loop.Callbacks()
    # 1. everything that can be refused is checked before any work: inputs, then the teacher
    images, videos = scan_inputs(inputs, on_skip=cb.on_notice)
    if name:
        check_name(name, "--name")  # before its folder is read: a name is one folder inside runs_dir
    from cyclegan_cli.data.video import open_video

    for v in videos:  # a file that is not a video is bad input, refused at once as other inputs are (opened only)
        try:
            open_video(v)[0].close()
        except InputError as exc:
            raise UsageError(str(exc)) from None
    existing = Path(runs_dir) / name if name else None
    saved_opts = read_options(existing) if existing is not None and (existing / OPTIONS_FILE).is_file() else {}
    continuing = saved_opts.get("kind") == "distill" and "student" in saved_opts
    net, info = load_teacher(teacher, o.direction, pinned=saved_opts.get("teacher") if continuing else None)
    grid = max(getattr(net, "size_multiple", 4), 8)  # the student's grid is 8 or less
    if o.size % grid:
        raise UsageError(f"--size {o.size}: this teacher takes crops in multiples of {grid} px")
    dist, dev = start_process(o, cb)
    if dist.world > 1:
        raise UsageError("distill runs in one process (no torchrun)")
    if name and (Path(runs_dir) / name).is_dir():
        from cyclegan_cli.train.runfolder import hold_run

        with hold_run(Path(runs_dir) / name):  # another process training it: refused now, not after the timing
            pass
    try:  # decoded before the timing: a video that breaks partway is said at once, as bad input
        frames = read_video_frames(videos)
    except InputError as exc:
        raise UsageError(str(exc)) from None
    small = count_smaller(images, o.size) + sum(min(f.size) < o.size for f in frames)
    if small and not continuing:  # said, not silent (once, not on every resume): the student then learns the
        # teacher at a scale translate will not run
        what = "input images and video frames" if frames else "input images"
        cb.on_notice(f"{small} of {len(images) + len(frames)} {what} are smaller than --size {o.size} px and are "
                     "scaled up to it for training; a smaller --size keeps them at their own scale")
    # 2. the student's shape: kept with a run that exists, else measured on this CPU now
    if continuing:
        student, choice = saved_opts["student"], saved_opts.get("student_choice", {})
    else:
        shape = (o.down, o.conv, o.entry)
        if o.width and o.blocks:  # the shape asked for: dense, pixel-unshuffle entry, unless the API says otherwise
            shape = (o.down or 1, o.conv or "dense", o.entry or "unshuffle")
        c = choose_student(net, o.speedup, width=o.width, blocks=o.blocks, down=shape[0], conv=shape[1],
                           entry=shape[2], size=o.time_size, on_notice=cb.on_notice)
        student, choice = c.student, c.to_dict()
        cb.on_notice(f"student: {describe(student)}: {c.reason}")
    dataset = CropDataset(images, frames, o.size, o.flip, o.seed, on_skip=cb.on_notice)
    total = schedule_length(o.max_steps, EPOCH_CROPS // o.batch_size, o.epochs, o.decay_epochs)
    o = o.resolved()
    teacher_saved = {k: v for k, v in info.items() if k != "path"}
    saved = {"inputs": [str(Path(p).resolve()) for p in inputs], "teacher": teacher_saved, "student": student,
             "student_choice": choice}
    make = lambda o, saved: DistillTask(net, dataset, o, saved=saved, dist=dist, device=dev)  # noqa: E731
    return loop.train_task("distill", o, saved, make, total=total, runs_dir=runs_dir, name=name, dist=dist,
                           device=dev, cb=cb)
