"""CycleGAN training, the official recipe by default (Zhu et al. 2017 and
junyanz/pytorch-CycleGAN-and-pix2pix ``options/`` + ``models/cycle_gan_model.py``)."""

from __future__ import annotations

import math

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from cyclegan_cli.checkpoints import ModelConfig
from cyclegan_cli.models.cyclegan import check_upsample, init_weights
from cyclegan_cli.train import loop, unpaired
from cyclegan_cli.train.augment import diff_augment
from cyclegan_cli.train.ema import add_ema, check_decay, update_ema
from cyclegan_cli.train.grids import save_grid
from cyclegan_cli.train.losses import GP_WEIGHT, LOSSES, d_loss, g_loss, gradient_penalty
from cyclegan_cli.train.pool import ImagePool


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
    def __init__(self, files_a, files_b, *, ngf, ndf, blocks, norm, upsample, generator, d_layers, size, load_size, flip, loss,
                 lambda_cycle, lambda_identity, lr, beta1, epochs, decay_epochs, pool_size, seed, precision,
                 channels_last, compile_nets, domains, options, dist, device, on_skip=None, augment=(), ema=0.0):
        self.device, self.dist = device, dist
        self.loss_kind, self.lambda_identity = loss, lambda_identity
        self.lambda_A, self.lambda_B = lambda_cycle  # A->B->A and B->A->B weights (the official lambda_A, lambda_B)
        self.lr, self.epochs, self.decay_epochs = lr, epochs, decay_epochs
        self.seed, self.domains, self.options = seed, domains, options
        if generator == "unet":  # the official --netG unet_128 / unet_256: one stage per halving of the crop
            arch, g_args = "unet_generator", {"input_nc": 3, "output_nc": 3, "num_downs": int(math.log2(size)),
                                              "ngf": ngf, "norm": norm, "upsample": upsample}
        else:
            arch, g_args = "resnet_generator", {"input_nc": 3, "output_nc": 3, "ngf": ngf, "n_blocks": blocks,
                                                "norm": norm, "upsample": upsample}
        d_args = {"input_nc": 3, "ndf": ndf, "n_layers": d_layers, "norm": norm}
        specs = {"G_A": (arch, g_args), "G_B": (arch, g_args),
                 "D_A": ("patch_discriminator", d_args), "D_B": ("patch_discriminator", d_args)}
        # N(0, 0.02), the official --init_type normal
        self._build_nets(specs, lambda net: init_weights(net, 0.02), device, precision, channels_last, seed)
        self.augment, self.ema = tuple(augment), ema
        if ema:
            add_ema(self.nets, self.specs, ["G_A", "G_B"])
        gens = Generators(self.nets["G_A"], self.nets["G_B"])
        discs = Discriminators(self.nets["D_A"], self.nets["D_B"], loss)
        self.gens = loop.wrap_ddp(gens, dist, device)
        self.discs = loop.wrap_ddp(discs, dist, device)
        if compile_nets:
            self.gens, self.discs = torch.compile(self.gens), torch.compile(self.discs)
        self._optimizers(lr, beta1, gens.parameters(), discs.parameters())
        # history pools of generated images, for the discriminators (official: fake_B_pool, fake_A_pool)
        self.pool_fake_B, self.pool_fake_A = ImagePool(pool_size, seed + 1), ImagePool(pool_size, seed + 2)
        self._load_unpaired(files_a, files_b, load_size, size, flip, seed, on_skip)
        self.size = size

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


