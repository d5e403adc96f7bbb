"""DCGAN in the pytorch/examples layout (``main.0.weight`` ...), so an examples ``netG.pth`` loads as is.

64 px is the examples' network; 32 and 128 px remove or add one stride-2 stage (``image_size``).
"""

from __future__ import annotations

import math

from torch import nn

from cyclegan_cli.models.registry import register


def _stages(image_size: int) -> int:
    n = int(math.log2(image_size)) - 2  # 4x4 after the first layer, doubled by each stage
    if image_size < 16 or 2 ** (n + 2) != image_size:
        raise ValueError(f"DCGAN image_size must be a power of two >= 16, got {image_size}")
    return n


@register("dcgan_generator")
class DCGANGenerator(nn.Module):
    def __init__(self, nz=100, ngf=64, nc=3, image_size=64):
        super().__init__()
        self.nz = nz
        n = _stages(image_size)
        mult = 2 ** (n - 1)  # 8 for 64 px, as in the examples
        layers = [nn.ConvTranspose2d(nz, ngf * mult, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * mult), nn.ReLU(True)]
        for _ in range(n - 1):  # (N, ngf*mult, s, s) -> (N, ngf*mult/2, 2s, 2s)
            layers += [nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 4, 2, 1, bias=False),
                       nn.BatchNorm2d(ngf * mult // 2), nn.ReLU(True)]
            mult //= 2
        layers += [nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, z):  # z: (N, nz, 1, 1) or (N, nz)
        if z.dim() == 2:
            z = z[:, :, None, None]
        return self.main(z)


@register("dcgan_discriminator")
class DCGANDiscriminator(nn.Module):
    """Outputs raw logits (N,); the examples end with a Sigmoid, which ``sigmoid=True`` restores."""

    def __init__(self, ndf=64, nc=3, image_size=64, sigmoid=False):
        super().__init__()
        n = _stages(image_size)
        layers = [nn.Conv2d(nc, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]
        mult = 1
        for _ in range(n - 1):
            layers += [nn.Conv2d(ndf * mult, ndf * mult * 2, 4, 2, 1, bias=False),
                       nn.BatchNorm2d(ndf * mult * 2), nn.LeakyReLU(0.2, True)]
            mult *= 2
        layers.append(nn.Conv2d(ndf * mult, 1, 4, 1, 0, bias=False))
        if sigmoid:
            layers.append(nn.Sigmoid())
        self.main = nn.Sequential(*layers)

    def forward(self, x):
        return self.main(x).view(-1)


def init_dcgan_weights(m: nn.Module) -> None:
    """The examples' ``weights_init``: conv ~ N(0, 0.02), batch norm scale ~ N(1, 0.02), shift 0."""
    for mod in m.modules():
        if isinstance(mod, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(mod.weight, 0.0, 0.02)
        elif isinstance(mod, nn.BatchNorm2d):
            nn.init.normal_(mod.weight, 1.0, 0.02)
            nn.init.zeros_(mod.bias)
