"""Temporally stable video translation: each output frame blended with the previous output frame,
carried along the input's own motion, wherever that motion is reliable.

A per-frame network flickers: small changes of the input (noise, a few gray levels of exposure)
move its strokes and its global brightness from frame to frame. The remedy here is the cheap,
weight-free half of blind video consistency (Lai et al., ECCV 2018; Bonneel et al., 2015):

1. input side, in input order (the decode thread, so beside the network): optical flow between
   consecutive input frames (OpenCV DIS), both ways; a pixel's motion is *reliable* when the two
   flows agree (forward-backward check), it stays inside the frame, and the previous input frame,
   moved along it, matches the current one (no occlusion, no change of light);
2. a scene cut (most of the frame unexplained by the previous one, and the picture itself changed)
   resets the state, so nothing of the previous shot is carried into the next;
3. output side, in the same order: the previous *stabilised* output moved along the flow,
   ``out = w * warped + (1 - w) * per_frame`` with ``w = strength * reliability`` (a recursive
   filter along motion trajectories), plus the same global brightness correction where the motion
   is unreliable, so new content does not flicker against what is carried over.

``Stabilizer(strength=0)`` and the first frame of every shot give the per-frame output unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np

STRENGTH = 0.85  # the share of the carried-over frame where motion is reliable (0.8 and 0.9 tried, docs/benchmarks.md)
FB_ALPHA, FB_BETA = 0.01, 0.5  # forward-backward check (Sundaram et al. 2010): |f + b|^2 <= a(|f|^2 + |b|^2) + b
CHANGE_LO, CHANGE_HI = 8.0, 24.0  # input difference after warping (gray levels): reliable below, not above
CUT_RELIABLE = 0.3  # a cut: less than this share of the frame explained by the previous one...
CUT_HIST, CUT_MAD = 0.25, 20.0  # ...and the gray histogram (Bhattacharyya) or the thumbnail changed
MIN_SIDE = 16  # DIS needs a few of its 8-px patches; smaller frames go as they are
# OpenCV's DIS crashes (a segfault, OpenCV 5.0) on small or very wide frames, e.g. 20x300: it gets
# frames padded to a short side of at least 64 px and a quarter of the long side (probed: every
# short side 16-64 px with long sides up to 1300 px, and 64-200 px with aspects up to 4)
FLOW_MIN_SIDE, FLOW_MAX_ASPECT = 64, 4


@dataclass
class Motion:
    """What the input side found for one frame: ``grid`` (H, W, 2) float32 where each output pixel
    comes from in the previous frame, ``weight`` (H, W) float32 in [0, strength]; both None for the
    first frame of a shot (no blending). ``cut``: this frame starts a new shot."""

    index: int
    grid: np.ndarray | None = None
    weight: np.ndarray | None = None
    cut: bool = False


def _gray(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) if rgb.ndim == 3 else rgb


def _thumb(gray: np.ndarray) -> np.ndarray:
    h, w = gray.shape
    s = 64 / max(h, w)
    return cv2.resize(gray, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)


def _hist(thumb: np.ndarray) -> np.ndarray:
    return cv2.calcHist([thumb], [0], None, [32], [0, 256])


def picture(gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(64-px thumbnail, gray histogram) of a frame: what :func:`picture_changed` compares."""
    th = _thumb(gray)
    return th, _hist(th)


