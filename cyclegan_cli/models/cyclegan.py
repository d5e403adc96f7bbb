"""CycleGAN / pix2pix networks, layer for layer as in the official PyTorch code.

Module indices match junyanz/pytorch-CycleGAN-and-pix2pix ``models/networks.py`` so that an
official state dict loads without renaming. For ResNet-9, ngf 64, 3->3 channels that is 48
tensors, 11,378,179 parameters, keys ``model.1.weight`` ... ``model.26.bias``.
"""

from __future__ import annotations

import functools

import torch
from torch import nn

from cyclegan_cli.errors import UsageError
from cyclegan_cli.models.registry import register


def norm_layer(kind: str):
    """The official ``get_norm_layer``: instance norm has no affine and no running statistics."""
    if kind == "instance":
        return functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False)
    if kind == "batch":
        return functools.partial(nn.BatchNorm2d, affine=True, track_running_stats=True)
    if kind == "none":
        return lambda channels: nn.Identity()
    raise ValueError(f"unknown norm {kind!r}: instance, batch or none")


class ResnetBlock(nn.Module):
    def __init__(self, dim: int, norm, use_dropout: bool, use_bias: bool):
        super().__init__()
        layers = [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=use_bias), norm(dim), nn.ReLU(True)]
        if use_dropout:
            layers.append(nn.Dropout(0.5))
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=use_bias), norm(dim)]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv_block(x)


UPSAMPLE = ("transpose", "resize")


def check_upsample(kind: str) -> None:
    """``--upsample``, for every generator that has the choice (CycleGAN's ResNet or U-Net,
    pix2pix's U-Net), checked by the trainers before anything is built and by the constructors."""
    if kind not in UPSAMPLE:
        raise UsageError(f"--upsample {kind!r}: {' or '.join(UPSAMPLE)}")


def _upsample_layers(kind: str, cin: int, cout: int, bias: bool) -> list:
    """``transpose``: the official stride-2 transposed conv. ``resize``: bilinear x2, then a 3x3 conv,
    the fix the official FAQ gives for the checkerboard a transposed conv draws (Odena et al. 2016)."""
    if kind == "transpose":
        return [nn.ConvTranspose2d(cin, cout, 3, stride=2, padding=1, output_padding=1, bias=bias)]
    return [nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False), nn.ReflectionPad2d(1),
            nn.Conv2d(cin, cout, 3, bias=bias)]