def train_cyclegan(
    folder_a,  # domain A images (recursive, any Pillow format)
    folder_b,  # domain B images
    *,
    runs_dir="runs",  # where run folders live
    name=None,  # run name; an existing run of that name is resumed
    epochs=100,  # epochs at the initial learning rate (official n_epochs 100)
    decay_epochs=100,  # epochs of linear decay to zero (official n_epochs_decay 100)
    max_steps=None,  # stop after this many iterations from the run's start (default: all epochs)
    batch_size=1,  # official batch size 1
    size=256,  # random crop size (official crop_size 256)
    load_size=None,  # resize before cropping (official load_size 286; default size * 286/256)
    flip=True,  # random horizontal flips (official: on unless --no_flip)
    ngf=64,  # generator filters in the first conv layer (official 64)
    ndf=64,  # discriminator filters in the first conv layer (official 64)
    blocks=9,  # ResNet blocks (official resnet_9blocks)
    generator="resnet",  # resnet (official default) or unet (official --netG unet_128/unet_256; size a power of 2)
    d_layers=3,  # PatchGAN layers: 3 = 70x70 receptive field (official basic D)
    norm="instance",  # instance norm (official for CycleGAN)
    upsample="transpose",  # generator up-sampling: transpose (official) or resize (bilinear + conv, no checkerboard)
    loss="lsgan",  # lsgan (official), minimax, nonsat, wgangp
    lambda_cycle=10.0,  # cycle-consistency weight per direction (official lambda_A = lambda_B = 10)
    lambda_cycle_a=None,  # A->B->A cycle weight only (default lambda_cycle); lower it when B holds less than A
    lambda_cycle_b=None,  # B->A->B cycle weight only (default lambda_cycle)
    lambda_identity=0.5,  # identity loss, as a fraction of lambda_cycle (official 0.5)
    lr=2e-4,  # Adam learning rate (official 0.0002)
    beta1=0.5,  # Adam beta1 (official 0.5; beta2 0.999)
    pool_size=50,  # image history pool (official 50)
    seed=0,  # seeds init, data order, augmentation and pools
    deterministic=False,  # deterministic algorithms (bit-exact resume on CPU)
    device="auto",  # auto|cpu|cuda|cuda:N|mps
    precision="auto",  # auto (bf16 on GPUs that have it), fp16 (GradScaler), bf16, fp32
    channels_last=None,  # default: on for CUDA
    compile=False,  # torch.compile the nets
    workers=None,  # DataLoader worker processes (default: 0 on CPU, where they would steal cores from compute; 4 on GPU)
    log_every=None,  # a stats.jsonl line every N steps (None: what the run was given before, else 50)
    sample_every=None,  # a sample grid every N steps (None: as before, else 500)
    save_every=None,  # a checkpoint every N steps and at the end (None: as before, else 1000)
    keep_checkpoints=None,  # keep the last K checkpoints (default: what the run was given before, else 3)
    domains=None,  # domain names, default the folder names
    eval_every=0,  # evaluate the generator every N steps (0: never)
    eval_data=None,  # real images to evaluate against (CycleGAN: domain B; DCGAN: the data's kind)
    eval_metrics=("kid",),  # fid, kid, pr
    eval_num=500,  # samples (and real images) per evaluation
    eval_features="inception",  # the feature network: inception or a TorchScript file
    augment=(),  # DiffAugment policy before the discriminators: color, translation, cutout
    ema=0.0,  # EMA decay of the generators' weights (0: none)
    callbacks=None,  # loop.Callbacks: how progress is reported
) -> Path:
    """Train a CycleGAN on two folders; returns the run folder."""
    if loss not in LOSSES or loss == "hinge":
        raise loop.UsageError(f"unknown --loss {loss!r} for CycleGAN: lsgan, minimax, nonsat or wgangp")
    check_upsample(upsample)
    if generator not in ("resnet", "unet"):
        raise loop.UsageError(f"--generator {generator!r}: resnet or unet")
    if size % 4:
        raise loop.UsageError(f"--size {size}: must be a multiple of 4")
    if generator == "unet" and (size < 32 or size & (size - 1)):
        raise loop.UsageError(f"--size {size}: the U-Net generator takes a power of two, at least 32")
    if size < 2 ** (d_layers + 2):
        raise loop.UsageError(f"--size {size}: the {d_layers}-layer PatchGAN needs at least {2 ** (d_layers + 2)} px")
    load_size = load_size or round(size * 286 / 256)
    if load_size < size:
        raise loop.UsageError(f"--load-size {load_size} is smaller than --size {size}")
    lambda_a = lambda_cycle if lambda_cycle_a is None else lambda_cycle_a
    lambda_b = lambda_cycle if lambda_cycle_b is None else lambda_cycle_b
    for flag, v in (("--lambda-cycle", lambda_cycle), ("--lambda-cycle-a", lambda_a), ("--lambda-cycle-b", lambda_b)):
        if not v >= 0:
            raise loop.UsageError(f"{flag} {v}: must be 0 or more")
    check_decay(ema)
    cb = callbacks or loop.Callbacks()
    files_a, files_b, dist, dev, domains, total = unpaired.start(
        folder_a, folder_b, domains=domains, max_steps=max_steps, epochs=epochs, decay_epochs=decay_epochs,
        batch_size=batch_size, device=device, seed=seed, deterministic=deterministic, cb=cb)
    options = loop.options_dict(folder_a=Path(folder_a).resolve(), folder_b=Path(folder_b).resolve(), epochs=epochs,
                                decay_epochs=decay_epochs, max_steps=total, batch_size=batch_size, size=size,
                                load_size=load_size, flip=flip, ngf=ngf, ndf=ndf, blocks=blocks, generator=generator, d_layers=d_layers,
                                norm=norm, upsample=upsample, loss=loss, lambda_cycle=lambda_cycle, lambda_cycle_a=lambda_a,
                                lambda_cycle_b=lambda_b, lambda_identity=lambda_identity,
                                lr=lr, beta1=beta1, pool_size=pool_size, seed=seed, deterministic=deterministic,
                                precision=precision, world_size=dist.world, domains=domains,
                                augment=",".join(augment) or "none", ema=ema)
    run_dir, _ = loop.prepare_run(Path(runs_dir), name, "cyclegan", options, dist.main, dist)
    dist.barrier()
    options["name"] = run_dir.name
    task = CycleGANTask(files_a, files_b, ngf=ngf, ndf=ndf, blocks=blocks, norm=norm, upsample=upsample, generator=generator, d_layers=d_layers, size=size,
                        load_size=load_size, flip=flip, loss=loss, lambda_cycle=(lambda_a, lambda_b),
                        lambda_identity=lambda_identity, lr=lr, beta1=beta1, epochs=epochs,
                        decay_epochs=decay_epochs, pool_size=pool_size, seed=seed, precision=precision,
                        channels_last=channels_last, compile_nets=compile, domains=domains, options=options,
                        dist=dist, device=dev, on_skip=cb.on_notice, augment=augment, ema=ema)
    from cyclegan_cli.train.evaluation import evaluator_for

    evaluator = evaluator_for(task, eval_every, eval_data, eval_metrics, eval_num, eval_features, dist, dev)
    loop.fit(task, run_dir=run_dir, max_steps=total, batch_size=batch_size, log_every=log_every,
             sample_every=sample_every, save_every=save_every, keep_checkpoints=keep_checkpoints,
             workers=workers, dist=dist, device=dev, callbacks=cb, evaluator=evaluator, eval_every=eval_every)
    return run_dir
