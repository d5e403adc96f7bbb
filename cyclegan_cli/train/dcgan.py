"""DCGAN training (Radford et al. 2016; pytorch/examples ``dcgan/main.py``): Adam 2e-4, beta1 0.5,
N(0, 0.02) init, the non-saturating loss by default. Shares the loop with CycleGAN."""

from __future__ import annotations

from pathlib import Path

import torch

from cyclegan_cli.checkpoints import ModelConfig
from cyclegan_cli.data.datasets import SingleDataset, epoch_order, scan_folder
from cyclegan_cli.models.dcgan import init_dcgan_weights
from cyclegan_cli.train import loop
from cyclegan_cli.train.augment import diff_augment
from cyclegan_cli.train.ema import add_ema, check_decay, update_ema
from cyclegan_cli.train.grids import save_grid
from cyclegan_cli.train.losses import GP_WEIGHT, d_loss, g_loss, gradient_penalty
from cyclegan_cli.train.task import GANTask

DCGAN_LOSSES = ("nonsat", "minimax", "lsgan", "hinge", "wgangp")
DCGAN_SIZES = (16, 32, 64, 128, 256)  # what the generator builds (4x4 doubled 2 to 6 times)


class DCGANTask(GANTask):
    def __init__(self, files, *, nz, ngf, ndf, image_size, flip, loss, lr, beta1, seed, precision,
                 channels_last, compile_nets, options, dist, device, sample_count=64, on_skip=None, augment=(), ema=0.0):
        self.device, self.dist, self.loss_kind, self.lr = device, dist, loss, lr
        self.seed, self.options, self.nz, self.image_size = seed, options, nz, image_size
        specs = {"G": ("dcgan_generator", {"nz": nz, "ngf": ngf, "nc": 3, "image_size": image_size}),
                 "D": ("dcgan_discriminator", {"ndf": ndf, "nc": 3, "image_size": image_size})}
        self._build_nets(specs, init_dcgan_weights, device, precision, channels_last, seed)
        self.augment, self.ema = tuple(augment), ema
        if ema:
            add_ema(self.nets, self.specs, ["G"])
        self.G = loop.wrap_ddp(self.nets["G"], dist, device)
        self.D = loop.wrap_ddp(self.nets["D"], dist, device)
        if compile_nets:
            self.G, self.D = torch.compile(self.G), torch.compile(self.D)
        self._optimizers(lr, beta1, self.nets["G"].parameters(), self.nets["D"].parameters())
        self.dataset = SingleDataset(files, image_size, flip, seed, on_skip=on_skip)
        from cyclegan_cli.infer.sample import latents_for_seeds

        self.fixed_z = latents_for_seeds(list(range(sample_count)), nz)  # the same 64 seeds all run long

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
            out_real = self.D(diff_augment(real, self.augment, aug_gen))
            out_fake = self.D(diff_augment(fake.detach(), self.augment, aug_gen))
            loss_D = d_loss(self.loss_kind, out_real, out_fake)
            if self.loss_kind == "wgangp":
                loss_D = loss_D + GP_WEIGHT * gradient_penalty(self.D, real, fake.detach())
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



def train_dcgan(
    folder,  # training images (recursive, any Pillow format)
    *,
    runs_dir="runs",  # where run folders live
    name=None,  # run name; an existing run of that name is resumed
    epochs=25,  # passes over the data (the examples' niter 25)
    max_steps=None,  # stop after this many iterations from the run's start (default: all epochs)
    batch_size=64,  # the examples' batch size 64
    image_size=64,  # one of DCGAN_SIZES (the examples: 64)
    nz=100,  # latent size (the examples' nz 100)
    ngf=64,  # generator width (the examples' 64)
    ndf=64,  # discriminator width (the examples' 64)
    flip=False,  # random horizontal flips
    loss="nonsat",  # nonsat (the examples' BCE), minimax, lsgan, hinge, wgangp
    lr=2e-4,  # Adam learning rate (the examples' 0.0002)
    beta1=0.5,  # Adam beta1 (the examples' 0.5)
    seed=0,  # seeds init, data order and noise
    deterministic=False,  # deterministic algorithms (bit-exact resume on CPU)
    device="auto",
    precision="auto",
    channels_last=None,
    compile=False,
    workers=None,  # DataLoader worker processes (default: 0 on CPU, 4 on GPU)
    log_every=None,  # a stats.jsonl line every N steps (None: what the run was given before, else 50)
    sample_every=None,  # a sample grid every N steps (None: as before, else 500)
    save_every=None,  # a checkpoint every N steps and at the end (None: as before, else 1000)
    keep_checkpoints=None,  # keep the last K checkpoints (default: what the run was given before, else 3)
    eval_every=0,  # evaluate the generator every N steps (0: never)
    eval_data=None,  # real images to evaluate against (CycleGAN: domain B; DCGAN: the data's kind)
    eval_metrics=("kid",),  # fid, kid, pr
    eval_num=500,  # samples (and real images) per evaluation
    eval_features="inception",  # the feature network: inception or a TorchScript file
    augment=(),  # DiffAugment policy before the discriminator: color, translation, cutout
    ema=0.0,  # EMA decay of the generator's weights (0: none)
    callbacks=None,
) -> Path:
    """Train a DCGAN on one folder; returns the run folder."""
    if loss not in DCGAN_LOSSES:
        raise loop.UsageError(f"unknown --loss {loss!r} for DCGAN: {', '.join(DCGAN_LOSSES)}")
    if image_size not in DCGAN_SIZES:
        sizes = ", ".join(map(str, DCGAN_SIZES[:-1])) + f" or {DCGAN_SIZES[-1]}"
        raise loop.UsageError(f"--size {image_size}: DCGAN takes {sizes}")
    check_decay(ema)
    cb = callbacks or loop.Callbacks()
    files, _ = scan_folder(Path(folder), on_skip=cb.on_notice)  # one line per unreadable file
    dist, dev = loop.start_process(device, seed, deterministic, cb)
    batch_size = min(batch_size, max(1, len(files) // dist.world))
    n = len(files) // dist.world // batch_size or 1
    total = max_steps or n * epochs
    options = loop.options_dict(folder=Path(folder).resolve(), epochs=epochs, max_steps=total, batch_size=batch_size,
                                image_size=image_size, nz=nz, ngf=ngf, ndf=ndf, flip=flip, loss=loss, lr=lr,
                                beta1=beta1, seed=seed, deterministic=deterministic, precision=precision,
                                world_size=dist.world, augment=",".join(augment) or "none", ema=ema)
    run_dir, _ = loop.prepare_run(Path(runs_dir), name, "dcgan", options, dist.main, dist)
    dist.barrier()
    options["name"] = run_dir.name
    task = DCGANTask(files, nz=nz, ngf=ngf, ndf=ndf, image_size=image_size, flip=flip, loss=loss, lr=lr, beta1=beta1,
                     seed=seed, precision=precision, channels_last=channels_last, compile_nets=compile,
                     options=options, dist=dist, device=dev, on_skip=cb.on_notice, augment=augment, ema=ema)
    from cyclegan_cli.train.evaluation import evaluator_for

    evaluator = evaluator_for(task, eval_every, eval_data, eval_metrics, eval_num, eval_features, dist, dev)
    loop.fit(task, run_dir=run_dir, max_steps=total, batch_size=batch_size, log_every=log_every,
             sample_every=sample_every, save_every=save_every, keep_checkpoints=keep_checkpoints, workers=workers,
             dist=dist, device=dev, callbacks=cb, evaluator=evaluator, eval_every=eval_every)
    return run_dir
