"""int8 on the CPU: a generator's inner layers quantized by ONNX Runtime (static, QDQ format).

What was measured (``benchmarks/run.py --only int8``, AMD EPYC with AVX2 and no VNNI) decided each
choice here:

- Which layers: the first and the last three convolutions stay fp32 (for a ResNet generator:
  the 7x7 input conv and the two down-sampling convs; the two up-sampling convs and the 7x7 output
  conv). Quantizing the last two alone costs about 30 dB each on photo2sketch; the residual trunk,
  where about 80 % of the multiply-adds are, costs 46-54 dB per conv.
- Ranges: static per-tensor ranges, taken from the first images of a job and widened by
  ``RANGE_MARGIN``. InstanceNorm generators have heavy-tailed activations whose range depends on
  the picture (a dark forest reaches 3x the range of a sunset): at margin 1 such a photo falls to
  22 dB; wider ranges cost every other photo resolution. On the shipped photo2sketch and its 7
  held-out photos, margins 1.5 / 1.75 / 2 give a worst photo of 29.9 / 32.3 / 31.5 dB: 1.75 is
  kept. It was chosen on those same photos, so the 32 dB target holds there narrowly.
- Weights: per channel, 7 bits (``reduce_range``): AVX2 multiplies u8 x s8 pairs with a 16-bit
  saturating add (VPMADDUBSW), which 8-bit weights overflow. CPUs with VNNI (AVX512-VNNI, AVX-VNNI,
  AMX-INT8) accumulate in 32 bits, so there the weights keep all 8 bits (not measured on such a CPU).
- Only convolutions, with their outputs quantized: ONNX Runtime runs QLinearConv as an integer
  kernel; leaving a conv's output in fp32 makes it dequantize and run in fp32 (slower than fp32).

The first ``CALIBRATION_IMAGES`` inputs run in fp32 while their ranges are collected; then the
int8 graph is made and cached beside the fp32 ONNX export, under the weights' hash, with its
ranges (a later job reuses them; a job that ends before enough images keeps what it saw for the
next one). Tiled images run the torch module in fp32 (tiles need the whole image's statistics).

A guard: once quantized, the int8 graph runs the calibration crops again and is compared with fp32.
Below ``MIN_PSNR_DB`` on any of them (a generator whose activations int8 cannot hold), the job
goes on in fp32 and says so; the verdict is stored with the ranges, so later jobs skip the attempt.

A guard on the job's images: the int8 graph also reports, per run, the largest and smallest value of
every activation it quantizes (a ReduceMax and a ReduceMin beside each; outputs unchanged). An image
whose activations left their calibrated range (clipped) is run in fp32 too and compared, and so is
every ``GUARD_EVERY``-th image (the first one included) whatever its ranges; below ``MIN_PSNR_DB`` the
image keeps its fp32 output, and the first such image is said once. On the shipped photo2sketch and
its 7 real photos at 512 px: with ranges at margin 1 the forest photo (25.2 dB from fp32 in int8)
exceeds a range by 2.2x; at the shipped margin 1.75 only the forest (32.3 dB) and the stream (38.3 dB)
exceed one at all (1.50x, 1.03x), the five others stay at 0.47-0.58x. Cheaper samples of each image
did not see the forest's failure: a 4x shrunk copy gave 43.9 dB, a 2x one 28.6, 64-128 px crops
38.6-42.5 (InstanceNorm statistics over the whole picture are what push the activations out).
"""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path

import numpy as np

CALIBRATION_IMAGES = 4
RANGE_MARGIN = 1.75
MIN_PSNR_DB = 30.0  # int8 against fp32 on the calibration crops and on the checked images; below it, fp32
FP32_CONVS_EACH_END = 3  # convolutions kept in fp32 at the input end and at the output end
GUARD_EVERY = 16  # besides clipped ones, one image in this many is checked against fp32 (an fp32 pass each)


def reduce_range_for(flags: set[str] | None = None) -> bool:
    """7-bit weights (``reduce_range``) unless the CPU has VNNI-class u8 x s8 dot products."""
    from cyclegan_cli.device import VNNI_FLAGS, cpu_flags

    return not ((cpu_flags() if flags is None else flags) & VNNI_FLAGS)


