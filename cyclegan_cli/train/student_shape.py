"""Choosing a distilled student's shape by the time it takes on this CPU, not by its MACs.

Fewer MACs is not less time: a depthwise-separable student can run no faster than its teacher on
oneDNN (mit-han-lab/gan-compression issue #62), and the full-resolution layers of a small network
cost more per MAC than its residual blocks. So every candidate that *could* be fast enough (its MAC
ratio to the teacher at least the speed-up asked for) is timed against the teacher, in this process,
largest first, and the first one that meets the speed-up is the student: the most capacity the time
budget allows.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

WIDTHS = (8, 12, 16, 20, 24, 32, 48)
BLOCKS = (2, 3, 4, 6, 9)
DOWNS = (1, 2, 3)
MAX_TIMED = 16  # candidates timed at most (a few seconds each at 512 px on 2 cores)


@dataclass
class Candidate:
    ngf: int
    n_blocks: int
    n_down: int
    conv: str
    entry: str = "conv"
    macs: int = 0  # at the timing size
    ms: float | None = None  # measured, None when not timed
    speedup: float | None = None

    def args(self) -> dict:
        return {"input_nc": 3, "output_nc": 3, "ngf": self.ngf, "n_blocks": self.n_blocks, "n_down": self.n_down,
                "conv": self.conv, "entry": self.entry}

    def label(self) -> str:
        return describe(self.args())


@dataclass
class Choice:
    """The student chosen and the evidence: what ``runs show`` prints."""

    student: dict  # student_generator args
    speedup: float  # measured, teacher ms / student ms
    teacher_ms: float
    student_ms: float
    teacher_macs: int
    student_macs: int
    size: int
    reason: str
    timed: list = field(default_factory=list)  # [label, GMAC, ms, speed-up] per timed candidate

    def to_dict(self) -> dict:
        return asdict(self)


def time_forward(net, size: int, repeats: int = 3) -> float:
    """Milliseconds of one fp32 forward pass on a (1, 3, size, size) image: the best of ``repeats``
    after a warm-up (the best is the least disturbed by whatever else the machine is doing)."""
    import torch

    x = torch.randn(1, 3, size, size)
    with torch.inference_mode():
        net(x)
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            net(x)
            best = min(best, time.perf_counter() - t0)
    return best * 1000.0


def describe(args: dict) -> str:
    """A student's shape in words, as ``runs show`` prints it."""
    entry = args.get("entry", "conv")
    factor = 2 ** (args["n_down"] + (entry == "unshuffle"))
    how = "pixel-unshuffle entry" if entry == "unshuffle" else "full-resolution 7x7 entry"
    return f"width {args['ngf']}, {args['n_blocks']} blocks at 1/{factor} size, {args['conv']}, {how}"


def candidates(width=None, blocks=None, down=None, conv=None, entry=None) -> list[Candidate]:
    from cyclegan_cli.models.student import CONVS, ENTRIES
    from cyclegan_cli.train.options import student_grid_ok

    out = []
    for w, b, d, c, e in itertools.product((width,) if width else WIDTHS, (blocks,) if blocks else BLOCKS,
                                           (down,) if down else DOWNS, (conv,) if conv else CONVS,
                                           (entry,) if entry else ENTRIES):
        if student_grid_ok(d, e):
            out.append(Candidate(w, b, d, c, e))
    return out


def choose_student(teacher, speedup: float, *, width=None, blocks=None, down=None, conv=None, entry=None,
                   size: int = 512,
                   timer: Callable | None = None, on_notice=None) -> Choice:
    """The largest student (by MACs) whose measured fp32 time at ``size`` px is at most the teacher's
    divided by ``speedup``; ``width``/``blocks``/``down``/``conv`` fix those knobs. When every knob
    is fixed, that student is timed and kept whatever its speed-up. ``timer(net, size) -> ms``."""
    from cyclegan_cli.models import build
    from cyclegan_cli.models.cost import macs

    timer = timer or time_forward
    say = on_notice or (lambda msg: None)
    # MACs grow with the area exactly (convolutions only): counted at a small size on every network's
    # grid (a U-Net-7 needs 2 px at its innermost layer: 256), then scaled
    base = max(64, 2 * getattr(teacher, "size_multiple", 4))
    scale = (size / base) ** 2
    teacher_macs = round(macs(teacher, base, base) * scale)
    pool = candidates(width, blocks, down, conv, entry)
    for c in pool:
        c.macs = round(macs(build("student_generator", **c.args()), base, base) * scale)
    fixed = len(pool) == 1
    pool.sort(key=lambda c: -c.macs)
    hopeful = pool if fixed else [c for c in pool if c.macs * speedup <= teacher_macs]
    if not hopeful:  # nothing can be that fast by MACs: time the cheapest few anyway
        hopeful = sorted(pool, key=lambda c: c.macs)[:4][::-1]
    n = min(len(hopeful), MAX_TIMED)
    say(f"timing the teacher and {'the student shape' if n == 1 else f'up to {n} of {len(pool)} student shapes'} "
        f"at {size} px")
    teacher_ms = timer(teacher.eval(), size)
    chosen, timed = None, []
    for c in hopeful[:MAX_TIMED]:
        c.ms = timer(build("student_generator", **c.args()).eval(), size)
        c.speedup = teacher_ms / c.ms
        timed.append(c)
        if fixed or c.speedup >= speedup:
            chosen = c
            break
    if chosen is None:
        chosen = max(timed, key=lambda c: c.speedup)
        reason = (f"no candidate reached {speedup:g}x; the fastest timed one ({chosen.speedup:.1f}x) was taken")
    elif fixed:
        reason = f"the shape asked for: {chosen.speedup:.1f}x faster than the teacher"
    else:
        skipped = sum(1 for c in timed if c is not chosen)
        reason = (f"the largest of {len(pool)} shapes that runs {speedup:g}x faster than the teacher at {size} px "
                  f"(measured {chosen.speedup:.1f}x; {skipped} larger one(s) timed and too slow)")
    return Choice(student=chosen.args(), speedup=round(chosen.speedup, 2), teacher_ms=round(teacher_ms, 1),
                  student_ms=round(chosen.ms, 1), teacher_macs=teacher_macs, student_macs=chosen.macs, size=size,
                  reason=reason, timed=[[c.label(), round(c.macs / 1e9, 2), round(c.ms, 1), round(c.speedup, 2)]
                                        for c in timed])
