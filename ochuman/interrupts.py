"""SIGTERM handled as ^C: the one convention of the commands and of training.

A scheduler (or ``kill``) ending a job sends SIGTERM. Inside :func:`sigterm_as_interrupt` it
raises :class:`Terminated`, a ``KeyboardInterrupt``, so that everything that cleans up after ^C
(atomic writes removing their temporary files, training saving a resumable ``last.pt``) does
the same for SIGTERM; the command then exits with ``Terminated.exit_code`` (128 + 15).
"""
from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator


class Terminated(KeyboardInterrupt):
    """SIGTERM while a command or :func:`pose2seg.train.fit` runs; ``exit_code`` is the
    command-line exit status (128 + 15)."""

    exit_code = 128 + signal.SIGTERM


def raise_terminated(signum, frame) -> None:
    """A SIGTERM handler: raise :class:`Terminated`."""
    raise Terminated(f"signal {signum}")


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Inside the block SIGTERM raises :class:`Terminated` (in the main thread, unless the
    process ignores SIGTERM); the previous handler is restored afterwards."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) is signal.SIG_IGN:
        yield
        return
    previous = signal.signal(signal.SIGTERM, raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
