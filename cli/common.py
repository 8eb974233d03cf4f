"""Shared CLI plumbing: one-line errors, ^C handling, logging verbosity, output formats."""
from __future__ import annotations

import sys

import click

from ochuman.errors import OCHumanError

FORMATS = ("table", "json", "csv", "markdown")
_ERROR, _DEBUG = 40, 10  # logging.ERROR, logging.DEBUG


class Group(click.Group):
    """A click group that turns errors raised on purpose into ``Error: <one line>``, exit 1,
    and ^C into exit 130 (partial outputs are never left behind: writes are atomic)."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except OCHumanError as err:
            raise click.ClickException(str(err).replace("\n", " ")) from None
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            ctx.exit(130)


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
