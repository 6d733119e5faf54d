"""prepare: every malformed-input case names file, row and column; valid data becomes arrays and folds."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from digit_recognizer.data.prepare import load_competition, make_folds, prepare
from digit_recognizer.data.prepared import load_prepared
from digit_recognizer.errors import CsvError, UserError

from .conftest import REPO


def edit_lines(path: Path, edit: Callable[[list[str]], list[str]]) -> None:
    lines = path.read_text().splitlines()
    path.write_text("\n".join(edit(lines)) + "\n")


def set_cell(line_no: int, column: int, value: str) -> Callable[[list[str]], list[str]]:
    """Replace one cell; line_no 0 is the header, column 0 the first column."""

    def edit(lines: list[str]) -> list[str]:
        cells = lines[line_no].split(",")
        cells[column] = value
        lines[line_no] = ",".join(cells)
        return lines

    return edit


def drop_cell(line_no: int) -> Callable[[list[str]], list[str]]:
    def edit(lines: list[str]) -> list[str]:
        lines[line_no] = lines[line_no].rsplit(",", 1)[0]
        return lines

    return edit


# (file, edit, fragments the error message must contain)
MALFORMED = {
    "empty train": ("train.csv", lambda lines: [], ["train.csv", "is empty"]),
    "header only": ("train.csv", lambda lines: lines[:1], ["train.csv", "no data rows"]),
    "misnamed column": ("train.csv", set_cell(0, 5, "pixel40"), ["train.csv", "header column 6", "'pixel4'"]),
    "label not first": (
        "train.csv",
        lambda lines: [",".join(["pixel0", "label", *lines[0].split(",")[2:]]), *lines[1:]],
        ["train.csv", "header column 1", "'label'"],
    ),
    "missing header column": ("train.csv", drop_cell(0), ["train.csv", "header has 784 columns, expected 785"]),
    "short row": ("train.csv", drop_cell(3), ["train.csv", "train.csv, line 4:", "784 fields, expected 785"]),
    "text pixel": (
        "train.csv",
        set_cell(2, 11, "abc"),
        ["train.csv", "line 3,", "column pixel10", "'abc' is not an integer"],
    ),
    "float pixel": ("train.csv", set_cell(7, 1, "12.5"), ["train.csv", "line 8,", "column pixel0", "not an integer"]),
    "missing pixel": ("train.csv", set_cell(4, 300, ""), ["train.csv", "line 5,", "column pixel299", "missing value"]),
    "pixel too large": (
        "train.csv",
        set_cell(5, 784, "256"),
        ["train.csv", "line 6,", "column pixel783", "256 is outside 0..255"],
    ),
    "negative pixel": (
        "train.csv",
        set_cell(9, 100, "-1"),
        ["train.csv", "line 10,", "column pixel99", "-1 is outside 0..255"],
    ),
    "label out of range": (
        "train.csv",
        set_cell(6, 0, "10"),
        ["train.csv", "line 7,", "column label", "10 is outside 0..9"],
    ),
    "test with label column": (
        "test.csv",
        lambda lines: ["label," + lines[0], *("0," + line for line in lines[1:])],
        ["test.csv", "header has 785 columns, expected 784"],
    ),
    "test pixel too large": (
        "test.csv",
        set_cell(12, 0, "300"),
        ["test.csv", "line 13,", "column pixel0", "outside 0..255"],
    ),
    "empty test": ("test.csv", lambda lines: [], ["test.csv", "is empty"]),
    "submission header": ("sample_submission.csv", set_cell(0, 0, "ImageID"), ["sample_submission.csv", "'ImageId'"]),
    "submission ids out of order": (
        "sample_submission.csv",
        lambda lines: [lines[0], lines[2], lines[1], *lines[3:]],
        ["sample_submission.csv", "line 2,", "column ImageId", "should be 1"],
    ),
    "submission too short": (
        "sample_submission.csv",
        lambda lines: lines[:-1],
        ["sample_submission.csv", "999 rows, expected 1000", "disagree in length"],
    ),
    "submission longer than test": (
        "sample_submission.csv",
        lambda lines: [*lines, "1001,0"],
        ["sample_submission.csv", "1001 rows, expected 1000", "test.csv", "disagree in length"],
    ),
    "submission id zero": (
        "sample_submission.csv",
        set_cell(5, 0, "0"),
        ["sample_submission.csv, line 6, column ImageId", "ImageId 0 should be 5"],
    ),
    "submission label not a digit": (
        "sample_submission.csv",
        set_cell(3, 1, "x"),
        ["sample_submission.csv", "line 4,", "column Label", "not an integer"],
    ),
    "pixel too large for int32": (
        "train.csv",
        set_cell(5, 30, "25525500000"),
        ["train.csv, line 6,", "column pixel29", "value 25525500000 is outside 0..255"],
    ),
    "pixel with a plus sign": (
        "train.csv",
        set_cell(3, 9, "+12"),
        ["train.csv, line 4,", "column pixel8", "not an integer"],
    ),
    "unbalanced double quote": (
        "train.csv",
        set_cell(8, 40, '"12'),
        ["train.csv, line 9, column pixel39:", "a double quote opens a field that is never closed"],
    ),
    "blank line before a bad value": (
        "train.csv",
        lambda lines: [*lines[:3], "", *set_cell(4, 1, "300")(lines)[3:]],
        ["train.csv, line 6,", "column pixel0", "value 300 is outside 0..255"],
    ),
    "semicolons": (
        "test.csv",
        lambda lines: [line.replace(",", ";") for line in lines],
        ["test.csv, line 1:", "header has 1 columns", "delimited by ';' instead of ','"],
    ),
    "digit 3 missing": (
        "train.csv",
        lambda lines: [lines[0], *(line for line in lines[1:] if not line.startswith("3,"))],
        ["train.csv: too few rows of digit 3 (0)", "cv.folds=5 needs 5 of every digit"],
    ),
}


@pytest.mark.parametrize("case", MALFORMED, ids=list(MALFORMED))
def test_malformed_input_is_reported_with_file_row_and_column(raw_copy, case):
    name, edit, fragments = MALFORMED[case]
    edit_lines(raw_copy / name, edit)
    with pytest.raises(UserError) as raised:
        prepare(raw_copy, raw_copy.parent / "prepared", n_folds=5, seed=42)
    message = str(raised.value)
    assert not (raw_copy.parent / "prepared").exists()
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"


def test_missing_file_is_named(raw_copy):
    (raw_copy / "test.csv").unlink()
    with pytest.raises(CsvError, match=r"test\.csv: file not found"):
        load_competition(raw_copy)


def test_prepare_stage_exits_nonzero_and_writes_nothing_on_bad_input(raw_copy, tmp_path):
    """The stage script itself: one line on stderr, exit 1, and no data/prepared left behind."""
    work = tmp_path / "work"
    (work / "data").mkdir(parents=True)
    (raw_copy.rename(work / "data" / "raw"))
    edit_lines(work / "data" / "raw" / "train.csv", set_cell(3, 20, "999"))
    shutil.copy(REPO / "params.yaml", work / "params.yaml")
    result = subprocess.run(
        [sys.executable, str(REPO / "stages" / "prepare.py")], cwd=work, capture_output=True, text=True
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: data/raw/train.csv, line 4, column pixel19: value 999 is outside 0..255"
    ]
    assert not (work / "data" / "prepared").exists()
    assert not list((work / "data").glob(".prepared*"))  # no half-written temporary folder either


def test_prepare_writes_compact_arrays(sample_raw, tmp_path):
    summary = prepare(sample_raw, tmp_path / "prepared", n_folds=5, seed=42)
    assert summary == {"train_rows": 4000, "test_rows": 1000, "folds": 5, "answer_key": True}
    data = load_prepared(tmp_path / "prepared")
    assert data.train_images.shape == (4000, 28, 28) and data.train_images.dtype == np.uint8
    assert data.train_labels.dtype == np.int64 and set(np.unique(data.train_labels)) == set(range(10))
    assert data.test_images.shape == (1000, 28, 28)
    assert data.test_labels is not None and data.test_labels.shape == (1000,)
    # the arrays are the CSV's pixels, row by row
    first = np.loadtxt(sample_raw / "train.csv", delimiter=",", skiprows=1, max_rows=1, dtype=np.int64)
    assert data.train_labels[0] == first[0]
    np.testing.assert_array_equal(data.train_images[0].ravel(), first[1:])


def test_folds_are_stratified_and_reproducible(sample_prepared):
    labels = sample_prepared.train_labels
    folds = make_folds(labels, 5, seed=42)
    np.testing.assert_array_equal(folds, make_folds(labels, 5, seed=42))
    assert not np.array_equal(folds, make_folds(labels, 5, seed=43))
    assert np.bincount(folds).tolist() == [800] * 5
    per_class = np.array([np.bincount(labels[folds == f], minlength=10) for f in range(5)])
    assert (per_class.max(0) - per_class.min(0)).max() <= 1  # every digit spread evenly over the folds


def test_byte_order_mark_and_windows_header_bytes(raw_copy):
    """Excel's "CSV UTF-8" starts with a byte-order mark: valid. A Windows-1252 header is named, line 1."""
    train = raw_copy / "train.csv"
    train.write_bytes(b"\xef\xbb\xbf" + train.read_bytes())
    assert len(load_competition(raw_copy).train_labels) == 4000
    test = raw_copy / "test.csv"
    original = test.read_bytes()
    test.write_bytes(original.replace(b"pixel7,", b"pixel\xe97,", 1))
    with pytest.raises(CsvError, match=r"test\.csv, line 1, column pixel7: is not UTF-8 text \(byte 0xe9\)"):
        load_competition(raw_copy)
    lines = original.split(b"\n")
    lines[10] = b"0,0,0,0,0\x9c," + lines[10].split(b",", 5)[5]  # a Windows-1252 byte in a cell
    test.write_bytes(b"\n".join(lines))
    with pytest.raises(CsvError, match=r"test\.csv, line 11, column pixel4: is not UTF-8 text \(byte 0x9c\)"):
        load_competition(raw_copy)


