"""Exceptions raised on purpose by ochuman-toolkit.

Every message is one line: ``<file>: <record>: <problem>``. The command line catches
:class:`OCHumanError` once and prints the message without a traceback.
"""
from __future__ import annotations

import codecs


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


#: Codec error handler (registered below) that writes a file name's undecodable bytes (the
#: surrogate escapes Python puts in ``sys.argv`` for them) as ``\xNN``, and any other character
#: the encoding lacks as ``\uNNNN``: messages and outputs naming such a file never fail to encode.
ESCAPE_UNDECODABLE = "ochuman.escape-undecodable"


def _escape_undecodable(err: UnicodeError):
    if not isinstance(err, UnicodeEncodeError):
        raise err
    return "".join(f"\\x{ord(c) - 0xDC00:02x}" if 0xDC80 <= ord(c) <= 0xDCFF else c.encode("ascii", "backslashreplace").decode()
                   for c in err.object[err.start:err.end]), err.end


def printable(text: str) -> str:
    """``text`` as UTF-8 can hold it (see :data:`ESCAPE_UNDECODABLE`)."""
    return text.encode("utf-8", ESCAPE_UNDECODABLE).decode("utf-8")


codecs.register_error(ESCAPE_UNDECODABLE, _escape_undecodable)
