"""download: the embedded sample, a zip, a folder and the Kaggle API (against a local stand-in) give valid CSVs."""

from __future__ import annotations

import io
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from digit_recognizer.data.download import download, resolve_source
from digit_recognizer.data.origin import read_origin
from digit_recognizer.data.prepare import load_competition, prepare
from digit_recognizer.errors import UserError
from digit_recognizer.paths import WORKSPACE_VARIABLE

from .conftest import SHARED_MINI
from .kaggle_standin import KaggleStandIn, point_kaggle_client_at

COMPETITION_FILES = ("train.csv", "test.csv", "sample_submission.csv")


def zip_of(folder: Path, names=COMPETITION_FILES, prefix: str = "", extra: dict[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in names:
            zf.write(folder / name, prefix + name)
        for member, source in (extra or {}).items():
            zf.write(folder / source, member)
    return buffer.getvalue()


def damaged_member(data: bytes) -> bytes:
    """The zip with one byte of test.csv's compressed data flipped: its CRC check fails on reading."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        info = zf.getinfo("test.csv")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra) + 1000
    return data[:start] + bytes([data[start] ^ 0xFF]) + data[start + 1 :]


# how a zip source can be wrong, and what the one-line error must say
BAD_ZIPS = {
    "train.csv twice": (
        lambda raw: zip_of(raw, extra={"backup/train.csv": "test.csv"}),
        "holds train.csv twice (train.csv and backup/train.csv)",
    ),
    "a damaged member": (lambda raw: damaged_member(zip_of(raw)), "test.csv is damaged"),
    "truncated download": (lambda raw: zip_of(raw)[:50_000], "is a damaged or truncated zip"),
    "not a zip at all": (lambda raw: b"train.csv,test.csv\n", "is a file but not a zip"),
}


@pytest.mark.parametrize("case", BAD_ZIPS, ids=list(BAD_ZIPS))
def test_bad_zips_are_refused_in_one_line_and_nothing_is_written(case, sample_raw, tmp_path):
    make, expected = BAD_ZIPS[case]
    archive = tmp_path / "digit-recognizer.zip"
    archive.write_bytes(make(sample_raw))
    with pytest.raises(UserError) as raised:
        download(str(archive), tmp_path / "raw")
    assert expected in str(raised.value) and str(archive) in str(raised.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["digit-recognizer.zip"]


def test_a_zip_with_one_folder_inside_is_fine(sample_raw, tmp_path):
    archive = tmp_path / "digit-recognizer.zip"
    archive.write_bytes(zip_of(sample_raw, prefix="digit-recognizer/"))
    download(str(archive), tmp_path / "raw")
    assert len(load_competition(tmp_path / "raw").train_labels) == 4000


def test_unreadable_files_are_named(sample_raw, tmp_path, monkeypatch):
    def refuse(src, dst):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(shutil, "copyfile", refuse)  # root reads everything; a user may not
    with pytest.raises(UserError, match=r"train\.csv: cannot be read \(Permission denied\)"):
        download(str(sample_raw), tmp_path / "raw")


def test_a_folder_that_cannot_be_looked_into_is_named(sample_raw, tmp_path, monkeypatch):
    """A folder without search permission: looking at its files raises PermissionError (root is never refused)."""
    real_stat = Path.stat

    def refuse_inside(path, *args, **kwargs):
        if path.parent == sample_raw:
            raise PermissionError(13, "Permission denied", str(path))
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(Path, "stat", refuse_inside)
    with pytest.raises(UserError, match=r"train\.csv: cannot be read \(Permission denied\)"):
        download(str(sample_raw), tmp_path / "raw")
    assert not (tmp_path / "raw").exists()


def test_errors_in_a_users_zip_name_the_zip(sample_raw, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(sample_raw, bad)
    lines = (bad / "train.csv").read_text().splitlines()
    lines[5] = lines[5].replace(",0,", ",999,", 1)
    (bad / "train.csv").write_text("\n".join(lines) + "\n")
    archive = tmp_path / "my-download.zip"
    archive.write_bytes(zip_of(bad))
    download(str(archive), tmp_path / "raw")
    with pytest.raises(UserError) as raised:
        prepare(tmp_path / "raw", tmp_path / "prepared", n_folds=5, seed=0)
    assert "train.csv, line 6" in str(raised.value) and f"is a copy of {archive}" in str(raised.value)


def test_sample_source_writes_real_digits_in_kaggle_format(tmp_path):
    message = download("sample", tmp_path / "raw", sample_test_rows=1000, seed=0)
    assert "embedded sample" in message
    assert read_origin(tmp_path / "raw")["kind"] == "sample"  # `submit` refuses what this data produces
    raw = tmp_path / "raw"
    assert (raw / "train.csv").read_text().splitlines()[0].startswith("label,pixel0,pixel1,")
    assert (raw / "sample_submission.csv").read_text().splitlines()[:2] == ["ImageId,Label", "1,0"]
    competition = load_competition(raw)  # validates every file
    assert len(competition.train_labels) == 4000 and len(competition.test_images) == 1000
    assert np.bincount(competition.train_labels).tolist() == [400] * 10
    # real handwriting: ink covers roughly a fifth of an MNIST digit's pixels
    assert 0.1 < (competition.train_images > 0).mean() < 0.3


def test_zip_source(sample_raw, tmp_path):
    archive = tmp_path / "digit-recognizer.zip"
    archive.write_bytes(zip_of(sample_raw))
    download(str(archive), tmp_path / "raw")
    assert sorted(p.name for p in (tmp_path / "raw").iterdir()) == sorted([*COMPETITION_FILES, "origin.json"])
    assert len(load_competition(tmp_path / "raw").train_labels) == 4000
    assert read_origin(tmp_path / "raw") == {"kind": "local", "description": str(archive)}


def test_folder_source_keeps_an_answer_key(sample_raw, tmp_path):
    download(str(sample_raw), tmp_path / "raw")
    assert load_competition(tmp_path / "raw").test_labels is not None


def test_zip_lacking_a_file_is_refused_and_nothing_is_written(sample_raw, tmp_path):
    archive = tmp_path / "broken.zip"
    archive.write_bytes(zip_of(sample_raw, names=("train.csv", "test.csv")))
    with pytest.raises(UserError, match=r"lacks sample_submission\.csv"):
        download(str(archive), tmp_path / "raw")
    assert not (tmp_path / "raw").exists()


def test_a_relative_source_is_read_from_the_project_that_a_checkout_names(sample_raw, tmp_path, monkeypatch):
    """`digit-recognizer repro` runs each stage in a checkout elsewhere and names the project's folder."""
    shutil.copytree(sample_raw, tmp_path / "competition")
    (tmp_path / "project").mkdir()
    checkout = tmp_path / "scratch" / "checkout"
    checkout.mkdir(parents=True)
    monkeypatch.chdir(checkout)
    with pytest.raises(UserError, match="does not exist"):  # ../competition from the checkout: nothing there
        download("../competition", tmp_path / "raw")
    monkeypatch.setenv(WORKSPACE_VARIABLE, str(tmp_path / "project"))
    download("../competition", tmp_path / "raw")
    assert len(load_competition(tmp_path / "raw").train_labels) == 4000
    assert read_origin(tmp_path / "raw")["description"] == "../competition"  # the same bytes from any checkout


def test_missing_source_path(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        download(str(tmp_path / "nowhere.zip"), tmp_path / "raw")


@pytest.mark.skipif(not SHARED_MINI.exists(), reason="../shared/data/digit-recognizer-mini.zip is not here")
def test_shared_mini_competition_zip(tmp_path):
    download(str(SHARED_MINI), tmp_path / "raw")
    competition = load_competition(tmp_path / "raw")
    assert len(competition.train_labels) == 19_690 and len(competition.test_images) == 10_000
    assert competition.test_labels is None  # withheld, as on Kaggle


def test_auto_prefers_notebook_input_then_credentials_then_sample(kaggle_env, tmp_path, monkeypatch):
    notebook = tmp_path / "kaggle-input"
    assert resolve_source("auto", notebook_input=notebook)[0] == "sample"
    monkeypatch.setenv("KAGGLE_USERNAME", "someone")
    monkeypatch.setenv("KAGGLE_KEY", "secret-key")
    source, reason = resolve_source("auto", notebook_input=notebook)
    assert source == "kaggle" and "secret-key" not in reason
    notebook.mkdir()
    assert resolve_source("auto", notebook_input=notebook)[0] == str(notebook)


def test_auto_finds_kaggle_json(kaggle_env):
    (kaggle_env / "kaggle.json").write_text('{"username": "someone", "key": "secret-key"}')
    source, reason = resolve_source("auto", notebook_input=Path("/nonexistent"))
    assert source == "kaggle" and "kaggle.json" in reason and "secret-key" not in reason


def test_kaggle_without_credentials_says_what_to_do(kaggle_env, tmp_path):
    with pytest.raises(UserError, match="no Kaggle credentials found: set KAGGLE_USERNAME and KAGGLE_KEY"):
        download("kaggle", tmp_path / "raw")


def test_kaggle_api_download_through_real_client(kaggle_env, sample_raw, tmp_path, monkeypatch):
    monkeypatch.setenv("KAGGLE_USERNAME", "someone")
    monkeypatch.setenv("KAGGLE_KEY", "secret-key")
    with KaggleStandIn(competition_zip=zip_of(sample_raw)) as server:
        point_kaggle_client_at(server.url, monkeypatch)
        message = download("kaggle", tmp_path / "raw", competition="digit-recognizer")
    assert "Kaggle API" in message
    # /api/v1/...: KAGGLE_API_ENVIRONMENT=TEST's paths, so the request went through kagglesdk's switch
    assert [r[:2] for r in server.requests] == [
        ("POST", "/api/v1/competitions.CompetitionApiService/DownloadDataFiles"),
        ("GET", "/files/digit-recognizer.zip"),
    ]
    assert len(load_competition(tmp_path / "raw").train_labels) == 4000
    assert read_origin(tmp_path / "raw")["kind"] == "kaggle"


def test_kaggle_403_asks_to_accept_the_rules_and_never_shows_the_key(kaggle_env, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KAGGLE_USERNAME", "someone")
    monkeypatch.setenv("KAGGLE_KEY", "secret-key")
    with KaggleStandIn(status=403) as server, pytest.raises(UserError) as raised:
        point_kaggle_client_at(server.url, monkeypatch)
        download("kaggle", tmp_path / "raw")
    assert "accept the competition rules at https://www.kaggle.com/competitions/digit-recognizer/rules" in str(
        raised.value
    )
    captured = capsys.readouterr()
    assert "secret-key" not in str(raised.value) + captured.out + captured.err
    assert not (tmp_path / "raw").exists()


def test_kaggle_unreachable_suggests_a_manual_download(kaggle_env, tmp_path, monkeypatch):
    monkeypatch.setenv("KAGGLE_USERNAME", "someone")
    monkeypatch.setenv("KAGGLE_KEY", "secret-key")
    with KaggleStandIn() as server:
        closed_url = server.url  # the stand-in is gone after this block: nothing listens there
    point_kaggle_client_at(closed_url, monkeypatch)
    with pytest.raises(UserError, match=r"could not reach Kaggle .*no network") as raised:
        download("auto", tmp_path / "raw")
    message = str(raised.value)
    assert "set data.source to sample" in message and "Kaggle credentials found in KAGGLE_USERNAME" in message


def test_download_stage_copies_shared_layout(sample_raw, tmp_path):
    """A Kaggle-notebook style folder (/kaggle/input/digit-recognizer) works as a source too."""
    folder = tmp_path / "input" / "digit-recognizer"
    shutil.copytree(sample_raw, folder)
    (folder / "answers.csv").unlink()
    source, _ = resolve_source("auto", notebook_input=folder)
    download(source, tmp_path / "raw")
    assert load_competition(tmp_path / "raw").test_labels is None
