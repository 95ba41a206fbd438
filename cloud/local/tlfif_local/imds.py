"""An IMDSv2 emulator: the token PUT and the instance-id GET that the watcher needs to stop its own instance."""
from __future__ import annotations

import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOKEN_HEADER = "X-aws-ec2-metadata-token"
TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"


class ImdsEmulator:
    """Answers like IMDSv2 for one instance id: IMDSv1-style calls (no token) get 401."""

    def __init__(self, instance_id: str, region: str = "eu-central-1", host: str = "127.0.0.1", port: int = 0):
        self.instance_id = instance_id
        self.region = region
        self._tokens: set[str] = set()
        emulator = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _send(self, code: int, body: str = "") -> None:
                data = body.encode()
                self.send_response(code)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_PUT(self):
                if self.path != "/latest/api/token":
                    return self._send(404)
                ttl = self.headers.get(TTL_HEADER, "")
                if not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
                    return self._send(400)
                token = secrets.token_urlsafe(32)
                emulator._tokens.add(token)
                self._send(200, token)

            def do_GET(self):
                if self.headers.get(TOKEN_HEADER) not in emulator._tokens:
                    return self._send(401)
                answers = {
                    "/latest/meta-data/instance-id": emulator.instance_id,
                    "/latest/meta-data/placement/region": emulator.region,
                }
                if self.path in answers:
                    return self._send(200, answers[self.path])
                self._send(404)

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self.url = f"http://{host}:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="imds", daemon=True)

    def start(self) -> ImdsEmulator:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> ImdsEmulator:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
