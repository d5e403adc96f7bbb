"""CUT and FastCUT training (Park et al., ECCV 2020), the official losses and their defaults
(taesungp/contrastive-unpaired-translation ``models/cut_model.py``): one generator, one PatchGAN,
LSGAN, and PatchNCE on encoder layers 0, 4, 8, 12, 16 with 256 patches a layer through a 256-wide
MLP head, temperature 0.07, no image pool.

One difference: the generator and discriminator are trained without the official default's blurred
sampling layers (as the official ``--no_antialias --no_antialias_up``), so that ``--upsample`` works
as for CycleGAN; layers 4 and 8 are then the two stride-2 stages and 12 and 16 ResNet blocks 3 and 7.
Official CUT generators *with* those layers load and translate (:mod:`cyclegan_cli.official`).

- CUT: lambda_NCE 1, plus the identity term NCE(G(B), B) on domain B, the two NCE terms averaged.
- FastCUT: lambda_NCE 10, no identity term, flip equivariance (the input is flipped at random and
  the output's features flipped back before PatchNCE).

A CUT model translates A -> B only.
"""

from __future__ import annotations

from pathlib import Path

import torch

from cyclegan_cli.checkpoints import ModelConfig
from cyclegan_cli.models.cut import NCE_LAYERS, NCE_T, NUM_PATCHES, patch_nce
from cyclegan_cli.models.cyclegan import check_upsample, init_weights
from cyclegan_cli.train import loop, unpaired
from cyclegan_cli.train.augment import diff_augment
from cyclegan_cli.train.ema import add_ema, update_ema
from cyclegan_cli.train.grids import save_grid
from cyclegan_cli.train.losses import d_loss, g_loss

METHODS = ("cut", "fastcut")
# per method: (lambda_NCE, identity NCE on B, flip equivariance, epochs, decay epochs), official defaults
RECIPES = {"cut": (1.0, True, False, 200, 200), "fastcut": (10.0, False, True, 150, 50)}


