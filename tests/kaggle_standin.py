"""A local stand-in for Kaggle's API server, enough for the real `kaggle` client's download and submit calls.

`KaggleApi` always builds its HTTP client for the production endpoint, so `point_kaggle_client_at` swaps
that endpoint (kagglesdk's table of endpoints) for the stand-in's address for the length of a test.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SERVICE = "/v1/competitions.CompetitionApiService/"


def point_kaggle_client_at(url: str, monkeypatch) -> None:
    from kagglesdk import kaggle_env

    monkeypatch.setitem(kaggle_env._env_to_endpoint, kaggle_env.KaggleEnv.PROD, url)


class KaggleStandIn(ThreadingHTTPServer):
    def __init__(self, competition_zip: bytes = b"", status: int = 200):
        self.competition_zip, self.status = competition_zip, status
        self.requests: list[tuple[str, str, dict]] = []  # (method, path, headers)
        self.uploaded: bytes | None = None
        self.submission: dict | None = None
        super().__init__(("127.0.0.1", 0), _Handler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"

    def __enter__(self) -> KaggleStandIn:
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()
        self.server_close()


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
        if self.server.status != 200:
            self._json(self.server.status, {"code": self.server.status, "message": "You must accept the rules"})
        elif self.path == SERVICE + "DownloadDataFiles":
            self.send_response(302)
            self.send_header("Location", f"/files/{request['competitionName']}.zip")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path == SERVICE + "StartSubmissionUpload":
            self._json(200, {"token": "blob-token", "createUrl": f"{self.server.url}/upload"})
        elif self.path == SERVICE + "CreateSubmission":
            self.server.submission = request
            self._json(200, {"message": "Successfully submitted to Digit Recognizer"})
        else:
            self._json(404, {"code": 404, "message": f"no route {self.path}"})

    def do_GET(self) -> None:
        self.server.requests.append(("GET", self.path, dict(self.headers)))
        if self.path.startswith("/files/"):
            self._reply(200, self.server.competition_zip, "application/zip")
        else:
            self._json(404, {"code": 404, "message": "not found"})

    def do_PUT(self) -> None:
        self.server.requests.append(("PUT", self.path, dict(self.headers)))
        self.server.uploaded = self._body()
        self._json(200, {})
