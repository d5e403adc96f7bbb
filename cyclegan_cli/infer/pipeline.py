"""The translate pipeline for image jobs: a thread pool decodes, same-size images are batched for
the network (or tiled, when too large), another pool encodes with atomic writes, and every job
ends in exactly one result, reported in plan order by :class:`InOrder`."""

from __future__ import annotations

import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable

import numpy as np

from cyclegan_cli.data import images as img
from cyclegan_cli.errors import InputError, Interrupted, from_os_error
from cyclegan_cli.infer.plan import Job

INTERRUPTED = "interrupted; finished files are complete, rerun to carry on"


@dataclass
class Summary:
    converted: int = 0
    skipped: int = 0
    failed: int = 0
    seconds: float = 0.0


def _resize_short_side(pic: img.Picture, size: int | None) -> img.Picture:
    if not size:
        return pic
    alpha = None if pic.alpha is None else img.resize_short_side(pic.alpha, size)
    return img.Picture(img.resize_short_side(pic.rgb, size), alpha, pic.icc_profile, pic.source_format)


def _now() -> float:
    """Seconds: the one clock the pipeline reads (so a test can give it a fake one)."""
    return time.perf_counter()


def _ms_since(t0: float) -> float:
    return (_now() - t0) * 1000


def translate_images(translator, jobs: list[Job], fmt: str = "same", quality: int = 95, size: int | None = None,
                     batch_size: int = 4, workers: int = 2, max_pixels: int = img.DEFAULT_MAX_PIXELS,
                     on_result: Callable[[dict], None] | None = None) -> Summary:
    """Translate image jobs; every job ends in exactly one ``on_result`` call."""
    summary = Summary()
    t_start = _now()
    report = on_result or (lambda r: None)

    # "ms" of a result: the time the file's own work took (reading, its share of the network call,
    # writing), not the time it waited behind other files
    def decode(job: Job):
        t0 = _now()
        if translator.decode_on_device and not size:  # the batch is decoded on the device, later
            enc = img.jpeg_for_device(job.src, max_pixels)
            if enc is not None and min(enc.size) >= 2 and not translator.needs_tiling(enc.height, enc.width):
                return enc, _ms_since(t0)
        pic = _resize_short_side(img.read_picture(job.src, max_pixels), size)
        w, h = pic.size
        if min(w, h) < 2:
            raise InputError(f"{job.src}: {w}x{h} image is too small to translate (use --size to upscale)")
        return pic, _ms_since(t0)

    def encode(job: Job, pic: img.Picture, spent: float):
        t0 = _now()
        pil_format, _ = img.output_format(job.src, fmt)
        img.write_picture(pic, job.dst, pil_format, quality)
        return spent + _ms_since(t0)

    ran_as: dict[str, str] = {}  # output -> the precision its network pass ran in

    def finish(job, status, ms=None, error=None):
        if status == "ok":
            summary.converted += 1
        elif status == "failed":
            summary.failed += 1
        record = {"input": str(job.src), "output": str(job.dst), "status": status,
                  "ms": None if ms is None else round(ms, 1), "error": error}
        if status == "ok" and str(job.dst) in ran_as:
            record["precision"] = ran_as.pop(str(job.dst))
        report(record)

    pending: "OrderedDict[tuple, list]" = OrderedDict()  # padded shape -> [(job, pic, ms spent)]
    encodes = []

    def finish_encode(job, fut):  # waits for it when it is still running
        try:
            ms = fut.result()
        except Exception as exc:
            finish(job, "failed", error=one_line(job, exc))
            return
        finish(job, "ok", ms)  # outside the try: what the report does with it is not the file's failure

    def drain_encodes(block=False):
        keep = []
        for job, fut in encodes:
            if block or fut.done():
                finish_encode(job, fut)
            else:
                keep.append((job, fut))
        encodes[:] = keep

    def wait_for_encoder():
        """Backpressure: a producer waits once about 2x the encoder threads' outputs are pending,
        so decoded and translated images never pile up in memory when encoding is the slow part."""
        while len(encodes) > 2 * max(1, workers):
            finish_encode(*encodes.pop(0))

    def run_group(items, encoder):
        w, h = items[0][1].size
        precision = translator.ran_as(h, w)
        for job, _, _ in items:
            ran_as[str(job.dst)] = precision
        t0 = _now()
        if isinstance(items[0][1], img.EncodedJpeg):
            try:
                outs = translator.run_jpegs([p.data for _, p, _ in items])
            except Exception:  # a file the device decoder refuses: each one on the CPU, so only it fails
                failed_try = _ms_since(t0) / len(items)
                for job, _, spent in items:
                    try:
                        t1 = _now()
                        pic = img.read_picture(job.src, max_pixels)
                        run_group([(job, pic, spent + failed_try + _ms_since(t1))], encoder)
                    except Exception as exc:
                        finish(job, "failed", error=one_line(job, exc))
                return
        else:
            try:
                outs = translator(np.stack([p.rgb for _, p, _ in items]))
            except Exception as exc:
                for job, _, _ in items:
                    finish(job, "failed", error=one_line(job, exc))
                return
        share = _ms_since(t0) / len(items)
        for (job, pic, spent), o in zip(items, outs):
            res = img.Picture(o, pic.alpha, pic.icc_profile, pic.source_format)
            encodes.append((job, encoder.submit(encode, job, res, spent + share)))

    with ThreadPoolExecutor(max(1, workers), thread_name_prefix="decode") as decoder, \
            ThreadPoolExecutor(max(1, workers), thread_name_prefix="encode") as encoder:
        window = max(2 * batch_size, 2 * workers)
        queue = []
        it = iter(jobs)
        try:
            while True:
                while len(queue) < window:
                    job = next(it, None)
                    if job is None:
                        break
                    queue.append((job, decoder.submit(decode, job)))
                if not queue:
                    break
                job, fut = queue.pop(0)
                try:
                    pic, spent = fut.result()
                except Exception as exc:
                    finish(job, "failed", error=one_line(job, exc))
                    continue
                w, h = pic.size
                if translator.needs_tiling(h, w):
                    ran_as[str(job.dst)] = translator.ran_as(h, w)
                    t0 = _now()
                    try:
                        out = translator.run_image(pic.rgb)
                    except Exception as exc:
                        finish(job, "failed", error=one_line(job, exc))
                        continue
                    res = img.Picture(out, pic.alpha, pic.icc_profile, pic.source_format)
                    encodes.append((job, encoder.submit(encode, job, res, spent + _ms_since(t0))))
                else:
                    key = (*translator.padded(h, w), h, w, isinstance(pic, img.EncodedJpeg))
                    pending.setdefault(key, []).append((job, pic, spent))
                    if len(pending[key]) >= min(batch_size, translator.batch_limit(h, w)):
                        run_group(pending.pop(key), encoder)
                    elif sum(len(v) for v in pending.values()) > 2 * batch_size:
                        # many different sizes: run the oldest group rather than hold images
                        run_group(pending.pop(next(iter(pending))), encoder)
                drain_encodes()
                wait_for_encoder()
            for key in list(pending):
                run_group(pending.pop(key), encoder)
            drain_encodes(block=True)
        except KeyboardInterrupt:
            for _, f in queue:
                f.cancel()
            for _, f in encodes:
                f.cancel()
            raise Interrupted(INTERRUPTED) from None
    summary.seconds = _now() - t_start
    return summary


def one_line(job: Job, exc: Exception) -> str:
    exc = from_os_error(exc) or exc  # no space, read-only, permission: said the same way everywhere
    msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if str(job.src) not in msg:
        msg = f"{job.src}: {msg}"
    return msg


class InOrder:
    """Passes results on in plan order, whatever order the workers finish in. A result is matched
    to its job by its output (unique in a plan: two jobs may read the same source)."""

    def __init__(self, report: Callable[[dict], None], order: list):
        self.report, self.next, self.held = report, 0, {}
        self.index = {str(j.dst): i for i, j in enumerate(order)}

    def __call__(self, r: dict, job: Job | None = None) -> None:
        i = self.index.get(str(job.dst) if job is not None else r.get("output"))
        if i is None:
            self.report(r)
            return
        self.held[i] = r
        while self.next in self.held:
            self.report(self.held.pop(self.next))
            self.next += 1

    def flush(self) -> None:
        for i in sorted(self.held):
            self.report(self.held.pop(i))
