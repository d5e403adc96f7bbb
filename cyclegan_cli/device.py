"""Where the networks run: device choice, seeding, determinism, autocast and memory format."""

from __future__ import annotations

import contextlib
import os
import random
import re
from pathlib import Path

import torch

from cyclegan_cli.errors import UsageError

DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def pick_device(spec: str = "auto") -> torch.device:
    """``auto`` picks cuda, then mps, then cpu. ``cuda:N`` is checked against the GPUs present."""
    spec = (spec or "auto").strip().lower()
    if not DEVICE_PATTERN.match(spec):
        raise UsageError(f"unknown device {spec!r}: use auto, cpu, cuda, cuda:N or mps")
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UsageError(f"--device {spec}: no CUDA GPU is available here")
        index = int(spec.split(":")[1]) if ":" in spec else torch.cuda.current_device()
        if index >= torch.cuda.device_count():
            raise UsageError(f"--device {spec}: only {torch.cuda.device_count()} GPU(s) present")
        return torch.device("cuda", index)
    if spec == "mps" and not (
        getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    ):
        raise UsageError("--device mps: Apple MPS is not available here")
    return torch.device(spec)


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices)."""
    import numpy as np

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def set_deterministic(enabled: bool = True) -> None:
    """Deterministic kernels (slower on GPU). Needs CUBLAS_WORKSPACE_CONFIG before CUDA starts."""
    if enabled:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(enabled, warn_only=False)
    torch.backends.cudnn.deterministic = enabled
    torch.backends.cudnn.benchmark = not enabled


PRECISIONS = ("auto", "fp32", "fp16", "bf16")
# translate also runs int8 (ONNX Runtime, CPU) and "fast": the quickest reduced precision this machine runs well
TRANSLATE_PRECISIONS = (*PRECISIONS, "int8", "fast")


def cpu_flags() -> set[str]:
    """The CPU's feature flags (``/proc/cpuinfo``; empty where that cannot be read)."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith(("flags", "Features")):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what the platform module says."""
    import platform

    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


# bf16 matrix units: AMX tiles (Sapphire Rapids and later) or AVX512-BF16 dot products; elsewhere
# torch emulates bf16 with conversions and it runs slower than fp32
FAST_BF16_FLAGS = {"amx_bf16", "avx512_bf16"}
# u8 x s8 dot products that accumulate in 32 bits (no 16-bit saturation): full 8-bit int8 weights
VNNI_FLAGS = {"avx512_vnni", "avx_vnni", "amx_int8"}


def native_bf16(flags: set[str] | None = None) -> list[str]:
    """The flags through which this CPU multiplies bf16 natively (empty: it emulates bf16)."""
    return sorted((cpu_flags() if flags is None else flags) & FAST_BF16_FLAGS)


def fast_precision(device: torch.device, flags: set[str] | None = None, have_onnxruntime: bool | None = None) -> tuple[str, str]:
    """What ``--precision fast`` means on ``device`` without measuring: (precision, why).

    GPUs: their autocast type. CPUs: bf16 where the CPU multiplies bf16 matrices natively (AMX or
    AVX512-BF16; elsewhere bf16 is emulated and slower than fp32), else int8 through ONNX Runtime
    (VPMADDUBSW on AVX2, VNNI where present), else fp32. (The CPU's choice is then measured:
    :mod:`cyclegan_cli.infer.fastpath`.)
    """
    if device.type == "cuda":
        return ("bf16" if torch.cuda.is_bf16_supported() else "fp16"), "autocast on the GPU"
    if device.type != "cpu":
        return "fp32", f"no reduced precision on {device.type}"
    flags = cpu_flags() if flags is None else flags
    if native_bf16(flags):
        return "bf16", f"this CPU multiplies bf16 natively ({', '.join(native_bf16(flags))})"
    if have_onnxruntime is None:
        import importlib.util

        have_onnxruntime = importlib.util.find_spec("onnxruntime") is not None
    vector = "VNNI" if flags & VNNI_FLAGS else "AVX2" if "avx2" in flags else "this CPU's"
    if have_onnxruntime:
        return "int8", f"no AMX or AVX512-BF16 here; int8 through ONNX Runtime ({vector} integer kernels)"
    return "fp32", "no AMX or AVX512-BF16 here, and int8 needs the onnx extra: pip install 'ganctl[onnx]'"


