"""Training data: image folders read recursively, unreadable files skipped and counted, and
augmentations seeded per (seed, epoch, index) so the data is the same with any number of workers
and after a resume."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image

from cyclegan_cli.data.images import DEFAULT_MAX_PIXELS, IMAGE_EXTENSIONS, decode, open_image, walk_files
from cyclegan_cli.errors import InputError, NotFoundError, UsageError


def scan_folder(folder: Path, max_pixels: int = DEFAULT_MAX_PIXELS,
                on_skip: Callable[[str], None] | None = None) -> tuple[list[Path], int]:
    """(readable image files sorted, number skipped). Only headers are read here (and checked
    against the pixel limit); a file that is truncated further in is skipped when first decoded.
    Each skipped file is reported through ``on_skip`` as one line."""
    folder = Path(folder)
    if not folder.exists():
        raise NotFoundError(f"{folder}: no such folder")
    if not folder.is_dir():
        raise UsageError(f"{folder}: training data must be a folder of images")
    good, skipped = [], 0
    for p in walk_files(folder, on_skip):  # linked folders too
        if p.suffix.lower() not in IMAGE_EXTENSIONS:
            continue
        try:
            with open_image(p, max_pixels) as im:
                im.verify()
            good.append(p)
        except Exception as exc:
            skipped += 1
            if on_skip:
                on_skip(f"skipped {p}: {str(exc).split(': ', 1)[-1] if isinstance(exc, InputError) else 'unreadable'}")
    if not good:
        raise UsageError(f"{folder}: no usable images (skipped {skipped} unreadable)")
    return good, skipped


def load_rgb(path: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Decoded, EXIF-oriented RGB; an InputError (one line) when it cannot be decoded."""
    return decode(path, max_pixels).convert("RGB")


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


def center_crop(im: Image.Image, size: int) -> Image.Image:
    """Short side to ``size`` (bicubic), then the centre ``size`` x ``size`` square."""
    w, h = im.size
    s = size / min(w, h)
    im = im.resize((max(size, round(w * s)), max(size, round(h * s))), Image.BICUBIC)
    w, h = im.size
    x, y = (w - size) // 2, (h - size) // 2
    return im.crop((x, y, x + size, y + size))


def center(im: Image.Image, size: int) -> torch.Tensor:
    """Deterministic view for fixed sample sets: short side to ``size``, centre crop, as a tensor."""
    return to_tensor(center_crop(im, size))


def to_tensor(im: Image.Image) -> torch.Tensor:
    a = torch.from_numpy(np.asarray(im, dtype=np.uint8).copy()).permute(2, 0, 1).float()  # (3, H, W)
    return a.div_(127.5).sub_(1.0)


DEFAULT_CACHE_BYTES = 2 * 2**30  # decoded training images kept in memory (uint8), per process


class ImageStore:
    """Training images by index, decoded once and kept as uint8 arrays up to ``cache_bytes``
    (then decoded again on each use). A file that cannot be decoded (truncated past its header,
    say) is reported once through ``on_skip`` and replaced, from then on, by the next readable
    file: training goes on, and the data order stays a function of the files alone."""

    def __init__(self, files, prepare: Callable[[Image.Image], Image.Image], cache_bytes: int = DEFAULT_CACHE_BYTES,
                 max_pixels: int = DEFAULT_MAX_PIXELS, on_skip: Callable[[str], None] | None = None):
        self.files, self.prepare = list(files), prepare
        self.cache_bytes, self.max_pixels, self.on_skip = cache_bytes, max_pixels, on_skip
        self._cache: dict[int, np.ndarray] = {}
        self._used = 0
        self.bad: set[int] = set()

    def __len__(self):
        return len(self.files)

    def get(self, idx: int) -> Image.Image:
        n = len(self.files)
        for k in range(n):
            j = (idx + k) % n
            if j in self.bad:
                continue
            if j in self._cache:
                return Image.fromarray(self._cache[j])
            try:
                im = self.prepare(load_rgb(self.files[j], self.max_pixels))
            except InputError as exc:
                self.bad.add(j)
                if self.on_skip:
                    self.on_skip(f"skipped {exc}")
                continue
            arr = np.asarray(im, dtype=np.uint8)
            if self._used + arr.nbytes <= self.cache_bytes:
                self._cache[j] = arr
                self._used += arr.nbytes
            return im
        raise InputError(f"none of the {n} training images can be decoded")


