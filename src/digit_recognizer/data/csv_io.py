"""Read and write Kaggle's digit-recognizer CSVs as integer arrays, rejecting anything malformed.

Valid files take the fast path: pyarrow's multi-threaded reader straight into int32 columns, with
range checks on whole columns. Only when that reader refuses a file does a slow row-by-row scan run,
to name the row and column of the first problem.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from digit_recognizer.atomic import atomic_path
from digit_recognizer.errors import CsvError, os_reason

INTEGER = re.compile(r" *-?[0-9]+ *")  # what the fast reader takes as an int32 cell (no '+', '_' or exponent)
PIXELS = [f"pixel{i}" for i in range(784)]
TRAIN_COLUMNS = ["label", *PIXELS]
TEST_COLUMNS = PIXELS
SUBMISSION_COLUMNS = ["ImageId", "Label"]


def read_int_csv(
    path: str | Path,
    columns: Sequence[str],
    bounds: Sequence[tuple[int, int]],
    dtype: np.dtype | type = np.int32,
) -> np.ndarray:
    """Read a CSV whose header is exactly `columns` and whose cells are integers within `bounds`
    (one (low, high) pair per column); return a (rows, columns) array of `dtype`."""
    path = Path(path)
    _check_header(path, columns)
    try:
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(block_size=8 << 20),
            convert_options=pacsv.ConvertOptions(column_types=dict.fromkeys(columns, pa.int32())),
        )
    except (pa.ArrowException, OSError):
        _diagnose_slowly(path, columns, bounds)
        raise CsvError(str(path), "cannot be read as a CSV of integers") from None  # the scan found no culprit
    if table.num_rows == 0:
        raise CsvError(str(path), "has a header but no data rows")
    for name, column, (low, high) in zip(columns, table.columns, bounds, strict=True):
        if column.null_count:
            raise CsvError(str(path), "missing value", line=data_line(path, _first(column.is_null())), column=name)
        extremes = pc.min_max(column)
        if extremes["min"].as_py() < low or extremes["max"].as_py() > high:
            row = _first(pc.or_(pc.less(column, low), pc.greater(column, high)))
            value = column[row - 1].as_py()
            raise CsvError(str(path), f"value {value} is outside {low}..{high}", line=data_line(path, row), column=name)
    return np.column_stack([column.to_numpy().astype(dtype, copy=False) for column in table.columns])


def write_int_csv(path: str | Path, columns: Sequence[str], values: np.ndarray) -> None:
    """Write an integer array under a plain (unquoted) header, atomically."""
    table = pa.Table.from_arrays([pa.array(values[:, i]) for i in range(values.shape[1])], names=list(columns))
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write((",".join(columns) + "\n").encode())
        pacsv.write_csv(table, f, write_options=pacsv.WriteOptions(include_header=False))


def data_line(path: str | Path, row: int) -> int:
    """The physical line (1-based, header = line 1) of data row `row` (1-based), skipping blank lines as
    pyarrow's reader does. Runs only to report an error."""
    with open(path, "rb") as f:
        lines = physical_lines(f)
        next(lines, None)
        seen = 0
        for number, line in enumerate(lines, start=2):
            if line:
                seen += 1
                if seen == row:
                    return number
    return row + 1


def physical_lines(f: BinaryIO, chunk_size: int = 1 << 20) -> Iterator[bytes]:
    """A binary file's lines without their endings, split at \\n, \\r\\n or a lone \\r (old Mac files) as
    pyarrow's reader splits them."""
    pending = b""
    while chunk := f.read(chunk_size):
        lines = (pending + chunk).splitlines(keepends=True)
        pending = b"" if lines[-1].endswith(b"\n") else lines.pop()  # a last \r may be half of a \r\n
        yield from (line.rstrip(b"\r\n") for line in lines)
    if pending:
        yield pending.rstrip(b"\r\n")


def _first(mask: pa.ChunkedArray) -> int:
    """1-based index of the first true value."""
    return int(np.flatnonzero(mask.to_numpy(zero_copy_only=False))[0]) + 1