class CUTTask(unpaired.UnpairedTask):
    def __init__(self, files_a, files_b, *, method, ngf, ndf, blocks, norm, upsample, d_layers, size, load_size,
                 flip, loss, lambda_nce, nce_layers, lr, beta1, epochs, decay_epochs, seed, precision, channels_last,
                 compile_nets, augment, ema, domains, options, dist, device, on_skip=None):
        self.device, self.dist, self.loss_kind = device, dist, loss
        self.lambda_nce, self.nce_idt, self.flip_eq = lambda_nce, *RECIPES[method][1:3]
        self.nce_layers = tuple(nce_layers)
        self.lr, self.epochs, self.decay_epochs = lr, epochs, decay_epochs
        self.seed, self.domains, self.options, self.size = seed, domains, options, size
        self.augment, self.ema = augment, ema
        g_args = {"input_nc": 3, "output_nc": 3, "ngf": ngf, "n_blocks": blocks, "norm": norm, "upsample": upsample}
        d_args = {"input_nc": 3, "ndf": ndf, "n_layers": d_layers, "norm": norm}
        f_args = {"channels": list(_feature_channels(g_args, self.nce_layers)), "nc": 256}
        specs = {"G_A": ("resnet_generator", g_args), "D_A": ("patch_discriminator", d_args),
                 "F": ("patch_nce_head", f_args)}
        self._build_nets(specs, lambda net: init_weights(net, 0.02), device, precision, channels_last, seed)
        if ema:
            add_ema(self.nets, self.specs, ["G_A"])
        self.G = loop.wrap_ddp(self.nets["G_A"], dist, device)
        self.D = loop.wrap_ddp(self.nets["D_A"], dist, device)
        self.F = loop.wrap_ddp(self.nets["F"], dist, device)
        if compile_nets:
            self.G, self.D = torch.compile(self.G), torch.compile(self.D)
        # G and the projection head step together (the official optimizer_G and optimizer_F, same lr and betas)
        self._optimizers(lr, beta1, [*self.nets["G_A"].parameters(), *self.nets["F"].parameters()],
                         self.nets["D_A"].parameters())
        self._load_unpaired(files_a, files_b, load_size, size, flip, seed, on_skip)

    def _nce(self, src, tgt, flipped: bool, gen: torch.Generator):
        """The mean PatchNCE over layers between the encoder features of ``src`` and of its output ``tgt``."""
        enc = self.nets["G_A"]
        feat_q = enc.encode(tgt, self.nce_layers)
        if flipped:  # the output was made from a flipped input: compare it at the input's places
            feat_q = [torch.flip(f, [3]) for f in feat_q]
        feat_k = enc.encode(src, self.nce_layers)
        k_pool, ids = self.F(feat_k, NUM_PATCHES, None, gen)
        q_pool, _ = self.F(feat_q, NUM_PATCHES, ids)
        n = src.shape[0]
        total = sum(patch_nce(q, k, n, NCE_T).mean() * self.lambda_nce for q, k in zip(q_pool, k_pool))
        return total / len(self.nce_layers)

    def train_step(self, batch, step: int) -> dict:
        from cyclegan_cli.device import autocast

        real_A, real_B = (t.contiguous(memory_format=self.mem) for t in batch)
        n = real_A.shape[0]
        gen = self.step_generator(step)
        aug = lambda x: diff_augment(x, self.augment, gen)  # noqa: E731
        # 1. one generator pass over A (and B, for CUT's identity term), flipped at random for FastCUT
        real = torch.cat([real_A, real_B]) if self.nce_idt else real_A
        flipped = self.flip_eq and bool(torch.rand((), generator=gen) < 0.5)
        if flipped:
            real = torch.flip(real, [3])
        with autocast(self.device, self.amp):
            fake = self.G(real)
        fake_B, idt_B = fake[:n], (fake[n:] if self.nce_idt else None)
        # 2. the discriminator first, as the official code: real B against this step's G(A)
        self.opt_D.zero_grad(set_to_none=True)
        with autocast(self.device, self.amp):
            loss_D = d_loss(self.loss_kind, self.D(aug(real_B)), self.D(aug(fake_B.detach()))) * 0.5
        self.scaler.scale(loss_D).backward()
        self.scaler.step(self.opt_D)
        # 3. generator and head: fool D, and PatchNCE between input and output patches
        D = self.nets["D_A"]
        for p in D.parameters():
            p.requires_grad_(False)
        self.opt_G.zero_grad(set_to_none=True)
        with autocast(self.device, self.amp):
            loss_G_GAN = g_loss(self.loss_kind, self.D(aug(fake_B)))
            src_A = torch.flip(real[:n], [3]) if flipped else real[:n]  # the unflipped input
            loss_NCE = self._nce(src_A, fake_B, flipped, gen)
            losses = {}
            if self.nce_idt:
                src_B = torch.flip(real[n:], [3]) if flipped else real[n:]
                loss_NCE_Y = self._nce(src_B, idt_B, flipped, gen)
                loss_G = loss_G_GAN + (loss_NCE + loss_NCE_Y) * 0.5
                losses["loss_NCE_Y"] = loss_NCE_Y
            else:
                loss_G = loss_G_GAN + loss_NCE
        self.scaler.scale(loss_G).backward()
        self.scaler.step(self.opt_G)
        self.scaler.update()
        for p in D.parameters():
            p.requires_grad_(True)
        if self.ema:
            update_ema(self.nets, ["G_A"], self.ema, step)
        losses.update(loss_G_GAN=loss_G_GAN, loss_NCE=loss_NCE, loss_D=loss_D)
        return {k: v.detach().float() for k, v in losses.items()}

    @torch.no_grad()
    def save_samples(self, path: Path) -> None:
        """Rows: real A | G(A), then real B | G(B) (what G leaves of an image already in B)."""
        from torchvision.utils import make_grid

        G = self.nets.get("G_A_ema", self.nets["G_A"])
        was = G.training
        G.eval()
        a, b = self.fixed_A.to(self.device), self.fixed_B.to(self.device)
        rows = torch.cat([a, G(a), b, G(b)]).float().cpu()
        G.train(was)
        A, B = (self.domains + ["A", "B"])[:2]
        save_grid(make_grid(rows.add(1).div(2).clamp(0, 1), nrow=len(a), padding=2, pad_value=1.0), path,
                  [A, f"-> {B}", B, f"{B} -> {B}"])

    def config(self) -> ModelConfig:
        return ModelConfig(kind="cut", nets={k: {"arch": a, "args": dict(v)} for k, (a, v) in self.specs.items()},
                           image_size=self.size, domains=list(self.domains), training=self.options,
                           source=f"ganctl train --method {self.options.get('method')} ({self.options.get('name', '')})")


def _feature_channels(g_args: dict, layers) -> list[int]:
    """Channels of the generator's NCE layers, read off a tiny forward pass of an identical net."""
    from cyclegan_cli.models import build

    with torch.no_grad():
        feats = build("resnet_generator", **g_args).encode(torch.zeros(1, 3, 16, 16), layers)
    return [f.shape[1] for f in feats]


