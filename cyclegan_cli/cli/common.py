"""Options shared by every command, as ``Annotated`` aliases, and the one place that writes output.

Results go to stdout (one per line, or one JSON object per line with ``--json``); progress,
notices and warnings go to stderr. Rich progress and colour only when stderr is a terminal and
NO_COLOR is unset; otherwise plain lines at most every few seconds.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Annotated, Literal, Optional

import typer

DeviceOpt = Annotated[str, typer.Option("--device", help="auto|cpu|cuda|cuda:N|mps (auto: cuda, then mps, then cpu).")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print only results and errors.")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="More detail on stderr.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Results as JSON on stdout (one object per line for streams).")]
SeedOpt = Annotated[Optional[int], typer.Option("--seed", help="Random seed.")]
ModelOpt = Annotated[str, typer.Option("--model", "-m", help="Zoo name or alias, run name (NAME[:STEP]), or a path (.pth, .safetensors, checkpoint folder).")]
PrecisionOpt = Annotated[Literal["auto", "fp32", "fp16", "bf16"], typer.Option("--precision", help="auto: bf16/fp16 on CUDA, fp32 on the CPU.")]
MaxPixelsOpt = Annotated[int, typer.Option("--max-pixels", min=1, help="Refuse images with more pixels, read from the header before decoding (decompression-bomb guard; default Pillow's 89.5 Mpx).")]
OfflineOpt = Annotated[bool, typer.Option("--offline", help="Never download; also GANCTL_OFFLINE=1.")]


def fancy_stderr() -> bool:
    return sys.stderr.isatty() and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"


class Output:
    """Everything a command prints goes through here."""

    def __init__(self, quiet: bool = False, verbose: bool = False, json_mode: bool = False):
        self.quiet, self.verbose, self.json_mode = quiet, verbose, json_mode
        self._console = None

    @property
    def console(self):
        if self._console is None:
            from rich.console import Console

            self._console = Console(stderr=True, highlight=False, no_color="NO_COLOR" in os.environ)
        return self._console

    # stdout -----------------------------------------------------------------------------
    def result(self, text: str) -> None:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()

    def json(self, obj) -> None:
        sys.stdout.write(json.dumps(obj, default=str) + "\n")
        sys.stdout.flush()

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

    def detail(self, msg: str) -> None:
        if self.verbose and not self.quiet:
            self._err(msg)

    def warn(self, msg: str) -> None:
        self._err(f"ganctl: warning: {msg}")

    def error(self, msg: str) -> None:
        self._err(f"ganctl: error: {msg}")

    def _err(self, msg: str) -> None:
        sys.stderr.write(msg + "\n")
        sys.stderr.flush()

    def progress(self, description: str, total: int | None, unit: str = "it"):
        return Progress(self, description, total, unit)


class Progress:
    """A Rich bar on a terminal, otherwise a plain line every ``interval`` seconds, nothing when quiet."""

    def __init__(self, out: Output, description: str, total: int | None, unit: str, interval: float = 10.0):
        self.out, self.description, self.total, self.unit = out, description, total, unit
        self.done, self.fields = 0, ""
        self._first = None  # the count at the first update (a resumed run starts past zero)
        self.interval, self._last, self._start = interval, 0.0, time.monotonic()
        self._rich = None
        self._task = None

    def __enter__(self):
        if self.out.quiet:
            return self
        if fancy_stderr():
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress as RichProgress, TextColumn,
                                       TimeElapsedColumn, TimeRemainingColumn)

            self._rich = RichProgress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                TextColumn("{task.fields[extra]}"), console=self.out.console, transient=False,
            )
            self._rich.__enter__()
            self._task = self._rich.add_task(self.description, total=self.total, rate="", extra="")
        self._start = self._last = time.monotonic()
        return self

    def advance(self, n: int = 1, **fields) -> None:
        self.update(self.done + n, **fields)

    def update(self, done: int, total: int | None = None, **fields) -> None:
        self.done = done
        if self._first is None:
            self._first = done
        if total is not None:
            self.total = total
        if fields:
            self.fields = "  ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in fields.items())
        now = time.monotonic()
        rate = (self.done - (self._first or 0)) / max(now - self._start, 1e-9)
        if self._rich is not None:
            self._rich.update(self._task, completed=self.done, total=self.total, rate=f"{rate:.2f} {self.unit}/s",
                              extra=self.fields)
        elif not self.out.quiet and now - self._last >= self.interval:
            self._last = now
            self._line(rate)

    def _line(self, rate: float) -> None:
        total = f"/{self.total}" if self.total else ""
        eta = ""
        if self.total and rate > 0:
            eta = f" eta {int((self.total - self.done) / rate)}s"
        self.out._err(f"{self.description}: {self.done}{total} {self.unit} ({rate:.2f} {self.unit}/s){eta} {self.fields}".rstrip())

    def __exit__(self, *exc):
        if self._rich is not None:
            self._rich.__exit__(*exc)
        return False


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