def picture_changed(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> bool:
    """Whether two frames' :func:`picture` differ as across a scene cut: the gray histogram
    (Bhattacharyya distance) or the thumbnail (mean abs. difference) changed."""
    return (cv2.compareHist(a[1], b[1], cv2.HISTCMP_BHATTACHARYYA) > CUT_HIST
            or float(np.abs(a[0].astype(np.float32) - b[0].astype(np.float32)).mean()) > CUT_MAD)


def consistent_motion(back: np.ndarray, fwd: np.ndarray, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """From the backward flow (current frame -> previous) and the forward one (previous ->
    current), (H, W, 2) each, and the pixel coordinates: (grid, where each pixel of the current frame
    was in the previous one; ok, (H, W) bool: the two flows agree there, read where the backward one
    points, and it lies inside the previous frame)."""
    h, w = back.shape[:2]
    grid = pixels + back
    fwd_there = remap(fwd, grid)
    ok = ((back + fwd_there) ** 2).sum(-1) <= FB_ALPHA * ((back**2).sum(-1) + (fwd_there**2).sum(-1)) + FB_BETA
    ok &= (grid[..., 0] >= 0) & (grid[..., 0] <= w - 1) & (grid[..., 1] >= 0) & (grid[..., 1] <= h - 1)
    return grid, ok


def padded_for_dis(h: int, w: int) -> tuple[int, int]:
    """(extra rows, extra columns) that make an H x W frame safe for DIS."""
    return (max(0, FLOW_MIN_SIDE - h, -(-w // FLOW_MAX_ASPECT) - h),
            max(0, FLOW_MIN_SIDE - w, -(-h // FLOW_MAX_ASPECT) - w))


def remap(img: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """``img`` carried along ``grid`` (where each output pixel comes from), bilinear, edges repeated."""
    return cv2.remap(img, grid, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def change(carried: np.ndarray, cur: np.ndarray) -> np.ndarray:
    """(H, W) float32: how much the input frame ``cur`` differs from the previous one carried along
    the motion (gray levels, the largest channel), averaged over 3x3: codec noise is per pixel, a
    real change (occlusion, light) covers an area."""
    return cv2.blur(np.abs(carried.astype(np.float32) - cur.astype(np.float32)).max(-1), (3, 3))


class Stabilizer:
    """The state of one video. Call :meth:`motion` with every input frame in order (any thread),
    and :meth:`apply` with every per-frame output and its Motion in the same order (one thread)."""

    def __init__(self, strength: float = STRENGTH, on_cut: Callable[[int], None] | None = None):
        self.strength = float(strength)
        self.on_cut = on_cut or (lambda index: None)
        self.dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
        self.index = 0
        self.prev: tuple | None = None  # (rgb, gray, picture) of the previous input frame
        self.prev_out: np.ndarray | None = None
        self.cuts: list[int] = []  # 0-based indices of the frames that start a new shot
        self._pixels = None  # (H, W, 2) float32 pixel coordinates, kept for the frame size

    # ------------------------------------------------------------------ input side
    def motion(self, frame: np.ndarray) -> Motion:
        """(H, W, 3) uint8 input frame -> where and how much to carry the previous output over."""
        index, self.index = self.index, self.index + 1
        g = _gray(frame)
        pic = picture(g)
        prev, self.prev = self.prev, (frame, g, pic)
        if prev is None or self.strength <= 0:
            return Motion(index)
        p_rgb, p_gray, p_pic = prev
        if p_gray.shape != g.shape:  # a size change mid-stream: nothing to carry over
            return Motion(index, cut=True)
        h, w = g.shape
        if min(h, w) < MIN_SIDE:
            return Motion(index)
        back = self._flow(g, p_gray)  # (H, W, 2): current pixel -> its place in the previous frame
        fwd = self._flow(p_gray, g)
        if self._pixels is None or self._pixels.shape[:2] != (h, w):
            self._pixels = np.dstack(np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32)))
        # 1, 2. the two flows agree, and the pixel comes from inside the previous frame
        grid, ok = consistent_motion(back, fwd, self._pixels)
        # 3. the previous input, moved along the flow, looks like the current one (no occlusion or change of light)
        diff = change(remap(p_rgb, grid), frame)
        weight = np.clip((CHANGE_HI - diff) / (CHANGE_HI - CHANGE_LO), 0.0, 1.0) * ok
        weight = cv2.erode(weight, np.ones((3, 3), np.uint8))  # no carrying over right at a motion boundary
        reliable = float((weight > 0.5).mean())
        if reliable < CUT_RELIABLE and picture_changed(p_pic, pic):
            return Motion(index, cut=True)
        return Motion(index, grid, weight * np.float32(self.strength))

    def _flow(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        h, w = a.shape
        dh, dw = padded_for_dis(h, w)
        if dh or dw:
            a, b = (cv2.copyMakeBorder(x, 0, dh, 0, dw, cv2.BORDER_REFLECT) for x in (a, b))
        return np.ascontiguousarray(self.dis.calc(a, b, None)[:h, :w])

    # ------------------------------------------------------------------ output side
    def apply(self, out: np.ndarray, m: Motion) -> np.ndarray:
        """The per-frame output ``out`` (H, W, 3) uint8 -> the stabilised frame."""
        if m.cut:
            self.cuts.append(m.index)
            self.on_cut(m.index)
        prev, self.prev_out = self.prev_out, out
        if m.grid is None or prev is None or prev.shape != out.shape:
            return out
        warped = remap(prev, m.grid).astype(np.float32)
        cur = out.astype(np.float32)
        w = m.weight[..., None]
        # the brightness the carried-over part has, given to the new parts too (global flicker)
        total = float(m.weight.sum())
        if total > 0.05 * m.weight.size * self.strength:
            offset = ((warped - cur) * w).sum((0, 1)) / total
            cur += offset * self.strength * (1.0 - w / self.strength)
        res = np.clip(np.rint(cur + w * (warped - cur)), 0, 255).astype(np.uint8)
        self.prev_out = res
        return res
