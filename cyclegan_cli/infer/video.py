"""Translating videos: a decode thread, the batched network, and the writer, with memory
bounded by small queues whatever the video's length."""

from __future__ import annotations

import os
import queue
import shutil
import threading
from pathlib import Path
from typing import Callable

import av
import numpy as np

from cyclegan_cli.data.images import resize_short_side
from cyclegan_cli.data.video import BackgroundWriter, VideoWriter, open_video, rotate
from cyclegan_cli.errors import InputError, reason
from cyclegan_cli.files import make_tmp_folder, replace_folder, reserve_tmp, write_synced
from cyclegan_cli.infer.manifest import FRAME_NAME

_END = object()


def translate_video(translator, src: Path, dst: Path, *, size: int | None = None, batch_size: int = 4,
                    crf: int = 18, preset: str = "medium", codec: str = "libx264", container: str = "mp4",
                    frames: bool = False, start: float | None = None, end: float | None = None,
                    max_frames: int | None = None, stabilize: bool = True,
                    on_notice: Callable[[str], None] | None = None, on_progress: Callable[[dict], None] | None = None,
                    on_detail: Callable[[str], None] | None = None) -> dict:
    """Translate every frame of ``src`` into the video ``dst``, or with ``frames`` into the folder
    ``dst`` of PNG frames (``frame_000001.png`` ...).

    ``stabilize``: each output frame blended with the previous one along the input's motion
    (:mod:`cyclegan_cli.infer.stabilize`); off, every frame is the network's own output. Scene cuts
    found on the way go to ``on_detail``, by the index of the frame that starts the new shot, from 0
    (as ``eval --temporal --json`` lists them).

    Returns {"frames": n, "error": None or one line, "cuts": [frame indices, from 0]}. Either
    output is written under a temporary name and renamed into place, whole: an interrupted run
    leaves nothing at ``dst``, and a folder of frames written again holds only the new frames.
    """
    notice = on_notice or (lambda m: None)
    src, dst = Path(src), Path(dst)
    inp, vin = open_video(src)
    vin.thread_type = "AUTO"
    ains = list(inp.streams.audio)
    others = [s for s in inp.streams if s.type not in ("video", "audio")]
    if others or len(inp.streams.video) > 1:
        notice(f"{src}: dropping {len(others) + len(inp.streams.video) - 1} stream(s) that are not the video or audio")
    total = _frame_total(inp, vin, start, end, max_frames)
    tb = vin.time_base
    t0 = None if start is None else int(start / tb)
    t1 = None if end is None else int(end / tb)
    if t0 is not None:
        inp.seek(t0, stream=vin, backward=True, any_frame=False)
    stab = None
    if stabilize:
        from cyclegan_cli.infer.stabilize import Stabilizer

        rate = float(vin.average_rate or vin.guessed_rate or 0)

        def on_cut(i):
            at = f" ({i / rate:.2f} s)" if rate else ""
            (on_detail or (lambda m: None))(f"{src}: scene cut at frame {i}{at}: stabilisation starts afresh")

        stab = Stabilizer(on_cut=on_cut)

    # 1. a decode thread: video frames (RGB, rotated) and audio packets in demux order
    q_in: "queue.Queue" = queue.Queue(maxsize=4 * batch_size)
    decode_error: list = []
    stop = threading.Event()

    def decode():
        n = 0
        try:
            for packet in inp.demux(vin, *ains):
                if stop.is_set():
                    break
                if packet.stream.type == "audio":
                    if packet.dts is not None:
                        q_in.put(("audio", packet))
                    continue
                for frame in packet.decode():
                    if t0 is not None and frame.pts is not None and frame.pts < t0:
                        continue
                    if t1 is not None and frame.pts is not None and frame.pts > t1:
                        raise StopIteration
                    arr = rotate(frame.to_ndarray(format="rgb24"), getattr(frame, "rotation", 0) or 0)
                    arr = resize_short_side(arr, size)
                    # the input side of the stabiliser (optical flow) runs here, beside the network
                    q_in.put(("video", (arr, frame.pts, None if stab is None else stab.motion(arr))))
                    n += 1
                    if max_frames is not None and n >= max_frames:
                        raise StopIteration
        except StopIteration:
            pass
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            decode_error.append(f"{src}: video decoding stopped after {n} frame(s) ({reason(exc)})")
        except Exception as exc:  # the optical flow (OpenCV) runs here too: its failure must not pass as "ok"
            decode_error.append(f"{src}: stopped after {n} frame(s): {type(exc).__name__}: {reason(exc)}")
        finally:
            q_in.put(_END)

    reader = threading.Thread(target=decode, name="video-decode", daemon=True)
    tmp = None  # the video file, or the folder of frames, until it is complete
    writer = None
    n_out = 0
    try:
        reader.start()
        if not frames:
            dst.parent.mkdir(parents=True, exist_ok=True)
            tmp = reserve_tmp(dst)
            # with the network on the CPU, one x264 thread: its default (1.5 per core) competes with the
            # network's threads for the same cores (2-core CPU, 256x256: 5.49 against 5.32 frames/s)
            threads = 1 if translator.device.type == "cpu" else 0
            writer = BackgroundWriter(VideoWriter(tmp, container, vin, ains, codec, crf, preset, t0, notice, threads))
        else:
            tmp = make_tmp_folder(dst)
        pending: list = []
        said_odd: list = []

        def flush():
            nonlocal n_out
            if not pending:
                return
            arrs = [a for a, _, _ in pending]
            h, w = arrs[0].shape[:2]
            if translator.needs_tiling(h, w):
                outs = [translator.run_image(a) for a in arrs]
            else:
                outs = translator(np.stack(arrs))
            oh, ow = outs[0].shape[:2]
            if writer is not None and (oh % 2 or ow % 2) and not said_odd:
                said_odd.append(True)
                notice(f"{src}: {ow}x{oh} frames, and H.264 (yuv420p) needs even sides: the video is "
                       f"{ow + ow % 2}x{oh + oh % 2}, its last {'column' if ow % 2 else 'row'}"
                       f"{' and row' if ow % 2 and oh % 2 else ''} repeated (--frames-out keeps the exact size)")
            for (_, pts, motion), out in zip(pending, outs):
                n_out += 1
                if stab is not None:
                    out = stab.apply(out, motion)
                if writer is not None:
                    writer.video(out, pts)
                else:
                    _write_png(out, tmp / FRAME_NAME.format(n_out))
            if on_progress:  # total: from the container's header, so an estimate (None when it says nothing)
                on_progress({"input": str(src), "frames": n_out, "total": max(total, n_out) if total else None})
            pending.clear()

        while True:
            item = q_in.get()
            if item is _END:
                break
            kind, payload = item
            if kind == "audio":
                if writer is not None:
                    writer.audio(payload)
                continue
            if pending and pending[0][0].shape != payload[0].shape:
                flush()
            pending.append(payload)
            if len(pending) >= batch_size:
                flush()
        flush()
        if n_out == 0 and not decode_error:
            raise InputError(f"{src}: no video frames in the requested range")
        if writer is not None:
            writer.close()
            writer = None
            os.replace(tmp, dst)
        else:
            replace_folder(tmp, dst)
    except BaseException as exc:
        stop.set()
        if writer is not None:
            writer.abort()
        if tmp is not None and tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp is not None and tmp.exists():
            tmp.unlink()
        if isinstance(exc, Exception) and not isinstance(exc, (InputError, OSError)):
            # damaged input that got past the decoder (a packet without a stream, say): this file fails
            raise InputError(f"{src}: cannot convert this video ({type(exc).__name__}: {reason(exc)})") from None
        raise
    finally:
        stop.set()
        while reader.is_alive():  # unblock a reader waiting on a full queue
            try:
                q_in.get_nowait()
            except queue.Empty:
                reader.join(0.05)
        inp.close()
    return {"frames": n_out, "error": decode_error[0] if decode_error else None,
            "cuts": [] if stab is None else list(stab.cuts)}


def _write_png(frame: np.ndarray, path: Path) -> None:
    """One frame into the temporary folder of frames (synced; the folder is renamed into place whole)."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(frame).save(buf, format="PNG")
    write_synced(path, buf.getvalue())


def _frame_total(inp, vin, start: float | None, end: float | None, max_frames: int | None) -> int | None:
    """How many frames the job will translate, from the container's header: its frame count, or its
    duration times its frame rate, within --start/--end and --max-frames. None when it cannot say."""
    rate = vin.average_rate or vin.guessed_rate
    seconds = float(vin.duration * vin.time_base) if vin.duration else (
        inp.duration / av.time_base if inp.duration else None)
    n = vin.frames or (round(seconds * rate) if seconds and rate else 0)
    if (start is not None or end is not None) and seconds and rate:
        n = max(0, round((min(end if end is not None else seconds, seconds) - (start or 0.0)) * rate))
    if max_frames is not None:
        n = min(n, max_frames) if n else max_frames
    return n or None
