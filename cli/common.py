"""Shared CLI plumbing: one-line errors, ^C and SIGTERM handling, logging verbosity, output formats."""
from __future__ import annotations

import errno
import os
import sys

import click

from ochuman.errors import ESCAPE_UNDECODABLE, OCHumanError
from ochuman.interrupts import Terminated, sigterm_as_interrupt

FORMATS = ("table", "json", "csv", "markdown")
_ERROR, _DEBUG = 40, 10  # logging.ERROR, logging.DEBUG


class Group(click.Group):
    """A click group that turns errors raised on purpose into ``Error: <one line>``, exit 1,
    ^C into exit 130 and SIGTERM into exit 143 (partial outputs are never left behind: writes
    are atomic, and their temporary files are removed however the command ends)."""

    def invoke(self, ctx: click.Context):
        for stream in (sys.stdout, sys.stderr):  # file names' undecodable bytes print as \xNN
            if hasattr(stream, "reconfigure"):
                stream.reconfigure(errors=ESCAPE_UNDECODABLE)
        try:
            with sigterm_as_interrupt():
                return super().invoke(ctx)
        except OCHumanError as err:
            raise click.ClickException(str(err).replace("\n", " ")) from None
        except KeyboardInterrupt as stop:
            terminated = isinstance(stop, Terminated)
            click.echo("Terminated (SIGTERM)." if terminated else "Interrupted.", err=True)
            ctx.exit(Terminated.exit_code if terminated else 130)
        except OSError as err:
            if err.errno == errno.EPIPE:  # a reader that stopped early: click exits quietly
                raise
            raise click.ClickException(_os_error_line(err)) from None
        finally:
            if "ochuman.io" in sys.modules:  # only if something may have written
                sys.modules["ochuman.io"].remove_unfinished_writes()


def _os_error_line(err: OSError) -> str:
    """One line for an operating-system error that reached the command line: the file it names;
    without one, a failed write of the standard output (a full disk: ``> /dev/full``), since
    the toolkit's own reads and writes name their files."""
    problem = err.strerror or str(err)
    if err.filename is not None:
        return f"{err.filename}: {problem}"
    return f"standard output: cannot write: {problem}"


class OutputFile(click.ParamType):
    """A file a command writes: a folder in its place is refused at once, in one line (before
    any work; the write itself would fail only at the end)."""

    name = "file"

    def convert(self, value, param, ctx):
        if os.path.isdir(value):
            raise OCHumanError(f"{value}: {param.opts[0] if param else 'output'} names a folder, not a file")
        return value


class OutputFolder(click.ParamType):
    """A folder a command writes files into (created if missing): a file in its place is refused
    in one line."""

    name = "folder"

    def convert(self, value, param, ctx):
        if os.path.exists(value) and not os.path.isdir(value):
            raise OCHumanError(f"{value}: {param.opts[0] if param else 'output'} names a file, not a folder")
        return value


def verbosity_options(func):
    """``-v`` / ``-q``: set the log level of the whole run once."""

    def set_level(ctx, param, value):
        if value is not None:
            import logging  # only when asked for: most runs never log

            logging.basicConfig(level=value, format="%(levelname)s %(name)s: %(message)s")
        return value

    func = click.option("-q", "--quiet", "log_level", flag_value=_ERROR,
                        callback=set_level, expose_value=False, help="Only errors on stderr.")(func)
    func = click.option("-v", "--verbose", "log_level", flag_value=_DEBUG,
                        callback=set_level, expose_value=False, help="Debug messages on stderr.")(func)
    return func


format_option = click.option(
    "--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True,
    help="How results are printed.",
)


def show_progress() -> bool:
    """Progress bars only when a person watches stderr."""
    return sys.stderr.isatty()


def run_and_exit(group: click.Group) -> None:
    """Console-script entry of a short-lived command: run ``group`` with the cyclic garbage
    collector off, then leave without the interpreter's teardown.

    A one-shot run allocates many objects and frees them all at exit: collection passes and
    the teardown of every module and array cost ~20 ms of a 0.25 s ``ochuman eval``. Outputs
    are complete before this point (files are written atomically and closed); the standard
    streams and logging are flushed here. Exit codes are click's.
    """
    import gc
    import os

    gc.disable()
    try:
        group.main()
        code = 0
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else int(done.code is not None)
    except OSError as err:  # the group's own --help / --version output failed (a full disk)
        click.echo(f"Error: {_os_error_line(err)}", err=True)
        code = 1
    if "logging" in sys.modules:
        sys.modules["logging"].shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # closed or broken: nothing more can be said there
            code = code or 1
    os._exit(code)
