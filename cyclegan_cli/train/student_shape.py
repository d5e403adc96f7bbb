"""Choosing a distilled student's shape by the time it takes on this CPU, not by its MACs.

Fewer MACs is not less time: a depthwise-separable student can run no faster than its teacher on
oneDNN (mit-han-lab/gan-compression issue #62), and the full-resolution layers of a small network
cost more per MAC than its residual blocks. So every candidate that *could* be fast enough (its MAC
ratio to the teacher at least the speed-up asked for) is timed against the teacher, in this process
and the way ``ganctl translate`` runs it, largest first, and the first one that meets the speed-up
(with a margin) is the student: the most capacity the time budget allows. When a minute of timing
has found none, the rest of the list is bisected.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

WIDTHS = (8, 12, 16, 20, 24, 32, 48)
BLOCKS = (2, 3, 4, 6, 9)
DOWNS = (1, 2, 3)
# timed largest first for this long, then the rest bisected: a few seconds a shape at 512 px on 2 cores
TIMING_BUDGET_S = 60.0
# a student must measure this much above the speed-up asked for, so that the user's runs meet the
# figure and not only the chooser's: two best-of-3 timings of one network on a quiet 2-core machine
# differ by up to about this much (a busy machine moves them far more: time a student when quiet)
HEADROOM = 1.1


@dataclass
class Candidate:
    ngf: int
    n_blocks: int
    n_down: int
    conv: str
    entry: str = "conv"
    up: str = "bilinear"
    macs: int = 0  # at the timing size
    ms: float | None = None  # measured, None when not timed
    speedup: float | None = None

    def args(self) -> dict:
        return {"input_nc": 3, "output_nc": 3, "ngf": self.ngf, "n_blocks": self.n_blocks, "n_down": self.n_down,
                "conv": self.conv, "entry": self.entry, "up": self.up}

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
    timer: str = ""  # how the shapes were timed: "onnxruntime" or "torch" (what translate runs by default)

    def to_dict(self) -> dict:
        return asdict(self)


def translate_timer() -> Callable:
    """A timer for networks as ``ganctl translate`` runs them in fp32 on this CPU by default: through
    ONNX Runtime where the onnx extra is installed (``--backend auto``), else in torch. The two rank
    networks differently (ONNX Runtime is the faster for the official generator, torch for some
    narrow ones), so a student is timed the way it will run."""
    from cyclegan_cli.infer.backends import first_missing

    return time_forward if first_missing() else time_onnx


def time_onnx(net, size: int, repeats: int = 3) -> float:
    """:func:`time_forward` through ONNX Runtime: the network exported as translate's backend
    exports it, to a temporary file."""
    import tempfile

    import numpy as np

    from cyclegan_cli.infer.backends import cpu_session, export_onnx

    with tempfile.TemporaryDirectory(prefix="ganctl-time-") as d:
        path = export_onnx(net.cpu().eval(), Path(d) / "net.onnx")
        session = cpu_session(path)
    x = {session.get_inputs()[0].name: np.random.default_rng(0).standard_normal((1, 3, size, size), dtype=np.float32)}
    session.run(None, x)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        session.run(None, x)
        best = min(best, time.perf_counter() - t0)
    return best * 1000.0


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


def teacher_up(teacher) -> str:
    """The student up-samples as its teacher does: ``transpose`` when the teacher has transposed
    convolutions (CycleGAN's ResNet, pix2pix's U-Net), else ``bilinear`` (CUT's antialiased one)."""
    from torch import nn

    return "transpose" if any(isinstance(m, nn.ConvTranspose2d) for m in teacher.modules()) else "bilinear"


def describe(args: dict) -> str:
    """A student's shape in words, as ``runs show`` prints it."""
    entry = args.get("entry", "conv")
    factor = 2 ** (args["n_down"] + (entry == "unshuffle"))
    how = "pixel-unshuffle entry" if entry == "unshuffle" else "full-resolution 7x7 entry"
    up = ", transposed-conv up-sampling" if args.get("up") == "transpose" else ""
    blocks = f"{args['n_blocks']} block" + ("" if args["n_blocks"] == 1 else "s")
    return f"width {args['ngf']}, {blocks} at 1/{factor} size, {args['conv']}, {how}{up}"


def candidates(width=None, blocks=None, down=None, conv=None, entry=None, up="bilinear") -> list[Candidate]:
    from cyclegan_cli.models.student import CONVS, ENTRIES
    from cyclegan_cli.train.options import student_grid_ok

    out = []
    for w, b, d, c, e in itertools.product((width,) if width else WIDTHS, (blocks,) if blocks else BLOCKS,
                                           (down,) if down else DOWNS, (conv,) if conv else CONVS,
                                           (entry,) if entry else ENTRIES):
        if student_grid_ok(d, e):
            out.append(Candidate(w, b, d, c, e, up))
    return out


def choose_student(teacher, speedup: float, *, width=None, blocks=None, down=None, conv=None, entry=None,
                   up: str | None = None, size: int = 512, timer: Callable | None = None, on_notice=None,
                   budget_s: float = TIMING_BUDGET_S, clock: Callable = time.monotonic) -> Choice:
    """The largest student (by MACs) whose measured fp32 time at ``size`` px is at most the teacher's
    divided by ``speedup`` (with :data:`HEADROOM`); ``width``/``blocks``/``down``/``conv``/``entry``
    fix those knobs, and ``up`` is the teacher's kind of up-sampling unless given. When every knob is
    fixed, that student is timed and kept whatever its speed-up. ``timer(net, size) -> ms``: by
    default as ``ganctl translate`` runs a network (:func:`translate_timer`)."""
    from cyclegan_cli.models import build
    from cyclegan_cli.models.cost import macs

    timer = timer or translate_timer()
    say = on_notice or (lambda msg: None)
    # MACs grow with the area exactly (convolutions only): counted at a small size on every network's
    # grid (a U-Net-7 needs 2 px at its innermost layer: 256), then scaled
    base = max(64, 2 * getattr(teacher, "size_multiple", 4))
    scale = (size / base) ** 2
    teacher_macs = round(macs(teacher, base, base) * scale)
    pool = candidates(width, blocks, down, conv, entry, up or teacher_up(teacher))
    if not pool:
        from cyclegan_cli.errors import UsageError

        raise UsageError(f"no student shape has down {down} with entry {entry or 'unshuffle'}: its blocks must run "
                         "at 1/4 to 1/8 size")
    for c in pool:
        c.macs = round(macs(build("student_generator", **c.args()), base, base) * scale)
    fixed = len(pool) == 1
    need = speedup if fixed else speedup * HEADROOM
    pool.sort(key=lambda c: -c.macs)
    hopeful = pool if fixed else [c for c in pool if c.macs * speedup <= teacher_macs]
    if not hopeful:  # nothing can be that fast by MACs: time the cheapest few anyway
        hopeful = sorted(pool, key=lambda c: c.macs)[:4][::-1]
    say(f"timing the teacher and {'the student shape' if fixed else f'student shapes (of {len(hopeful)} that could be fast enough)'} "
        f"at {size} px")
    teacher_ms = timer(teacher.eval(), size)
    timed: list[Candidate] = []

    def fast_enough(c: Candidate) -> bool:
        if c.ms is None:
            c.ms = timer(build("student_generator", **c.args()).eval(), size)
            c.speedup = teacher_ms / c.ms
            timed.append(c)
        return c.speedup >= need

    # 1. largest first, until one is fast enough or the timing budget is spent
    t0, chosen, bisected = clock(), None, False
    for c in hopeful:
        if fast_enough(c) or fixed:
            chosen = c
            break
        if clock() - t0 > budget_s:
            break
    # 2. budget spent: the largest fast-enough shape of each family (convolutions, down-samplings,
    #    entry), by bisection: time follows MACs within a family, not across families (a depthwise
    #    shape is slower than a dense one of its MACs). Only shapes larger than the best found so
    #    far are searched.
    if chosen is None and any(c.ms is None for c in hopeful):
        bisected = True
        families: dict[tuple, list[Candidate]] = {}
        for c in hopeful:  # MACs descending within each family, as in hopeful
            families.setdefault((c.conv, c.n_down, c.entry), []).append(c)
        for members in sorted(families.values(), key=lambda m: -m[0].macs):
            if chosen is not None:
                members = [c for c in members if c.macs > chosen.macs]
            found = _bisect(members, fast_enough)
            if found is not None and (chosen is None or found.macs > chosen.macs):
                chosen = found
    margin = f"at least {speedup * HEADROOM:.3g}x ({speedup:g}x and {round((HEADROOM - 1) * 100)}% headroom)"
    if chosen is None:
        chosen = max(timed, key=lambda c: c.speedup)
        reason = (f"no timed candidate ({len(timed)} of {len(hopeful)}) ran {margin} faster; the fastest timed one "
                  f"({chosen.speedup:.1f}x) was taken")
    elif fixed:
        reason = f"the shape asked for: {chosen.speedup:.1f}x faster than the teacher"
    else:
        larger = sum(1 for c in timed if c.macs > chosen.macs)
        how = (f"after a minute of timing, by bisection within each family of shapes ({len(timed)} of {len(hopeful)} "
               "timed)" if bisected else f"timed largest first ({len(timed)} of {len(hopeful)})")
        reason = (f"the largest shape found that runs {margin} faster than the teacher at {size} px, {how}: "
                  f"measured {chosen.speedup:.1f}x; {larger} larger one(s) timed and too slow")
    return Choice(student=chosen.args(), speedup=round(chosen.speedup, 2), teacher_ms=round(teacher_ms, 1),
                  student_ms=round(chosen.ms, 1), teacher_macs=teacher_macs, student_macs=chosen.macs, size=size,
                  reason=reason, timed=[[c.label(), round(c.macs / 1e9, 2), round(c.ms, 1), round(c.speedup, 2)]
                                        for c in timed],
                  timer={"time_onnx": "onnxruntime", "time_forward": "torch"}.get(getattr(timer, "__name__", ""), "given"))


def _bisect(members: list[Candidate], fast_enough: Callable) -> Candidate | None:
    """The largest fast-enough shape of ``members`` (MACs descending; time assumed to fall with
    MACs), found by bisection; shapes already timed bound the search."""
    lo, hi = -1, len(members)  # members[: lo + 1] too slow; members[hi:] fast enough
    for j, c in enumerate(members):
        if c.ms is not None:
            if fast_enough(c):
                hi = min(hi, j)
            else:
                lo = max(lo, j)
    if hi <= lo:  # a fast one above a slow one (timing noise): search below the slow one
        hi = len(members)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if fast_enough(members[mid]) else (mid, hi)
    return members[hi] if hi < len(members) and fast_enough(members[hi]) else None
