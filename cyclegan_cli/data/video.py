"""Video frame streams in and out with PyAV (which carries its own FFmpeg).

Reading: the first video stream's frames as RGB arrays (rotation metadata applied), in decode
order with their timestamps, plus every audio packet. Writing: H.264/yuv420p in mp4 by default,
the input's time base and each frame's timestamp kept (so variable frame rates survive), audio
packets copied without re-encoding unless the output container cannot hold the codec.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from cyclegan_cli.errors import InputError, reason
from cyclegan_cli.files import replacing


# audio codecs each container can hold as they are; others are re-encoded (AAC, or Opus for WebM)
COPYABLE_AUDIO = {
    "mp4": {"aac", "mp3", "alac", "ac3", "eac3", "opus", "flac"},
    "mov": {"aac", "mp3", "alac", "ac3", "pcm_s16le", "pcm_s24le"},
    "mkv": None,  # anything
    "matroska": None,
    "webm": {"opus", "vorbis"},
}
FORMAT_NAME = {"mkv": "matroska", "mp4": "mp4", "mov": "mov", "webm": "webm", "avi": "avi"}


def rotate(arr: np.ndarray, rotation: int) -> np.ndarray:
    """Apply display rotation (degrees counter-clockwise, FFmpeg's display matrix convention)."""
    r = int(round(rotation)) % 360
    if r == 0:
        return arr
    return np.ascontiguousarray(np.rot90(arr, k=r // 90))


def ffmpeg_reason(exc: BaseException) -> str:
    """FFmpeg's own words for an error (its strerror), without "[Errno 1094995529]" and the path again."""
    return getattr(exc, "strerror", None) or reason(exc)


def open_video(src: Path):
    """(container, its first video stream); InputError (one line) when the file cannot be opened
    as a container or holds no video stream (an audio-only file, say)."""
    try:
        inp = av.open(str(src))
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise InputError(f"{src}: cannot open video ({ffmpeg_reason(exc)})") from None
    if not inp.streams.video:
        inp.close()
        raise InputError(f"{src}: no video stream")
    return inp, inp.streams.video[0]


def read_frames(src: Path):
    """Every frame of the first video stream as (H, W, 3) uint8 RGB, display rotation applied."""
    inp, vin = open_video(src)
    vin.thread_type = "AUTO"
    n = 0
    try:
        for frame in inp.decode(vin):
            yield rotate(frame.to_ndarray(format="rgb24"), getattr(frame, "rotation", 0) or 0)
            n += 1
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise InputError(f"{src}: video decoding stopped after {n} frame(s) ({ffmpeg_reason(exc)})") from None
    finally:
        inp.close()


def even(arr: np.ndarray) -> np.ndarray:
    """yuv420p needs even sizes: repeat the last row/column when a side is odd."""
    h, w = arr.shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return arr
    return np.pad(arr, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")


# FFmpeg's AVColorSpace -> the matrix swscale converts RGB with (BT.601 when unknown, as decoding assumes)
SWS_MATRIX = {1: 1, 4: 4, 5: 5, 6: 5, 7: 7, 9: 9, 10: 9}


def colour_tags(stream) -> dict:
    """A stream's colour description (matrix, primaries, transfer, range), FFmpeg's numbers, with
    the unspecified ones left out."""
    cc = stream.codec_context
    tags = {"colorspace": int(cc.colorspace), "color_primaries": int(cc.color_primaries),
            "color_trc": int(cc.color_trc), "color_range": int(cc.color_range)}
    unspecified = {"colorspace": 2, "color_primaries": 2, "color_trc": 2, "color_range": 0}
    return {k: v for k, v in tags.items() if v != unspecified[k]}


class VideoWriter:
    """One output container: the translated video stream and the audio streams. Frames are
    converted to YUV with the input's matrix and range and tagged with the input's colour
    description, so a BT.709 clip stays BT.709 (decoding used its matrix to make the RGB)."""

    def __init__(self, path: Path, container: str, vin, ains, codec, crf, preset, t0, notice, threads: int = 0):
        self.out = av.open(str(path), mode="w", format=FORMAT_NAME.get(container, container))
        self.vin, self.codec, self.crf, self.preset = vin, codec, crf, preset
        self.threads = threads  # encoder threads; 0: the encoder's own choice
        self.vout = None
        self.tags: dict = {}
        self.offset = t0 or 0
        self.ains, self.container, self.notice = list(ains), container, notice
        self.audio_map = {}
        self.reencode = {}
        self.last_pts = None
        self.early_audio = []  # packets that arrive before the first frame fixes the video size

    def _add_audio(self, a) -> None:
        allowed = COPYABLE_AUDIO.get(self.container, None)
        name = a.codec_context.name
        if allowed is None or name in allowed:
            self.audio_map[a.index] = self.out.add_stream_from_template(a)
        else:
            target = "libopus" if self.container == "webm" else "aac"
            self.notice(f"audio codec {name} cannot go into {self.container} as is: re-encoding to {target}")
            o = self.out.add_stream(target, rate=a.codec_context.sample_rate)
            self.audio_map[a.index] = o
            self.reencode[a.index] = (a, o)

    def _open_video(self, h: int, w: int):
        # the streams in the input's order (players and tools take stream 0 for the picture); the
        # video's size is known only now, so every stream is added at the first frame
        for a in self.ains:
            if a.index < self.vin.index:
                self._add_audio(a)
        rate = self.vin.average_rate or self.vin.guessed_rate or Fraction(30)
        v = self.out.add_stream(self.codec, rate=rate)
        v.width, v.height = w + w % 2, h + h % 2
        v.pix_fmt = "yuv420p"
        v.time_base = self.vin.time_base
        v.codec_context.time_base = self.vin.time_base
        self.tags = colour_tags(self.vin)  # read now: the decoder has seen the first frame
        for key, value in self.tags.items():
            setattr(v.codec_context, key, value)
        if self.codec in ("libx264", "libx265"):
            v.options = {"crf": str(self.crf), "preset": self.preset}
            if self.threads:
                v.options = {**v.options, "threads": str(self.threads)}
        self.vout = v
        for a in self.ains:
            if a.index > self.vin.index:
                self._add_audio(a)
        early, self.early_audio = self.early_audio, []
        for packet in early:  # every stream exists now: the header can be written
            self.audio(packet)

    def video(self, rgb: np.ndarray, pts):
        if self.vout is None:
            self._open_video(*rgb.shape[:2])
        t = self.tags
        frame = av.VideoFrame.from_ndarray(even(rgb), format="rgb24").reformat(
            format="yuv420p", dst_colorspace=SWS_MATRIX.get(t.get("colorspace")),
            dst_color_range=t.get("color_range"), dst_color_trc=t.get("color_trc"),
            dst_color_primaries=t.get("color_primaries"))
        if "colorspace" in t:
            frame.colorspace = t["colorspace"]
        if pts is not None:
            pts -= self.offset
            if self.last_pts is not None and pts <= self.last_pts:
                pts = self.last_pts + 1
            self.last_pts = pts
        frame.pts = pts
        frame.time_base = self.vin.time_base
        for packet in self.vout.encode(frame):
            self.out.mux(packet)

    def audio(self, packet):
        if self.vout is None:
            self.early_audio.append(packet)
            return
        if packet.stream is None or packet.size == 0:  # a damaged or flush packet: nothing to mux
            return
        idx = packet.stream.index
        o = self.audio_map.get(idx)
        if o is None:
            return
        if idx in self.reencode:
            for frame in packet.decode():
                frame.pts = None
                for p in o.encode(frame):
                    self.out.mux(p)
            return
        if self.offset:
            shift = int(self.offset * self.vin.time_base / packet.time_base)
            if packet.pts is not None and packet.pts < shift:
                return
            if packet.pts is not None:
                packet.pts -= shift
            if packet.dts is not None:
                packet.dts -= shift
        packet.stream = o
        self.out.mux(packet)

    def close(self):
        if self.vout is None:
            raise ValueError("no video frame could be decoded")
        for packet in self.vout.encode(None):
            self.out.mux(packet)
        for idx, (_, o) in self.reencode.items():
            for p in o.encode(None):
                self.out.mux(p)
        self.out.close()

    def abort(self):
        try:
            self.out.close()
        except Exception:
            pass


class BackgroundWriter:
    """A writer's calls run on their own thread behind a bounded queue, in order: H.264 encoding
    (and the RGB -> YUV conversion) overlaps the network instead of waiting in line, and at most
    ``depth`` frames wait in memory. An encoder error surfaces at the next call or at close()."""

    def __init__(self, writer, depth: int = 8):
        import queue
        import threading

        self.writer, self.error = writer, None
        self.queue = queue.Queue(maxsize=depth)
        self.thread = threading.Thread(target=self._run, name="video-encode", daemon=True)
        self.thread.start()

    def _run(self):
        while True:
            item = self.queue.get()
            if item is None:
                return
            if self.error is None:
                fn, args = item
                try:
                    fn(*args)
                except BaseException as exc:  # handed to the producer
                    self.error = exc

    def _put(self, fn, *args):
        if self.error is not None:
            raise self.error
        self.queue.put((fn, args))

    def video(self, rgb: np.ndarray, pts):
        self._put(self.writer.video, rgb, pts)

    def audio(self, packet):
        self._put(self.writer.audio, packet)

    def close(self):
        self.queue.put(None)
        self.thread.join()
        if self.error is not None:
            raise self.error
        self.writer.close()

    def abort(self):
        self.error = self.error or RuntimeError("aborted")  # the thread skips what is still queued
        self.queue.put(None)
        self.thread.join(timeout=30)
        self.writer.abort()


def write_frames_mp4(frames: np.ndarray, path: Path, fps: int = 15, crf: int = 18) -> None:
    """(N, H, W, 3) uint8 frames -> an H.264 MP4, written atomically."""
    with replacing(Path(path)) as tmp:
        out = av.open(str(tmp), mode="w", format="mp4")
        h, w = frames.shape[1:3]
        v = out.add_stream("libx264", rate=fps)
        v.width, v.height, v.pix_fmt = w + w % 2, h + h % 2, "yuv420p"
        v.options = {"crf": str(crf)}
        for f in frames:
            for p in v.encode(av.VideoFrame.from_ndarray(even(f), format="rgb24")):
                out.mux(p)
        for p in v.encode(None):
            out.mux(p)
        out.close()


def write_frames_lossless(frames, path: Path, fps=25) -> Path:
    """(H, W, 3) uint8 frames -> FFV1 in Matroska, written atomically: decoded, the frames are
    exactly these (test clips, benchmark clips). Returns ``path``."""
    path = Path(path)
    with replacing(path) as tmp:
        with av.open(str(tmp), mode="w", format="matroska") as out:
            v = out.add_stream("ffv1", rate=fps)
            v.width, v.height, v.pix_fmt = frames[0].shape[1], frames[0].shape[0], "bgr0"
            for f in frames:
                for p in v.encode(av.VideoFrame.from_ndarray(f, format="rgb24").reformat(format="bgr0")):
                    out.mux(p)
            for p in v.encode(None):
                out.mux(p)
    return path
