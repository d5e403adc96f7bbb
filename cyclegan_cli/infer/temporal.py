"""Warping error: how much a video changes from frame to frame beyond what its motion explains.

For each pair of consecutive frames, the optical flow of the *input* video (Farneback, so not the
DIS flow the stabiliser uses) carries the previous frame onto the current one; the error is the
mean absolute difference (gray levels, 0-255, over the three channels) between the current frame
and the carried-over previous one, over the pixels whose motion is reliable (the forward and
backward flows agree, and the motion stays inside the frame), averaged over all pairs. Measured on
the output video it is its flicker plus whatever the input itself changes; measured on the input
the same way, the latter alone; the difference is what the translation adds.

A pair across a scene cut measures nothing (no motion carries one shot onto the next): it is left
out, for the input and the output alike, and the frames that start a new shot are listed. A cut is
a pair where less than ``CUT_EXPLAINED`` of the frame is explained by the previous input frame (its
motion is reliable and the previous frame carried along it matches, within ``CUT_MATCH`` gray
levels) and the picture itself changed (gray histogram or 64-px thumbnail).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable

import cv2
import numpy as np

from cyclegan_cli.errors import UsageError
from cyclegan_cli.infer.stabilize import change, consistent_motion, picture, picture_changed, remap

Flow = Callable[[np.ndarray, np.ndarray], np.ndarray]
CUT_EXPLAINED, CUT_MATCH = 0.3, 16.0  # real clips: cuts 0.01-0.18 of the frame explained, other pairs 0.45 and more


def _flow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(H, W, 2): for each pixel of ``a``, where it is in ``b``."""
    return cv2.calcOpticalFlowFarneback(a, b, None, pyr_scale=0.5, levels=4, winsize=15, iterations=3,
                                        poly_n=5, poly_sigma=1.2, flags=0)


def reliable_grid(prev_gray: np.ndarray, gray: np.ndarray, flow: Flow | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(grid (H, W, 2) float32: where each pixel of ``gray`` was in ``prev_gray``, mask (H, W) bool).
    ``flow``: another dense flow method instead of Farneback: ``flow(a, b)`` (gray uint8 frames) ->
    (H, W, 2) float32 with a(y, x) ~ b(y + flow[..., 1], x + flow[..., 0]), as OpenCV's methods."""
    h, w = gray.shape
    flow = flow or _flow
    pixels = np.dstack(np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32)))
    return consistent_motion(flow(gray, prev_gray), flow(prev_gray, gray), pixels)


def is_cut(carried: np.ndarray, cur: np.ndarray, mask: np.ndarray, prev_gray: np.ndarray, gray: np.ndarray) -> bool:
    """Whether an input pair straddles a scene cut: ``carried``, the previous RGB frame carried along
    the motion; ``cur``, the current one; ``mask``, where the motion is reliable; the two gray frames."""
    if float((mask & (change(carried, cur) < CUT_MATCH)).mean()) >= CUT_EXPLAINED:
        return False
    return picture_changed(picture(prev_gray), picture(gray))


def pair_error(carried: np.ndarray, cur: np.ndarray, mask: np.ndarray) -> float | None:
    """Mean |cur - the previous frame carried along the motion| over ``mask`` (gray levels), None
    when the mask is empty."""
    if not mask.any():
        return None
    return float(np.abs(cur.astype(np.float32) - carried.astype(np.float32))[mask].mean())


def warping_error(inputs: Iterable[np.ndarray], outputs: Iterable[np.ndarray],
                  on_progress: Callable[[int], None] | None = None, flow: Flow | None = None) -> dict:
    """Frames of an input video and of its translation (same count) -> {"frames", "pairs",
    "cuts", "output", "input", "added"} (None for errors when no pair has reliable motion; "cuts":
    0-based indices of the frames that start a new shot, their pairs left out). Outputs of
    another size than their inputs are compared with the inputs resized to them. ``flow``: see
    :func:`reliable_grid`."""
    prev_in = prev_out = prev_gray = None
    err_out, err_in, cuts, n = [], [], [], 0
    it_in, it_out = iter(inputs), iter(outputs)
    while True:
        a, b = next(it_in, None), next(it_out, None)
        if a is None or b is None:
            if a is not None or b is not None:
                more = "input" if a is not None else "output"
                rest = 1 + sum(1 for _ in (it_in if a is not None else it_out))
                raise UsageError(f"the {more} video has {rest} frame(s) more than the other: "
                                 "give the input the output was made from (cut the same way)")
            break
        n += 1
        if a.shape[:2] != b.shape[:2]:
            a = cv2.resize(a, (b.shape[1], b.shape[0]), interpolation=cv2.INTER_AREA)
        gray = cv2.cvtColor(a, cv2.COLOR_RGB2GRAY)
        if prev_gray is not None and prev_gray.shape == gray.shape:
            grid, mask = reliable_grid(prev_gray, gray, flow)
            carried_in = remap(prev_in, grid)  # once, for the cut test and the input's error
            if is_cut(carried_in, a, mask, prev_gray, gray):
                cuts.append(n - 1)
                mask = np.zeros_like(mask)
            eo, ei = pair_error(remap(prev_out, grid), b, mask), pair_error(carried_in, a, mask)
            if eo is not None:
                err_out.append(eo)
                err_in.append(ei)
        prev_in, prev_out, prev_gray = a, b, gray
        if on_progress:
            on_progress(n)
    out = float(np.mean(err_out)) if err_out else None
    inp = float(np.mean(err_in)) if err_in else None
    return {"frames": n, "pairs": len(err_out), "cuts": cuts, "output": out, "input": inp,
            "added": None if out is None else out - inp}


def video_warping_error(input_video: Path, output_video: Path, on_progress: Callable[[int], None] | None = None) -> dict:
    """:func:`warping_error` of two video files, with their paths in the result."""
    from cyclegan_cli.data.video import read_frames

    result = warping_error(read_frames(Path(input_video)), read_frames(Path(output_video)), on_progress)
    return {"input_video": str(input_video), "output_video": str(output_video), **result}
