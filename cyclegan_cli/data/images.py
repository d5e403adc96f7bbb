"""Reading and writing images the way users expect: any Pillow format, EXIF orientation applied,
alpha kept aside and put back, 16-bit and palette images handled, ICC profile kept; written
atomically through :mod:`cyclegan_cli.files`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
from PIL import Image, ImageOps

from cyclegan_cli.errors import InputError, reason
from cyclegan_cli.files import atomic_write_bytes

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".ppm", ".pgm", ".tga"}
SAVE_FORMATS = {"png": "PNG", "jpg": "JPEG", "jpeg": "JPEG", "webp": "WEBP", "bmp": "BMP", "tif": "TIFF", "tiff": "TIFF"}
# The decompression-bomb limit: Pillow's own (89.5 Mpx). We check it from the header before
# decoding, per file, so a bomb is one error line; --max-pixels moves it for one run.
DEFAULT_MAX_PIXELS = Image.MAX_IMAGE_PIXELS or 89_478_485


@dataclass
class Picture:
    """A decoded image: RGB uint8 pixels plus what must go back on save."""

    rgb: np.ndarray  # (H, W, 3) uint8
    alpha: np.ndarray | None = None  # (H, W) uint8, or None
    icc_profile: bytes | None = None
    source_format: str = ""
    info: dict = field(default_factory=dict)

    @property
    def size(self) -> tuple[int, int]:
        return self.rgb.shape[1], self.rgb.shape[0]


def is_image_name(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS


def walk_files(folder: Path, on_skip: Callable[[str], None] | None = None) -> Iterator[Path]:
    """Every file under ``folder`` whose name does not start with a dot, folder by folder in name
    order, following linked folders; a link back to a folder already walked (a loop, or the same
    folder twice) is not followed and is reported through ``on_skip``."""
    seen: set[tuple[int, int]] = set()
    say = on_skip or (lambda msg: None)

    def visit(d: str) -> Iterator[Path]:
        try:
            st = os.stat(d)
            if (st.st_dev, st.st_ino) in seen:
                say(f"skipped {d}: a link to a folder already read")
                return
            seen.add((st.st_dev, st.st_ino))
            entries = sorted(os.scandir(d), key=lambda e: e.name)
        except OSError as exc:
            say(f"skipped {d}: {reason(exc)}")
            return
        subfolders = []
        for e in entries:
            if e.name.startswith("."):
                continue
            try:
                is_dir = e.is_dir()  # follows links
            except OSError:
                is_dir = False
            if is_dir:
                subfolders.append(e.path)
            else:
                yield Path(e.path)
        for sub in subfolders:
            yield from visit(sub)

    yield from visit(str(folder))


def _to_uint8(arr: np.ndarray, maxval: float) -> np.ndarray:
    return np.clip(np.rint(arr.astype(np.float32) * (255.0 / maxval)), 0, 255).astype(np.uint8)


def open_image(path, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """The one way ganctl opens an image file: the pixel count is checked from the header before
    anything is decoded, and every failure is an :class:`InputError` with one line saying why.
    The caller closes the returned (lazy) image."""
    import warnings

    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise InputError(f"{path}: empty file")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # we say it ourselves, below
            im = Image.open(path)
    except InputError:
        raise
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a folder, not an image") from None
    except Image.DecompressionBombError:
        raise InputError(f"{path}: over the {max_pixels:,}-pixel limit (decompression bomb guard; see --max-pixels)") from None
    except Image.UnidentifiedImageError:
        raise InputError(f"{path}: not an image Pillow can read") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"{path}: cannot read ({reason(exc)})") from None
    w, h = im.size
    if w * h > max_pixels:
        im.close()
        raise InputError(f"{path}: {w}x{h} is over the {max_pixels:,}-pixel limit "
                         "(decompression bomb guard; see --max-pixels)")
    return im


def decode(path, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Open, fully decode and apply the EXIF orientation; truncated or corrupt data is an InputError."""
    im = open_image(path, max_pixels)
    try:
        with im:
            fmt, icc = im.format, im.info.get("icc_profile")
            frames = getattr(im, "n_frames", 1)
            im.load()
            out = ImageOps.exif_transpose(im)
            out.format = fmt
            out.info["frames"] = frames  # > 1: an animation (GIF, APNG, WebP) of which this is the first frame
            if icc:
                out.info["icc_profile"] = icc
            return out
    except InputError:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError, EOFError) as exc:
        raise InputError(f"{path}: cannot decode ({reason(exc)})") from None


@dataclass
class EncodedJpeg:
    """A JPEG left undecoded for a batched decode on the GPU (nvJPEG): its bytes, what its header
    says, and what must go back on save."""

    data: bytes
    width: int
    height: int
    icc_profile: bytes | None = None
    source_format: str = "JPEG"
    alpha = None

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height


def jpeg_for_device(path, max_pixels: int = DEFAULT_MAX_PIXELS) -> EncodedJpeg | None:
    """``path`` as an :class:`EncodedJpeg` when a device decoder gives the pixels Pillow would: a
    colour (YCbCr/RGB) JPEG without EXIF rotation and with no profile or an RGB one; else None
    (CMYK, gray, rotated, not a JPEG: the CPU reader handles those)."""
    im = open_image(path, max_pixels)  # the header only: size guard, format, mode
    with im:
        if im.format != "JPEG" or im.mode != "RGB":
            return None
        if im.getexif().get(0x0112, 1) != 1:  # EXIF orientation
            return None
        icc = im.info.get("icc_profile")
        if icc:
            _, icc = to_srgb(im, icc)
            if icc is None:
                return None
        w, h = im.size
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({reason(exc)})") from None
    return EncodedJpeg(data, w, h, icc)


