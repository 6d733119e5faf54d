"""A local stand-in for Kaggle's API server: enough for the real `kaggle` client's download, submit, a submission's
status and the submissions list. Tests start it in a thread; anyone can run it until killed:

    python tests/kaggle_standin.py --port 7777 --public-score 0.98765 [--error "message"] [--competition-zip ZIP]
    KAGGLE_API_ENVIRONMENT=TEST KAGGLE_USERNAME=anyone KAGGLE_KEY=anything digit-recognizer submit --wait

(kagglesdk's KAGGLE_API_ENVIRONMENT=TEST means http://localhost:7777; the project's client honours it, the
`kaggle` command itself does not.) A new submission is PENDING for `--pending-polls` reads of its status, then
COMPLETE with the public score, or ERROR with `--error`'s message. Credentials are accepted, never checked.
"""

from __future__ import annotations

import argparse
import itertools
import json
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

COMPETITIONS = "competitions.CompetitionApiService/"
SERVICE = "/v1/" + COMPETITIONS  # production's paths; other environments (TEST) put /api before them
PUBLIC_SCORE = 0.98765


def point_kaggle_client_at(url: str, monkeypatch) -> None:
    """The client, through KAGGLE_API_ENVIRONMENT=TEST, talks to `url` for the length of a test.

    Production's endpoint points there too, so that nothing reaches kaggle.com even if the switch were lost
    (test_kaggle_loop checks that requests come through TEST's /api paths).
    """
    from kagglesdk import kaggle_env

    monkeypatch.setenv("KAGGLE_API_ENVIRONMENT", "TEST")
    monkeypatch.setitem(kaggle_env._env_to_endpoint, kaggle_env.KaggleEnv.TEST, url)
    monkeypatch.setitem(kaggle_env._env_to_endpoint, kaggle_env.KaggleEnv.PROD, url)


def now_iso() -> str:
    return datetime.now(timezone.utc).replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


class KaggleStandIn(ThreadingHTTPServer):
    def __init__(
        self,
        competition_zip: bytes = b"",
        status: int = 200,
        public_score: float | None = PUBLIC_SCORE,
        error: str | None = None,
        pending_polls: int = 2,
        host: str = "127.0.0.1",
        port: int = 0,
        first_ref: int = 40_000_001,
    ):
        self.competition_zip, self.status = competition_zip, status
        self.public_score, self.error, self.pending_polls = public_score, error, pending_polls
        self.requests: list[tuple[str, str, dict]] = []  # (method, path, headers)
        self.uploaded: bytes | None = None
        self.submission: dict | None = None  # the last CreateSubmission request
        self.submissions: list[dict] = []  # ApiSubmission's JSON, oldest first, with "pollsLeft"
        self._refs = itertools.count(first_ref)
        self._lock = threading.Lock()
        super().__init__((host, port), _Handler)
        self.url = f"http://{host}:{self.server_address[1]}"

    def __enter__(self) -> KaggleStandIn:
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()
        self.server_close()

    def add_submission(self, description: str, pending_polls: int | None = None, error: str | None = None) -> int:
        """A submission as Kaggle would list it (one made from another machine, too); returns its ref."""
        with self._lock:
            ref = next(self._refs)
            self.submissions.append(
                {
                    "ref": ref,
                    "date": now_iso(),
                    "description": description,
                    "fileName": "submission.csv",
                    "status": "PENDING",
                    "pollsLeft": self.pending_polls if pending_polls is None else pending_polls,
                    "error": self.error if error is None else error,
                }
            )
            return ref

    def read(self, submission: dict) -> dict:
        """What Kaggle answers about `submission` now: each read of a pending one counts as a poll."""
        with self._lock:
            if submission["status"] == "PENDING":
                if submission["pollsLeft"] > 0:
                    submission["pollsLeft"] -= 1
                elif submission["error"]:
                    submission.update(status="ERROR", errorDescription=submission["error"])
                else:
                    submission.update(status="COMPLETE", publicScore=f"{self.public_score:.5f}")
            return {k: v for k, v in submission.items() if k not in ("pollsLeft", "error")}


class _Handler(BaseHTTPRequestHandler):
    server: KaggleStandIn

    def log_message(self, *args) -> None:  # keep test output quiet
        pass

    def _reply(self, status: int, body: bytes, content_type: str, headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, data: dict) -> None:
        self._reply(status, json.dumps(data).encode(), "application/json")

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def do_POST(self) -> None:
        self.server.requests.append(("POST", self.path, dict(self.headers)))
        request = json.loads(self._body() or b"{}")
        route = self.path.removeprefix("/api").removeprefix("/v1/")
        base = f"http://{self.headers.get('Host') or self.server.url.removeprefix('http://')}"
        if self.server.status != 200:
            self._json(self.server.status, {"code": self.server.status, "message": "You must accept the rules"})
        elif route == "security.OAuthService/IntrospectToken":  # a KAGGLE_API_TOKEN: any token is someone's
            self._json(200, {"active": True, "username": "someone"})
        elif route == COMPETITIONS + "DownloadDataFiles":
            self.send_response(302)
            self.send_header("Location", f"/files/{request['competitionName']}.zip")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif route == COMPETITIONS + "StartSubmissionUpload":
            self._json(200, {"token": "blob-token", "createUrl": f"{base}/upload"})
        elif route == COMPETITIONS + "CreateSubmission":
            self.server.submission = request
            ref = self.server.add_submission(request.get("submissionDescription", ""))
            self._json(200, {"message": "Successfully submitted to Digit Recognizer", "ref": ref})
        elif route == COMPETITIONS + "GetSubmission":
            found = [s for s in self.server.submissions if s["ref"] == int(request.get("ref", 0))]
            if found:
                self._json(200, self.server.read(found[0]))
            else:
                self._json(404, {"code": 404, "message": "Submission not found"})
        elif route == COMPETITIONS + "ListSubmissions":
            listed = [self.server.read(s) for s in reversed(self.server.submissions)]  # newest first
            self._json(200, {"submissions": listed})
        else:
            self._json(404, {"code": 404, "message": f"no route {self.path}"})

    def do_GET(self) -> None:
        self.server.requests.append(("GET", self.path, dict(self.headers)))
        if self.path.startswith("/files/") and self.server.competition_zip:
            self._reply(200, self.server.competition_zip, "application/zip")
        else:
            self._json(404, {"code": 404, "message": "not found"})

    def do_PUT(self) -> None:
        self.server.requests.append(("PUT", self.path, dict(self.headers)))
        self.server.uploaded = self._body()
        self._json(200, {})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7777, help="KAGGLE_API_ENVIRONMENT=TEST's (default: %(default)s)")
    parser.add_argument("--public-score", type=float, default=PUBLIC_SCORE, help="(default: %(default)s)")
    parser.add_argument("--error", help="score every submission as ERROR with this message")
    parser.add_argument("--pending-polls", type=int, default=2, help="status reads before scoring (default: 2)")
    parser.add_argument("--competition-zip", type=Path, help="the zip that `download` serves")
    args = parser.parse_args()
    data = args.competition_zip.read_bytes() if args.competition_zip else b""
    first_ref = int(time.time()) % 10**9  # refs unique across restarts, as Kaggle's are, so no record is replaced
    server = KaggleStandIn(
        data, 200, args.public_score, args.error, args.pending_polls, args.host, args.port, first_ref
    )
    print(f"Kaggle stand-in at {server.url} (Ctrl-C stops it)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
