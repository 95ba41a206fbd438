"""An IMDSv2 emulator: the token PUT and the instance-id GET that the watcher needs to stop its own instance."""
from __future__ import annotations

import secrets

from .wsgi_server import LoopbackServer, allowed_hosts

TOKEN_HEADER = "X-aws-ec2-metadata-token"
TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"
_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found"}


def _environ_key(header: str) -> str:
    return "HTTP_" + header.upper().replace("-", "_")


class ImdsEmulator:
    """Answers like IMDSv2 for one instance id: IMDSv1-style calls (no token) get 401; a foreign Host gets 403."""

    def __init__(self, instance_id: str, region: str = "eu-central-1", port: int = 0):
        self.instance_id = instance_id
        self.region = region
        self._tokens: set[str] = set()
        self._server = LoopbackServer(self._app, port=port, name="imds", threads=2)
        self._hosts = allowed_hosts(self._server.port)
        self.url = self._server.url

    def _answer(self, environ: dict) -> tuple[int, str]:
        if environ.get("HTTP_HOST", "").lower() not in self._hosts:
            return 403, ""
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
        if method == "PUT":
            if path != "/latest/api/token":
                return 404, ""
            ttl = environ.get(_environ_key(TTL_HEADER), "")
            if not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
                return 400, ""
            token = secrets.token_urlsafe(32)
            self._tokens.add(token)
            return 200, token
        if method != "GET":
            return 404, ""
        if environ.get(_environ_key(TOKEN_HEADER)) not in self._tokens:
            return 401, ""
        answers = {
            "/latest/meta-data/instance-id": self.instance_id,
            "/latest/meta-data/placement/region": self.region,
        }
        return (200, answers[path]) if path in answers else (404, "")

    def _app(self, environ, start_response):
        status, body = self._answer(environ)
        data = body.encode()
        start_response(f"{status} {_REASONS[status]}",
                       [("Content-Type", "text/plain"), ("Content-Length", str(len(data)))])
        return [data]

    def start(self) -> ImdsEmulator:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> ImdsEmulator:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