def test_a_zip_saved_as_train_csv(raw_copy):
    import zipfile

    with zipfile.ZipFile(raw_copy / "train.csv", "w") as zf:
        zf.writestr("train.csv", "label\n")
    with pytest.raises(CsvError, match=r"train\.csv: is a zip archive, not a CSV"):
        load_competition(raw_copy)


@pytest.mark.parametrize("ending", [b"\r", b"\r\n"], ids=["old Mac (CR only)", "Windows (CRLF)"])
def test_other_line_endings_are_valid_and_errors_still_name_the_line(raw_copy, ending):
    for name in ("train.csv", "test.csv", "sample_submission.csv", "answers.csv"):
        path = raw_copy / name
        path.write_bytes(path.read_bytes().replace(b"\n", ending))
    competition = load_competition(raw_copy)
    assert len(competition.train_labels) == 4000 and len(competition.test_images) == 1000
    train = raw_copy / "train.csv"
    lines = train.read_bytes().split(ending)
    lines[6] = b"12," + lines[6].split(b",", 1)[1]  # line 7: label 12
    lines[9] = lines[9].replace(b",0,", b",x,", 1)  # line 10: not an integer (the slow scan finds the first)
    train.write_bytes(ending.join(lines))
    with pytest.raises(CsvError, match=r"train\.csv, line 7, column label: value 12 is outside 0\.\.9"):
        load_competition(raw_copy)
    lines[6] = lines[5]
    train.write_bytes(ending.join(lines))
    with pytest.raises(CsvError, match=r"train\.csv, line 10, column pixel\d+: 'x' is not an integer"):
        load_competition(raw_copy)
