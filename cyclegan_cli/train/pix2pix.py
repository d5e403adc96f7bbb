"""pix2pix training on paired images, the official recipe by default (Isola et al. 2017 and
junyanz/pytorch-CycleGAN-and-pix2pix ``models/pix2pix_model.py`` with ``--model pix2pix``):
U-Net generator with batch norm and dropout, 70x70 PatchGAN on (input, output) pairs, vanilla GAN
loss + 100 x L1, Adam 2e-4 (0.5, 0.999), no image pool, resize 286 then random 256 crop and flip,
100 + 100 epochs with linear decay."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F

from cyclegan_cli.checkpoints import ModelConfig
from cyclegan_cli.data.datasets import PairedDataset, center, epoch_order, pair_folders, scan_folder
from cyclegan_cli.train import loop
from cyclegan_cli.train.augment import diff_augment
from cyclegan_cli.train.distributed import start_process, wrap_ddp
from cyclegan_cli.train.ema import add_ema, update_ema
from cyclegan_cli.train.grids import save_grid
from cyclegan_cli.train.losses import d_loss, g_loss
from cyclegan_cli.train.options import RECIPES, Pix2PixOptions
from cyclegan_cli.train.runfolder import schedule_length
from cyclegan_cli.train.task import GANTask, recipe_init


class Pix2PixTask(GANTask):
    def __init__(self, pairs, o: Pix2PixOptions, *, saved: dict, dist, device, on_skip=None):
        """``o``: the run's options, resolved; ``saved``: what its options.json holds (the config's training)."""
        self.device, self.dist, self.loss_kind, self.lambda_l1 = device, dist, o.loss, o.lambda_l1
        self.lr, self.epochs, self.decay_epochs, self.seed = o.lr, o.epochs, o.decay_epochs, o.seed
        self.size, self.domains, self.options = o.size, o.domains, saved
        num_downs = max(5, int(round(math.log2(o.size))))  # unet_256 at 256 px, as the official default
        g_args = {"input_nc": 3, "output_nc": 3, "num_downs": num_downs, "ngf": o.ngf, "norm": "batch",
                  "use_dropout": True, "upsample": o.upsample}
        d_args = {"input_nc": 6, "ndf": o.ndf, "n_layers": 3, "norm": "batch"}  # judges (input, output) pairs
        specs = {"G_A": ("unet_generator", g_args), "D_A": ("patch_discriminator", d_args)}
        self._build_nets(specs, recipe_init(RECIPES["pix2pix"]), device, o.precision, o.channels_last, o.seed)
        self.augment, self.ema = o.policy, o.ema
        if o.ema:
            add_ema(self.nets, self.specs, ["G_A"])
        self.G = wrap_ddp(self.nets["G_A"], dist, device)
        self.D = wrap_ddp(self.nets["D_A"], dist, device)
        if o.compile:
            self.G, self.D = torch.compile(self.G), torch.compile(self.D)
        self._optimizers(o.lr, o.beta1, self.nets["G_A"].parameters(), self.nets["D_A"].parameters())
        self.dataset = PairedDataset(pairs, o.load_size, o.size, o.flip, o.seed, o.direction, on_skip=on_skip)
        n = min(4, len(self.dataset))
        picks = range(0, len(self.dataset), max(1, len(self.dataset) // n))
        fixed = [self._center_pair(i) for i in list(picks)[:n]]
        self.fixed_in = torch.stack([a for a, _ in fixed])
        self.fixed_target = torch.stack([b for _, b in fixed])

    def _center_pair(self, i):
        a, b = self.dataset.pair(i)
        if self.dataset.swap:
            a, b = b, a
        return center(a, self.size), center(b, self.size)

    def epoch_keys(self, epoch: int) -> list:
        order = epoch_order(len(self.dataset), self.seed, epoch)
        return [(epoch, i, order[i], 0) for i in range(len(order))]

    def train_step(self, batch, step: int) -> dict:
        from cyclegan_cli.device import autocast

        real_in, real_out = (t.contiguous(memory_format=self.mem) for t in batch)
        D = self.nets["D_A"]
        with autocast(self.device, self.amp):
            fake = self.G(real_in)
        # 1. discriminator on (input, target) against (input, generated), no image pool
        self.opt_D.zero_grad(set_to_none=True)
        with autocast(self.device, self.amp):
            # DiffAugment takes the (input, output) pair as one 6-channel image: both move together
            gen = self.step_generator(step) if self.augment else None
            aug = lambda x: diff_augment(x, self.augment, gen)  # noqa: E731
            loss_D = d_loss(self.loss_kind, self.D(aug(torch.cat([real_in, real_out], 1))),
                            self.D(aug(torch.cat([real_in, fake.detach()], 1)))) * 0.5
        self.scaler.scale(loss_D).backward()
        self.scaler.step(self.opt_D)
        # 2. generator: fool D, and stay close to the target (L1)
        for p in D.parameters():
            p.requires_grad_(False)
        self.opt_G.zero_grad(set_to_none=True)
        with autocast(self.device, self.amp):
            loss_G_GAN = g_loss(self.loss_kind, self.D(aug(torch.cat([real_in, fake], 1))))
            loss_G_L1 = F.l1_loss(fake, real_out) * self.lambda_l1
        self.scaler.scale(loss_G_GAN + loss_G_L1).backward()
        self.scaler.step(self.opt_G)
        self.scaler.update()
        for p in D.parameters():
            p.requires_grad_(True)
        if self.ema:
            update_ema(self.nets, ["G_A"], self.ema, step)
        return {"loss_G_GAN": loss_G_GAN.detach().float(), "loss_G_L1": loss_G_L1.detach().float(),
                "loss_D": loss_D.detach().float()}

    @torch.no_grad()
    def save_samples(self, path: Path) -> None:
        """Rows: input | output | target."""
        from torchvision.utils import make_grid

        from cyclegan_cli.models.cyclegan import for_translation

        G = for_translation(self.nets.get("G_A_ema", self.nets["G_A"]))  # as translate runs it: per-image statistics, no dropout
        x = self.fixed_in.to(self.device)
        rows = torch.cat([x, G(x), self.fixed_target.to(self.device)]).float().cpu()
        save_grid(make_grid(rows.add(1).div(2).clamp(0, 1), nrow=len(x), padding=2, pad_value=1.0), path,
                   ["input", "output", "target"])

    def config(self) -> ModelConfig:
        return ModelConfig(kind="pix2pix", nets={k: {"arch": a, "args": dict(v)} for k, (a, v) in self.specs.items()},
                           image_size=self.size, domains=list(self.domains), training=self.options,
                           source=f"ganctl train --paired ({self.options.get('name', '')})")


def train_pix2pix(folder_a, folder_b=None, options: Pix2PixOptions | None = None, *, runs_dir="runs", name=None,
                  callbacks=None, **overrides) -> Path:
    """Train pix2pix on paired folders (A: inputs, B: targets, B/x.* pairs with A/x.*), or on one
    folder of aligned A|B images when ``folder_b`` is None; returns the run folder. ``options`` (or
    keyword ``overrides`` of its fields) as :class:`Pix2PixOptions`."""
    o = Pix2PixOptions.build(options, overrides)
    o.validate()
    cb = callbacks or loop.Callbacks()
    if folder_b is not None:
        pairs = pair_folders(Path(folder_a), Path(folder_b), on_skip=cb.on_notice)
        names = [Path(folder_a).resolve().name, Path(folder_b).resolve().name]
    else:
        files, _ = scan_folder(Path(folder_a), on_skip=cb.on_notice)
        pairs = [(f, None) for f in files]
        names = ["A", "B"]
    if o.direction == "BtoA":
        names = names[::-1]
    dist, dev = start_process(o, cb)
    n = len(pairs) // dist.world // o.batch_size or 1
    total = schedule_length(o.max_steps, n, o.epochs, o.decay_epochs)
    o = replace(o.resolved(), domains=list(o.domains or names))
    folders = {"folder_a": str(Path(folder_a).resolve()),
               "folder_b": str(Path(folder_b).resolve()) if folder_b is not None else None}
    make = lambda o, saved: Pix2PixTask(pairs, o, saved=saved, dist=dist, device=dev, on_skip=cb.on_notice)  # noqa: E731
    return loop.train_task("pix2pix", o, folders, make, total=total, runs_dir=runs_dir, name=name, dist=dist,
                           device=dev, cb=cb)
