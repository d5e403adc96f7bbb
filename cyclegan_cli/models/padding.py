"""The sizes a generator runs at, and the one padder: an image is padded at the bottom and right to
the network's size grid (reflected where the image is large enough, else its edge repeated) and the
output cropped back. The engine, the tiler and training-time evaluation all pad this way, so a
tiled, an untiled and an evaluated image see the same input."""

from __future__ import annotations

import math

import numpy as np


def size_grid(net) -> int:
    """Sides must be multiples of this (4 for the ResNet's two stride-2 stages, 2^downs for a U-Net)."""
    return getattr(net, "size_multiple", 4)


def min_side(net) -> int:
    """The smallest padded side the network runs on (ResNet needs >= 2 px after its two downsamplings)."""
    return max(size_grid(net), 8)


def padded_size(h: int, w: int, multiple: int, minimum: int = 0) -> tuple[int, int]:
    """The size an (h, w) image is padded to: multiples of ``multiple``, at least ``minimum``."""
    return max(math.ceil(h / multiple) * multiple, minimum), max(math.ceil(w / multiple) * multiple, minimum)


def can_reflect(h: int, w: int, th: int, tw: int) -> bool:
    """Reflection padding needs fewer padded rows/columns than the image has; else edges are repeated."""
    return th - h < h and tw - w < w


def pad_to_multiple(x, multiple: int, minimum: int = 0):
    """(N, C, H, W) tensor -> (padded tensor, H, W), H and W padded to multiples of ``multiple``."""
    import torch.nn.functional as F

    h, w = x.shape[-2:]
    th, tw = padded_size(h, w, multiple, minimum)
    if (th, tw) == (h, w):
        return x, h, w
    mode = "reflect" if can_reflect(h, w, th, tw) else "replicate"
    return F.pad(x, (0, tw - w, 0, th - h), mode=mode), h, w


def pad_array(rgb: np.ndarray, th: int, tw: int) -> np.ndarray:
    """(H, W, C) array padded to (th, tw) exactly as :func:`pad_to_multiple` pads a tensor."""
    h, w = rgb.shape[:2]
    if (th, tw) == (h, w):
        return rgb
    mode = "reflect" if can_reflect(h, w, th, tw) else "edge"
    return np.pad(rgb, ((0, th - h), (0, tw - w), (0, 0)), mode=mode)


def run_padded(net, x):
    """``net`` on (N, C, H, W) ``x`` of any size: padded to its grid, run, cropped back to (H, W)."""
    xp, h, w = pad_to_multiple(x, size_grid(net), min_side(net))
    return net(xp)[:, :, :h, :w]
