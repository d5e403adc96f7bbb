"""The ``ganctl`` command line: a thin layer over the Python API.

Every command module imports torch (and cv2, av) only inside its functions, so ``--help``,
``--version`` and shell completion start fast.
"""

from __future__ import annotations

import os
import sys

import typer

from cyclegan_cli import __version__
from cyclegan_cli.cli import distill as _distill
from cyclegan_cli.cli import eval as _eval
from cyclegan_cli.cli import export as _export
from cyclegan_cli.cli import runs as _runs
from cyclegan_cli.cli import sample as _sample
from cyclegan_cli.cli import train as _train
from cyclegan_cli.cli import translate as _translate
from cyclegan_cli.cli import zoo as _zoo
from cyclegan_cli.cli.argv import ARGV

def _readable_metavars() -> None:
    """Help shows values the way the README writes them (N, PATH, TEXT, FOLDER...) rather than
    Python types (<int>, <list[Path]>). Choices keep their <a|b> list. Cosmetic: if this Typer
    version lays out help differently, its own labels stay."""
    try:
        from pathlib import Path as _Path
        from typing import get_args

        import typer.core as tc

        original = tc._TyperParameter.display_type

        def display_type(self, ctx):
            desc = self.type_descriptor
            if isinstance(self, tc.TyperArgument) and self.metavar:
                return ""  # the metavar (FOLDER...) already says it
            if desc.is_choice:
                return original(self, ctx)
            args = get_args(desc.annotation)
            base = args[0] if desc.is_list and args else desc.annotation
            if base is int:
                return "N"
            if base is float:
                return "X"
            if desc.is_path or base is _Path:
                return "PATH"
            return "TEXT"

        tc._TyperParameter.display_type = display_type

        def usage_name(self):  # Typer writes {spec} {INPUT...}...; the usage line says SPEC INPUT...
            name = self.metavar or (self.name or "").upper()
            if self.nargs != 1 and not name.endswith("..."):
                name += "..."
            return name if self.required else f"[{name}]"

        if hasattr(tc.TyperArgument, "_usage_display_name"):
            tc.TyperArgument._usage_display_name = usage_name
    except (ImportError, AttributeError):
        pass


_readable_metavars()

app = typer.Typer(
    name="ganctl",
    help="Train GANs on your image folders; translate images and videos; sample DCGANs.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool):
    if value:
        sys.stdout.write(f"ganctl {__version__}\n")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
):
    """ganctl: GAN training and batch inference for scripts and people."""


app.command("translate")(_translate.translate)
app.command("export")(_export.export)
app.command("train")(_train.train)
app.command("distill")(_distill.distill)
app.command("sample")(_sample.sample)
app.command("interpolate")(_sample.interpolate)
app.command("arithmetic")(_sample.arithmetic)
app.command("nearest")(_sample.nearest)
app.command("eval")(_eval.evaluate)
app.add_typer(_zoo.app, name="zoo")
app.add_typer(_runs.app, name="runs")


def _show_notes(show):
    """``warnings.showwarning`` that prints the library's notes (a zoo name that now names another
    model) as one ``ganctl: note:`` line through the command's Output (none under -q), and hands
    every other warning to ``show``."""
    if getattr(show, "ganctl_notes", False):
        return show

    def showwarning(message, category, filename, lineno, file=None, line=None):
        from cyclegan_cli.zoo.resolve import NameMoved

        if issubclass(category, NameMoved):
            from cyclegan_cli.cli.common import Output

            (Output.current or Output()).note(str(message))
        else:
            show(message, category, filename, lineno, file, line)

    showwarning.ganctl_notes = True
    return showwarning


def _error_line(message: str) -> None:
    sys.stderr.write(f"ganctl: error: {message}\n")
    sys.stderr.flush()


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; every error becomes one line on stderr and a documented exit code."""
    ARGV[:] = list(sys.argv[1:] if argv is None else argv)
    # OpenMP threads that wait by spinning (libgomp's default) keep cores a neighbour needs and are kept
    # off them in turn: with another CPU-heavy process on this 2-core machine, an fp32 forward+backward
    # loop ran 20-60x slower spinning than waiting passively (5.2-5.7 s/it against 0.10-0.25;
    # benchmarks/shared_cores.py).
    # Set before torch loads its OpenMP runtime; a user's own setting wins.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import warnings

    previous_showwarning = warnings.showwarning
    warnings.showwarning = _show_notes(previous_showwarning)
    from cyclegan_cli.cli.common import Output

    Output.current = None  # a command run before this one in the same process (tests) is not this one
    from typer.exceptions import Abort, Exit, TyperException

    from cyclegan_cli.errors import GanctlError

    try:
        debug = os.environ.get("GANCTL_DEBUG", "") not in ("", "0")
        code = 0
        try:
            result = app(args=argv, standalone_mode=False, prog_name="ganctl")
            code = result if isinstance(result, int) else 0
            if code == 130:  # Ctrl-C that no command caught: Typer (not standalone) returns 130 and says nothing
                _error_line("interrupted")
        except GanctlError as exc:
            if debug:
                import traceback

                traceback.print_exc()
            if str(exc):  # SomeInputsFailed("") : each failure was already reported
                _error_line(str(exc))
            if exc.hint:
                sys.stderr.write(f"ganctl: hint: {exc.hint}\n")
            code = exc.exit_code
        except Exit as exc:
            code = exc.exit_code
        except Abort:
            _error_line("interrupted")
            code = 130
        except TyperException as exc:  # usage errors: bad option, missing argument
            msg = exc.format_message()
            if type(exc).__name__ == "NoArgsIsHelpError":  # bare `ganctl` / `ganctl zoo`: help on stderr
                sys.stderr.write(msg.rstrip() + "\n")
                sys.exit(2)
            ctx = getattr(exc, "ctx", None)
            path = ctx.command_path.split(" ", 1) if ctx is not None else []
            prefix = f"{path[1]}: " if len(path) > 1 else ""  # "translate: ...", never "ganctl: error: ganctl ..."
            _error_line(prefix + msg.replace("\n", " "))
            code = exc.exit_code
        except KeyboardInterrupt:
            _error_line("interrupted")
            code = 130
        except BrokenPipeError:
            # the reader of our stdout went away (e.g. `| head`): not an error worth a traceback
            try:
                sys.stdout = open(os.devnull, "w")
            except OSError:
                pass
            code = 0
        except Exception as exc:  # a bug (one line, the traceback only on request), unless the OS said why
            from cyclegan_cli.errors import from_os_error

            if debug:
                import traceback

                traceback.print_exc()
            mapped = from_os_error(exc)  # no space, read-only, permission: one line and its exit code
            if mapped is not None:
                _error_line(str(mapped))
                code = mapped.exit_code
            else:
                _error_line(f"internal error: {type(exc).__name__}: {exc}".splitlines()[0])
                if not debug:
                    sys.stderr.write("ganctl: hint: rerun with GANCTL_DEBUG=1 for the traceback\n")
                code = 70
    finally:
        # the command is over (however it ended, a bare `ganctl` too): a program that goes on after main()
        # (catching SystemExit) gets its own warning display back, and library notes are no longer routed
        # through this command's -q
        Output.current = None
        warnings.showwarning = previous_showwarning
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        pass
    sys.exit(code)
