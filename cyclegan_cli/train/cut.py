"""CUT and FastCUT training (Park et al., ECCV 2020), the official losses and their defaults
(taesungp/contrastive-unpaired-translation ``models/cut_model.py``): one generator, one PatchGAN,
LSGAN, and PatchNCE on encoder layers 0, 4, 8, 12, 16 with 256 patches a layer through a 256-wide
MLP head, temperature 0.07, no image pool. G, D and the head start as the official default
``--init_type xavier --init_gain 0.02`` (the method's recipe, :data:`~cyclegan_cli.train.options.RECIPES`).

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
from cyclegan_cli.models.cut import NCE_T, NUM_PATCHES, patch_nce
from cyclegan_cli.train import loop, unpaired
from cyclegan_cli.train.augment import diff_augment
from cyclegan_cli.train.distributed import wrap_ddp
from cyclegan_cli.train.ema import add_ema, update_ema
from cyclegan_cli.train.grids import save_grid
from cyclegan_cli.train.losses import d_loss, g_loss
from cyclegan_cli.train.options import RECIPES, CUTOptions
from cyclegan_cli.train.task import recipe_init

class CUTTask(unpaired.UnpairedTask):
    def __init__(self, files_a, files_b, o: CUTOptions, *, saved: dict, dist, device, on_skip=None):
        """``o``: the run's options, resolved; ``saved``: what its options.json holds (the config's training)."""
        self.device, self.dist, self.loss_kind = device, dist, o.loss
        recipe = RECIPES[o.method]
        self.lambda_nce, self.nce_idt, self.flip_eq = o.lambda_nce, recipe.nce_idt, recipe.flip_equivariance
        self.nce_layers = tuple(o.nce_layers)
        self.lr, self.epochs, self.decay_epochs = o.lr, o.epochs, o.decay_epochs
        self.seed, self.domains, self.options, self.size = o.seed, o.domains, saved, o.size
        self.augment, self.ema = o.policy, o.ema
        g_args = {"input_nc": 3, "output_nc": 3, "ngf": o.ngf, "n_blocks": o.blocks, "norm": o.norm, "upsample": o.upsample}
        d_args = {"input_nc": 3, "ndf": o.ndf, "n_layers": o.d_layers, "norm": o.norm}
        f_args = {"channels": list(_feature_channels(g_args, self.nce_layers)), "nc": 256}
        specs = {"G_A": ("resnet_generator", g_args), "D_A": ("patch_discriminator", d_args),
                 "F": ("patch_nce_head", f_args)}
        self._build_nets(specs, recipe_init(recipe), device, o.precision, o.channels_last, o.seed)
        if o.ema:
            add_ema(self.nets, self.specs, ["G_A"])
        self.G = wrap_ddp(self.nets["G_A"], dist, device)
        self.D = wrap_ddp(self.nets["D_A"], dist, device)
        self.F = wrap_ddp(self.nets["F"], dist, device)
        if o.compile:
            self.G, self.D = torch.compile(self.G), torch.compile(self.D)
        # G and the projection head step together (the official optimizer_G and optimizer_F, same lr and betas)
        self._optimizers(o.lr, o.beta1, [*self.nets["G_A"].parameters(), *self.nets["F"].parameters()],
                         self.nets["D_A"].parameters())
        self._load_unpaired(files_a, files_b, o, on_skip)

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


def train_cut(folder_a, folder_b, options: CUTOptions | None = None, *, runs_dir="runs", name=None, callbacks=None,
              **overrides) -> Path:
    """Train CUT or FastCUT on two folders (A: the inputs, B: what outputs should look like); returns
    the run folder. ``options`` (or keyword ``overrides`` of its fields) as :class:`CUTOptions`."""
    o = CUTOptions.build(options, overrides)
    o.validate()
    cb = callbacks or loop.Callbacks()
    files_a, files_b, dist, dev, o, total = unpaired.start(folder_a, folder_b, o, cb)
    make = lambda o, saved: CUTTask(files_a, files_b, o, saved=saved, dist=dist, device=dev,  # noqa: E731
                                    on_skip=cb.on_notice)
    return loop.train_task("cut", o, unpaired.folders_saved(folder_a, folder_b), make, total=total,
                           runs_dir=runs_dir, name=name, dist=dist, device=dev, cb=cb)
