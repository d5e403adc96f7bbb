"""CycleGAN training, the official recipe by default (Zhu et al. 2017 and
junyanz/pytorch-CycleGAN-and-pix2pix ``options/`` + ``models/cycle_gan_model.py``)."""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from cyclegan_cli.checkpoints import ModelConfig
from cyclegan_cli.train import loop, unpaired
from cyclegan_cli.train.augment import diff_augment
from cyclegan_cli.train.distributed import wrap_ddp
from cyclegan_cli.train.ema import add_ema, update_ema
from cyclegan_cli.train.grids import save_grid
from cyclegan_cli.train.losses import GP_WEIGHT, d_loss, g_loss, gradient_penalty
from cyclegan_cli.train.options import RECIPES, CycleGANOptions
from cyclegan_cli.train.pool import ImagePool
from cyclegan_cli.train.task import recipe_init


class Generators(nn.Module):
    """Both generators in one module so DDP sees one forward per step."""

    def __init__(self, G_A, G_B):
        super().__init__()
        self.G_A, self.G_B = G_A, G_B

    def forward(self, real_A, real_B, identity: bool):
        fake_B = self.G_A(real_A)  # A -> B
        rec_A = self.G_B(fake_B)  # A -> B -> A
        fake_A = self.G_B(real_B)
        rec_B = self.G_A(fake_A)
        idt_A = self.G_A(real_B) if identity else None  # G_A should leave B images alone
        idt_B = self.G_B(real_A) if identity else None
        return fake_B, rec_A, fake_A, rec_B, idt_A, idt_B


class Discriminators(nn.Module):
    """D_A judges domain B (real B vs fake B), D_B judges domain A, as in the official code."""

    def __init__(self, D_A, D_B, loss: str):
        super().__init__()
        self.D_A, self.D_B, self.loss = D_A, D_B, loss

    def _one(self, d, real, fake):
        loss = d_loss(self.loss, d(real), d(fake)) * 0.5  # the official 0.5: D learns slower than G
        if self.loss == "wgangp":
            loss = loss + GP_WEIGHT * gradient_penalty(d, real, fake)
        return loss

    def forward(self, real_B, fake_B, real_A, fake_A):
        return self._one(self.D_A, real_B, fake_B), self._one(self.D_B, real_A, fake_A)