@register("resnet_generator")
class ResnetGenerator(nn.Module):
    """c7s1-ngf, two stride-2 downsamplings, ``n_blocks`` residual blocks, two upsamplings, c7s1-out.

    Spatial size must be a multiple of 4 (two stride-2 stages); ``size_multiple`` says so.
    """

    def __init__(self, input_nc=3, output_nc=3, ngf=64, n_blocks=9, norm="instance", use_dropout=False,
                 upsample="transpose", antialias=False):
        super().__init__()
        check_upsample(upsample)
        self.size_multiple = 4
        nl = norm_layer(norm)
        use_bias = norm == "instance"  # the official code: bias only when the norm has no affine shift
        model = [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, 7, bias=use_bias), nl(ngf), nn.ReLU(True)]
        for i in range(2):  # x: (N, ngf*2^i, H/2^i, W/2^i) -> halved
            mult = 2**i
            if antialias:  # the official CUT default: a stride-1 conv, then a blurred stride-2 subsampling
                model += [nn.Conv2d(ngf * mult, ngf * mult * 2, 3, padding=1, bias=use_bias),
                          nl(ngf * mult * 2), nn.ReLU(True), BlurDownsample(ngf * mult * 2)]
            else:
                model += [nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1, bias=use_bias),
                          nl(ngf * mult * 2), nn.ReLU(True)]
        for _ in range(n_blocks):  # (N, 4ngf, H/4, W/4)
            model.append(ResnetBlock(ngf * 4, nl, use_dropout, use_bias))
        for i in range(2):  # (N, ngf*2^(2-i), h, w) -> (N, ngf*2^(1-i), 2h, 2w)
            mult = 2 ** (2 - i)
            if antialias:  # the official CUT default: a blurred x2 up-sampling, then a stride-1 conv
                model += [BlurUpsample(ngf * mult), nn.Conv2d(ngf * mult, ngf * mult // 2, 3, padding=1, bias=use_bias)]
            else:
                model += _upsample_layers(upsample, ngf * mult, ngf * mult // 2, use_bias)
            model += [nl(ngf * mult // 2), nn.ReLU(True)]
        model += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7), nn.Tanh()]
        self.model = nn.Sequential(*model)

    def forward(self, x):
        return self.model(x)

    def encode(self, x, layers: list[int]) -> list[torch.Tensor]:
        """The outputs of the given layers of ``model`` (indices as in the official CUT
        ``nce_layers``: 0 is the padded input), computed no further than the last of them."""
        feats, wanted = [], set(layers)
        for i, layer in enumerate(self.model):
            x = layer(x)
            if i in wanted:
                feats.append(x)
            if i >= max(layers):
                break
        return feats


def _binomial(n: int) -> torch.Tensor:
    """The n x n binomial blur of the anti-aliased CUT layers (Zhang 2019), summing to 1."""
    import math

    a = torch.tensor([math.comb(n - 1, k) for k in range(n)], dtype=torch.float32)
    f = a[:, None] * a[None, :]
    return f / f.sum()


class BlurDownsample(nn.Module):
    """The official CUT ``Downsample``: reflect-pad 1, 3x3 binomial blur per channel, stride 2.
    ``filt`` is a buffer, as in official state dicts."""

    def __init__(self, channels: int):
        super().__init__()
        self.register_buffer("filt", _binomial(3)[None, None].repeat(channels, 1, 1, 1))
        self.pad = nn.ReflectionPad2d(1)

    def forward(self, x):  # (N, C, H, W) -> (N, C, ceil(H/2), ceil(W/2))
        return nn.functional.conv2d(self.pad(x), self.filt, stride=2, groups=x.shape[1])


class BlurUpsample(nn.Module):
    """The official CUT ``Upsample``: replicate-pad 1, a 4x4 binomial transposed blur, stride 2,
    cropped to exactly twice the size."""

    def __init__(self, channels: int):
        super().__init__()
        self.register_buffer("filt", (_binomial(4) * 4)[None, None].repeat(channels, 1, 1, 1))
        self.pad = nn.ReplicationPad2d(1)

    def forward(self, x):  # (N, C, H, W) -> (N, C, 2H, 2W)
        y = nn.functional.conv_transpose2d(self.pad(x), self.filt, stride=2, padding=2, groups=x.shape[1])
        return y[:, :, 1:-1, 1:-1]


def _unet_up(kind: str, cin: int, cout: int, bias: bool) -> nn.Module:
    """The official 4x4 stride-2 transposed conv, or (``resize``) bilinear x2 and a 3x3 conv, kept
    in one module so that the block's other indices stay the official ones."""
    if kind == "transpose":
        return nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1, bias=bias)
    return nn.Sequential(*_upsample_layers(kind, cin, cout, bias))


class UnetSkipBlock(nn.Module):
    """X -> [down -> submodule -> up] concatenated with X (except the outermost block)."""

    def __init__(self, outer_nc, inner_nc, input_nc=None, submodule=None, outermost=False,
                 innermost=False, norm=None, use_dropout=False, use_bias=True, upsample="transpose"):
        super().__init__()
        self.outermost = outermost
        input_nc = outer_nc if input_nc is None else input_nc
        downconv = nn.Conv2d(input_nc, inner_nc, 4, stride=2, padding=1, bias=use_bias)
        downrelu, uprelu = nn.LeakyReLU(0.2, True), nn.ReLU(True)
        if outermost:
            upconv = _unet_up(upsample, inner_nc * 2, outer_nc, True)
            layers = [downconv, submodule, uprelu, upconv, nn.Tanh()]
        elif innermost:
            upconv = _unet_up(upsample, inner_nc, outer_nc, use_bias)
            layers = [downrelu, downconv, uprelu, upconv, norm(outer_nc)]
        else:
            upconv = _unet_up(upsample, inner_nc * 2, outer_nc, use_bias)
            layers = [downrelu, downconv, norm(inner_nc), submodule, uprelu, upconv, norm(outer_nc)]
            if use_dropout:
                layers.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)


@register("unet_generator")
class UnetGenerator(nn.Module):
    """U-Net with ``num_downs`` stride-2 stages: 7 for 128x128 (``unet_128``), 8 for 256x256 (``unet_256``).
    ``upsample`` as for the ResNet generator: ``transpose`` (official) or ``resize`` (no checkerboard)."""

    def __init__(self, input_nc=3, output_nc=3, num_downs=8, ngf=64, norm="batch", use_dropout=False,
                 upsample="transpose"):
        super().__init__()
        check_upsample(upsample)
        self.size_multiple = 2**num_downs
        nl = norm_layer(norm)
        kw = dict(norm=nl, use_bias=norm == "instance", upsample=upsample)
        block = UnetSkipBlock(ngf * 8, ngf * 8, innermost=True, **kw)
        for _ in range(num_downs - 5):
            block = UnetSkipBlock(ngf * 8, ngf * 8, submodule=block, use_dropout=use_dropout, **kw)
        block = UnetSkipBlock(ngf * 4, ngf * 8, submodule=block, **kw)
        block = UnetSkipBlock(ngf * 2, ngf * 4, submodule=block, **kw)
        block = UnetSkipBlock(ngf, ngf * 2, submodule=block, **kw)
        self.model = UnetSkipBlock(output_nc, ngf, input_nc=input_nc, submodule=block, outermost=True, **kw)

    def forward(self, x):
        return self.model(x)


@register("patch_discriminator")
class PatchDiscriminator(nn.Module):
    """PatchGAN: ``n_layers`` 3 gives the 70x70 receptive field of the CycleGAN paper."""

    def __init__(self, input_nc=3, ndf=64, n_layers=3, norm="instance"):
        super().__init__()
        nl = norm_layer(norm)
        use_bias = norm == "instance"
        seq = [nn.Conv2d(input_nc, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers):
            prev, mult = mult, min(2**n, 8)
            seq += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride=2, padding=1, bias=use_bias),
                    nl(ndf * mult), nn.LeakyReLU(0.2, True)]
        prev, mult = mult, min(2**n_layers, 8)
        seq += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride=1, padding=1, bias=use_bias),
                nl(ndf * mult), nn.LeakyReLU(0.2, True)]
        seq.append(nn.Conv2d(ndf * mult, 1, 4, stride=1, padding=1))  # (N, 1, H', W') patch logits
        self.model = nn.Sequential(*seq)

    def forward(self, x):
        return self.model(x)


