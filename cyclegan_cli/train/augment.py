"""DiffAugment (Zhao et al., NeurIPS 2020): the same kind of differentiable augmentation applied to
real and to generated images before the discriminator, so D cannot memorise a small training set
and G still gets gradients through the augmentation. Policies as in the paper's code: ``color``
(brightness, saturation, contrast), ``translation`` (up to 1/8 of the side, zero filled) and
``cutout`` (a square of half the side set to zero). Images are in [-1, 1] and stay there."""

from __future__ import annotations

import torch

POLICIES = ("color", "translation", "cutout")


def parse_policy(text: str | None) -> tuple[str, ...]:
    """``"color,translation"`` -> ("color", "translation"); ``none`` or empty -> (). Raises
    ValueError naming the unknown ones."""
    if text is None or text.strip().lower() in ("", "none"):
        return ()
    names = tuple(dict.fromkeys(t.strip().lower() for t in text.split(",") if t.strip()))
    bad = [n for n in names if n not in POLICIES]
    if bad:
        raise ValueError(f"unknown augmentation {', '.join(bad)}: choose from {', '.join(POLICIES)} (comma-separated) or none")
    return names


def diff_augment(x: torch.Tensor, policy: tuple[str, ...]) -> torch.Tensor:
    """``x`` (N, C, H, W) in [-1, 1], augmented per image; the identity for an empty policy.
    Draws from torch's global generator, so a seeded run (and its resume) repeats it."""
    for name in policy:
        x = _OPS[name](x)
    return x


def _color(x):
    n = x.shape[0]
    r = lambda: torch.rand(n, 1, 1, 1, dtype=x.dtype, device=x.device)  # noqa: E731
    x = x + (r() - 0.5)  # brightness: +-0.5 (a quarter of the range)
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (r() * 2) + mean  # saturation: x0..2
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * (r() + 0.5) + mean  # contrast: x0.5..1.5
    return x.clamp(-1, 1)


def _translation(x, ratio: float = 0.125):
    n, _, h, w = x.shape
    sy, sx = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = torch.randint(-sy, sy + 1, (n,)).tolist()
    dx = torch.randint(-sx, sx + 1, (n,)).tolist()
    pad = torch.nn.functional.pad(x, (sx, sx, sy, sy))  # zeros outside: (N, C, H + 2sy, W + 2sx)
    return torch.stack([pad[i, :, sy - dy[i]: sy - dy[i] + h, sx - dx[i]: sx - dx[i] + w] for i in range(n)])


def _cutout(x, ratio: float = 0.5):
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = torch.randint(0, h + (1 - ch % 2), (n, 1, 1), device=x.device)
    cx = torch.randint(0, w + (1 - cw % 2), (n, 1, 1), device=x.device)
    ys = torch.arange(h, device=x.device)[None, :, None]
    xs = torch.arange(w, device=x.device)[None, None, :]
    inside = ((ys - cy + ch // 2) >= 0) & ((ys - cy + ch // 2) < ch) & ((xs - cx + cw // 2) >= 0) & ((xs - cx + cw // 2) < cw)
    return x * (~inside)[:, None].to(x.dtype)


_OPS = {"color": _color, "translation": _translation, "cutout": _cutout}
