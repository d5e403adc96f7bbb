"""DCGAN sampling: seed lists, one seeded generator per sample (seed k is the same image at any
batch size), grids, latent walks (lerp/slerp) and latent vector arithmetic."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

from cyclegan_cli.errors import UsageError


def parse_seeds(spec: str) -> list[int]:
    """``0-7,12`` -> [0, 1, ..., 7, 12]."""
    out = []
    for part in str(spec).split(","):
        part = part.strip()
        if not part:
            continue
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not m:
            raise UsageError(f"bad seed list {spec!r}: use e.g. 0-7,12")
        a, b = int(m.group(1)), int(m.group(2) or m.group(1))
        if b < a:
            raise UsageError(f"bad seed range {part!r}")
        out += list(range(a, b + 1))
    if not out:
        raise UsageError("no seeds given")
    return out


def latents_for_seeds(seeds: list[int], nz: int) -> torch.Tensor:
    """(N, nz): row k from its own ``torch.Generator`` seeded with seeds[k], on the CPU."""
    return torch.stack([torch.randn(nz, generator=torch.Generator().manual_seed(int(s))) for s in seeds])


def load_z_file(path: Path, nz: int) -> torch.Tensor:
    try:
        z = np.load(path)
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: not a .npy array ({exc})") from None
    z = np.asarray(z, dtype=np.float32).reshape(len(z), -1) if np.ndim(z) > 1 else np.asarray(z, np.float32)[None]
    if z.shape[1] != nz:
        raise UsageError(f"{path}: rows have {z.shape[1]} values, the model's latent size is {nz}")
    return torch.from_numpy(z)


@torch.inference_mode()
def generate(G, z: torch.Tensor, batch_size: int = 64, device=None) -> np.ndarray:
    """(N, nz) -> (N, H, W, 3) uint8, batched. The generator runs in eval mode (batch norm uses running stats)."""
    device = device or next(G.parameters()).device
    G.eval()
    out = []
    for i in range(0, len(z), batch_size):
        y = G(z[i:i + batch_size].to(device)).float()
        out.append(y.add(1).mul(127.5).round().clamp(0, 255).byte().permute(0, 2, 3, 1).cpu().numpy())
    return np.concatenate(out)


def lerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    return a + (b - a) * t


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation: keeps the norm typical of Gaussian latents along the path."""
    an, bn = a / a.norm(), b / b.norm()
    omega = torch.acos((an * bn).sum().clamp(-1, 1))
    if omega.abs() < 1e-6:
        return lerp(a, b, t)
    so = torch.sin(omega)
    return torch.sin((1 - t) * omega) / so * a + torch.sin(t * omega) / so * b


def walk(z: torch.Tensor, steps: int, method: str = "slerp", loop: bool = False) -> torch.Tensor:
    """Latents visiting each row of ``z`` in turn, ``steps`` frames per leg, ending exactly on the last."""
    if method not in ("slerp", "lerp"):
        raise UsageError(f"unknown --method {method!r}: slerp or lerp")
    if len(z) < 2:
        raise UsageError("interpolation needs at least two seeds")
    if steps < 2:
        raise UsageError("--steps must be at least 2")
    f = slerp if method == "slerp" else lerp
    points = list(z) + ([z[0]] if loop else [])
    frames = []
    for a, b in zip(points[:-1], points[1:]):
        for i in range(steps - 1):
            frames.append(f(a, b, i / (steps - 1)))
    if not loop:
        frames.append(points[-1])
    return torch.stack(frames)


def grid(images: np.ndarray, cols: int, rows: int | None = None, pad: int = 2) -> np.ndarray:
    """(N, H, W, 3) -> one (rows*(H+pad)+pad, ...) image, white padding."""
    n, h, w, _ = images.shape
    rows = rows or -(-n // cols)
    out = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, 3), 255, np.uint8)
    for i in range(min(n, rows * cols)):
        r, c = divmod(i, cols)
        out[pad + r * (h + pad):pad + r * (h + pad) + h, pad + c * (w + pad):pad + c * (w + pad) + w] = images[i]
    return out


def arithmetic(groups: list[tuple[int, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    """groups: (sign, (k, nz) latents). Returns (group means (G, nz), result (nz,) = sum sign * mean)."""
    means = torch.stack([z.mean(0) for _, z in groups])
    result = sum(sign * m for (sign, _), m in zip(groups, means))
    return means, result


def nearest(queries: np.ndarray, data: np.ndarray, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """For each query (Q, D) the indices and L2 distances of its k nearest rows of data (N, D)."""
    q = torch.from_numpy(queries.astype(np.float32))
    d = torch.from_numpy(data.astype(np.float32))
    dist = torch.cdist(q, d)  # (Q, N)
    k = min(k, d.shape[0])
    vals, idx = dist.topk(k, dim=1, largest=False)
    return idx.numpy(), vals.numpy()
