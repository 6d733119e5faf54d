"""The one exception type that reaches a user as a single clear sentence instead of a traceback."""

from __future__ import annotations


class UserError(Exception):
    """Something the user can fix (bad input, missing credentials, missing outputs); printed as one line."""


def os_reason(error: OSError) -> str:
    """Why a file could not be read, in a few words ("Permission denied"), for a one-line UserError."""
    return error.strerror or type(error).__name__


class CsvError(UserError):
    """A problem at a known place in a CSV file: `line` is the physical line, 1-based (the header is line 1)."""

    def __init__(self, file: str, message: str, line: int | None = None, column: str | None = None):
        self.file, self.line, self.column = file, line, column
        where = [file]
        if line is not None:
            where.append(f"line {line}")
        if column is not None:
            where.append(f"column {column}")
        super().__init__(f"{', '.join(where)}: {message}")
