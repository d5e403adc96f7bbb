"""pix2pix training on paired images, the official recipe by default (Isola et al. 2017 and
junyanz/pytorch-CycleGAN-and-pix2pix ``models/pix2pix_model.py`` with ``--model pix2pix``):
U-Net generator with batch norm and dropout, 70x70 PatchGAN on (input, output) pairs, vanilla GAN
loss + 100 x L1, Adam 2e-4 (0.5, 0.999), no image pool, resize 286 then random 256 crop and flip,
100 + 100 epochs with linear decay."""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F

from cyclegan_cli.checkpoints import ModelConfig
from cyclegan_cli.data.datasets import PairedDataset, center, epoch_order, pair_folders, scan_folder
from cyclegan_cli.models.cyclegan import check_upsample, init_weights
from cyclegan_cli.train import loop
from cyclegan_cli.train.augment import diff_augment
from cyclegan_cli.train.ema import add_ema, check_decay, update_ema
from cyclegan_cli.train.grids import save_grid
from cyclegan_cli.train.losses import d_loss, g_loss
from cyclegan_cli.train.task import GANTask


class Pix2PixTask(GANTask):
    def __init__(self, pairs, *, ngf, ndf, upsample, size, load_size, flip, loss, lambda_l1, lr, beta1, epochs, decay_epochs,
                 seed, precision, channels_last, compile_nets, direction, domains, options, dist, device,
                 on_skip=None, augment=(), ema=0.0):
        self.device, self.dist, self.loss_kind, self.lambda_l1 = device, dist, loss, lambda_l1
        self.lr, self.epochs, self.decay_epochs, self.seed = lr, epochs, decay_epochs, seed
        self.size, self.domains, self.options = size, domains, options
        num_downs = max(5, int(round(math.log2(size))))  # unet_256 at 256 px, as the official default
        g_args = {"input_nc": 3, "output_nc": 3, "num_downs": num_downs, "ngf": ngf, "norm": "batch",
                  "use_dropout": True, "upsample": upsample}
        d_args = {"input_nc": 6, "ndf": ndf, "n_layers": 3, "norm": "batch"}  # judges (input, output) pairs
        specs = {"G_A": ("unet_generator", g_args), "D_A": ("patch_discriminator", d_args)}
        self._build_nets(specs, lambda net: init_weights(net, 0.02), device, precision, channels_last, seed)
        self.augment, self.ema = tuple(augment), ema
        if ema:
            add_ema(self.nets, self.specs, ["G_A"])
        self.G = loop.wrap_ddp(self.nets["G_A"], dist, device)
        self.D = loop.wrap_ddp(self.nets["D_A"], dist, device)
        if compile_nets:
            self.G, self.D = torch.compile(self.G), torch.compile(self.D)
        self._optimizers(lr, beta1, self.nets["G_A"].parameters(), self.nets["D_A"].parameters())
        self.dataset = PairedDataset(pairs, load_size, size, flip, seed, direction, on_skip=on_skip)
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


