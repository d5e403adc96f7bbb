"""DCGAN training (Radford et al. 2016; pytorch/examples ``dcgan/main.py``): Adam 2e-4, beta1 0.5,
N(0, 0.02) init, the non-saturating loss by default. Shares the loop with CycleGAN."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from cyclegan_cli.checkpoints import ModelConfig
from cyclegan_cli.data.datasets import SingleDataset, epoch_order, scan_folder
from cyclegan_cli.models.dcgan import init_dcgan_weights
from cyclegan_cli.train import loop
from cyclegan_cli.train.augment import diff_augment
from cyclegan_cli.train.distributed import start_process, wrap_ddp
from cyclegan_cli.train.ema import add_ema, update_ema
from cyclegan_cli.train.grids import save_grid
from cyclegan_cli.train.losses import GP_WEIGHT, d_loss, g_loss, gradient_penalty
from cyclegan_cli.train.options import DCGANOptions
from cyclegan_cli.train.task import GANTask

class DCGANTask(GANTask):
    def __init__(self, files, o: DCGANOptions, *, saved: dict, dist, device, sample_count=64, on_skip=None):
        """``o``: the run's options; ``saved``: what its options.json holds (the config's training)."""
        self.device, self.dist, self.loss_kind, self.lr = device, dist, o.loss, o.lr
        self.seed, self.options, self.nz, self.image_size = o.seed, saved, o.nz, o.size
        specs = {"G": ("dcgan_generator", {"nz": o.nz, "ngf": o.ngf, "nc": 3, "image_size": o.size}),
                 "D": ("dcgan_discriminator", {"ndf": o.ndf, "nc": 3, "image_size": o.size})}
        self._build_nets(specs, init_dcgan_weights, device, o.precision, o.channels_last, o.seed)
        self.augment, self.ema = o.policy, o.ema
        if o.ema:
            add_ema(self.nets, self.specs, ["G"])
        self.G = wrap_ddp(self.nets["G"], dist, device)
        self.D = wrap_ddp(self.nets["D"], dist, device)
        if o.compile:
            self.G, self.D = torch.compile(self.G), torch.compile(self.D)
        self._optimizers(o.lr, o.beta1, self.nets["G"].parameters(), self.nets["D"].parameters())
        self.dataset = SingleDataset(files, o.size, o.flip, o.seed, on_skip=on_skip)
        from cyclegan_cli.infer.sample import latents_for_seeds

        self.fixed_z = latents_for_seeds(list(range(sample_count)), o.nz)  # the same 64 seeds all run long

    def epoch_keys(self, epoch: int) -> list:
        order = epoch_order(len(self.dataset), self.seed, epoch)
        return [(epoch, i, order[i], 0) for i in range(len(order))]

    def on_epoch(self, epoch: int) -> None:
        pass

    def train_step(self, real, step: int) -> dict:
        from cyclegan_cli.device import autocast

        real = real.contiguous(memory_format=self.mem)
        n = real.size(0)
        # noise from (seed, rank, step): the same after a resume, different on every rank
        gen = torch.Generator(device=self.device).manual_seed(hash((self.seed, self.dist.rank, step)) & 0x7FFFFFFF)
        z = torch.randn(n, self.nz, 1, 1, device=self.device, generator=gen)
        aug_gen = self.step_generator(step) if self.augment else None
        # 1. discriminator: real vs fake, as in the examples (two forwards, two backwards)
        self.opt_D.zero_grad(set_to_none=True)
        with autocast(self.device, self.amp):
            fake = self.G(z)
            seen_real = diff_augment(real, self.augment, aug_gen)
            seen_fake = diff_augment(fake.detach(), self.augment, aug_gen)
            out_real, out_fake = self.D(seen_real), self.D(seen_fake)
            loss_D = d_loss(self.loss_kind, out_real, out_fake)
            if self.loss_kind == "wgangp":  # on the images D judged, augmented, as CycleGAN's
                loss_D = loss_D + GP_WEIGHT * gradient_penalty(self.D, seen_real, seen_fake)
        self.scaler.scale(loss_D).backward()
        self.scaler.step(self.opt_D)
        # 2. generator
        self.opt_G.zero_grad(set_to_none=True)
        with autocast(self.device, self.amp):
            loss_G = g_loss(self.loss_kind, self.D(diff_augment(fake, self.augment, aug_gen)))
        self.scaler.scale(loss_G).backward()
        self.scaler.step(self.opt_G)
        self.scaler.update()
        if self.ema:
            update_ema(self.nets, ["G"], self.ema, step)
        return {"loss_D": loss_D.detach().float(), "loss_G": loss_G.detach().float(),
                "D_real": out_real.detach().float().mean(), "D_fake": out_fake.detach().float().mean()}

    @torch.no_grad()
    def save_samples(self, path: Path) -> None:
        from torchvision.utils import make_grid

        G = self.nets.get("G_ema", self.nets["G"])
        was = G.training
        G.eval()
        imgs = G(self.fixed_z.to(self.device)).float().cpu()
        G.train(was)
        save_grid(make_grid(imgs.add(1).div(2).clamp(0, 1), nrow=8, padding=2, pad_value=1.0), path,
                   title=f"seeds 0-{len(imgs) - 1}, row by row")

    def config(self) -> ModelConfig:
        return ModelConfig(kind="dcgan", nets={k: {"arch": a, "args": dict(v)} for k, (a, v) in self.specs.items()},
                           image_size=self.image_size, domains=[], training=self.options,
                           source=f"ganctl train ({self.options.get('name', '')})")


def train_dcgan(folder, options: DCGANOptions | None = None, *, runs_dir="runs", name=None, callbacks=None,
                **overrides) -> Path:
    """Train a DCGAN on one folder of images (recursive, any Pillow format); returns the run folder.
    ``options`` (or keyword ``overrides`` of its fields) as :class:`DCGANOptions`."""
    o = DCGANOptions.build(options, overrides)
    o.validate()
    cb = callbacks or loop.Callbacks()
    files, _ = scan_folder(Path(folder), on_skip=cb.on_notice)  # one line per unreadable file
    dist, dev = start_process(o, cb)
    o = replace(o, batch_size=min(o.batch_size, max(1, len(files) // dist.world)))
    total = o.max_steps or (len(files) // dist.world // o.batch_size or 1) * o.epochs
    make = lambda o, saved: DCGANTask(files, o, saved=saved, dist=dist, device=dev, on_skip=cb.on_notice)  # noqa: E731
    return loop.train_task("dcgan", o, {"folder": str(Path(folder).resolve())}, make, total=total,
                           runs_dir=runs_dir, name=name, dist=dist, device=dev, cb=cb)
