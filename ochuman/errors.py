"""Exceptions raised on purpose by ochuman-toolkit.

Every message is one line: ``<file>: <record>: <problem>``. The command line catches
:class:`OCHumanError` once and prints the message without a traceback.
"""
from __future__ import annotations


class OCHumanError(Exception):
    """Root of every error raised on purpose."""


class FormatError(OCHumanError, ValueError):
    """A file breaks the format it claims."""

    @classmethod
    def at(cls, path: object, where: str, problem: str) -> "FormatError":
        """Build ``"<path>: <where>: <problem>"``; ``where`` names the record."""
        return cls(f"{path}: {where}: {problem}" if where else f"{path}: {problem}")


class ImageNotFoundError(OCHumanError, FileNotFoundError):
    """An image named by an annotation file is not in the images folder."""


class ResultsError(FormatError):
    """A results file cannot be scored against its ground truth."""


class OCHumanWarning(UserWarning):
    """Something a user should know that does not stop the work (e.g. an empty results list)."""
