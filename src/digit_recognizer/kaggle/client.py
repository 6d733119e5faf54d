"""A small interface over the Kaggle API (download, submit, a submission's status, the submissions list) with
one-line errors.

`kaggle` 2.x authenticates and prints at import time, so it is imported lazily, with stdout captured.
Error messages never include credentials or the raw exception text (which may echo request headers).

`KAGGLE_API_ENVIRONMENT` (kagglesdk's own switch, e.g. `TEST`: http://localhost:7777, where
`python tests/kaggle_standin.py` serves) is honoured here: `KaggleApi` 2.2.5 always builds its HTTP client for
production and would ignore it.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from digit_recognizer.errors import UserError

Status = Literal["pending", "complete", "error"]


@dataclass(frozen=True)
class Submitted:
    ref: int | None  # Kaggle's number for the new submission (None: Kaggle gave none)
    reply: str  # Kaggle's message, e.g. "Successfully submitted to Digit Recognizer"


@dataclass(frozen=True)
class KaggleSubmission:
    """One submission as Kaggle reports it (`ApiSubmission`), in plain types."""

    ref: int
    status: Status
    public_score: float | None
    error: str | None  # Kaggle's scoring error, on one line
    description: str
    date: str  # ISO 8601, UTC
    file_name: str


class KaggleClient(Protocol):
    def download(self, competition: str, dest: Path) -> Path:
        """Download the competition's zip into `dest`; return the zip's path."""
        ...

    def submit(self, competition: str, file: Path, message: str) -> Submitted:
        """Submit `file`; return its ref and Kaggle's reply."""
        ...

    def submission(self, competition: str, ref: int) -> KaggleSubmission | None:
        """One submission's status and score (None: Kaggle does not list it yet)."""
        ...

    def submissions(self, competition: str) -> list[KaggleSubmission]:
        """This account's submissions to `competition`, newest first."""
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


def _one_line(text: str | None) -> str | None:
    return " ".join(text.split()) if text and text.strip() else None


def _score(text: str | None) -> float | None:
    try:
        return float(text) if text not in (None, "") else None
    except ValueError:
        return None


def as_submission(api_submission: Any) -> KaggleSubmission:
    """`kagglesdk`'s ApiSubmission in plain types."""
    date = api_submission.date
    return KaggleSubmission(
        ref=int(api_submission.ref),
        status=api_submission.status.name.lower(),
        public_score=_score(api_submission.public_score),
        error=_one_line(api_submission.error_description),
        description=api_submission.description or "",
        date=date.isoformat(timespec="seconds") + "Z" if date is not None else "",
        file_name=api_submission.file_name or "",
    )


def _kaggle_api():  # -> a KaggleApi that honours KAGGLE_API_ENVIRONMENT
    from kaggle.api.kaggle_api_extended import KaggleApi
    from kagglesdk import KaggleClient as SdkClient
    from kagglesdk.kaggle_env import KaggleEnv, get_env

    class EnvironmentKaggleApi(KaggleApi):
        def build_kaggle_client(self):
            env = get_env()
            if env == KaggleEnv.PROD:
                return super().build_kaggle_client()
            return SdkClient(
                env=env,
                username=self.config_values.get(self.CONFIG_NAME_USER),
                password=self.config_values.get(self.CONFIG_NAME_KEY),
                api_token=self.config_values.get(self.CONFIG_NAME_TOKEN),
                response_processor=self.get_response_processor(),
            )

    return EnvironmentKaggleApi()


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
                    api = _kaggle_api()
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

    def submit(self, competition: str, file: Path, message: str) -> Submitted:
        api = self._authenticated_api()
        offline = f"try again later, or upload {file} on the competition's page (Submit Predictions)"
        with kaggle_errors(competition, "submit", offline), contextlib.redirect_stdout(io.StringIO()):
            response = api.competition_submit(str(file), message, competition, quiet=True)
        if response.message == api.COMPETITION_SUBMIT_UPLOAD_FAILED_MESSAGE:
            raise UserError(f"Kaggle did not take the upload of {file}: {offline}")
        return Submitted(ref=getattr(response, "ref", None) or None, reply=response.message or "submitted")

    def submission(self, competition: str, ref: int) -> KaggleSubmission | None:
        import requests

        api = self._authenticated_api()
        offline = "`digit-recognizer leaderboard` fills in its score once Kaggle can be reached"
        # the client retries a lost connection itself, and says so on stderr: that retry chatter stays out
        with (
            kaggle_errors(competition, "read the submission's status", offline),
            contextlib.redirect_stderr(io.StringIO()),
        ):
            try:
                return as_submission(api.get_submission(ref))
            except requests.HTTPError as error:
                if error.response is not None and error.response.status_code == 404:
                    return None  # a submission just made may not be readable yet (the client's own rule)
                raise

    def submissions(self, competition: str) -> list[KaggleSubmission]:
        api = self._authenticated_api()
        offline = "the record in submissions/ keeps what it knows: run this again once Kaggle can be reached"
        with kaggle_errors(competition, "list the submissions", offline):
            listed = api.competition_submissions(competition, page_size=100) or []
        return [as_submission(s) for s in listed if s is not None]
