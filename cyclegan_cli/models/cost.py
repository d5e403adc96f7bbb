"""What a network costs, counted rather than timed: parameters and multiply-accumulates (MACs)."""

from __future__ import annotations

import torch
from torch import nn


def parameters(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


@torch.no_grad()
def macs(net: nn.Module, height: int = 256, width: int = 256, channels: int = 3) -> int:
    """Multiply-accumulates of one forward pass on a (1, channels, height, width) image, counted
    over the convolutions: each output element costs in_channels / groups x kernel area, for a
    transposed convolution too (the convention of thop and of GAN Compression's 56.8 GMAC for the
    official ResNet-9 at 256 px)."""
    total = 0

    def count(module, inputs, output):
        nonlocal total
        k = module.kernel_size[0] * module.kernel_size[1]
        total += output.numel() * k * module.in_channels // module.groups

    hooks = [m.register_forward_hook(count) for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    try:
        was = net.training
        net.eval()
        net(torch.zeros(1, channels, height, width))
        net.train(was)
    finally:
        for h in hooks:
            h.remove()
    return total
