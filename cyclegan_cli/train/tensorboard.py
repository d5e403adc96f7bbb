"""A run's TensorBoard event files, in RUN/tensorboard/: the losses, the learning rate and the seconds
per step at the log interval, the sample grids at the sample interval, the figures of ``--eval-every``,
and at the end the run's options as hparams beside its final figures.

``torch.utils.tensorboard`` is imported here only, and only by a run that writes events: where the
``tensorboard`` package is missing, a run trains without them.

A resumed run goes on in the same stream. Each (re)start writes a new event file, and readers read a
folder's files in name order, which starts with the second the file was made; what a killed trainer
wrote past the checkpoint the run resumes from is cut from the older files (as stats.jsonl's lines
are), and the new file opens with TensorBoard's purge marker (``purge_step``), which makes a
TensorBoard that had already read those events drop them too.
"""

from __future__ import annotations

import struct
import time
from pathlib import Path

TENSORBOARD_DIR = "tensorboard"  # in the run folder
INSTALL = "pip install 'ganctl[tensorboard]'"
_EVENT_FILES = "events.out.tfevents.*"
_HPARAMS = "_hparams_/"  # the hparams plugin's tags, written again at each end
_METRICS = ("loss/", "eval/")  # the figures the hparams table shows beside the options


def installed() -> bool:
    """Whether the ``tensorboard`` package is there, without importing it (or torch)."""
    import importlib.util

    try:
        return importlib.util.find_spec("tensorboard") is not None
    except ValueError:  # in sys.modules without a spec
        return False


def available() -> bool:
    """Whether this Python can write TensorBoard events (the ``tensorboard`` package is installed)."""
    try:
        import torch.utils.tensorboard  # noqa: F401
    except ImportError:
        return False
    return True


def event_files(run_dir: Path) -> list[Path]:
    folder = Path(run_dir) / TENSORBOARD_DIR
    return sorted(folder.glob(_EVENT_FILES)) if folder.is_dir() else []


def open_events(run_dir: Path, step: int) -> "Events | None":
    """The run's event stream from ``step`` on (0 for a new run); None where TensorBoard is missing."""
    return Events(Path(run_dir) / TENSORBOARD_DIR, step) if available() else None


def tag(key: str) -> str:
    """A stats.jsonl key as TensorBoard groups it: loss_G_A -> loss/G_A, sec_per_it -> time/sec_per_step."""
    if key.startswith("loss_"):
        return "loss/" + key[len("loss_"):]
    return {"sec_per_it": "time/sec_per_step", "epoch": "progress/epoch"}.get(key, key)


class Events:
    """One run's event files, written from ``step`` on; rank 0's only. Each write is on disk when it
    returns, as a stats.jsonl line is: a TensorBoard watching the run shows it at once, and a killed
    trainer leaves everything up to its last checkpoint."""

    def __init__(self, folder: Path, step: int):
        from torch.utils.tensorboard import SummaryWriter

        folder.mkdir(parents=True, exist_ok=True)
        self.tags: set[str] = set()  # the run's tags (those kept from before a resume too)
        resumed = False
        for f in sorted(folder.glob(_EVENT_FILES)):
            resumed = True
            self.tags |= _cut(f, step)
        _after_last(folder)
        self.writer = SummaryWriter(str(folder), purge_step=step + 1 if resumed else None)

    def scalars(self, step: int, stats: dict) -> None:
        """A stats.jsonl line: every loss, the learning rate, the seconds per step."""
        for k, v in stats.items():
            if k != "step" and isinstance(v, (int, float)) and not isinstance(v, bool):
                self._scalar(tag(k), v, step)
        self.writer.flush()

    def figures(self, step: int, figures: dict) -> None:
        """An evaluation's figures (FID, KID, ...)."""
        for k, v in figures.items():
            self._scalar(f"eval/{k}", v, step)
        self.writer.flush()

    def image(self, step: int, path: Path) -> None:
        """The sample grid saved at ``path``, as the run's samples/ holds it."""
        import numpy as np
        from PIL import Image

        with Image.open(path) as im:
            self.writer.add_image("samples", np.asarray(im.convert("RGB")), step, dataformats="HWC")
        self.writer.flush()

    def hparams(self, step: int, options: dict) -> None:
        """The run's options (options.json) as hparams, with its losses and figures as the metrics:
        the hparams table shows the last value of each."""
        from torch.utils.tensorboard.summary import hparams

        metrics = {t: 0.0 for t in sorted(self.tags) if t.startswith(_METRICS)}
        for summary in hparams(_flat(options), metrics):
            self.writer.file_writer.add_summary(summary, step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()

    def _scalar(self, name: str, value: float, step: int) -> None:
        self.writer.add_scalar(name, value, step)
        self.tags.add(name)


def _flat(options: dict, prefix: str = "") -> dict:
    """options.json as hparams take it: numbers, bools and text; lists as text; dicts flattened (a
    distilled run's teacher.name)."""
    out = {}
    for k, v in options.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        elif isinstance(v, (list, tuple)):
            out[prefix + k] = ",".join(map(str, v))
        elif v is not None:
            out[prefix + k] = v if isinstance(v, (int, float, str)) else str(v)
    return out


def _records(data: bytes):
    """(start, end, event bytes) of each whole TFRecord (length, its CRC, the data, the data's CRC);
    a record a killed writer left half-written ends the file."""
    pos = 0
    while pos + 12 <= len(data):
        (n,) = struct.unpack("<Q", data[pos:pos + 8])
        end = pos + 12 + n + 4
        if end > len(data):
            break
        yield pos, end, data[pos + 12:pos + 12 + n]
        pos = end


def _cut(file: Path, step: int) -> set[str]:
    """Drop from an event file what came after ``step`` (it will be written again) and the hparams (the
    run's end writes them again), and what a killed writer left half-written; rewritten only when
    anything goes. Returns the tags kept."""
    from tensorboard.compat.proto.event_pb2 import Event

    from cyclegan_cli.files import atomic_write_bytes

    data = file.read_bytes()
    kept, tags = [], set()
    for start, end, raw in _records(data):
        event = Event.FromString(raw)
        names = [v.tag for v in event.summary.value]
        if event.step > step or any(n.startswith(_HPARAMS) for n in names):
            continue
        kept.append(data[start:end])
        tags.update(names)
    if sum(map(len, kept)) != len(data):
        atomic_write_bytes(file, b"".join(kept))
    return tags


def _after_last(folder: Path) -> None:
    """Readers read event files in name order, and the name starts with the second its writer was
    made: a writer made in the same second as the last one (a resume at once) waits for the next
    second, so that its file comes after whatever host and pid the last one named."""
    stamps = [int(p.name.split(".")[3]) for p in folder.glob(_EVENT_FILES) if p.name.split(".")[3].isdigit()]
    wait = max(stamps, default=0) + 1 - time.time()
    if 0 < wait <= 1:
        time.sleep(wait)