def psnr_db(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in 8-bit levels between two network outputs in [-1, 1] (999 when equal: JSON has no infinity)."""
    d = (a - b).astype(np.float64)
    mse = float(np.mean(d * d)) * (255.0 / 2) ** 2
    return 999.0 if mse == 0 else min(999.0, float(10 * np.log10(255.0**2 / mse)))


def fp32_convs(model) -> list[str]:
    """Names of the convolution nodes that stay fp32: the first and the last FP32_CONVS_EACH_END."""
    convs = [n.name for n in model.graph.node if n.op_type in ("Conv", "ConvTranspose")]
    k = min(FP32_CONVS_EACH_END, len(convs) // 2)
    return convs[:k] + convs[len(convs) - k:]


CALIBRATION_SIDE = 512  # calibration sees at most this much of each image (same scale, bounded memory)


def _centre(x: np.ndarray, multiple: int) -> np.ndarray:
    """The centre of a (3, H, W) input (sides multiples of ``multiple``), at most about
    CALIBRATION_SIDE square: the calibration graph returns every intermediate tensor, which for a
    12 Mpx photo would be tens of GB."""
    h, w = x.shape[-2:]
    side = max(CALIBRATION_SIDE, multiple)
    ch, cw = min(h, side) // multiple * multiple, min(w, side) // multiple * multiple
    top, left = (h - ch) // 2 // multiple * multiple, (w - cw) // 2 // multiple * multiple
    return np.ascontiguousarray(x[..., top:top + ch, left:left + cw])


class _Feed:
    """An ONNX Runtime CalibrationDataReader over a list of input arrays."""

    def __init__(self, name: str, arrays: list):
        self.name, self.items = name, iter(arrays)

    def get_next(self):
        x = next(self.items, None)
        return None if x is None else {self.name: x}

    def rewind(self):  # some ONNX Runtime versions call it
        pass


class Int8Backend:
    """The ``OnnxBackend`` interface (``run``) with the int8 graph once it is calibrated."""

    def __init__(self, fp32_backend, calibration_images: int = CALIBRATION_IMAGES, margin: float = RANGE_MARGIN,
                 multiple: int = 4, on_notice=None, reduce_range: bool | None = None, guard_every: int = GUARD_EVERY):
        self.fp32, self.multiple, self.guard_every = fp32_backend, multiple, guard_every
        self.input_name = fp32_backend.input_name
        self.reduce_range = reduce_range_for() if reduce_range is None else reduce_range
        fp32 = Path(fp32_backend.path)  # named by the weights' hash: so are these (the ranges serve both weight widths)
        self.path = fp32.with_name(f"{fp32.stem}-int8{'' if self.reduce_range else '-vnni'}.onnx")
        self.ranges_path = fp32.with_name(f"{fp32.stem}-int8-ranges.json")
        self.wanted, self.margin = calibration_images, margin
        self.session = None
        self.probes: list[tuple[float, float, float, bool]] = []  # (lo, hi, step, read after quantization) of each activation the session reports on
        self.calibrator = None
        self.ranges: dict[str, list[float]] = {}
        self.seen = 0
        self.ran_int8 = 0
        self.crops: list[np.ndarray] = []  # this job's calibration crops, for the guard
        self.worst_db: float | None = None  # int8 against fp32 on the calibration crops
        self.checked = 0  # images run in int8 so far, whether the guard checked them or not
        self.redone = 0  # images the guard sent back to fp32
        self.on_notice = on_notice or (lambda msg: None)  # int8 giving way to fp32 is said to the user
        stored = self._read_ranges()
        if stored is not None:
            self.ranges, self.seen, self.worst_db = stored["ranges"], stored["images"], stored.get("worst_db")
        if self.rejected:
            self.origin = self._rejected_note()
            return
        if self.seen >= self.wanted:
            if self.path.is_file():
                self._open()
            else:
                self._quantize()
        self.origin = (f"int8 calibration from {self.seen} earlier image(s), cached in {self.path.parent}"
                       if self.session is not None else
                       f"int8 after calibration on the first {self.wanted - self.seen} image(s) of this job (run in fp32), "
                       f"if it stays within {MIN_PSNR_DB:g} dB of fp32 on them")

    # ------------------------------------------------------------------ state
    def _read_ranges(self):
        try:
            data = json.loads(self.ranges_path.read_text())
            if (data.get("margin") != self.margin or not isinstance(data.get("ranges"), dict)
                    or not isinstance(data.get("images"), int)
                    or not isinstance(data.get("worst_db"), (int, float, type(None)))):
                return None
            return data
        except (OSError, ValueError):
            return None

    def _write_ranges(self) -> None:
        from cyclegan_cli.files import atomic_write_bytes

        atomic_write_bytes(self.ranges_path, json.dumps({"images": self.seen, "margin": self.margin,
                                                         "ranges": self.ranges, "worst_db": self.worst_db}).encode())

    @property
    def calibrated(self) -> bool:
        return self.session is not None

    @property
    def rejected(self) -> bool:
        """int8 fell below MIN_PSNR_DB on the calibration images: this model runs in fp32."""
        return self.worst_db is not None and self.worst_db < MIN_PSNR_DB

    # ------------------------------------------------------------------ running
    def run(self, x: np.ndarray) -> np.ndarray:
        x = x.astype(np.float32, copy=False)
        if self.session is not None:
            y, *extremes = self.session.run(None, {self.input_name: x})
            clipped = went_out(self.probes, extremes)  # for the whole batch: then each of its images is checked
            for i in range(len(x)):
                self.checked += 1
                if clipped or (self.checked - 1) % self.guard_every == 0:
                    ref = self.fp32.run(x[i:i + 1])[0]
                    db = psnr_db(y[i], ref)
                    if db < MIN_PSNR_DB:
                        y[i] = ref
                        self.redone += 1
                        if self.redone == 1:
                            self.on_notice(f"--precision int8: an image was {db:.1f} dB from fp32 (below {MIN_PSNR_DB:g}); "
                                           "such images are redone in fp32")
                        continue
                self.ran_int8 += 1
            return y
        y = self.fp32.run(x)
        if not self.rejected:
            self._collect(x)
        return y

    def _collect(self, x: np.ndarray) -> None:
        from onnxruntime.quantization import CalibrationMethod
        from onnxruntime.quantization.calibrate import create_calibrator

        if self.calibrator is None:
            aug = self.path.with_name(f"{self.path.stem}-{os.getpid()}-augmented.onnx")
            self.calibrator = create_calibrator(str(self.fp32.path), [], augmented_model_path=str(aug),
                                                calibrate_method=CalibrationMethod.MinMax)
            if aug.exists():  # the session holds what it needs
                aug.unlink()
        crops = [_centre(xi, self.multiple)[None] for xi in x]
        self.crops += crops
        self.calibrator.collect_data(_Feed(self.input_name, crops))
        for name, tr in self.calibrator.compute_data().data.items():
            lo, hi = (float(np.min(tr.range_value[0])), float(np.max(tr.range_value[1])))
            old = self.ranges.get(name)
            self.ranges[name] = [min(lo, old[0]), max(hi, old[1])] if old else [lo, hi]
        self.seen += len(x)
        if self.seen >= self.wanted:
            self.calibrator = None
            self._quantize()
            self._check()
            self._write_ranges()  # beside the int8 graph they made, with the guard's verdict

    def _check(self) -> None:
        """The guard: int8 against fp32 on this job's calibration crops (PSNR in 8-bit levels)."""
        self.worst_db = min((psnr_db(self.session.run(None, {self.input_name: c})[0], self.fp32.run(c))
                             for c in self.crops), default=999.0)
        self.crops = []
        if self.rejected:
            self.session = None
            self.origin = self._rejected_note()
            self.on_notice(f"--precision int8: {self.worst_db:.1f} dB from fp32 on the calibration images "
                           f"(below {MIN_PSNR_DB:g}): this model goes on in fp32")

    def _rejected_note(self) -> str:
        return f"fp32: int8 was {self.worst_db:.1f} dB from fp32 on its calibration images (below {MIN_PSNR_DB:g})"

    def close(self) -> None:
        """Keep what a short job saw, for the next job (the end of a job, also after an interrupt)."""
        if self.session is None and self.seen:
            self._write_ranges()

    def _quantize(self) -> None:
        quantize_graph(self.fp32.path, self.path, self.ranges, self.margin, self.reduce_range, self.multiple)
        self._open()

    def _open(self) -> None:
        self.session, self.probes = int8_session(self.path)


def quantize_graph(fp32_path: Path, path: Path, ranges: dict, margin: float = RANGE_MARGIN,
                   reduce_range: bool = True, multiple: int = 4) -> Path:
    """The int8 graph of the fp32 export at ``fp32_path``, with static ``ranges`` (tensor name ->
    [lo, hi]) widened by ``margin``, written atomically to ``path``. ``multiple``: the network's
    size grid, which the quantizer's one (unused) input must fit: a U-Net-128 takes 128 px at least."""
    import onnx
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    from cyclegan_cli.files import replacing

    model = onnx.load(str(fp32_path))
    name = model.graph.input[0].name
    overrides = {t: [{"rmin": np.float32(min(lo * margin, 0.0)), "rmax": np.float32(max(hi * margin, 0.0))}]
                 for t, (lo, hi) in ranges.items()}
    side = -(-64 // multiple) * multiple
    tiny = np.zeros((1, 3, side, side), np.float32)  # the ranges come from the overrides; this only satisfies the API
    logging.disable(logging.WARNING)  # the quantizer's advice goes to the root logger, i.e. the user's stderr
    try:
        with replacing(Path(path)) as tmp:
            quantize_static(model, str(tmp), _Feed(name, [tiny]), quant_format=QuantFormat.QDQ,
                            per_channel=True, reduce_range=reduce_range, activation_type=QuantType.QUInt8,
                            weight_type=QuantType.QInt8, op_types_to_quantize=["Conv", "ConvTranspose"],
                            nodes_to_exclude=fp32_convs(model), extra_options={"TensorQuantOverrides": overrides})
    finally:
        logging.disable(logging.NOTSET)
    return Path(path)


def int8_session(path: Path):
    """(an ONNX Runtime session of the int8 graph at ``path`` that also returns the max and the min of
    each quantized activation, those activations' (lo, hi) ranges in the same order).

    The extremes are taken where they do not stop ONNX Runtime fusing a DequantizeLinear -> Conv ->
    QuantizeLinear group into one integer kernel: before a QuantizeLinear, or for a convolution's own
    output after its DequantizeLinear (there a clipped value shows as the range's end)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from cyclegan_cli.infer.backends import cpu_session

    model = onnx.load(str(path))
    consts = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    producer = {o: n for n in model.graph.node for o in n.output}
    consumers: dict[str, list] = {}
    for n in model.graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    convs = ("Conv", "ConvTranspose")
    probes, added = [], []
    for n in list(model.graph.node):
        if n.op_type != "QuantizeLinear" or n.input[0] in consts:
            continue
        scale = float(consts[n.input[1]])
        zero = int(consts[n.input[2]]) if len(n.input) > 2 else 0
        t = n.input[0]
        if t in producer and producer[t].op_type in convs:
            dq = [c for c in consumers.get(n.output[0], []) if c.op_type == "DequantizeLinear"]
            if len(dq) != 1 or any(c.op_type in convs for c in consumers.get(dq[0].output[0], [])):
                continue
            t = dq[0].output[0]  # saturated here: it cannot pass the range, only reach its edge
        saturated = t != n.input[0]
        for op in ("ReduceMax", "ReduceMin"):
            added.append(helper.make_node(op, [t], [f"{t}:{op}"], keepdims=0))
            model.graph.output.append(helper.make_tensor_value_info(f"{t}:{op}", TensorProto.FLOAT, []))
        probes.append(((0 - zero) * scale, (255 - zero) * scale, scale, saturated))
    model.graph.node.extend(added)
    return cpu_session(model.SerializeToString()), probes


def went_out(probes: list, extremes: list) -> bool:
    """Whether any activation reached past its range by more than half a step (max, min pairs in order)."""
    for (lo, hi, step, *sat), mx, mn in zip(probes, extremes[0::2], extremes[1::2]):
        if sat and sat[0]:  # read after quantization: a clipped activation shows as one at the edge
            if (float(mx) >= hi - step / 2 and hi > 0) or (float(mn) <= lo + step / 2 and lo < 0):
                return True
        elif float(mx) > hi + step / 2 or float(mn) < lo - step / 2:
            return True
    return False


def turned_down(fp32_path: Path) -> bool:
    """Whether the guard has turned int8 down for the weights exported at ``fp32_path`` (stored verdict)."""
    fp32_path = Path(fp32_path)
    try:
        worst = json.loads(fp32_path.with_name(f"{fp32_path.stem}-int8-ranges.json").read_text()).get("worst_db")
    except (OSError, ValueError, AttributeError):
        return False
    return isinstance(worst, (int, float)) and worst < MIN_PSNR_DB


def probe_session(fp32_backend, x: np.ndarray, reduce_range: bool | None = None):
    """An int8 session calibrated on ``x`` alone, for timing it (its file is not kept: a job's own
    calibration makes the graph it runs)."""
    from onnxruntime.quantization import CalibrationMethod
    from onnxruntime.quantization.calibrate import create_calibrator

    fp32 = Path(fp32_backend.path)
    stem = f"{fp32.stem}-{os.getpid()}-probe"
    aug, path = fp32.with_name(f"{stem}-augmented.onnx"), fp32.with_name(f"{stem}-int8.onnx")
    try:
        calibrator = create_calibrator(str(fp32), [], augmented_model_path=str(aug), calibrate_method=CalibrationMethod.MinMax)
        calibrator.collect_data(_Feed(fp32_backend.input_name, [x]))
        ranges = {name: [float(np.min(tr.range_value[0])), float(np.max(tr.range_value[1]))]
                  for name, tr in calibrator.compute_data().data.items()}
        quantize_graph(fp32, path, ranges, RANGE_MARGIN, reduce_range_for() if reduce_range is None else reduce_range,
                       multiple=math.gcd(*x.shape[-2:]))  # x fits the network's grid, so does a square of this side
        return int8_session(path)[0]
    finally:
        for p in (aug, path):
            if p.exists():
                p.unlink()
