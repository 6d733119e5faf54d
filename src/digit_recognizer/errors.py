"""The one exception type that reaches a user as a single clear sentence instead of a traceback."""

from __future__ import annotations


class UserError(Exception):
    """Something the user can fix (bad input, missing credentials, missing outputs); printed as one line."""


class CsvError(UserError):
    """A problem at a known place in a CSV file."""

    def __init__(self, file: str, message: str, row: int | None = None, column: str | None = None):
        self.file, self.row, self.column = file, row, column
        where = [file]
        if row is not None:
            # row counts data rows from 1; the header is line 1, so data row r is line r + 1
            where.append(f"row {row} (line {row + 1})")
        if column is not None:
            where.append(f"column {column}")
        super().__init__(f"{', '.join(where)}: {message}")
