"""Wait for Kaggle to score a submission: poll its status with the client, showing a status line meanwhile.

The interval starts at POLL_SECONDS and grows by half each poll up to MAX_POLL_SECONDS, as `kaggle competitions
submit --wait` does; DIGIT_RECOGNIZER_POLL_SECONDS shortens it against the local stand-in (tests, docs/kaggle.md).
"""

from __future__ import annotations

import os
import sys
import time

from tqdm import tqdm

from digit_recognizer.errors import UserError
from digit_recognizer.kaggle.client import KaggleClient, KaggleSubmission

POLL_SECONDS = 5.0  # Kaggle's own client never polls more often
MAX_POLL_SECONDS = 30.0
DEFAULT_WAIT_SECONDS = 600.0  # `submit --wait` with no number: Digit Recognizer scores in seconds to minutes


class WaitTimedOut(UserError):
    """Kaggle had not scored the submission when the wait ran out (it stays pending)."""


def poll_seconds() -> float:
    value = os.environ.get("DIGIT_RECOGNIZER_POLL_SECONDS")
    try:
        return float(value) if value else POLL_SECONDS
    except ValueError:
        raise UserError(f"DIGIT_RECOGNIZER_POLL_SECONDS={value!r} is not a number of seconds") from None


def wait_for_score(
    client: KaggleClient, competition: str, ref: int, timeout: float, interval: float | None = None
) -> tuple[KaggleSubmission, float]:
    """Poll submission `ref` until Kaggle scores it or fails to; return it and the seconds waited.

    Raises WaitTimedOut when `timeout` seconds pass first. The status line goes to stderr (a live one on a
    terminal, with the time waited).
    """
    interval = poll_seconds() if interval is None else interval
    start = time.monotonic()
    deadline = start + timeout
    print(f"waiting for Kaggle to score submission {ref} (up to {timeout:,g} s) ...", file=sys.stderr, flush=True)
    with tqdm(
        total=None,
        bar_format="{desc} ({elapsed})",
        desc="status: submitted",
        file=sys.stderr,
        disable=None,
        leave=False,
    ) as line:
        while True:
            state = client.submission(competition, ref)  # None: not readable yet, as pending
            if state is not None and state.status != "pending":
                return state, time.monotonic() - start
            line.set_description_str(f"status: {state.status if state else 'pending'}")
            now = time.monotonic()
            if now >= deadline:
                raise WaitTimedOut(
                    f"Kaggle had not scored submission {ref} after {timeout:,g} s: it stays pending in the record; "
                    "`digit-recognizer leaderboard` fills in its score later"
                )
            time.sleep(min(interval, deadline - now))
            interval = min(interval * 1.5, max(MAX_POLL_SECONDS, interval))