def _check_header(path: Path, columns: Sequence[str]) -> None:
    try:
        if not path.is_file():
            raise CsvError(str(path), "file not found")
        with open(path, "rb") as f:
            start = f.read(1 << 20)
    except OSError as error:
        raise CsvError(str(path), f"cannot be read ({os_reason(error)})") from None
    if start.startswith(b"PK\x03\x04"):
        raise CsvError(str(path), "is a zip archive, not a CSV: unzip it, or set data.source to the zip itself")
    header_line = _decode(path, next(iter(start.splitlines()), b""), 1, columns)
    if not header_line.strip():
        raise CsvError(str(path), "is empty (expected a header line)")
    try:
        header = next(csv.reader([header_line]))
    except csv.Error as error:
        raise CsvError(str(path), f"the header cannot be read as CSV ({error})", line=1) from None
    if len(header) != len(columns):
        hint = next(
            (f": is it delimited by {d!r} instead of ','?" for d in ";\t|" if len(header) == 1 and d in header[0]), ""
        )
        raise CsvError(
            str(path), f"header has {len(header)} columns, expected {len(columns)} ({_describe(columns)}){hint}", line=1
        )
    for position, (found, expected) in enumerate(zip(header, columns, strict=True), start=1):
        if found.strip() != expected:
            raise CsvError(
                str(path),
                f"header column {position} is {found!r}, expected {expected!r} ({_describe(columns)})",
                line=1,
            )


def _decode(path: Path, raw: bytes, line: int, columns: Sequence[str]) -> str:
    """UTF-8 (a byte-order mark on line 1, as Excel's "CSV UTF-8" writes, is dropped)."""
    if line == 1:
        raw = raw.removeprefix(b"\xef\xbb\xbf")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        field = raw[: error.start].count(b",")
        column = columns[field] if field < len(columns) else f"{field + 1} (of {len(columns)})"
        message = f"is not UTF-8 text (byte {raw[error.start]:#04x}): save it as CSV UTF-8"
        raise CsvError(str(path), message, line=line, column=column) from None


def _diagnose_slowly(path: Path, columns: Sequence[str], bounds: Sequence[tuple[int, int]]) -> None:
    """Scan row by row with the csv module to name the line and column of the first problem."""
    with open(path, "rb") as f:
        lines = (_decode(path, raw, number, columns) for number, raw in enumerate(physical_lines(f), start=1))
        reader = csv.reader(lines)
        next(reader)
        while True:
            start = reader.line_num + 1  # where the next row begins (a quoted field may span lines)
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error:
                column = _unclosed_quote_column(path, start, columns)
                message = "a double quote opens a field that is never closed"
                raise CsvError(str(path), message, line=start, column=column) from None
            if row:
                _check_row(path, row, start, columns, bounds)


def _unclosed_quote_column(path: Path, line: int, columns: Sequence[str]) -> str | None:
    """The column whose field opens the unclosed double quote on physical line `line` (None if not found)."""
    with open(path, "rb") as f:
        for number, raw in enumerate(physical_lines(f), start=1):
            if number == line:
                text = _decode(path, raw, number, columns)
                for field, cell in enumerate(text.split(",")):
                    if cell.lstrip().startswith('"') and cell.count('"') % 2 and field < len(columns):
                        return columns[field]
                return None
    return None


def _check_row(path: Path, row: list[str], line: int, columns: Sequence[str], bounds: Sequence[tuple[int, int]]):
    if len(row) != len(columns):
        raise CsvError(str(path), f"has {len(row)} fields, expected {len(columns)}", line=line)
    for name, cell, (low, high) in zip(columns, row, bounds, strict=True):
        if not cell.strip():
            raise CsvError(str(path), "missing value", line=line, column=name)
        if not INTEGER.fullmatch(cell):
            raise CsvError(str(path), f"{cell!r} is not an integer", line=line, column=name)
        value = int(cell)
        if not low <= value <= high:
            raise CsvError(str(path), f"value {value} is outside {low}..{high}", line=line, column=name)


def _describe(columns: Sequence[str]) -> str:
    return ",".join(columns) if len(columns) <= 3 else f"{columns[0]},{columns[1]},...,{columns[-1]}"
