"""Large images in overlapping tiles with blended seams, peak memory bounded by the tile size.

Instance normalisation makes a tile's output depend on the statistics of the whole input. Running
tiles with their own statistics gives visible seams, so we first run the network once on the whole
image (downscaled only as far as the memory budget needs), record every InstanceNorm layer's mean
and variance, and run all tiles with those frozen statistics. With the statistics of the full-size image and tiles
on the network's size grid, the blended result matches the untiled output.
"""

from __future__ import annotations

import contextlib
import math

import numpy as np
import torch
from torch import nn

from cyclegan_cli.models.cyclegan import BlurDownsample, BlurUpsample
from cyclegan_cli.models.padding import pad_array, size_grid

# When an image must be tiled anyway, tiles of about this many pixels: bigger tiles would not be
# faster per pixel, and peak memory stays near 2 GB at any image size.
TILED_WORKING_PIXELS = 1_500_000


@contextlib.contextmanager
def frozen_instance_norm(net: nn.Module, stats: list | None = None):
    """Inside: with ``stats=None`` record each InstanceNorm's per-channel stats into the yielded list;
    with ``stats`` given, normalise with those instead of each input's own."""
    norms = [m for m in net.modules() if isinstance(m, nn.InstanceNorm2d)]
    record = stats is None
    # by the layer's place among the net's modules, whatever order the forward pass runs them in
    store = [None] * len(norms) if record else stats
    originals = [m.forward for m in norms]

    def make(i, m):
        def fwd(x):
            if record:
                xf = x.float()
                var, mean = torch.var_mean(xf, dim=(2, 3), unbiased=False, keepdim=True)  # (N, C, 1, 1)
                store[i] = (mean.mean(0, keepdim=True), var.mean(0, keepdim=True))
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
    """1-D blending weights for a tile of ``n`` pixels.

    A tile's pixels near an inner edge were computed from reflection padding instead of the real
    neighbours, so the outer quarter of each overlap gets weight ~0 and the rest ramps up linearly;
    the neighbouring tile's weights are the mirror image, so the two always sum to one.
    """
    w = np.ones(n, np.float32)
    if overlap <= 0:
        return w
    margin = max(overlap // 4, (overlap - 16) // 2)  # = receptive radius when overlap = 2 * radius + 16
    r = np.clip((np.arange(overlap, dtype=np.float32) + 0.5 - margin) / max(overlap - 2 * margin, 1), 0, 1)
    r = np.maximum(r, 1e-6)  # never exactly zero: an image edge pixel covered by one tile keeps weight
    if start:
        w[:overlap] = np.minimum(w[:overlap], r)
    if end:
        w[-overlap:] = np.minimum(w[-overlap:], r[::-1])
    return w


def _starts(total: int, tile: int, step: int) -> list[int]:
    """Tile origins along one axis. ``total``, ``tile`` and ``step`` are multiples of the network's
    size grid, so every origin is too: each tile's stride-2 layers sample at the same phase as the
    whole image's would, and the last tile ends exactly at the (padded) edge."""
    if total <= tile:
        return [0]
    return sorted(set(range(0, total - tile, step)) | {total - tile})


def _record_stats(translator, rgb: np.ndarray) -> list | None:
    """Every InstanceNorm layer's statistics for the whole image: at full size when it fits the
    memory budget (then tiles reproduce the untiled output), else from the image scaled down to
    about the tile working size."""
    net = translator.net
    if not any(isinstance(m, nn.InstanceNorm2d) for m in net.modules()):
        return None
    h, w = rgb.shape[:2]
    limit = translator.max_untiled_pixels if h * w <= translator.max_untiled_pixels else TILED_WORKING_PIXELS
    if h * w > limit:
        from PIL import Image

        g, s = translator.multiple, (limit / (h * w)) ** 0.5
        sh, sw = max(g, round(h * s / g) * g), max(g, round(w * s / g) * g)
        rgb = np.asarray(Image.fromarray(rgb).resize((sw, sh), Image.BILINEAR))
    with frozen_instance_norm(net) as stats:
        translator.forward(translator.to_tensor(rgb[None]), use_backend=False)
    return stats


def run_tiled(translator, rgb: np.ndarray, tile: int, overlap: int) -> np.ndarray:
    """(H, W, 3) uint8 -> (H, W, 3) uint8, never running more than ``tile`` x ``tile`` pixels at once.

    1. pad to the size grid as the untiled path does; tiles and overlaps are grid multiples;
    2. record normalisation statistics of the whole image, then run every tile with them frozen
       (on the torch module, whatever the backend: the ONNX graph has the statistics fused in);
    3. blend overlaps, giving ~0 weight to each tile's outer ``radius`` pixels, which saw
       reflection padding instead of their real neighbours.
    """
    h, w = rgb.shape[:2]
    rgb = pad_array(rgb, *translator.padded(h, w))  # as the untiled path pads its tensor
    H, W = rgb.shape[:2]
    step = tile - overlap
    stats = _record_stats(translator, rgb)
    net = translator.net
    # Tiles are run one row band at a time; only the band's accumulators are float, and rows that no
    # later tile touches are finished into the uint8 output at once (memory ~ tile x width, not H x W).
    out = np.empty((H, W, 3), np.uint8)
    ys, xs = _starts(H, tile, step), _starts(W, tile, step)
    band_top = 0
    acc = np.zeros((min(tile, H), W, 3), np.float32)
    weight = np.zeros((min(tile, H), W, 1), np.float32)
    ctx = frozen_instance_norm(net, stats) if stats is not None else contextlib.nullcontext()
    with ctx:
        for y0 in ys:
            if y0 > band_top:  # rows [band_top, y0) are complete: finish them, slide the band down
                done = y0 - band_top
                out[band_top:y0] = _finish(acc[:done], weight[:done])
                acc = np.concatenate([acc[done:], np.zeros((done, W, 3), np.float32)])[:min(tile, H - y0)]
                weight = np.concatenate([weight[done:], np.zeros((done, W, 1), np.float32)])[:min(tile, H - y0)]
                band_top = y0
            for x0 in xs:
                th, tw = min(tile, H - y0), min(tile, W - x0)
                x = translator.to_tensor(np.ascontiguousarray(rgb[y0:y0 + th, x0:x0 + tw])[None])
                y = translator.forward(x, use_backend=False).float() * translator.std + translator.mean  # [0, 1]
                y = y[0].permute(1, 2, 0).cpu().numpy() * 255.0
                wy = _ramp(th, min(overlap, th // 2), y0 > 0, y0 + th < H)
                wx = _ramp(tw, min(overlap, tw // 2), x0 > 0, x0 + tw < W)
                wt = (wy[:, None] * wx[None, :])[:, :, None]
                acc[:th, x0:x0 + tw] += y * wt
                weight[:th, x0:x0 + tw] += wt
    out[band_top:] = _finish(acc[:H - band_top], weight[:H - band_top])
    return out[:h, :w]


def _finish(acc: np.ndarray, weight: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(acc / np.maximum(weight, 1e-8)), 0, 255).astype(np.uint8)


def receptive_radius(net: nn.Module) -> int:
    """How far (in input pixels) an output pixel sees: the width a tile edge is wrong by.

    The input interval that one output pixel depends on is followed back through every layer that
    moves pixels, in the order a forward pass runs them, for each sampling phase of the size grid:
    exact for a chain of layers, which is what each ResNet block's and U-Net level's longest path is
    (the residual and skip branches see less far). Strides count whatever layer carries them: convs,
    transposed convs, up-sampling, and the blurred down/up-sampling of anti-aliased CUT generators.
    """
    layers = _layers_in_order(net)
    grid = size_grid(net)
    reach = 0
    for axis in (0, 1):
        for phase in range(grid):
            lo = hi = o = phase  # away from the image edges: the pads only shift
            for m in reversed(layers):
                lo, hi = _seen_from(m, lo, hi, axis)
            reach = max(reach, o - lo, hi - o)
    return reach


def _layers_in_order(net: nn.Module) -> list[nn.Module]:
    """The leaf modules (a blurred down/up-sampling counts as one) in the order ``net`` runs them,
    read from a symbolic trace (torch.fx: no tensors, a few ms). Registration order where the trace
    fails; the two differ where a model registers its modules in another order than it runs them."""
    import torch.fx

    def unit(m: nn.Module) -> bool:
        return isinstance(m, (BlurDownsample, BlurUpsample)) or not any(m.children())

    class Tracer(torch.fx.Tracer):
        def is_leaf_module(self, m, qualified_name):
            return unit(m)

    try:
        modules = dict(net.named_modules())
        return [modules[n.target] for n in Tracer().trace(net).nodes if n.op == "call_module"]
    except Exception:  # a forward fx cannot follow (control flow on a tensor's values, say)
        inside = {id(c) for m in net.modules() if isinstance(m, (BlurDownsample, BlurUpsample))
                  for c in m.modules() if c is not m}
        return [m for m in net.modules() if unit(m) and id(m) not in inside]


def _seen_from(m: nn.Module, lo: int, hi: int, axis: int) -> tuple[int, int]:
    """The interval of ``m``'s input (along ``axis``: 0 rows, 1 columns) that its outputs
    ``lo..hi`` depend on, away from the image edges."""
    def pair(v):
        return v if isinstance(v, tuple) else (v, v)

    if isinstance(m, BlurDownsample):  # pad 1, blur k x k at stride 2 (models.cyclegan)
        return _conv_back(lo, hi, m.filt.shape[-1], 2, 1, 1)
    if isinstance(m, BlurUpsample):  # pad 1, transposed k x k blur at stride 2 with padding 2, crop 1
        lo, hi = _transposed_back(lo + 1, hi + 1, m.filt.shape[-1], 2, 2, 1)
        return lo - 1, hi - 1
    if isinstance(m, nn.ConvTranspose2d):
        return _transposed_back(lo, hi, m.kernel_size[axis], m.stride[axis], m.padding[axis], m.dilation[axis])
    if isinstance(m, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
        k, s, d = pair(m.kernel_size)[axis], pair(m.stride)[axis], pair(getattr(m, "dilation", 1))[axis]
        p = m.padding
        if isinstance(p, str):  # "same" (stride 1) or "valid"
            p = (k - 1) * d // 2 if p == "same" else 0
        return _conv_back(lo, hi, k, s, pair(p)[axis], d)
    if isinstance(m, (nn.ReflectionPad2d, nn.ReplicationPad2d, nn.ZeroPad2d, nn.ConstantPad2d)):
        before = m.padding[2 if axis == 0 else 0]  # (left, right, top, bottom)
        return lo - before, hi - before
    if isinstance(m, nn.PixelUnshuffle):  # output i gathers inputs i*r .. i*r + r - 1
        r = m.downscale_factor
        return lo * r, hi * r + r - 1
    if isinstance(m, nn.PixelShuffle):  # output i comes from input i // r
        r = m.upscale_factor
        return lo // r, hi // r
    if isinstance(m, nn.Upsample):
        f = float(pair(m.scale_factor)[axis]) if m.scale_factor is not None else 2.0  # (a fixed size: as x2)
        if m.mode == "nearest":
            return math.floor(lo / f), math.floor(hi / f)
        taps = 2 if m.mode == "bicubic" else 1  # source pixels on each side of the sampling point
        return (math.floor((lo + 0.5) / f - 0.5) - taps + 1 - (1 if m.align_corners else 0),
                math.floor((hi + 0.5) / f - 0.5) + taps + (1 if m.align_corners else 0))
    return lo, hi  # pointwise: activations, normalisation (frozen statistics when tiled), dropout


def _conv_back(lo: int, hi: int, k: int, s: int, p: int, d: int) -> tuple[int, int]:
    """Output i of a convolution reads inputs i*s - p .. i*s - p + (k-1)*d."""
    return lo * s - p, hi * s - p + (k - 1) * d


def _transposed_back(lo: int, hi: int, k: int, s: int, p: int, d: int) -> tuple[int, int]:
    """Input i of a transposed convolution writes outputs i*s - p .. i*s - p + (k-1)*d."""
    return -(-(lo + p - (k - 1) * d) // s), (hi + p) // s
