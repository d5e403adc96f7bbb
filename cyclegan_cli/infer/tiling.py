"""Large images in overlapping tiles with blended seams, peak memory bounded by the tile size.

Instance normalisation makes a tile's output depend on the statistics of the whole input. Running
tiles with their own statistics gives visible seams, so we first run the network once on the image
downscaled to one tile, record every InstanceNorm layer's mean and variance, and run all tiles
with those frozen statistics. On smooth content this matches the untiled output closely.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch
from torch import nn


@contextlib.contextmanager
def frozen_instance_norm(net: nn.Module, stats: list | None = None):
    """Inside: with ``stats=None`` record each InstanceNorm's per-channel stats into the yielded list;
    with ``stats`` given, normalise with those instead of each input's own."""
    norms = [m for m in net.modules() if isinstance(m, nn.InstanceNorm2d)]
    record = stats is None
    store = [] if record else stats
    originals = [m.forward for m in norms]

    def make(i, m):
        def fwd(x):
            if record:
                xf = x.float()
                var, mean = torch.var_mean(xf, dim=(2, 3), unbiased=False, keepdim=True)  # (N, C, 1, 1)
                store.append((mean.mean(0, keepdim=True), var.mean(0, keepdim=True)))
                return originals[i](x)
            mean, var = store[i]
            y = (x.float() - mean) / torch.sqrt(var + m.eps)
            if m.affine:
                y = y * m.weight.view(1, -1, 1, 1) + m.bias.view(1, -1, 1, 1)
            return y.to(x.dtype)
        return fwd

    for i, m in enumerate(norms):
        m.forward = make(i, m)
    try:
        yield store
    finally:
        for m, f in zip(norms, originals):
            m.forward = f


def _ramp(n: int, overlap: int, start: bool, end: bool) -> np.ndarray:
    """1-D blending weights: linear ramps over ``overlap`` pixels at inner edges."""
    w = np.ones(n, np.float32)
    r = np.linspace(0, 1, overlap + 2, dtype=np.float32)[1:-1] if overlap > 0 else np.zeros(0, np.float32)
    if start and overlap:
        w[:overlap] = r
    if end and overlap:
        w[-overlap:] = r[::-1]
    return w


def _starts(total: int, tile: int, step: int) -> list[int]:
    if total <= tile:
        return [0]
    starts = list(range(0, total - tile, step))
    starts.append(total - tile)
    return sorted(set(starts))


def run_tiled(translator, rgb: np.ndarray, tile: int, overlap: int = 32) -> np.ndarray:
    """(H, W, 3) uint8 -> (H, W, 3) uint8, never running more than ``tile``x``tile`` pixels at once."""
    h, w = rgb.shape[:2]
    tile = max(tile, 2 * overlap + translator.multiple)
    step = tile - overlap
    net = translator.net if translator.backend is None else None
    stats = None
    if net is not None and any(isinstance(m, nn.InstanceNorm2d) for m in net.modules()):
        scale = min(1.0, tile / max(h, w))
        small_h, small_w = max(8, round(h * scale)), max(8, round(w * scale))
        from PIL import Image

        small = np.asarray(Image.fromarray(rgb).resize((small_w, small_h), Image.BILINEAR))
        with frozen_instance_norm(net) as stats:
            translator.forward(translator.to_tensor(small[None]))
    acc = np.zeros((h, w, 3), np.float32)
    weight = np.zeros((h, w, 1), np.float32)
    ys, xs = _starts(h, tile, step), _starts(w, tile, step)
    ctx = frozen_instance_norm(net, stats) if stats is not None else contextlib.nullcontext()
    with ctx:
        for y0 in ys:
            for x0 in xs:
                th, tw = min(tile, h - y0), min(tile, w - x0)
                patch = rgb[y0:y0 + th, x0:x0 + tw]
                x = translator.to_tensor(np.ascontiguousarray(patch)[None])
                out = translator.forward(x).float() * translator.std + translator.mean  # [0, 1]
                out = out[0].permute(1, 2, 0).cpu().numpy() * 255.0
                wy = _ramp(th, min(overlap, th // 2), y0 > 0, y0 + th < h)
                wx = _ramp(tw, min(overlap, tw // 2), x0 > 0, x0 + tw < w)
                wt = (wy[:, None] * wx[None, :])[:, :, None]
                acc[y0:y0 + th, x0:x0 + tw] += out * wt
                weight[y0:y0 + th, x0:x0 + tw] += wt
    acc /= np.maximum(weight, 1e-8)
    return np.clip(np.rint(acc), 0, 255).astype(np.uint8)


def tile_count(h: int, w: int, tile: int, overlap: int) -> int:
    step = tile - overlap
    return len(_starts(h, tile, step)) * len(_starts(w, tile, step))

