"""An exponential moving average of the generator's weights (Karras et al.; lightweight-gan):
after every step, ema = decay * ema + (1 - decay) * weights. The EMA copies are nets of their own
(``G_A_ema`` beside ``G_A``), saved in the checkpoint with the raw weights and used by translate,
sample and evaluation unless ``--raw-weights`` is given."""

from __future__ import annotations

import copy

import torch

SUFFIX = "_ema"


def check_decay(decay: float) -> None:
    from cyclegan_cli.errors import UsageError

    if decay and not 0.0 < decay < 1.0:
        raise UsageError(f"--ema {decay}: the decay must be between 0 and 1 (e.g. 0.999), or 0 for none")


def add_ema(nets: dict, specs: dict, names: list[str]) -> None:
    """A frozen copy of each named net, as ``NAME_ema`` in ``nets`` and ``specs``."""
    for name in names:
        twin = copy.deepcopy(nets[name])
        twin.requires_grad_(False)
        nets[name + SUFFIX] = twin
        specs[name + SUFFIX] = specs[name]


@torch.no_grad()
def update_ema(nets: dict, names: list[str], decay: float) -> None:
    for name in names:
        src, dst = nets[name], nets[name + SUFFIX]
        for p_ema, p in zip(dst.parameters(), src.parameters()):
            p_ema.lerp_(p.detach().to(p_ema.dtype), 1.0 - decay)
        for b_ema, b in zip(dst.buffers(), src.buffers()):  # running statistics follow the raw net
            b_ema.copy_(b)