def train_cut(
    folder_a,  # domain A images (the inputs)
    folder_b,  # domain B images (what outputs should look like)
    *,
    method="cut",  # cut (lambda_NCE 1 + identity NCE) or fastcut (lambda_NCE 10, flip equivariance)
    runs_dir="runs",  # where run folders live
    name=None,  # run name; an existing run of that name is resumed
    epochs=None,  # epochs at the initial learning rate (official: CUT 200, FastCUT 150)
    decay_epochs=None,  # epochs of linear decay to zero (official: CUT 200, FastCUT 50)
    max_steps=None,  # stop after this many iterations from the run's start
    batch_size=1,  # official batch size 1
    size=256,  # random crop size (official crop_size 256)
    load_size=None,  # resize before cropping (official 286 for 256)
    flip=True,  # random horizontal flips of the data
    ngf=64,  # generator filters (official 64)
    ndf=64,  # discriminator filters (official 64)
    blocks=9,  # ResNet blocks (official resnet_9blocks)
    d_layers=3,  # PatchGAN layers (official basic D)
    norm="instance",  # official normG / normD instance
    upsample="transpose",  # transpose (official with --no_antialias_up) or resize (bilinear + conv)
    loss="lsgan",  # official gan_mode lsgan
    lambda_nce=None,  # PatchNCE weight (official: CUT 1, FastCUT 10)
    nce_layers=NCE_LAYERS,  # generator layers PatchNCE compares (official 0,4,8,12,16; 0 is the input's pixels)
    lr=2e-4,  # Adam learning rate (official 0.0002)
    beta1=0.5,  # Adam beta1 (official 0.5; beta2 0.999)
    augment=(),  # DiffAugment policy for the discriminator's inputs: color, translation, cutout
    ema=0.0,  # EMA decay of the generator's weights (0: none)
    seed=0,
    deterministic=False,
    device="auto",
    precision="auto",
    channels_last=None,
    compile=False,
    workers=None,
    log_every=None,
    sample_every=None,
    save_every=None,
    keep_checkpoints=None,
    domains=None,
    eval_every=0,
    eval_data=None,
    eval_metrics=("kid",),
    eval_num=500,
    eval_features="inception",
    callbacks=None,
) -> Path:
    """Train CUT or FastCUT on two folders; returns the run folder."""
    from cyclegan_cli.models import build
    from cyclegan_cli.train.ema import check_decay

    if method not in METHODS:
        raise loop.UsageError(f"--method {method!r}: cyclegan, cut or fastcut")
    if loss not in ("lsgan", "minimax", "nonsat"):
        raise loop.UsageError(f"unknown --loss {loss!r} for CUT: lsgan, minimax or nonsat")
    check_upsample(upsample)
    check_decay(ema)
    if size % 4:
        raise loop.UsageError(f"--size {size}: must be a multiple of 4")
    if size < 2 ** (d_layers + 2):
        raise loop.UsageError(f"--size {size}: the {d_layers}-layer PatchGAN needs at least {2 ** (d_layers + 2)} px")
    load_size = load_size or round(size * 286 / 256)
    if load_size < size:
        raise loop.UsageError(f"--load-size {load_size} is smaller than --size {size}")
    recipe = RECIPES[method]
    lambda_nce = recipe[0] if lambda_nce is None else lambda_nce
    nce_layers = sorted(set(int(x) for x in nce_layers))
    depth = len(build("resnet_generator", ngf=1, n_blocks=blocks, upsample=upsample).model)
    if not nce_layers or nce_layers[0] < 0 or nce_layers[-1] >= depth:
        raise loop.UsageError(f"--nce-layers {','.join(map(str, nce_layers))}: layers of this generator are 0..{depth - 1}")
    epochs = recipe[3] if epochs is None else epochs
    decay_epochs = recipe[4] if decay_epochs is None else decay_epochs
    cb = callbacks or loop.Callbacks()
    files_a, files_b, dist, dev, domains, total = unpaired.start(
        folder_a, folder_b, domains=domains, max_steps=max_steps, epochs=epochs, decay_epochs=decay_epochs,
        batch_size=batch_size, device=device, seed=seed, deterministic=deterministic, cb=cb)
    options = loop.options_dict(folder_a=Path(folder_a).resolve(), folder_b=Path(folder_b).resolve(), method=method,
                                epochs=epochs, decay_epochs=decay_epochs, max_steps=total, batch_size=batch_size,
                                size=size, load_size=load_size, flip=flip, ngf=ngf, ndf=ndf, blocks=blocks,
                                d_layers=d_layers, norm=norm, upsample=upsample, loss=loss, lambda_nce=lambda_nce,
                                nce_layers=nce_layers, lr=lr, beta1=beta1, augment=",".join(augment) or "none", ema=ema, seed=seed,
                                deterministic=deterministic, precision=precision, world_size=dist.world,
                                domains=domains)
    run_dir, _ = loop.prepare_run(Path(runs_dir), name, "cut", options, dist.main, dist)
    dist.barrier()
    options["name"] = run_dir.name
    task = CUTTask(files_a, files_b, method=method, ngf=ngf, ndf=ndf, blocks=blocks, norm=norm, upsample=upsample,
                   d_layers=d_layers, size=size, load_size=load_size, flip=flip, loss=loss, lambda_nce=lambda_nce,
                   nce_layers=nce_layers, lr=lr, beta1=beta1, epochs=epochs, decay_epochs=decay_epochs, seed=seed, precision=precision,
                   channels_last=channels_last, compile_nets=compile, augment=tuple(augment), ema=ema,
                   domains=domains, options=options, dist=dist, device=dev, on_skip=cb.on_notice)
    from cyclegan_cli.train.evaluation import evaluator_for

    evaluator = evaluator_for(task, eval_every, eval_data, eval_metrics, eval_num, eval_features, dist, dev)
    loop.fit(task, run_dir=run_dir, max_steps=total, batch_size=batch_size, log_every=log_every,
             sample_every=sample_every, save_every=save_every, keep_checkpoints=keep_checkpoints,
             workers=workers, dist=dist, device=dev, callbacks=cb, evaluator=evaluator, eval_every=eval_every)
    return run_dir