def training_dtype(device: torch.device, precision: str = "auto", flags: set[str] | None = None) -> torch.dtype | None:
    """The autocast dtype for training in ``precision`` on ``device`` (None: fp32).

    On the CPU, bf16 only where it is native: ``auto`` picks it where the CPU has AMX (measured
    there at 0.69x the fp32 step; AVX512-BF16 alone was not measured), and ``bf16`` elsewhere is a
    usage error, since emulated bf16 trains several times slower than fp32.
    """
    if device.type == "cpu" and precision in ("auto", "bf16"):
        flags = cpu_flags() if flags is None else flags
        if precision == "auto":
            return torch.bfloat16 if "amx_bf16" in flags else None
        if not native_bf16(flags):
            raise UsageError("--precision bf16: this CPU has no AMX or AVX512-BF16, so bf16 would be emulated and "
                             "train slower than fp32; use --precision fp32 (or auto)")
    return autocast_dtype(device, precision)


def autocast_dtype(device: torch.device, precision: str = "auto") -> torch.dtype | None:
    """The autocast dtype for ``precision`` on ``device``; None means plain fp32.

    ``auto``: bf16 on GPUs that support it, else fp16 on CUDA; off on CPU and MPS
    (CPU autocast is slower than fp32 for convolutions on most machines).
    """
    if precision not in PRECISIONS:
        raise UsageError(f"unknown precision {precision!r}: use one of {', '.join(PRECISIONS)}")
    if precision == "fp32":
        return None
    if precision == "auto":
        if device.type != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    if device.type == "cpu" and dtype == torch.float16:
        raise UsageError("--precision fp16 is not supported on the CPU; use bf16 or fp32")
    return dtype


def autocast(device: torch.device, dtype: torch.dtype | None):
    """A context manager: autocast to ``dtype`` on ``device``, or nothing when dtype is None."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def memory_format(device: torch.device, channels_last: bool | None = None) -> torch.memory_format:
    """channels_last by default on CUDA (tensor cores want NHWC), contiguous elsewhere."""
    if channels_last is None:
        channels_last = device.type == "cuda"
    return torch.channels_last if channels_last else torch.contiguous_format


CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_CGROUP = Path("/proc/self/cgroup")


def cgroup_memory_left() -> int | None:
    """Bytes this process's memory cgroup still lets it use (a container's or a Slurm job's limit:
    cgroup v2 ``memory.max``, v1 ``memory.limit_in_bytes``, minus what is in use and not
    reclaimable), the smallest over the cgroup and its ancestors; None when nothing limits it."""
    try:
        lines = PROC_CGROUP.read_text().splitlines()
    except OSError:
        return None
    left = []
    for line in lines:
        hid, controllers, path = (line.split(":", 2) + ["", ""])[:3]
        if hid == "0" and controllers == "":
            base, files = CGROUP_ROOT, ("memory.max", "memory.current", "inactive_file")
        elif "memory" in controllers.split(","):
            base, files = CGROUP_ROOT / "memory", ("memory.limit_in_bytes", "memory.usage_in_bytes",
                                                   "total_inactive_file")
        else:
            continue
        own = base / path.lstrip("/")
        if not own.is_dir() or base not in (own, *own.parents):
            own = base  # in a container the mount is the process's own cgroup
        for d in (own, *[p for p in own.parents if base in (p, *p.parents)]):
            n = _cgroup_left(d, *files)
            if n is not None:
                left.append(n)
    return min(left) if left else None


def _cgroup_left(folder: Path, limit_file: str, usage_file: str, inactive_key: str) -> int | None:
    try:
        raw = (folder / limit_file).read_text().strip()
    except OSError:
        return None
    if not raw.isdigit() or int(raw) >= 2**60:  # "max" (v2) or a page-rounded 2**63 (v1): no limit
        return None
    usage = inactive = 0
    try:
        usage = int((folder / usage_file).read_text().strip())
        for line in (folder / "memory.stat").read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == inactive_key:
                inactive = int(value)
    except (OSError, ValueError):
        pass
    return max(0, int(raw) - max(0, usage - inactive))


def available_memory(device: torch.device) -> int:
    """Bytes a forward pass may use now: free memory on a CUDA device; on the CPU, available RAM
    (``MemAvailable``: free plus reclaimable page cache) or what the memory cgroup (container,
    Slurm job) still allows, whichever is smaller; with a safety margin."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free * 0.8)
    avail = None
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    if avail is None:
        try:
            avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            avail = 4 * 2**30
    limit = cgroup_memory_left()
    if limit is not None:
        avail = min(avail, limit)
    return int(avail * 0.75)
