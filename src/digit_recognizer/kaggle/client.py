"""A small interface over the Kaggle API (download a competition, submit a file) with one-line errors.

`kaggle` 2.x authenticates and prints at import time, so it is imported lazily, with stdout captured.
Error messages never include credentials or the raw exception text (which may echo request headers).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from digit_recognizer.errors import UserError


class KaggleClient(Protocol):
    def download(self, competition: str, dest: Path) -> Path:
        """Download the competition's zip into `dest`; return the zip's path."""
        ...

    def submit(self, competition: str, file: Path, message: str) -> str:
        """Submit `file`; return Kaggle's reply."""
        ...


def kaggle_config_dir() -> Path:
    return Path(os.environ.get("KAGGLE_CONFIG_DIR", Path.home() / ".kaggle"))


def find_credentials() -> str | None:
    """Where Kaggle credentials would come from (a description, never the secret), or None."""
    if os.environ.get("KAGGLE_USERNAME") and os.environ.get("KAGGLE_KEY"):
        return "KAGGLE_USERNAME/KAGGLE_KEY"
    if os.environ.get("KAGGLE_API_TOKEN"):
        return "KAGGLE_API_TOKEN"
    config = kaggle_config_dir()
    if (config / "access_token").is_file():
        return str(config / "access_token")
    config_file = config / "kaggle.json"
    if config_file.is_file():
        try:
            values = json.loads(config_file.read_text())
        except (OSError, ValueError):
            raise UserError(f"{config_file} is not valid JSON: download a fresh one from kaggle.com/settings") from None
        if values.get("username") and values.get("key"):
            return str(config_file)
    return None


NO_CREDENTIALS = (
    "no Kaggle credentials found: set KAGGLE_USERNAME and KAGGLE_KEY (or KAGGLE_API_TOKEN), or put kaggle.json "
    "from kaggle.com/settings into ~/.kaggle/"
)


@contextlib.contextmanager
def kaggle_errors(competition: str, action: str, offline_hint: str) -> Iterator[None]:
    """Turn the Kaggle client's exceptions into one sentence that says what to do (offline_hint: without network)."""
    import requests

    try:
        yield
    except requests.HTTPError as error:
        status = error.response.status_code if error.response is not None else None
        if status == 401:
            raise UserError(
                f"Kaggle rejected the credentials (401) while trying to {action}: {NO_CREDENTIALS}"
            ) from None
        if status == 403:
            raise UserError(
                f"Kaggle refused to {action} (403): accept the competition rules at "
                f"https://www.kaggle.com/competitions/{competition}/rules, then run again"
            ) from None
        if status == 404:
            raise UserError(f"Kaggle has no competition named {competition!r} (404)") from None
        raise UserError(f"Kaggle answered HTTP {status} while trying to {action}") from None
    except (requests.ConnectionError, requests.Timeout):
        raise UserError(f"could not reach Kaggle to {action} (no network?): {offline_hint}") from None


class KaggleApiClient:
    """The real client: `kaggle.api.kaggle_api_extended.KaggleApi`."""

    def __init__(self) -> None:
        self._api = None

    def _authenticated_api(self):  # -> kaggle.api.kaggle_api_extended.KaggleApi
        if self._api is None:
            if find_credentials() is None:
                raise UserError(NO_CREDENTIALS)
            with contextlib.redirect_stdout(io.StringIO()):
                try:
                    from kaggle.api.kaggle_api_extended import KaggleApi

                    api = KaggleApi()
                    api.authenticate()
                except SystemExit:
                    raise UserError(NO_CREDENTIALS) from None
            self._api = api
        return self._api

    def download(self, competition: str, dest: Path) -> Path:
        api = self._authenticated_api()
        offline = f"download {competition}.zip by hand and set data.source in params.yaml to its path"
        with kaggle_errors(competition, "download the competition data", offline):
            api.competition_download_files(competition, path=str(dest), force=True, quiet=True)
        zips = sorted(Path(dest).glob("*.zip"))
        if not zips:
            raise UserError(f"Kaggle sent no zip for {competition!r}")
        return zips[0]

    def submit(self, competition: str, file: Path, message: str) -> str:
        api = self._authenticated_api()
        offline = f"try again later, or upload {file} on the competition's page (Submit Predictions)"
        with kaggle_errors(competition, "submit", offline), contextlib.redirect_stdout(io.StringIO()):
            response = api.competition_submit(str(file), message, competition, quiet=True)
        return getattr(response, "message", "") or "submitted"
