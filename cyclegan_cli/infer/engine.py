"""Runs one generator over uint8 image batches: normalisation, padding to the size the network
needs, precision, memory format, tiling for large images, and the torch or ONNX Runtime backend.
"""

from __future__ import annotations

import hashlib
import math
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from cyclegan_cli.device import autocast, autocast_dtype, memory_format, pick_device
from cyclegan_cli.errors import UsageError

BACKENDS = ("auto", "torch", "onnxruntime")


def pad_to_multiple(x: torch.Tensor, multiple: int, minimum: int = 0) -> tuple[torch.Tensor, int, int]:
    """Pad bottom/right so H and W are multiples of ``multiple`` (reflect when possible, else replicate)."""
    h, w = x.shape[-2:]
    th = max(math.ceil(h / multiple) * multiple, minimum)
    tw = max(math.ceil(w / multiple) * multiple, minimum)
    ph, pw = th - h, tw - w
    if ph == 0 and pw == 0:
        return x, h, w
    mode = "reflect" if (ph < h and pw < w) else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode), h, w


def min_side(net) -> int:
    """The smallest padded side the network runs on (ResNet needs >= 2 px after its two downsamplings)."""
    m = getattr(net, "size_multiple", 4)
    return max(m, 8)


class Translator:
    """One generator, ready to run. ``__call__`` maps (N, H, W, 3) uint8 -> (N, H, W, 3) uint8."""

    def __init__(self, net, config, device="auto", precision="auto", backend="auto",
                 channels_last=None, tile=None, tile_overlap=None, memory_budget_gb=None, cache_dir=None):
        self.device = device if isinstance(device, torch.device) else pick_device(device)
        self.dtype = autocast_dtype(self.device, precision)
        self.mem_format = memory_format(self.device, channels_last)
        self.net = net.to(self.device).eval()
        if self.mem_format == torch.channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        self.config = config
        norm = config.normalization
        self.mean = torch.tensor(norm["mean"], device=self.device).view(1, -1, 1, 1)
        self.std = torch.tensor(norm["std"], device=self.device).view(1, -1, 1, 1)
        self.multiple = getattr(net, "size_multiple", 4)
        self.minimum = min_side(net)
        self.tile = tile
        self.tile_overlap = tile_overlap
        if memory_budget_gb is None:
            memory_budget_gb = 1.0
        self.max_untiled_pixels = self._pixel_budget(memory_budget_gb)
        self.backend = self._choose_backend(backend, cache_dir)

    # ------------------------------------------------------------------ setup
    def _pixel_budget(self, gb: float) -> int:
        """Pixels that fit ``gb`` untiled: a few full-resolution activations of ``ngf`` channels live at once."""
        ngf = 64
        for m in self.net.modules():
            if isinstance(m, torch.nn.Conv2d):
                ngf = m.out_channels
                break
        bytes_per_pixel = 4 * ngf * 6
        return int(gb * 2**30 / bytes_per_pixel)

    def _choose_backend(self, backend: str, cache_dir):
        if backend not in BACKENDS:
            raise UsageError(f"unknown backend {backend!r}: use {', '.join(BACKENDS)}")
        if backend == "torch" or self.device.type != "cpu" or self.dtype is not None:
            if backend == "onnxruntime":
                raise UsageError("--backend onnxruntime runs on the CPU in fp32 only")
            return None
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            if backend == "onnxruntime":
                raise UsageError("--backend onnxruntime needs the onnx extra: pip install 'ganctl[onnx]'") from None
            return None
        return OnnxBackend(self.net, cache_dir)

    # ------------------------------------------------------------------ running
    def to_tensor(self, batch: np.ndarray) -> torch.Tensor:
        if not batch.flags.writeable:
            batch = batch.copy()
        x = torch.from_numpy(np.ascontiguousarray(batch)).to(self.device, non_blocking=True)  # (N, H, W, 3) uint8
        x = x.permute(0, 3, 1, 2).float().div_(255.0)  # (N, 3, H, W) in [0, 1]
        return (x - self.mean) / self.std

    def to_uint8(self, y: torch.Tensor) -> np.ndarray:
        y = y.float() * self.std + self.mean  # back to [0, 1]
        y = y.mul_(255.0).round_().clamp_(0, 255).to(torch.uint8)
        return y.permute(0, 2, 3, 1).contiguous().cpu().numpy()

    @torch.inference_mode()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised (N, 3, H, W) -> normalised output, padded and cropped back."""
        xp, h, w = pad_to_multiple(x, self.multiple, self.minimum)
        if self.backend is not None:
            y = torch.from_numpy(self.backend.run(xp.contiguous().numpy()))
        else:
            xp = xp.contiguous(memory_format=self.mem_format)
            with autocast(self.device, self.dtype):
                y = self.net(xp)
        return y[:, :, :h, :w]

    @property
    def default_batch_size(self) -> int:
        """On a CPU a batch is no faster per image than one image (measured: 0.62 vs 0.56 s for
        ResNet-9 at 256^2) and holds more memory; GPUs want batches."""
        return 1 if self.device.type == "cpu" else 8

    def needs_tiling(self, h: int, w: int) -> bool:
        if self.tile:
            return h > self.tile or w > self.tile
        return h * w > self.max_untiled_pixels

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self.to_uint8(self.forward(self.to_tensor(batch)))

    def run_image(self, rgb: np.ndarray) -> np.ndarray:
        """One (H, W, 3) uint8 image, tiled when it is large."""
        h, w = rgb.shape[:2]
        if self.needs_tiling(h, w):
            from cyclegan_cli.infer.tiling import receptive_radius, run_tiled

            tile = self.tile or max(self.multiple, int(math.sqrt(self.max_untiled_pixels)) // self.multiple * self.multiple)
            # each tile's outer `radius` pixels are wrong (reflection instead of neighbours): overlap past them
            overlap = self.tile_overlap or min(2 * receptive_radius(self.net) + 16, tile // 2)
            return run_tiled(self, rgb, tile, overlap)
        return self(rgb[None])[0]


class OnnxBackend:
    """The same network exported once to ONNX (cached by weight hash) and run by ONNX Runtime."""

    def __init__(self, net, cache_dir=None):
        import onnxruntime as ort

        path = self._export(net, cache_dir)
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    @staticmethod
    def _export(net, cache_dir) -> Path:
        from cyclegan_cli.zoo.paths import cache_home

        h = hashlib.sha256()
        for k, v in net.state_dict().items():
            h.update(k.encode())
            h.update(v.detach().cpu().contiguous().numpy().tobytes())
        h.update(type(net).__name__.encode())
        folder = Path(cache_dir) if cache_dir else cache_home() / "onnx"
        path = folder / f"{h.hexdigest()[:24]}.onnx"
        if not path.is_file():
            export_onnx(net, path)
        return path

    def run(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: x.astype(np.float32, copy=False)})[0]


def export_onnx(net, path: Path, opset: int = 17) -> Path:
    """Export with dynamic batch, height and width; written atomically."""
    import warnings

    from cyclegan_cli.data.images import tmp_name

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_name(path)
    multiple = max(getattr(net, "size_multiple", 4), 8)
    dummy = torch.zeros(1, 3, multiple * 4, multiple * 4)
    net = net.cpu().eval()
    try:
        with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(net, dummy, str(tmp), dynamo=False, opset_version=opset, input_names=["image"],
                              output_names=["translated"],
                              dynamic_axes={"image": {0: "n", 2: "h", 3: "w"}, "translated": {0: "n", 2: "h", 3: "w"}})
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path
