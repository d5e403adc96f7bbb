"""GAN objectives on raw discriminator outputs (logits, or scores for LSGAN/WGAN)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

LOSSES = ("lsgan", "minimax", "nonsat", "wgangp", "hinge")


def d_loss(kind: str, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Discriminator loss for real and fake outputs (the 0.5 of the official CycleGAN is applied by callers)."""
    if kind == "lsgan":
        return F.mse_loss(real, torch.ones_like(real)) + F.mse_loss(fake, torch.zeros_like(fake))
    if kind in ("minimax", "nonsat"):
        return (F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
                + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))
    if kind == "wgangp":
        return fake.mean() - real.mean()
    if kind == "hinge":
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    raise ValueError(f"unknown loss {kind!r}")


def g_loss(kind: str, fake: torch.Tensor) -> torch.Tensor:
    """Generator loss. minimax: G minimises log(1 - D(G(z))); nonsat: G maximises log D(G(z))."""
    if kind == "lsgan":
        return F.mse_loss(fake, torch.ones_like(fake))
    if kind == "minimax":
        return -F.softplus(fake).mean()  # log(1 - sigmoid(l)) = -softplus(l)
    if kind == "nonsat":
        return F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))
    if kind in ("wgangp", "hinge"):
        return -fake.mean()
    raise ValueError(f"unknown loss {kind!r}")


GP_WEIGHT = 10.0  # the WGAN-GP penalty weight (Gulrajani et al. 2017), for every model kind


def gradient_penalty(d, real: torch.Tensor, fake: torch.Tensor, generator=None) -> torch.Tensor:
    """WGAN-GP: (||grad D(x_hat)|| - 1)^2 on random interpolates, weight applied by the caller."""
    alpha = torch.rand(real.size(0), 1, 1, 1, device=real.device, generator=generator)
    x = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    out = d(x)
    (grad,) = torch.autograd.grad(out.sum(), x, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()