class CycleGANTask(unpaired.UnpairedTask):
    def __init__(self, files_a, files_b, o: CycleGANOptions, *, saved: dict, dist, device, on_skip=None):
        """``o``: the run's options, resolved; ``saved``: what its options.json holds (the config's training)."""
        self.device, self.dist = device, dist
        self.loss_kind, self.lambda_identity = o.loss, o.lambda_identity
        self.lambda_A, self.lambda_B = o.lambda_cycle_a, o.lambda_cycle_b  # the official lambda_A, lambda_B
        self.lr, self.epochs, self.decay_epochs = o.lr, o.epochs, o.decay_epochs
        self.seed, self.domains, self.options = o.seed, o.domains, saved
        if o.generator == "unet":  # the official --netG unet_128 / unet_256: one stage per halving of the crop
            arch, g_args = "unet_generator", {"input_nc": 3, "output_nc": 3, "num_downs": int(math.log2(o.size)),
                                              "ngf": o.ngf, "norm": o.norm, "upsample": o.upsample}
        else:
            arch, g_args = "resnet_generator", {"input_nc": 3, "output_nc": 3, "ngf": o.ngf, "n_blocks": o.blocks,
                                                "norm": o.norm, "upsample": o.upsample}
        d_args = {"input_nc": 3, "ndf": o.ndf, "n_layers": o.d_layers, "norm": o.norm}
        specs = {"G_A": (arch, g_args), "G_B": (arch, g_args),
                 "D_A": ("patch_discriminator", d_args), "D_B": ("patch_discriminator", d_args)}
        self._build_nets(specs, recipe_init(RECIPES["cyclegan"]), device, o.precision, o.channels_last, o.seed)
        self.augment, self.ema = o.policy, o.ema
        if o.ema:
            add_ema(self.nets, self.specs, ["G_A", "G_B"])
        gens = Generators(self.nets["G_A"], self.nets["G_B"])
        discs = Discriminators(self.nets["D_A"], self.nets["D_B"], o.loss)
        self.gens = wrap_ddp(gens, dist, device)
        self.discs = wrap_ddp(discs, dist, device)
        if o.compile:
            self.gens, self.discs = torch.compile(self.gens), torch.compile(self.discs)
        self._optimizers(o.lr, o.beta1, gens.parameters(), discs.parameters())
        # history pools of generated images, for the discriminators (official: fake_B_pool, fake_A_pool)
        self.pool_fake_B, self.pool_fake_A = ImagePool(o.pool_size, o.seed + 1), ImagePool(o.pool_size, o.seed + 2)
        self._load_unpaired(files_a, files_b, o, on_skip)
        self.size = o.size

    # --------------------------------------------------------------- one step
    def train_step(self, batch, step: int) -> dict:
        from cyclegan_cli.device import autocast

        real_A, real_B = (t.contiguous(memory_format=self.mem) for t in batch)
        discs = self.discs.module if hasattr(self.discs, "module") else self.discs
        D_A, D_B = discs.D_A, discs.D_B
        identity = self.lambda_identity > 0
        gen = self.step_generator(step) if self.augment else None
        # 1. generators: D frozen, GAN + cycle + identity losses
        for p in discs.parameters():
            p.requires_grad_(False)
        self.opt_G.zero_grad(set_to_none=True)
        with autocast(self.device, self.amp):
            fake_B, rec_A, fake_A, rec_B, idt_A, idt_B = self.gens(real_A, real_B, identity)
            loss_G_A = g_loss(self.loss_kind, D_A(diff_augment(fake_B, self.augment, gen)))
            loss_G_B = g_loss(self.loss_kind, D_B(diff_augment(fake_A, self.augment, gen)))
            loss_cycle_A = F.l1_loss(rec_A, real_A) * self.lambda_A
            loss_cycle_B = F.l1_loss(rec_B, real_B) * self.lambda_B
            loss_G = loss_G_A + loss_G_B + loss_cycle_A + loss_cycle_B
            losses = {}
            if identity:
                # as the official code: G_A(B) ~ B weighs with B's cycle weight, G_B(A) ~ A with A's
                loss_idt_A = F.l1_loss(idt_A, real_B) * self.lambda_B * self.lambda_identity
                loss_idt_B = F.l1_loss(idt_B, real_A) * self.lambda_A * self.lambda_identity
                loss_G = loss_G + loss_idt_A + loss_idt_B
                losses.update(loss_idt_A=loss_idt_A, loss_idt_B=loss_idt_B)
        self.scaler.scale(loss_G).backward()
        self.scaler.step(self.opt_G)
        # 2. discriminators on real images and on fakes drawn from the history pools
        for p in discs.parameters():
            p.requires_grad_(True)
        self.opt_D.zero_grad(set_to_none=True)
        pooled_B = self.pool_fake_B.query(fake_B.detach().float())
        pooled_A = self.pool_fake_A.query(fake_A.detach().float())
        with autocast(self.device, self.amp):
            aug = lambda x: diff_augment(x, self.augment, gen)  # noqa: E731
            loss_D_A, loss_D_B = self.discs(aug(real_B), aug(pooled_B), aug(real_A), aug(pooled_A))
        self.scaler.scale(loss_D_A + loss_D_B).backward()
        self.scaler.step(self.opt_D)
        self.scaler.update()
        if self.ema:
            update_ema(self.nets, ["G_A", "G_B"], self.ema, step)
        losses.update(loss_G_A=loss_G_A, loss_G_B=loss_G_B, loss_cycle_A=loss_cycle_A,
                      loss_cycle_B=loss_cycle_B, loss_D_A=loss_D_A, loss_D_B=loss_D_B)
        return {k: v.detach().float() for k, v in losses.items()}

    # --------------------------------------------------------------- outputs
    @torch.no_grad()
    def save_samples(self, path: Path) -> None:
        """Rows: real A | fake B | reconstructed A, then real B | fake A | reconstructed B."""
        from torchvision.utils import make_grid

        G_A, G_B = self.nets.get("G_A_ema", self.nets["G_A"]), self.nets.get("G_B_ema", self.nets["G_B"])
        was = G_A.training
        G_A.eval()
        G_B.eval()
        a, b = self.fixed_A.to(self.device), self.fixed_B.to(self.device)
        fb, fa = G_A(a), G_B(b)
        rows = torch.cat([a, fb, G_B(fb), b, fa, G_A(fa)]).float().cpu()
        G_A.train(was)
        G_B.train(was)
        grid = make_grid(rows.add(1).div(2).clamp(0, 1), nrow=len(a), padding=2, pad_value=1.0)
        A, B = (self.domains + ["A", "B"])[:2]
        save_grid(grid, path, [f"{A}", f"-> {B}", f"-> {A} again", f"{B}", f"-> {A}", f"-> {B} again"])

    def config(self) -> ModelConfig:
        return ModelConfig(kind="cyclegan", nets={k: {"arch": a, "args": dict(v)} for k, (a, v) in self.specs.items()},
                           image_size=self.size, domains=list(self.domains), training=self.options,
                           source=f"ganctl train ({self.options.get('name', '')})")

    def extra_state(self) -> dict:
        return {"pool_fake_B": self.pool_fake_B.state_dict(), "pool_fake_A": self.pool_fake_A.state_dict()}

    def load_extra_state(self, s: dict) -> None:
        # runs saved before the rename called the pools by their discriminator's letter
        self.pool_fake_B.load_state_dict(s.get("pool_fake_B", s.get("pool_A")), self.device)
        self.pool_fake_A.load_state_dict(s.get("pool_fake_A", s.get("pool_B")), self.device)


def train_cyclegan(folder_a, folder_b, options: CycleGANOptions | None = None, *, runs_dir="runs", name=None,
                   callbacks=None, **overrides) -> Path:
    """Train a CycleGAN on two folders (A, B: images, recursive, any Pillow format); returns the run
    folder. ``options`` (or keyword ``overrides`` of its fields) as :class:`CycleGANOptions`; ``name``:
    an existing run of that name is resumed; ``callbacks``: :class:`loop.Callbacks`."""
    o = CycleGANOptions.build(options, overrides)
    o.validate()
    cb = callbacks or loop.Callbacks()
    files_a, files_b, dist, dev, o, total = unpaired.start(folder_a, folder_b, o, cb)
    make = lambda o, saved: CycleGANTask(files_a, files_b, o, saved=saved, dist=dist, device=dev,  # noqa: E731
                                         on_skip=cb.on_notice)
    return loop.train_task("cyclegan", o, unpaired.folders_saved(folder_a, folder_b), make, total=total,
                           runs_dir=runs_dir, name=name, dist=dist, device=dev, cb=cb)