def train_pix2pix(
    folder_a,  # inputs (A), or one folder of aligned A|B images when folder_b is None
    folder_b=None,  # targets (B): B/x.* pairs with A/x.*
    *,
    runs_dir="runs",  # where run folders live
    name=None,  # run name; an existing run of that name is resumed
    direction="AtoB",  # AtoB: A -> B; BtoA: B -> A
    epochs=100,  # epochs at the initial learning rate (official n_epochs 100)
    decay_epochs=100,  # epochs of linear decay to zero (official n_epochs_decay 100)
    max_steps=None,  # stop after this many iterations (default: all epochs)
    batch_size=1,  # official batch size 1
    size=256,  # random crop size (official crop_size 256)
    load_size=None,  # resize before cropping (official load_size 286; default size * 286/256)
    flip=True,  # random horizontal flips, the same for both images of a pair
    ngf=64,  # generator filters in the first layer (official 64)
    ndf=64,  # discriminator filters in the first layer (official 64)
    upsample="transpose",  # U-Net up-sampling: transpose (official) or resize (bilinear + conv, no checkerboard)
    loss="nonsat",  # the official "vanilla" GAN loss (BCE, non-saturating for G)
    lambda_l1=100.0,  # L1 weight (official lambda_L1 100)
    lr=2e-4,  # Adam learning rate (official 0.0002)
    beta1=0.5,  # Adam beta1 (official 0.5)
    seed=0,
    deterministic=False,
    device="auto",
    precision="auto",
    channels_last=None,
    compile=False,
    workers=None,
    log_every=None,  # a stats.jsonl line every N steps (None: what the run was given before, else 50)
    sample_every=None,  # a sample grid every N steps (None: as before, else 500)
    save_every=None,  # a checkpoint every N steps and at the end (None: as before, else 1000)
    keep_checkpoints=None,  # keep the last K checkpoints (default: what the run was given before, else 3)
    domains=None,  # names of the input and target domains (default the folder names)
    augment=(),  # DiffAugment policy before the discriminator (the pair as one image)
    ema=0.0,  # EMA decay of the generator's weights (0: none)
    callbacks=None,
) -> Path:
    """Train pix2pix on paired folders (or one aligned folder); returns the run folder."""
    from cyclegan_cli.train.losses import LOSSES

    if loss not in LOSSES:
        raise loop.UsageError(f"unknown --loss {loss!r}: {', '.join(LOSSES)}")
    if direction not in ("AtoB", "BtoA"):
        raise loop.UsageError(f"--direction {direction!r}: AtoB or BtoA")
    if size < 32 or size & (size - 1):
        raise loop.UsageError(f"--size {size}: pix2pix's U-Net takes a power of two, at least 32")
    load_size = load_size or round(size * 286 / 256)
    if load_size < size:
        raise loop.UsageError(f"--load-size {load_size} is smaller than --size {size}")
    check_upsample(upsample)
    check_decay(ema)
    cb = callbacks or loop.Callbacks()
    if folder_b is not None:
        pairs = pair_folders(Path(folder_a), Path(folder_b), on_skip=cb.on_notice)
        names = [Path(folder_a).resolve().name, Path(folder_b).resolve().name]
    else:
        files, _ = scan_folder(Path(folder_a), on_skip=cb.on_notice)
        pairs = [(f, None) for f in files]
        names = ["A", "B"]
    if direction == "BtoA":
        names = names[::-1]
    dist, dev = loop.start_process(device, seed, deterministic, cb)
    n = len(pairs) // dist.world // batch_size or 1
    total = loop.schedule_length(max_steps, n, epochs, decay_epochs)
    domains = list(domains or names)
    options = loop.options_dict(folder_a=Path(folder_a).resolve(),
                                folder_b=Path(folder_b).resolve() if folder_b is not None else None,
                                paired=True, direction=direction, epochs=epochs, decay_epochs=decay_epochs,
                                max_steps=total, batch_size=batch_size, size=size, load_size=load_size, flip=flip,
                                ngf=ngf, ndf=ndf, upsample=upsample, loss=loss, lambda_l1=lambda_l1, lr=lr, beta1=beta1, seed=seed,
                                deterministic=deterministic, precision=precision, world_size=dist.world,
                                domains=domains, augment=",".join(augment) or "none", ema=ema)
    run_dir, _ = loop.prepare_run(Path(runs_dir), name, "pix2pix", options, dist.main, dist)
    dist.barrier()
    options["name"] = run_dir.name
    task = Pix2PixTask(pairs, ngf=ngf, ndf=ndf, upsample=upsample, size=size, load_size=load_size, flip=flip, loss=loss,
                       lambda_l1=lambda_l1, lr=lr, beta1=beta1, epochs=epochs, decay_epochs=decay_epochs, seed=seed,
                       precision=precision, channels_last=channels_last, compile_nets=compile, direction=direction,
                       domains=domains, options=options, dist=dist, device=dev, on_skip=cb.on_notice,
                       augment=augment, ema=ema)
    loop.fit(task, run_dir=run_dir, max_steps=total, batch_size=batch_size, log_every=log_every,
             sample_every=sample_every, save_every=save_every, keep_checkpoints=keep_checkpoints, workers=workers,
             dist=dist, device=dev, callbacks=cb)
    return run_dir