INITS = ("normal", "xavier")


def init_weights(net: nn.Module, gain: float = 0.02, kind: str = "normal") -> None:
    """The official ``init_weights``: conv and linear weights ~ N(0, ``gain``) (``init_type='normal'``,
    CycleGAN's and pix2pix's) or xavier_normal with ``gain`` (``'xavier'``, CUT's), biases 0; a batch
    norm's scale ~ N(1, ``gain``) and shift 0 either way."""
    if kind not in INITS:
        raise ValueError(f"unknown init {kind!r}: {', '.join(INITS)}")
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            if kind == "xavier":
                nn.init.xavier_normal_(m.weight, gain=gain)
            else:
                nn.init.normal_(m.weight, 0.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)


class PerImageNorm(nn.InstanceNorm2d):
    """A BatchNorm layer as the official ``test.py`` runs it (the model is never put in eval mode):
    normalised with the statistics of the image itself, never the stored running statistics,
    and one image at a time whatever the batch, so batching never changes an output. Being an
    InstanceNorm with the batch norm's scale and shift, it tiles with frozen statistics and
    exports to ONNX like one."""

    @classmethod
    def from_batch_norm(cls, bn: nn.BatchNorm2d) -> "PerImageNorm":
        m = cls(bn.num_features, eps=bn.eps, affine=bn.affine, track_running_stats=False)
        if bn.affine:
            m.weight.data.copy_(bn.weight.data)
            m.bias.data.copy_(bn.bias.data)
        return m.to(bn.weight.device if bn.affine else "cpu")


def for_translation(net: nn.Module, dropout: bool = False) -> nn.Module:
    """A copy of a translation generator set up for inference: batch norm with per-image statistics,
    as the official ``test.py`` runs it (see :class:`PerImageNorm`); dropout off (deterministic: our
    choice, the official ``test.py`` keeps it on unless ``--eval``) unless ``dropout``, then on as in
    the paper's stochastic sampling."""
    import copy

    if not any(isinstance(m, (nn.BatchNorm2d, nn.Dropout)) for m in net.modules()):
        return net.eval()
    net = copy.deepcopy(net).eval()
    for parent in list(net.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.BatchNorm2d):
                setattr(parent, name, PerImageNorm.from_batch_norm(child))
            elif isinstance(child, nn.Dropout) and dropout:
                child.train()
    return net
