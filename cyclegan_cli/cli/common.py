"""Options shared by every command, as ``Annotated`` aliases, and the one place that writes output.

Results go to stdout (one per line, or one JSON object per line with ``--json``); progress,
notices and warnings go to stderr. Rich progress and colour only when stderr is a terminal and
NO_COLOR is unset; otherwise plain lines at most every few seconds.
"""

from __future__ import annotations

import json
import os
import stat
import sys
import time
from pathlib import Path
from typing import Annotated, Literal

import typer

DeviceOpt = Annotated[str, typer.Option("--device", help="auto|cpu|cuda|cuda:N|mps (auto: cuda, then mps, then cpu).")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print only results and errors.")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="More detail on stderr.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Results as JSON on stdout (one object per line for streams).")]
ModelOpt = Annotated[str, typer.Option("--model", "-m", metavar="NAME", help="Zoo name or alias, run name (NAME[:STEP]), or a path (.pth, .safetensors, checkpoint folder).")]
PrecisionOpt = Annotated[Literal["auto", "fp32", "fp16", "bf16"], typer.Option("--precision", help="auto: bf16/fp16 on CUDA; on the CPU bf16 where it has AMX, else fp32. bf16 on a CPU needs AMX or AVX512-BF16.")]
TranslatePrecisionOpt = Annotated[Literal["auto", "fp32", "fp16", "bf16", "int8", "fast"], typer.Option(
    "--precision", help="auto: bf16/fp16 on CUDA, fp32 on the CPU. fast: on a GPU its autocast type; on the CPU the "
    "quickest of bf16 (AMX/AVX512-BF16 only), int8 and fp32 that stays within 30 dB of fp32, measured once per CPU "
    "and model (-v says which, and the figures). int8: ONNX Runtime, CPU, calibrated on the job's first images.")]
MaxPixelsOpt = Annotated[int, typer.Option("--max-pixels", min=1, help="Refuse images with more pixels, read from the header before decoding (decompression-bomb guard; default Pillow's 89.5 Mpx).")]
OfflineOpt = Annotated[bool, typer.Option("--offline", help="Never download; also GANCTL_OFFLINE=1.")]


def fancy_stderr() -> bool:
    return sys.stderr.isatty() and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"


def stdout_is_pipe() -> bool:
    """Whether stdout is a pipe (``| cat``, ``| tee log``, ``| xargs``): what reads it may print to
    the terminal the live display redraws, which would draw over those lines."""
    try:
        return stat.S_ISFIFO(os.fstat(sys.stdout.fileno()).st_mode)
    except (OSError, ValueError, AttributeError):
        return False


def same_terminal() -> bool:
    """Whether stdout and stderr are the same terminal: only then may results be drawn above a live
    display (they land on the same screen either way); a pipe or file on stdout gets them untouched."""
    try:
        return sys.stdout.isatty() and os.ttyname(sys.stdout.fileno()) == os.ttyname(sys.stderr.fileno())
    except (OSError, ValueError, AttributeError):
        return False


def stdout_went_away() -> None:
    """The reader of our stdout is gone (``| head -2``): what is still to be printed goes to
    /dev/null, quietly, and the work goes on; a batch still writes every output and exits as it
    would have (the Unix alternative, dying of SIGPIPE, would leave the rest of the job undone)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # the same stream: later writes and the exit's flush succeed
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # no file descriptor behind it
        sys.stdout = open(os.devnull, "w")


class Output:
    """Everything a command prints goes through here; the library's notes too (:meth:`note`),
    through the Output the command made (``Output.current``), so that -q silences them as well."""

    current: "Output | None" = None  # the running command's, the last one made (main() clears it)

    def __init__(self, quiet: bool = False, verbose: bool = False, json_mode: bool = False):
        self.quiet, self.verbose, self.json_mode = quiet, verbose, json_mode
        self._console = None
        Output.current = self

    @property
    def console(self):
        if self._console is None:
            from rich.console import Console

            self._console = Console(stderr=True, highlight=False, no_color="NO_COLOR" in os.environ)
        return self._console

    # stdout -----------------------------------------------------------------------------
    def result(self, text: str) -> None:
        try:
            self._result(text)
        except BrokenPipeError:
            stdout_went_away()

    def _result(self, text: str) -> None:
        try:
            sys.stdout.write(text + "\n")
        except UnicodeEncodeError:
            # a file name whose bytes are not UTF-8 (Latin-1 caf\xe9.jpg, held as surrogate escapes)
            # where stdout is strict (a UTF-8 locale other than C.UTF-8): written as those same bytes,
            # so that what reads the line (xargs) opens that file
            buffer = getattr(sys.stdout, "buffer", None)
            if buffer is None:
                from cyclegan_cli.data.names import shown

                sys.stdout.write(shown(text) + "\n")
            else:
                sys.stdout.flush()
                buffer.write(os.fsencode(text + "\n"))
        sys.stdout.flush()

    def json(self, obj) -> None:
        try:
            sys.stdout.write(json.dumps(obj, default=str) + "\n")
            sys.stdout.flush()
        except BrokenPipeError:
            stdout_went_away()

    def emit(self, text: str, obj) -> None:
        """A result: ``obj`` as JSON with --json, else ``text`` (skipped when empty)."""
        if self.json_mode:
            self.json(obj)
        elif text:
            self.result(text)

    # stderr -----------------------------------------------------------------------------
    def info(self, msg: str) -> None:
        if not self.quiet:
            self._err(msg)

    def note(self, msg: str) -> None:
        """``ganctl: note: MSG``: a thing worth knowing that is not a problem (a zoo name that now names
        another model), silent under -q as :meth:`info` is."""
        self.info(f"ganctl: note: {msg}")

    def detail(self, msg: str) -> None:
        if self.verbose and not self.quiet:
            self._err(msg)

    def warn(self, msg: str) -> None:
        self._err(f"ganctl: warning: {msg}")

    def error(self, msg: str) -> None:
        self._err(f"ganctl: error: {msg}")

    def _err(self, msg: str) -> None:
        try:
            sys.stderr.write(msg + "\n")
        except UnicodeEncodeError:  # a file name's undecodable bytes, where stderr is strict: shown \xe9
            from cyclegan_cli.data.names import shown

            sys.stderr.write(shown(msg) + "\n")
        sys.stderr.flush()

    def progress(self, description: str, total: int | None, unit: str = "it", interval: float = 10.0,
                 warmup: tuple[int, float] = (0, 0.0)):
        return Progress(self, description, total, unit, interval, warmup)


class Progress:
    """Progress on stderr. On a terminal (unless stdout is a pipe, whose reader may print to that
    terminal): a Rich bar (count/total, rate, ETA) with a second line for
    details (losses), both fitting the terminal's width. Otherwise plain lines: after the first
    update, then every ``interval`` seconds, and whenever ``force`` is given. Nothing when quiet.
    The rate and ETA count only what this process did (a resumed run starts past zero), and only
    after ``warmup`` = (steps, seconds), whichever comes first: the first steps (allocation, kernel
    selection, caches filling) run many times slower than the rest and would inflate the ETA."""

    def __init__(self, out: Output, description: str, total: int | None, unit: str, interval: float = 10.0,
                 warmup: tuple[int, float] = (0, 0.0)):
        self.out, self.description, self.total, self.unit = out, description, total, unit
        self.done, self.fields = 0, ""
        self._first = None  # where the rate is measured from: (count, time)
        self._start = None  # (count, time) at the first update
        self._warmup, self._warming = warmup, warmup[0] > 0
        self.clock = time.monotonic
        self.interval, self._last = interval, None
        self._live = self._bar = self._task = self._extra = None

    def __enter__(self):
        if self.out.quiet:
            return self
        if fancy_stderr() and not stdout_is_pipe():  # piped results may come back to this screen: plain lines
            from rich.console import Group
            from rich.live import Live
            from rich.progress import BarColumn, MofNCompleteColumn, Progress as RichProgress, TextColumn, TimeRemainingColumn
            from rich.text import Text

            self._bar = RichProgress(TextColumn("{task.description}"), BarColumn(bar_width=None),
                                     MofNCompleteColumn(), TextColumn("{task.fields[rate]}"), TextColumn("eta"),
                                     TimeRemainingColumn(), console=self.out.console, expand=True)
            self._task = self._bar.add_task(self.description, total=self.total, rate="")
            self._extra = Text("", no_wrap=True, overflow="ellipsis")
            # Rich's Live takes over sys.stdout by default: results piped by a person in a terminal
            # would be drawn on the screen instead of reaching the pipe
            self._live = Live(Group(self._bar, self._extra), console=self.out.console, refresh_per_second=4,
                              redirect_stdout=same_terminal())
            # drawn from the first update on: a job with nothing to do leaves no empty bar behind
        return self

    def advance(self, n: int = 1, **fields) -> None:
        self.update(self.done + n, **fields)

    def relabel(self, description: str, unit: str, done: int = 0, total: int | None = None) -> None:
        """Count something else from here on (one video's frames instead of files), from ``done``."""
        self.description, self.unit, self.done, self.total = description, unit, done, total
        self._first = self._start = None
        if self._bar is not None:
            self._bar.update(self._task, description=description, completed=done, total=total)

    def rate(self) -> float:
        if self._first is None:
            return 0.0
        since = self._first if self.done > self._first[0] else self._start  # no step yet since the warm-up
        return (self.done - since[0]) / max(self.clock() - since[1], 1e-9)

    def measured(self) -> tuple[int, float]:
        """(steps, seconds) the rate is measured over; (0, 0) while warming up."""
        if self._first is None or self._warming:
            return 0, 0.0
        return self.done - self._first[0], self.clock() - self._first[1]

    def update(self, done: int, total: int | None = None, force: bool = False, **fields) -> None:
        now = self.clock()
        if self._first is None:
            self._first = self._start = (done, now)
        elif self._warming and done > self._first[0] and (
                done - self._first[0] >= self._warmup[0] or now - self._first[1] >= self._warmup[1]):
            self._first, self._warming = (done, now), False  # measure from here on
        self.done = done
        if total is not None:
            self.total = total
        if fields:
            self.fields = "  ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in fields.items())
        rate = self.rate()
        if self._live is not None:
            if not self._live.is_started:
                self._live.start(refresh=True)
            self._bar.update(self._task, completed=self.done, total=self.total, rate=f"{rate:.3g} {self.unit}/s")
            self._extra.plain = self.fields
        elif not self.out.quiet and done > self._start[0] and (force or (
                (self._last is None or now - self._last >= self.interval)
                and not (self.total and done >= self.total))):  # the command's summary says the end
            self._last = now
            self._line(rate)

    def eta_seconds(self) -> float | None:
        rate = self.rate()
        if not self.total or rate <= 0:
            return None
        return (self.total - self.done) / rate

    def _line(self, rate: float) -> None:
        total = f"/{self.total}" if self.total else ""
        eta = self.eta_seconds()
        eta = f" eta {duration(eta)}" if eta is not None else ""
        self.out._err(f"{self.description}: {self.done}{total} {self.unit} ({rate:.3g} {self.unit}/s){eta} {self.fields}".rstrip())

    def __exit__(self, *exc):
        if self._live is not None and self._live.is_started:
            self._live.__exit__(*exc)
        return False


def eta_to_say(bar: Progress, said: dict, settle: tuple[int, float] = (5, 60.0), again_after: float = 300.0,
               change: float = 0.25) -> float | None:
    """The time left worth saying now, else None: first once the rate is measured over ``settle`` =
    (steps, seconds) after the warm-up, then again (at most every ``again_after`` seconds) when the
    rate has moved the estimate by more than ``change``. ``said`` keeps what was said."""
    steps, seconds = bar.measured()
    if steps < 1 or (steps < settle[0] and seconds < settle[1]):
        return None
    eta, now = bar.eta_seconds(), bar.clock()
    if eta is None:
        return None
    if "eta" in said:
        expected = max(said["eta"] - (now - said["at"]), 1.0)  # what the last estimate says is left now
        if now - said["at"] < again_after or abs(eta - expected) <= change * expected:
            return None
    said.update(eta=eta, at=now)
    return eta


def duration(seconds: float) -> str:
    """3725 -> '1 h 02 min', 95 -> '1 min 35 s', 7 -> '7 s'."""
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    if s >= 60:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s} s"


def check_paths_exist(paths: list[Path]) -> None:
    from cyclegan_cli.errors import NotFoundError

    for p in paths:
        if str(p) != "-" and not Path(p).exists():
            raise NotFoundError(f"{p}: no such file or folder")


def human_time(ts) -> str:
    """An epoch time as local 'YYYY-MM-DD HH:MM', or '' when unknown."""
    if not ts:
        return ""
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(float(ts)))


def human_size(n) -> str:
    if n is None:
        return ""
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000


def print_table(o: Output, rows: list[dict], columns: list[tuple[str, str]], what: str) -> None:
    """A listing: with --json one object per line; on a terminal a table with headers; otherwise
    TSV with a header line, for scripts. An empty listing says so on stderr."""
    if not rows:
        o.info(f"no {what}")
        return
    if o.json_mode:
        for r in rows:
            o.json(r)
        return
    cells = [[str(r.get(key, "") if r.get(key) is not None else "") for key, _ in columns] for r in rows]
    heads = [title for _, title in columns]
    if not sys.stdout.isatty():
        o.result("\t".join(heads))
        for c in cells:
            o.result("\t".join(x.replace("\t", " ") for x in c))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, header_style="bold", pad_edge=False)
    for title in heads:
        table.add_column(title, overflow="fold")
    for c in cells:
        table.add_row(*c)
    Console(highlight=False).print(table)
