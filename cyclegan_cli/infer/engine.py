"""Runs one generator over uint8 image batches: normalisation, padding to the size the network
needs, precision, memory format, tiling for large images, and the torch or ONNX Runtime backend.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from cyclegan_cli.device import autocast, autocast_dtype, fast_precision, memory_format, pick_device
from cyclegan_cli.errors import UsageError
from cyclegan_cli.infer.backends import OnnxBackend, export_path, first_missing
from cyclegan_cli.infer.tiling import TILED_WORKING_PIXELS, receptive_radius, run_tiled
from cyclegan_cli.models.padding import min_side, pad_to_multiple, padded_size, size_grid

BACKENDS = ("auto", "torch", "onnxruntime")


# Peak memory of one fp32 forward pass per input pixel, measured on the CPU with inference_mode:
# ResNet-9 ngf 64 peaks at 0.9 kB/px at 1920x1080 and 1.1 kB/px at 960x540; ResNet-9 ngf 32 with
# resize up-sampling at 0.65 kB/px. 17 bytes per first-layer filter plus the uint8/float
# input and output buffers covers all three.
def bytes_per_pixel(net) -> int:
    ngf = 64
    for m in net.modules():
        if isinstance(m, torch.nn.Conv2d):
            ngf = m.out_channels
            break
    return 17 * ngf + 48



def round_to_grid(n: int, grid: int) -> int:
    return max(grid, int(round(n / grid)) * grid)


class Translator:
    """One generator, ready to run. ``__call__`` maps (N, H, W, 3) uint8 -> (N, H, W, 3) uint8.

    Images run whole whenever they fit the memory budget (``max_memory`` GiB, default: derived
    from the device's free memory); larger ones, or all of them with ``tile``, run in tiles.
    """

    def __init__(self, net, config, device="auto", precision="auto", backend="auto",
                 channels_last=None, tile=None, max_memory=None, cache_dir=None, dropout=False,
                 compile=False, on_notice=None):
        from cyclegan_cli.device import available_memory
        from cyclegan_cli.models.cyclegan import for_translation

        net = for_translation(net, dropout)  # batch norm: per-image statistics, as the official test.py
        self.dropout = dropout
        self.device = device if isinstance(device, torch.device) else pick_device(device)
        self.notes: list[str] = []  # what was decided for the user (shown with -v)
        if precision == "fast":
            if self.device.type == "cpu" and not dropout:
                precision, why = measure_fast(net, config, cache_dir, onnx=backend != "torch")
            else:
                precision, why = fast_precision(self.device, have_onnxruntime=False if dropout else None)
            self.notes.append(f"--precision fast: {precision} ({why})")
        if precision == "int8":
            if self.device.type != "cpu":
                raise UsageError("--precision int8 runs on the CPU; on a GPU use bf16 or fp16 (or fast)")
            if backend == "torch" or dropout:
                raise UsageError("--precision int8 runs through ONNX Runtime: not with --backend torch or --dropout")
        self.precision = precision if precision != "auto" else None
        self.dtype = autocast_dtype(self.device, "fp32" if precision == "int8" else precision)  # int8: a backend of its own
        if self.precision is None:
            self.precision = {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.dtype]
        self.mem_format = memory_format(self.device, channels_last)
        self.net = net.to(self.device).eval()
        if self.mem_format == torch.channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        self.config = config
        norm = config.normalization
        self.mean = torch.tensor(norm["mean"], device=self.device).view(1, -1, 1, 1)
        self.std = torch.tensor(norm["std"], device=self.device).view(1, -1, 1, 1)
        self.multiple = size_grid(net)
        self.minimum = min_side(net)
        budget = max_memory * 2**30 if max_memory else available_memory(self.device)
        self.memory_budget = int(budget)
        self.max_untiled_pixels = max(self.minimum**2, self.memory_budget // bytes_per_pixel(self.net))
        # tiles overlap by twice the receptive radius (the band each tile edge gets wrong) + a blend zone
        self.radius = receptive_radius(self.net)
        self.overlap = -(-(2 * self.radius + 16) // self.multiple) * self.multiple
        self.min_tile = 2 * self.overlap + self.multiple
        self.tile = None
        if tile:
            t = round_to_grid(tile, self.multiple)
            if t < self.min_tile:
                raise UsageError(f"--tile {tile}: this model needs tiles of at least {self.min_tile} px "
                                 f"(its receptive radius is {self.radius} px)")
            if t != tile:
                self.notes.append(f"--tile {tile} rounded to {t}, the network's size grid being {self.multiple} px")
            self.tile = t
        self.backend = self._choose_backend(backend, cache_dir, on_notice)
        # JPEGs decoded in batches on the GPU (nvJPEG) rather than by Pillow on the CPU
        self.decode_on_device = self.device.type == "cuda"
        if compile:  # on a GPU, CUDA graphs per input shape ("reduce-overhead"); each new size compiles again
            if self.backend is not None:
                self.notes.append("--compile: not used, the ONNX Runtime backend runs this job (--backend torch to compile)")
            else:
                mode = "reduce-overhead" if self.device.type == "cuda" else "default"
                self.net = torch.compile(self.net, mode=mode, dynamic=False)
                self.notes.append(f"--compile: torch.compile mode {mode}; the first image of each size compiles")
        if self.precision == "int8":
            self.notes.append(self.backend.origin + "; images that need tiles run in fp32")

    # ------------------------------------------------------------------ setup
    def _choose_backend(self, backend: str, cache_dir, on_notice=None):
        if backend not in BACKENDS:
            raise UsageError(f"unknown backend {backend!r}: use {', '.join(BACKENDS)}")
        if self.precision == "int8":
            if first_missing():
                raise UsageError("--precision int8 needs the onnx extra: pip install 'ganctl[onnx]'")
            from cyclegan_cli.infer.quantize import Int8Backend

            return Int8Backend(OnnxBackend(self.net, cache_dir), multiple=self.multiple, on_notice=on_notice)
        if backend == "torch" or self.device.type != "cpu" or self.dtype is not None or self.dropout:
            if backend == "onnxruntime":
                raise UsageError("--backend onnxruntime runs on the CPU in fp32, without --dropout")
            return None
        # auto: ONNX Runtime where it can run these weights: onnxruntime, and onnx to export them the
        # first time (onnxruntime alone is common; importing onnx costs half a second of every run, so
        # not where the export is cached); the weights are hashed only where onnxruntime is
        missing = first_missing(("onnxruntime",))
        path = None if missing else export_path(self.net, cache_dir)
        if path is not None and not path.is_file():
            missing = first_missing(("onnx",))
        if missing:
            if backend == "onnxruntime":
                raise UsageError("--backend onnxruntime needs the onnx extra: pip install 'ganctl[onnx]'")
            self.notes.append(f"--backend auto: torch, {missing} is not installed here (ONNX Runtime needs "
                              "onnxruntime, and onnx to export a model the first time: pip install 'ganctl[onnx]')")
            return None
        try:
            return OnnxBackend(self.net, cache_dir, path)
        except UsageError:  # a damaged cached export, and no onnx to write it again
            if backend == "onnxruntime":
                raise
            self.notes.append(f"--backend auto: torch, the cached export {path} cannot be read and onnx is not "
                              "installed here to write it again (pip install 'ganctl[onnx]')")
            return None

    # ------------------------------------------------------------------ running
    def to_tensor(self, batch: np.ndarray) -> torch.Tensor:
        if not batch.flags.writeable:
            batch = batch.copy()
        x = torch.from_numpy(np.ascontiguousarray(batch))  # (N, H, W, 3) uint8
        if self.device.type == "cuda":  # a pinned staging copy: the upload is asynchronous
            x = x.pin_memory()
        x = x.to(self.device, non_blocking=True)
        return self._normalise(x.permute(0, 3, 1, 2))

    def _normalise(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) uint8 on the device -> the network's input range."""
        return (x.float().div_(255.0) - self.mean) / self.std

    def run_jpegs(self, blobs: list[bytes]) -> np.ndarray:
        """A batch of same-size JPEG files' bytes, decoded together on this device (nvJPEG on a
        GPU), translated: (N, H, W, 3) uint8 on the host."""
        import warnings

        from torchvision.io import ImageReadMode, decode_jpeg

        data = [torch.frombuffer(bytearray(b), dtype=torch.uint8) for b in blobs]
        with warnings.catch_warnings():  # torchvision 0.29 points to TorchCodec; its nvJPEG decoder is still the one
            warnings.simplefilter("ignore", DeprecationWarning)
            decoded = decode_jpeg(data, mode=ImageReadMode.RGB, device=self.device)
        return self.to_uint8(self.forward(self._normalise(torch.stack(decoded))))

    def to_uint8(self, y: torch.Tensor) -> np.ndarray:
        y = y.float() * self.std + self.mean  # back to [0, 1]
        y = y.mul_(255.0).round_().clamp_(0, 255).to(torch.uint8)
        return y.permute(0, 2, 3, 1).contiguous().cpu().numpy()

    @torch.inference_mode()
    def forward(self, x: torch.Tensor, use_backend: bool = True) -> torch.Tensor:
        """Normalised (N, 3, H, W) -> normalised output, padded and cropped back. ``use_backend=False``
        runs the torch module even when ONNX Runtime is the backend (tiles need frozen statistics)."""
        xp, h, w = pad_to_multiple(x, self.multiple, self.minimum)
        if self.backend is not None and use_backend:
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

    def padded(self, h: int, w: int) -> tuple[int, int]:
        return padded_size(h, w, self.multiple, self.minimum)

    def needs_tiling(self, h: int, w: int) -> bool:
        ph, pw = self.padded(h, w)
        if self.tile:
            return ph > self.tile or pw > self.tile
        return ph * pw > self.max_untiled_pixels

    def batch_limit(self, h: int, w: int) -> int:
        """How many images of this size one forward pass may hold within the memory budget."""
        ph, pw = self.padded(h, w)
        return max(1, self.max_untiled_pixels // (ph * pw))

    def tile_size(self) -> int:
        if self.tile:
            return self.tile
        side = int(math.sqrt(min(self.max_untiled_pixels, TILED_WORKING_PIXELS)))
        return max(self.min_tile, side // self.multiple * self.multiple)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self.to_uint8(self.forward(self.to_tensor(batch)))

    def ran_as(self, h: int, w: int) -> str:
        """The precision an image of this size runs in now (int8 only once calibrated, and untiled)."""
        if self.precision == "int8" and (self.needs_tiling(h, w) or not self.backend.calibrated):
            return "fp32"
        return self.precision

    def precision_so_far(self) -> str:
        """For a video: int8 once any frame ran in int8."""
        if self.precision == "int8" and not self.backend.ran_int8:
            return "fp32"
        return self.precision

    def close(self) -> None:
        if hasattr(self.backend, "close"):
            self.backend.close()

    def run_image(self, rgb: np.ndarray) -> np.ndarray:
        """One (H, W, 3) uint8 image, tiled when it does not fit (or with ``tile``)."""
        h, w = rgb.shape[:2]
        if self.needs_tiling(h, w):
            return run_tiled(self, rgb, self.tile_size(), self.overlap)
        return self(rgb[None])[0]


def measure_fast(net, config, cache_dir=None, flags: set[str] | None = None, onnx: bool = True) -> tuple[str, str]:
    """``--precision fast`` on the CPU: (precision, why), measured once per machine and weights
    (:mod:`cyclegan_cli.infer.fastpath`). ``onnx=False`` (``--backend torch``): no int8, fp32 in torch."""
    import time

    from cyclegan_cli.device import cpu_flags
    from cyclegan_cli.infer import fastpath
    from cyclegan_cli.infer.quantize import GUARD_EVERY, turned_down

    flags = cpu_flags() if flags is None else flags
    have_ort = onnx and first_missing() is None  # int8 is quantised with onnx
    net = net.cpu().eval()
    fp32_path = export_path(net, cache_dir)
    allowed = fastpath.fast_candidates(flags, have_ort, have_ort and turned_down(fp32_path))
    if allowed == ["fp32"]:
        return "fp32", ("no AMX or AVX512-BF16 here, and int8 runs with --backend onnxruntime (auto)" if not onnx else
                        "no AMX or AVX512-BF16 here, and int8 needs the onnx extra: pip install 'ganctl[onnx]'"
                        if not have_ort else "no AMX or AVX512-BF16 here, and int8 fell below 30 dB for this model before")
    path = fastpath.verdict_path(fp32_path.parent, fp32_path.stem, flags, have_ort)
    verdict = fastpath.read_verdict(path)
    if verdict is not None and set(allowed) <= set(verdict["results"]):
        best, figures = fastpath.choose(verdict["results"], allowed)
        return best, f"measured before on this CPU for these weights: {figures}"
    # 1. the probe, as the network takes it
    norm = config.normalization
    mean, std = (torch.tensor(norm[k]).view(1, -1, 1, 1) for k in ("mean", "std"))
    x = (torch.from_numpy(fastpath.probe_image()).permute(2, 0, 1)[None].float() / 255.0 - mean) / std
    x, _, _ = pad_to_multiple(x, size_grid(net), min_side(net))
    x = x.contiguous()
    t0 = time.perf_counter()
    # 2. one runner per candidate, each as a job would run it
    runners = {}
    if "bf16" in allowed:
        def bf16():
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
                return net(x).float().numpy()
        runners["bf16"] = bf16
    if have_ort:
        fp32 = OnnxBackend(net, cache_dir, fp32_path)
        xn = x.numpy()
        runners["fp32"] = lambda: fp32.run(xn)
        if "int8" in allowed:
            from cyclegan_cli.infer.quantize import probe_session

            session = probe_session(fp32, xn)
            runners["int8"] = lambda: session.run(None, {fp32.input_name: xn})[0]
    else:
        def plain():
            with torch.inference_mode():
                return net(x).numpy()
        runners["fp32"] = plain
    # 3. timed in turns; int8 pays for its guard (an fp32 pass per GUARD_EVERY images)
    results = fastpath.measure(runners)
    if "int8" in results:
        results["int8"]["s"] += results["fp32"]["s"] / GUARD_EVERY
    fastpath.write_verdict(path, {"weights": fp32_path.stem, "results": results})
    best, figures = fastpath.choose(results, allowed)
    return best, f"measured on this CPU in {time.perf_counter() - t0:.1f} s, kept for these weights: {figures}"
