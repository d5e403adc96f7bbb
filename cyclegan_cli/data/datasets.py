"""Training data: image folders read recursively, unreadable files skipped and counted, and
augmentations seeded per (seed, epoch, index) so the data is the same with any number of workers
and after a resume."""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from cyclegan_cli.data.images import IMAGE_EXTENSIONS
from cyclegan_cli.errors import NotFoundError, UsageError


def scan_folder(folder: Path) -> tuple[list[Path], int]:
    """(readable image files sorted, number skipped as unreadable). Only headers are read."""
    folder = Path(folder)
    if not folder.exists():
        raise NotFoundError(f"{folder}: no such folder")
    if not folder.is_dir():
        raise UsageError(f"{folder}: training data must be a folder of images")
    good, skipped = [], 0
    for dirpath, dirnames, files in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(files):
            p = Path(dirpath) / name
            if name.startswith(".") or p.suffix.lower() not in IMAGE_EXTENSIONS:
                continue
            try:
                with Image.open(p) as im:
                    im.verify()
                good.append(p)
            except Exception:
                skipped += 1
    if not good:
        raise UsageError(f"{folder}: no usable images (skipped {skipped} unreadable)")
    return good, skipped


def load_rgb(path: Path) -> Image.Image:
    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im)
        return im.convert("RGB")


def augment(im: Image.Image, rng: random.Random, load_size: int, crop_size: int, flip: bool) -> torch.Tensor:
    """The official ``resize_and_crop``: resize to load_size square, random crop, random flip; -> [-1, 1]."""
    im = im.resize((load_size, load_size), Image.BICUBIC)
    if load_size > crop_size:
        x = rng.randint(0, load_size - crop_size)
        y = rng.randint(0, load_size - crop_size)
        im = im.crop((x, y, x + crop_size, y + crop_size))
    if flip and rng.random() < 0.5:
        im = im.transpose(Image.FLIP_LEFT_RIGHT)
    return to_tensor(im)


def center(im: Image.Image, size: int) -> torch.Tensor:
    """Deterministic view for fixed sample sets: short side to ``size``, centre crop."""
    w, h = im.size
    s = size / min(w, h)
    im = im.resize((max(size, round(w * s)), max(size, round(h * s))), Image.BICUBIC)
    w, h = im.size
    x, y = (w - size) // 2, (h - size) // 2
    return to_tensor(im.crop((x, y, x + size, y + size)))


def to_tensor(im: Image.Image) -> torch.Tensor:
    a = torch.from_numpy(np.asarray(im, dtype=np.uint8).copy()).permute(2, 0, 1).float()  # (3, H, W)
    return a.div_(127.5).sub_(1.0)


class UnpairedDataset(torch.utils.data.Dataset):
    """Item ``(epoch, i)`` -> (A image, B image). A and B have their own per-epoch orders."""

    def __init__(self, files_a, files_b, load_size=286, crop_size=256, flip=True, seed=0, cache=True):
        self.a, self.b = list(files_a), list(files_b)
        self.load_size, self.crop_size, self.flip, self.seed = load_size, crop_size, flip, seed
        self._cache = {} if cache else None
        self.length = max(len(self.a), len(self.b))

    def __len__(self):
        return self.length

    def _img(self, p):
        if self._cache is None:
            return load_rgb(p)
        if p not in self._cache:
            self._cache[p] = load_rgb(p).resize((self.load_size, self.load_size), Image.BICUBIC)
        return self._cache[p]

    def __getitem__(self, key):
        epoch, i, ia, ib = key
        rng = random.Random(hash((self.seed, epoch, i)) & 0xFFFFFFFF)
        a = augment(self._img(self.a[ia]), rng, self.load_size, self.crop_size, self.flip)
        b = augment(self._img(self.b[ib]), rng, self.load_size, self.crop_size, self.flip)
        return a, b


class SingleDataset(torch.utils.data.Dataset):
    """DCGAN data: resize short side, centre crop, optional flip."""

    def __init__(self, files, image_size=64, flip=False, seed=0, cache=True):
        self.files, self.size, self.flip, self.seed = list(files), image_size, flip, seed
        self._cache = {} if cache else None

    def __len__(self):
        return len(self.files)

    def __getitem__(self, key):
        epoch, i, idx, _ = key
        p = self.files[idx]
        if self._cache is not None and p in self._cache:
            t = self._cache[p]
        else:
            t = center(load_rgb(p), self.size)
            if self._cache is not None:
                self._cache[p] = t
        if self.flip and random.Random(hash((self.seed, epoch, i)) & 0xFFFFFFFF).random() < 0.5:
            t = t.flip(-1)
        return t


def epoch_order(n: int, seed: int, epoch: int, salt: int = 0) -> list[int]:
    g = torch.Generator().manual_seed((seed * 1_000_003 + epoch * 7919 + salt) % 2**63)
    return torch.randperm(n, generator=g).tolist()
