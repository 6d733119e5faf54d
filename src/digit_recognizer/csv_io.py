"""Read and write Kaggle's digit-recognizer CSVs as integer arrays, rejecting anything malformed.

Valid files take the fast path: pyarrow's multi-threaded reader straight into int32 columns, with
range checks on whole columns. Only when that reader refuses a file does a slow row-by-row scan run,
to name the row and column of the first problem.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from digit_recognizer.atomic import atomic_path
from digit_recognizer.errors import CsvError

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
    except pa.ArrowException:
        _diagnose_slowly(path, columns)
        raise  # the slow scan found nothing wrong: surface pyarrow's own message
    if table.num_rows == 0:
        raise CsvError(str(path), "has a header but no data rows")
    for name, column, (low, high) in zip(columns, table.columns, bounds, strict=True):
        if column.null_count:
            raise CsvError(str(path), "missing value", row=_first_row(column.is_null()), column=name)
        extremes = pc.min_max(column)
        if extremes["min"].as_py() < low or extremes["max"].as_py() > high:
            row = _first_row(pc.or_(pc.less(column, low), pc.greater(column, high)))
            value = column[row - 1].as_py()
            raise CsvError(str(path), f"value {value} is outside {low}..{high}", row=row, column=name)
    return np.column_stack([column.to_numpy().astype(dtype, copy=False) for column in table.columns])


def write_int_csv(path: str | Path, columns: Sequence[str], values: np.ndarray) -> None:
    """Write an integer array under a plain (unquoted) header, atomically."""
    table = pa.Table.from_arrays([pa.array(values[:, i]) for i in range(values.shape[1])], names=list(columns))
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write((",".join(columns) + "\n").encode())
        pacsv.write_csv(table, f, write_options=pacsv.WriteOptions(include_header=False))


def _first_row(mask: pa.ChunkedArray) -> int:
    """1-based index of the first true value."""
    return int(np.flatnonzero(mask.to_numpy(zero_copy_only=False))[0]) + 1


def _check_header(path: Path, columns: Sequence[str]) -> None:
    if not path.is_file():
        raise CsvError(str(path), "file not found")
    with open(path, newline="") as f:
        header_line = f.readline()
    if not header_line.strip():
        raise CsvError(str(path), "is empty (expected a header line)")
    header = next(csv.reader([header_line]))
    if len(header) != len(columns):
        raise CsvError(str(path), f"header has {len(header)} columns, expected {len(columns)} ({_describe(columns)})")
    for position, (found, expected) in enumerate(zip(header, columns, strict=True), start=1):
        if found.strip() != expected:
            raise CsvError(
                str(path),
                f"header column {position} is {found!r}, expected {expected!r} ({_describe(columns)})",
            )


def _diagnose_slowly(path: Path, columns: Sequence[str]) -> None:
    with open(path, newline="") as f:
        reader = csv.reader(f)
        next(reader)
        for row_number, row in enumerate(reader, start=1):
            if not row:
                continue
            if len(row) != len(columns):
                raise CsvError(str(path), f"has {len(row)} fields, expected {len(columns)}", row=row_number)
            for name, cell in zip(columns, row, strict=True):
                if not cell.strip():
                    raise CsvError(str(path), "missing value", row=row_number, column=name)
                try:
                    int(cell)
                except ValueError:
                    raise CsvError(str(path), f"{cell!r} is not an integer", row=row_number, column=name) from None


def _describe(columns: Sequence[str]) -> str:
    return ",".join(columns) if len(columns) <= 3 else f"{columns[0]},{columns[1]},...,{columns[-1]}"