def read_picture(path, max_pixels: int = DEFAULT_MAX_PIXELS) -> Picture:
    """Decode a still image at ``path`` or raise :class:`InputError` with one line saying why (an
    animation is refused: its first frame alone is not what the user asked for)."""
    im = decode(path, max_pixels)
    if im.info.get("frames", 1) > 1:
        raise InputError(f"{path}: an animated {im.format or 'image'} ({im.info['frames']} frames); translate takes "
                         "still images and videos: make it a video first (ffmpeg -i in.gif in.mp4)")
    return _picture_from(*to_srgb(im, im.info.get("icc_profile")), im.format or "")


def to_srgb(im: Image.Image, icc: bytes | None) -> tuple[Image.Image, bytes | None]:
    """(image, profile to keep). An RGB profile is kept and goes back on the output. CMYK and
    grayscale images with a profile are converted to sRGB through it (LittleCMS, Pillow's
    ImageCms), and an output never carries a profile of another colour space."""
    if not icc:
        return im, None
    try:
        import io

        from PIL import ImageCms

        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        space = profile.profile.xcolor_space.strip()
    except Exception:
        return im, None  # unreadable profile: drop it rather than write it back
    if space == "RGB" and im.mode not in ("CMYK", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"):
        return im, icc
    if (space, im.mode) in (("CMYK", "CMYK"), ("GRAY", "L")):
        try:
            srgb = ImageCms.createProfile("sRGB")
            return ImageCms.profileToProfile(im, profile, srgb, outputMode="RGB"), None
        except Exception:
            pass
    return im, None


def _picture_from(im: Image.Image, icc, fmt: str) -> Picture:
    alpha = None
    mode = im.mode
    if mode in ("P", "L", "1", "RGB") and "transparency" in im.info:  # a palette entry or a colour key (tRNS)
        im = im.convert("RGBA")
        mode = im.mode
    elif mode == "P":
        im = im.convert("RGB")
        mode = im.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        im = im.convert("RGBA") if mode != "LA" else im
        alpha = np.asarray(im.getchannel("A"))
        im = im.convert("RGB") if im.mode == "RGBA" else im.convert("L").convert("RGB")
    elif mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(im).astype(np.float64)
        maxval = 65535.0 if (mode.startswith("I;16") or arr.max() > 255) else 255.0
        g = _to_uint8(arr, maxval)
        return Picture(np.repeat(g[:, :, None], 3, axis=2), None, icc, fmt)
    elif mode == "F":
        arr = np.asarray(im)
        maxval = 1.0 if arr.max() <= 1.0 else 255.0
        g = _to_uint8(arr, maxval)
        return Picture(np.repeat(g[:, :, None], 3, axis=2), None, icc, fmt)
    elif mode != "RGB":
        im = im.convert("RGB")  # L, 1, CMYK, YCbCr, ...
    rgb = np.asarray(im, dtype=np.uint8)
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[:, :, None], 3, axis=2)
    return Picture(np.ascontiguousarray(rgb), alpha, icc, fmt)


def output_format(src: Path, fmt: str) -> tuple[str, str]:
    """(Pillow format, extension) for ``--format``; ``same`` keeps the input's when Pillow can write it."""
    if fmt == "same":
        ext = src.suffix.lower().lstrip(".")
        if ext in SAVE_FORMATS:
            return SAVE_FORMATS[ext], src.suffix
        return "PNG", ".png"
    if fmt not in SAVE_FORMATS:
        raise ValueError(f"unknown format {fmt!r}")
    return SAVE_FORMATS[fmt], "." + ("jpg" if fmt == "jpeg" else fmt)


def encode_picture(pic: Picture, pil_format: str) -> Image.Image:
    im = Image.fromarray(pic.rgb, "RGB")
    if pic.alpha is not None and pil_format in ("PNG", "WEBP", "TIFF"):
        im.putalpha(Image.fromarray(pic.alpha, "L"))
    return im


def resize_short_side(arr: np.ndarray, size: int | None) -> np.ndarray:
    """(H, W[, C]) uint8 with its short side scaled to ``size`` (bicubic); unchanged when ``size`` is None."""
    if not size:
        return arr
    h, w = arr.shape[:2]
    scale = size / min(w, h)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    if (nw, nh) == (w, h):
        return arr
    return np.asarray(Image.fromarray(arr).resize((nw, nh), Image.BICUBIC))


def write_picture(pic: Picture, dst: Path, pil_format: str, quality: int = 95) -> None:
    """Encode and write atomically (see :func:`atomic_write_bytes`)."""
    import io

    im = encode_picture(pic, pil_format)
    kwargs = {}
    if pic.icc_profile:
        kwargs["icc_profile"] = pic.icc_profile
    if pil_format in ("JPEG", "WEBP"):
        kwargs["quality"] = quality
    buf = io.BytesIO()
    im.save(buf, format=pil_format, **kwargs)
    atomic_write_bytes(dst, buf.getbuffer())


def save_image_atomic(im: Image.Image, dst: Path, **kwargs) -> None:
    """Save a PIL image atomically; the format comes from ``dst``'s extension."""
    import io

    buf = io.BytesIO()
    fmt = SAVE_FORMATS.get(dst.suffix.lower().lstrip("."), "PNG")
    if dst.suffix.lower() == ".gif":
        fmt = "GIF"
    im.save(buf, format=fmt, **kwargs)
    atomic_write_bytes(dst, buf.getvalue())


def save_array(arr: np.ndarray, dst: Path) -> None:
    """(H, W, 3) uint8 saved atomically; the format comes from ``dst``'s extension."""
    save_image_atomic(Image.fromarray(arr), Path(dst))
