"""Temporally stable video translation: each output frame blended with the previous output frame,
carried along the input's own motion, wherever that motion is reliable.

A per-frame network flickers: small changes of the input (noise, a few gray levels of exposure)
move its strokes and its global brightness from frame to frame. The remedy here is the cheap,
weight-free half of blind video consistency (Lai et al., ECCV 2018; Bonneel et al., 2015):

1. input side, in input order (the decode thread, so beside the network): optical flow between
   consecutive input frames (OpenCV DIS), both ways; a pixel's motion is *reliable* when the two
   flows agree (forward-backward check) and it stays inside the frame;
2. the input's global light change: a gain and an offset that take the previous input frame,
   moved along the flow, to the current one (least squares on the reliable pixels' gray levels);
3. the previous input, moved along the flow and given that light change, must match the current
   one (no occlusion, no local change of light); where it does not, the motion is not reliable;
4. a scene cut (most of the frame unexplained by the previous one, and the picture itself changed)
   resets the state, so nothing of the previous shot is carried into the next;
5. output side, in the same order: the previous *stabilised* output moved along the flow,
   ``out = w * carried + (1 - w) * per_frame`` with ``w = strength * reliability`` (a recursive
   filter along motion trajectories), plus the same global brightness correction where the motion
   is unreliable, so new content does not flicker against what is carried over;
6. where the input's light keeps changing (a fade, a change of exposure: not the back and forth of
   exposure noise), the carried-over output is first given the change the network's own output
   made (gain and offset, fitted as in 2): a fade moves each pixel by less than the input-change
   test lets through, so without it the carried-over part kept 85 % of the previous, brighter
   frame and a fade to black lagged ~6 frames behind, ending 20+ levels gray. The output's own
   change, not the input's: a sketch's white paper stays white while the photo under it fades.

``Stabilizer(strength=0)`` and the first frame of every shot give the per-frame output unchanged.

Memory: each frame queued between the two sides carries its :class:`Motion`, 12 bytes a pixel
(``grid`` 2 x float32, ``weight`` float32), and ``translate_video`` holds up to 5 batches + 1 such
frames (its queue of 4 batches, the batch being gathered, one waiting to enter the queue): 25 MB a
1920x1080 frame, 150 MB at the CPU's batch of 1, 1 GB at a GPU's batch of 8; besides the frames
themselves (3 bytes a pixel each) and the stabiliser's own state (the previous input, its gray
copy, the previous stabilised and per-frame outputs, pixel coordinates: 18 bytes a pixel, once).
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
LIGHT_SAMPLES = 65536  # pixels the light change is fitted on (a regular subsample of larger frames)
LIGHT_MIN_SHARE = 0.1  # ...of which at least this share reliable, else no light change is assumed
LIGHT_FLAT_VAR = 4.0  # gray levels^2: below about this contrast, the gain tends to 1 (an offset alone)
LIGHT_MAX_GAIN = 4.0
LIGHT_FRAMES = 6  # the input's light change is judged over this many frames (3: a 5 s fade still lagged)...
LIGHT_LO, LIGHT_HI = 4.0, 5.0  # ...gray levels moved: none of the output's own change carried over, all of it


@dataclass
class Motion:
    """What the input side found for one frame: ``grid`` (H, W, 2) float32 where each output pixel
    comes from in the previous frame, ``weight`` (H, W) float32 in [0, strength]; both None for the
    first frame of a shot (no blending). ``cut``: this frame starts a new shot. ``light``: the share
    (0-1) of the output's global light change the carried-over output is given, the input's light
    having changed (:func:`light_share`)."""

    index: int
    grid: np.ndarray | None = None
    weight: np.ndarray | None = None
    cut: bool = False
    light: float = 0.0  # how much of the output's own global light change to carry over (the input's light changed)


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


def light_change(carried: np.ndarray, cur: np.ndarray, ok: np.ndarray) -> tuple[float, float]:
    """(gain, offset) with ``cur ~ gain * carried + offset`` over the pixels ``ok`` (gray levels of
    the previous frame carried along the motion, and of the current one): least squares, then again
    without the pixels it leaves more than CHANGE_LO levels off (what moved or changed on its own).
    Pixels saturated in the previous frame say nothing of the change; a frame with too little
    contrast for a gain gets an offset alone. (1, 0) where too few pixels are reliable."""
    step = max(1, int(np.sqrt(ok.size / LIGHT_SAMPLES)))  # a regular subsample: plenty for two numbers
    x, y = carried[::step, ::step].astype(np.float32), cur[::step, ::step].astype(np.float32)
    use = ok[::step, ::step] & (x < 255)  # a current pixel at 255 is kept: a fade to white ends there
    gain, offset = 1.0, 0.0
    for _ in range(2):
        if use.sum() < LIGHT_MIN_SHARE * use.size:
            return 1.0, 0.0
        xs, ys = x[use], y[use]
        mx, my = float(xs.mean()), float(ys.mean())
        var, cov = float(((xs - mx) ** 2).mean()), float(((xs - mx) * (ys - my)).mean())
        # toward gain 1 where the carried frame has little contrast (var ~ LIGHT_FLAT_VAR or less)
        gain = float(np.clip((cov + LIGHT_FLAT_VAR) / (var + LIGHT_FLAT_VAR), 0.0, LIGHT_MAX_GAIN))
        offset = my - gain * mx
        use &= np.abs(gain * x + offset - y) <= CHANGE_LO
    return gain, offset


def light_share(steps: list[tuple[float, float, np.ndarray]]) -> float:
    """How much of the output's global light change to carry over, from the input's last light
    changes ``steps`` (gain, offset, the 64-px thumbnail of the frame it started from), oldest
    first: their composite change, in gray levels moved on average. Exposure noise goes back and
    forth (+-2 levels a frame: at most 4 over any number of frames), and the output's global changes
    then are the network's own flicker, which the blend is there to remove: none of it is carried.
    A fade or a change of exposure keeps going (a 1 s fade from mid-gray: 5 levels a frame; a 5 s
    one: 1 a frame, 6 over LIGHT_FRAMES): the output is to follow it, by as much as the network's
    own output does (a sketch's white paper stays white while the photo under it fades)."""
    if not steps:
        return 0.0
    gain, offset = 1.0, 0.0
    for g, o, _ in steps:
        gain, offset = g * gain, g * offset + o
    moved = float(np.abs((gain - 1.0) * steps[0][2].astype(np.float32) + offset).mean())
    return float(np.clip((moved - LIGHT_LO) / (LIGHT_HI - LIGHT_LO), 0.0, 1.0))


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
        self.prev_out: np.ndarray | None = None  # the previous stabilised output
        self.prev_own: np.ndarray | None = None  # the previous per-frame output
        self.light_steps: list = []  # the input's last light changes within this shot (light_share)
        self.cuts: list[int] = []  # 0-based indices of the frames that start a new shot
        self._pixels = None  # (H, W, 2) float32 pixel coordinates, kept for the frame size

    # ------------------------------------------------------------------ input side
    def motion(self, frame: np.ndarray) -> Motion:
        """(H, W, 3) uint8 input frame -> where and how much to carry the previous output over."""
        index, self.index = self.index, self.index + 1
        g = _gray(frame)
        pic = picture(g)
        prev, self.prev = self.prev, (frame, g, pic)
        steps, self.light_steps = self.light_steps, []  # kept again only where this frame carries over
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
        # 3. the input's global light change (a fade, an exposure change), fitted where the motion is consistent
        gain, offset = light_change(remap(p_gray, grid), g, ok)
        # 4. the previous input, moved along the flow and given that change, looks like the current one
        #    (no occlusion, no local change of light)
        diff = change(remap(p_rgb, grid).astype(np.float32) * gain + offset, frame)
        weight = np.clip((CHANGE_HI - diff) / (CHANGE_HI - CHANGE_LO), 0.0, 1.0) * ok
        weight = cv2.erode(weight, np.ones((3, 3), np.uint8))  # no carrying over right at a motion boundary
        reliable = float((weight > 0.5).mean())
        if reliable < CUT_RELIABLE and picture_changed(p_pic, pic):
            return Motion(index, cut=True)
        self.light_steps = [*steps, (gain, offset, p_pic[0])][-LIGHT_FRAMES:]
        return Motion(index, grid, weight * np.float32(self.strength), light=light_share(self.light_steps))

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
        prev_own, self.prev_own = self.prev_own, out
        if m.grid is None or prev is None or prev.shape != out.shape:
            return out
        warped = remap(prev, m.grid).astype(np.float32)
        if m.light > 0:  # 6. the input's light is changing: the carried-over part changes as the network's own output did
            gain, offset = light_change(remap(_gray(prev_own), m.grid), _gray(out), m.weight > 0.5 * self.strength)
            warped = warped * np.float32(1.0 + m.light * (gain - 1.0)) + np.float32(m.light * offset)
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
