"""DiffAugment (Zhao et al., NeurIPS 2020): the same kind of differentiable augmentation applied to
real and to generated images before the discriminator, so D cannot memorise a small training set
and G still gets gradients through the augmentation. Policies as in the paper's code: ``color``
(brightness, saturation, contrast), ``translation`` (up to 1/8 of the side, zero filled) and
``cutout`` (a square of half the side set to zero). Images come in [-1, 1]; ``color`` may take them
past it and, as the official code, does not clamp them back: a clamped pixel passes no gradient, and
on mostly white images (sketches) that is a third of what D sees."""

from __future__ import annotations

import torch


def diff_augment(x: torch.Tensor, policy: tuple[str, ...], generator: torch.Generator | None = None) -> torch.Tensor:
    """``x`` (N, C, H, W) in [-1, 1], augmented per image (not clamped); the identity for an empty policy.
    Random numbers come from ``generator`` (a CPU generator; training passes one seeded by the
    step, so that a resumed run draws the same), else from torch's global one."""
    for name in policy:
        x = _OPS[name](x, generator)
    return x


def _rand(shape, x, generator):
    return torch.rand(shape, generator=generator).to(x.device, x.dtype)


def _randint(lo, hi, shape, generator):
    return torch.randint(lo, hi, shape, generator=generator)


def _color(x, generator=None):
    """Per RGB image: pix2pix's (input, output) pair (6 channels) is two images, each adjusted on its
    own statistics, with the same factors."""
    n, c, h, w = x.shape
    r = lambda: _rand((n, 1, 1, 1, 1), x, generator)  # noqa: E731
    x = x.reshape(n, c // 3, 3, h, w)  # (N, images, RGB, H, W)
    x = x + (r() - 0.5)  # brightness: +-0.5 (a quarter of the range)
    mean = x.mean(dim=2, keepdim=True)
    x = (x - mean) * (r() * 2) + mean  # saturation: x0..2
    mean = x.mean(dim=(2, 3, 4), keepdim=True)
    x = (x - mean) * (r() + 0.5) + mean  # contrast: x0.5..1.5
    return x.reshape(n, c, h, w)


def _translation(x, generator=None, ratio: float = 0.125):
    n, _, h, w = x.shape
    sy, sx = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = _randint(-sy, sy + 1, (n,), generator).tolist()
    dx = _randint(-sx, sx + 1, (n,), generator).tolist()
    pad = torch.nn.functional.pad(x, (sx, sx, sy, sy))  # zeros outside: (N, C, H + 2sy, W + 2sx)
    return torch.stack([pad[i, :, sy - dy[i]: sy - dy[i] + h, sx - dx[i]: sx - dx[i] + w] for i in range(n)])


def _cutout(x, generator=None, ratio: float = 0.5):
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = _randint(0, h + (1 - ch % 2), (n, 1, 1), generator).to(x.device)
    cx = _randint(0, w + (1 - cw % 2), (n, 1, 1), generator).to(x.device)
    ys = torch.arange(h, device=x.device)[None, :, None]
    xs = torch.arange(w, device=x.device)[None, None, :]
    inside = ((ys - cy + ch // 2) >= 0) & ((ys - cy + ch // 2) < ch) & ((xs - cx + cw // 2) >= 0) & ((xs - cx + cw // 2) < cw)
    return x * (~inside)[:, None].to(x.dtype)


_OPS = {"color": _color, "translation": _translation, "cutout": _cutout}