class UnpairedDataset(torch.utils.data.Dataset):
    """Item ``(epoch, i, ia, ib)`` -> (A image, B image). A and B have their own per-epoch orders."""

    def __init__(self, files_a, files_b, load_size=286, crop_size=256, flip=True, seed=0,
                 cache_bytes=DEFAULT_CACHE_BYTES, max_pixels=DEFAULT_MAX_PIXELS, on_skip=None):
        self.load_size, self.crop_size, self.flip, self.seed = load_size, crop_size, flip, seed

        def prepare(im):  # the official resize to a load_size square, done once per file
            return im.resize((load_size, load_size), Image.BICUBIC)

        self.a = ImageStore(files_a, prepare, cache_bytes // 2, max_pixels, on_skip)
        self.b = ImageStore(files_b, prepare, cache_bytes // 2, max_pixels, on_skip)
        self.length = max(len(self.a), len(self.b))

    def __len__(self):
        return self.length

    def __getitem__(self, key):
        epoch, i, ia, ib = key
        rng = random.Random(hash((self.seed, epoch, i)) & 0xFFFFFFFF)
        a = augment(self.a.get(ia), rng, self.load_size, self.crop_size, self.flip)
        b = augment(self.b.get(ib), rng, self.load_size, self.crop_size, self.flip)
        return a, b


class SingleDataset(torch.utils.data.Dataset):
    """DCGAN data: resize short side, centre crop, optional flip."""

    def __init__(self, files, image_size=64, flip=False, seed=0, cache_bytes=DEFAULT_CACHE_BYTES,
                 max_pixels=DEFAULT_MAX_PIXELS, on_skip=None):
        self.size, self.flip, self.seed = image_size, flip, seed
        self.images = ImageStore(files, lambda im: center_crop(im, image_size), cache_bytes, max_pixels, on_skip)

    def __len__(self):
        return len(self.images)

    def __getitem__(self, key):
        epoch, i, idx, _ = key
        t = to_tensor(self.images.get(idx))
        if self.flip and random.Random(hash((self.seed, epoch, i)) & 0xFFFFFFFF).random() < 0.5:
            t = t.flip(-1)
        return t


def epoch_order(n: int, seed: int, epoch: int, salt: int = 0) -> list[int]:
    g = torch.Generator().manual_seed((seed * 1_000_003 + epoch * 7919 + salt) % 2**63)
    return torch.randperm(n, generator=g).tolist()


def pair_folders(folder_a: Path, folder_b: Path, on_skip: Callable[[str], None] | None = None,
                 max_pixels: int = DEFAULT_MAX_PIXELS) -> list[tuple[Path, Path]]:
    """Paired training data: ``A/x.png`` goes with ``B/x.*`` (the same relative path, any
    extension). Files without a partner are reported one line each."""
    fa, _ = scan_folder(Path(folder_a), max_pixels, on_skip)
    fb, _ = scan_folder(Path(folder_b), max_pixels, on_skip)

    def key(p: Path, root: Path) -> str:
        return str(p.relative_to(root).with_suffix(""))

    b_by_key = {key(p, Path(folder_b)): p for p in fb}
    pairs = []
    for p in fa:
        k = key(p, Path(folder_a))
        if k in b_by_key:
            pairs.append((p, b_by_key.pop(k)))
        elif on_skip:
            on_skip(f"unpaired: {p} has no partner in {folder_b}")
    for p in b_by_key.values():
        if on_skip:
            on_skip(f"unpaired: {p} has no partner in {folder_a}")
    if not pairs:
        raise UsageError(f"{folder_a} and {folder_b}: no pairs (A/x.png pairs with B/x.* by relative path)")
    return pairs


class PairedDataset(torch.utils.data.Dataset):
    """Item ``(epoch, i, idx, _)`` -> (input, target): one random resize-to-square, crop and flip
    applied to both images of a pair. ``pairs`` holds (A, B) files, or (AB, None) for the official
    aligned format (A|B side by side, split at half the width)."""

    def __init__(self, pairs, load_size=286, crop_size=256, flip=True, seed=0, direction="AtoB",
                 cache_bytes=DEFAULT_CACHE_BYTES, max_pixels=DEFAULT_MAX_PIXELS, on_skip=None):
        self.load_size, self.crop_size, self.flip, self.seed = load_size, crop_size, flip, seed
        self.swap = direction == "BtoA"
        aligned = pairs[0][1] is None

        def prepare(im):
            return im.resize((2 * load_size, load_size) if aligned else (load_size, load_size), Image.BICUBIC)

        self.a = ImageStore([a for a, _ in pairs], prepare, cache_bytes // (1 if aligned else 2), max_pixels, on_skip)
        self.b = None if aligned else ImageStore([b for _, b in pairs], prepare, cache_bytes // 2, max_pixels, on_skip)

    def __len__(self):
        return len(self.a)

    def pair(self, idx: int) -> tuple[Image.Image, Image.Image]:
        if self.b is None:
            ab = self.a.get(idx)
            w = ab.width // 2
            return ab.crop((0, 0, w, ab.height)), ab.crop((w, 0, 2 * w, ab.height))
        return self.a.get(idx), self.b.get(idx)

    def __getitem__(self, key):
        epoch, i, idx, _ = key
        a, b = self.pair(idx)
        if self.swap:
            a, b = b, a
        state = random.Random(hash((self.seed, epoch, i)) & 0xFFFFFFFF).getstate()
        ta = augment(a, _replay(state), self.load_size, self.crop_size, self.flip)
        tb = augment(b, _replay(state), self.load_size, self.crop_size, self.flip)  # the same crop and flip
        return ta, tb


def _replay(state) -> random.Random:
    r = random.Random()
    r.setstate(state)
    return r
