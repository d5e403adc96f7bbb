"""An exponential moving average of the generator's weights (Karras et al.; lightweight-gan):
after step n, ema = d * ema + (1 - d) * weights with d = min(decay, (1 + n) / (10 + n)): the
warm-up of timm's and StyleGAN's EMAs, so that the random initial weights are forgotten within the
first few hundred steps rather than weighing on a short run's average. The EMA copies are nets of their own
(``G_A_ema`` beside ``G_A``), saved in the checkpoint with the raw weights and used by translate,
sample and evaluation unless ``--raw-weights`` is given."""

from __future__ import annotations

import copy

import torch

SUFFIX = "_ema"


def add_ema(nets: dict, specs: dict, names: list[str]) -> None:
    """A frozen copy of each named net, as ``NAME_ema`` in ``nets`` and ``specs``."""
    for name in names:
        twin = copy.deepcopy(nets[name])
        twin.requires_grad_(False)
        nets[name + SUFFIX] = twin
        specs[name + SUFFIX] = specs[name]


def effective_decay(decay: float, step: int) -> float:
    return min(decay, (1.0 + step) / (10.0 + step))


@torch.no_grad()
def update_ema(nets: dict, names: list[str], decay: float, step: int) -> None:
    """``step``: the number of steps done before this one (0 for the first)."""
    decay = effective_decay(decay, step)
    for name in names:
        src, dst = nets[name], nets[name + SUFFIX]
        for p_ema, p in zip(dst.parameters(), src.parameters()):
            p_ema.lerp_(p.detach().to(p_ema.dtype), 1.0 - decay)
        for b_ema, b in zip(dst.buffers(), src.buffers()):  # running statistics follow the raw net
            b_ema.copy_(b)
