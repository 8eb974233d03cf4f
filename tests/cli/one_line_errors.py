"""Shared check for the CLI contract on bad input: one `Error:` line on stderr, exit 1."""
from __future__ import annotations

import inspect
from pathlib import Path

from click.testing import CliRunner

# click < 8.2 mixes stderr into stdout unless told not to; 8.2+ always keeps both apart.
RUNNER_KWARGS = (
    {"mix_stderr": False} if "mix_stderr" in inspect.signature(CliRunner.__init__).parameters else {}
)


def assert_one_line_error(result, stdout: str, stderr: str, path: Path, fragment: str) -> str:
    """The invocation ended cleanly with exit 1 and exactly one ``Error: <path>: ...`` line
    containing ``fragment`` on stderr, nothing on stdout, no traceback. Returns the line."""
    text = stdout + stderr
    # CliRunner turns an uncaught exception into exit code 1 too: make sure it was a clean exit
    assert result.exc_info is None or result.exc_info[0] is SystemExit, (
        f"uncaught {result.exc_info[0].__name__}: {result.exception}")
    assert result.exit_code == 1, text
    assert "Traceback" not in text
    assert stdout == "", f"the error belongs on stderr, stdout got {stdout!r}"
    lines = stderr.splitlines()
    assert len(lines) == 1 and stderr.endswith("\n"), f"expected one line, got {stderr!r}"
    line = lines[0]
    assert line.startswith("Error: ") and line.strip() != "Error:", line
    assert f"{path}: " in line, f"{path} not named in {line!r}"
    assert fragment in line, f"{fragment!r} not in {line!r}"
    return line
