"""The distilled student: a ResNet generator shaped by measured CPU time (``ganctl distill``).

Like CycleGAN's ResNet generator (c7s1, stride-2 down-samplings, residual blocks, up-samplings,
c7s1 out, tanh), with knobs the distiller times on the user's CPU:

- ``ngf``: the width of the first layer (doubled at each down-sampling);
- ``n_blocks``: residual blocks at the lowest resolution;
- ``n_down``: down-samplings (2 as CycleGAN; 3 puts the blocks on 1/64 of the pixels);
- ``conv``: ``dense`` 3x3 convolutions, or ``depthwise`` (a 3x3 per channel, then a 1x1): fewer
  MACs, but oneDNN often runs them no faster (mit-han-lab/gan-compression issue #62);
- ``entry``: ``conv`` (CycleGAN's 7x7 convolutions at full resolution, in and out) or ``unshuffle``
  (each 2x2 block of pixels becomes 12 channels at half resolution, and back by a pixel shuffle at
  the end: no layer runs at full resolution, where a narrow network spends most of its time in
  memory traffic, not arithmetic; docs/benchmarks.md has the figures);
- ``up``: ``bilinear`` (x2, then a 3x3 conv: no checkerboard) or ``transpose`` (a 3x3 transposed
  convolution of stride 2, as the official CycleGAN generator up-samples; pix2pix's U-Net uses 4x4
  ones). A student copies its teacher's kind: a transposed convolution does a quarter of the
  arithmetic of resize-then-convolve (thop's count, which ``runs show`` prints, does not show it),
  and can draw the 2-pixel grid such a teacher leaves in its output, which a bilinear student
  cannot (the student's job is the teacher's output, grid included).

The blocks are listed in ``blocks`` so the distiller can read their outputs for its feature term.
"""

from __future__ import annotations

from torch import nn

from cyclegan_cli.models.cyclegan import norm_layer
from cyclegan_cli.models.registry import register

CONVS = ("dense", "depthwise")
ENTRIES = ("conv", "unshuffle")
UPS = ("bilinear", "transpose")


def _conv3(cin: int, cout: int, conv: str, bias: bool, stride: int = 1) -> list:
    """A 3x3 convolution, reflect-padded: one dense conv, or depthwise 3x3 + pointwise 1x1."""
    if conv == "dense":
        return [nn.ReflectionPad2d(1), nn.Conv2d(cin, cout, 3, stride=stride, bias=bias)]
    return [nn.ReflectionPad2d(1), nn.Conv2d(cin, cin, 3, stride=stride, groups=cin, bias=bias),
            nn.Conv2d(cin, cout, 1, bias=bias)]


class StudentBlock(nn.Module):
    """x + conv-norm-relu-conv-norm (x), with dense or depthwise-separable 3x3 convolutions."""

    def __init__(self, dim: int, conv: str, norm, bias: bool):
        super().__init__()
        self.conv_block = nn.Sequential(*_conv3(dim, dim, conv, bias), norm(dim), nn.ReLU(True),
                                        *_conv3(dim, dim, conv, bias), norm(dim))

    def forward(self, x):
        return x + self.conv_block(x)


@register("student_generator")
class StudentGenerator(nn.Module):
    def __init__(self, input_nc=3, output_nc=3, ngf=16, n_blocks=4, n_down=2, conv="dense", norm="instance",
                 entry="conv", up="bilinear"):
        super().__init__()
        if conv not in CONVS:
            raise ValueError(f"conv {conv!r}: dense or depthwise")
        if entry not in ENTRIES:
            raise ValueError(f"entry {entry!r}: conv or unshuffle")
        if up not in UPS:
            raise ValueError(f"up {up!r}: bilinear or transpose")
        if n_down < 1:
            raise ValueError(f"n_down {n_down}: at least 1")
        shuffle = entry == "unshuffle"
        self.size_multiple = 2 ** (n_down + shuffle)
        nl = norm_layer(norm)
        bias = norm == "instance"
        if shuffle:  # (N, 3, H, W) -> (N, 12, H/2, W/2) -> (N, ngf, H/2, W/2)
            layers = [nn.PixelUnshuffle(2), *_conv3(input_nc * 4, ngf, "dense", bias), nl(ngf), nn.ReLU(True)]
        else:
            layers = [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, 7, bias=bias), nl(ngf), nn.ReLU(True)]
        for i in range(n_down):  # (N, ngf*2^i, H/2^i, W/2^i) -> (N, ngf*2^(i+1), H/2^(i+1), W/2^(i+1))
            c = ngf * 2 ** i
            layers += [*_conv3(c, 2 * c, "dense" if i == 0 else conv, bias, stride=2), nl(2 * c), nn.ReLU(True)]
        dim = ngf * 2 ** n_down
        self.head = nn.Sequential(*layers)  # registered in the order the forward pass runs them
        self.blocks = nn.ModuleList(StudentBlock(dim, conv, nl, bias) for _ in range(n_blocks))
        tail = []
        for i in range(n_down):  # (N, c, h, w) -> (N, c/2, 2h, 2w)
            c = dim // 2 ** i
            if up == "transpose":  # CycleGAN's: kernel 3, stride 2, padding 1, output padding 1
                tail += [nn.ConvTranspose2d(c, c // 2, 3, stride=2, padding=1, output_padding=1, bias=bias)]
            else:
                tail += [nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                         *_conv3(c, c // 2, "dense" if i == n_down - 1 else conv, bias)]
            tail += [nl(c // 2), nn.ReLU(True)]
        if shuffle:  # (N, ngf, H/2, W/2) -> (N, 4 * out, H/2, W/2) -> (N, out, H, W)
            tail += [*_conv3(ngf, output_nc * 4, "dense", True), nn.PixelShuffle(2), nn.Tanh()]
        else:
            tail += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7), nn.Tanh()]
        self.tail = nn.Sequential(*tail)

    def forward(self, x):
        x = self.head(x)
        for block in self.blocks:
            x = block(x)
        return self.tail(x)


@register("feature_adaptors")
class FeatureAdaptors(nn.Module):
    """1x1 convolutions from the student's feature widths to the teacher's, one per matched pair of
    layers (GAN Compression's distillation adaptors); used in training only."""

    def __init__(self, widths=((64, 128),)):
        super().__init__()
        self.maps = nn.ModuleList(nn.Conv2d(cin, cout, 1) for cin, cout in widths)

    def forward(self, feats):
        return [m(f) for m, f in zip(self.maps, feats)]
