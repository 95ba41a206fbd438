"""A thin reverse proxy in front of the local cloud's API or issuer, for the faults the cloud cannot make itself.

    with FaultProxy(cloud.info["api_url"]) as proxy:       # proxy.url stands in for the upstream's URL
        proxy.fail("POST", "/infer", 502, 504)             # the next two /infer answer 502, then 504; not forwarded
        proxy.fail("POST", "/token", 400, error="invalid_grant")   # the JSON error the answer names
        proxy.hold("POST", "/infer", 0.5)                  # every /infer waits 0.5 s before it is forwarded
        proxy.drop("GET", "/ping")                         # the next /ping: the connection closes without an answer
        proxy.lose_answer("POST", "/infer")                # the next /infer is forwarded, its answer never delivered
        proxy.answer_json("POST", "/token", {...})         # the next /token is answered with this body (200)
        proxy.answer_as("GET", "/bucket/*", 404, 403)      # an upstream 404 reaches the client as 403
        proxy.calls_to("POST", "/infer")                   # every exchange seen: time, auth, body, status, answer

Everything else is passed through unchanged (the Host header rewritten to the upstream's: the local cloud has a
Host allow-list), so what the app is tested against is the real router, watcher and issuer. `rewrite` replaces URL
prefixes in answers, as a reverse proxy does, to send the client's next request (a result_url) through another
proxy. A path ending in "*" matches by prefix (`/cancel/*`).
"""
from __future__ import annotations

import http.client
import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade"}
DROP = -1  # a scripted "status": close the connection with no answer
LOSE = -2  # forward the request, then close the connection without passing the answer on


@dataclass
class Exchange:
    t: float          # time.monotonic() when the request arrived
    method: str
    path: str
    auth: str
    body: Any         # JSON decoded when it was JSON, else text
    status: int = 0   # what the client was answered (0: dropped)
    answer: Any = None

    def json(self) -> Any:
        return self.answer


def _decode(raw: bytes, content_type: str) -> Any:
    if not raw:
        return None
    if content_type.startswith("application/json"):
        try:
            return json.loads(raw)
        except ValueError:
            pass
    return raw.decode(errors="replace")


def _matches(pattern: str, path: str) -> bool:
    return path.startswith(pattern[:-1]) if pattern.endswith("*") else path == pattern


class FaultProxy:
    def __init__(self, upstream: str, rewrite: dict[str, str] | None = None):
        parts = urlsplit(upstream)
        self.rewrite = dict(rewrite or {})
        self.upstream_host, self.upstream_port = parts.hostname, parts.port or 80
        self.calls: list[Exchange] = []
        self._faults: list[tuple[str, str, int, str]] = []  # (method, path pattern, status or DROP, error); first wins
        self._holds: dict[tuple[str, str], float] = {}
        self._status_map: dict[tuple[str, str, int], int] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        # A short poll: shutdown() waits for it, once per proxy per test.
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
                                        name="fault-proxy", daemon=True)

    # --- scripting ---------------------------------------------------------------------------------------------
    def fail(self, method: str, path: str, *statuses: int, error: str = "") -> None:
        with self._lock:
            self._faults.extend((method, path, status, error) for status in statuses)

    def drop(self, method: str, path: str, times: int = 1) -> None:
        self.fail(method, path, *([DROP] * times))

    def answer_json(self, method: str, path: str, body: dict, status: int = 200) -> None:
        with self._lock:
            self._faults.append((method, path, status, body))

    def lose_answer(self, method: str, path: str, times: int = 1) -> None:
        self.fail(method, path, *([LOSE] * times))

    def hold(self, method: str, path: str, seconds: float) -> None:
        with self._lock:
            self._holds[(method, path)] = seconds

    def answer_as(self, method: str, path: str, upstream_status: int, status: int) -> None:
        with self._lock:
            self._status_map[(method, path, upstream_status)] = status

    def _mapped(self, method: str, path: str, status: int) -> int:
        with self._lock:
            for (m, p, upstream), mapped in self._status_map.items():
                if m == method and upstream == status and _matches(p, path):
                    return mapped
        return status

    def calls_to(self, method: str, path: str) -> list[Exchange]:
        return [c for c in list(self.calls) if c.method == method and _matches(path, c.path)]

    def _take_fault(self, method: str, path: str) -> tuple[int, str] | None:
        with self._lock:
            for i, (m, pattern, status, error) in enumerate(self._faults):
                if m == method and _matches(pattern, path):
                    del self._faults[i]
                    return status, error or f"injected HTTP {status}"
            return None

    def _hold_for(self, method: str, path: str) -> float:
        with self._lock:
            return max((s for (m, p), s in self._holds.items() if m == method and _matches(p, path)), default=0.0)

    # --- lifecycle ---------------------------------------------------------------------------------------------
    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- HTTP --------------------------------------------------------------------------------------------------
    def _handler(self):
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):  # noqa: N802
                self._relay()

            def do_POST(self):  # noqa: N802
                self._relay()

            def do_DELETE(self):  # noqa: N802
                self._relay()

            def _answer(self, status: int, raw: bytes, headers: list[tuple[str, str]]) -> None:
                self.send_response(status)
                for key, value in headers:
                    if key.lower() not in HOP_BY_HOP and key.lower() != "content-length":
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def _relay(self) -> None:
                path = urlsplit(self.path).path
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                call = Exchange(time.monotonic(), self.command, path, self.headers.get("Authorization", ""),
                                _decode(raw, self.headers.get("Content-Type", "")))
                proxy.calls.append(call)
                fault = proxy._take_fault(self.command, path)
                if fault is not None and fault[0] == DROP:
                    self.close_connection = True
                    return
                if fault is not None and fault[0] != LOSE:
                    call.status = fault[0]
                    call.answer = fault[1] if isinstance(fault[1], dict) else {"error": fault[1]}
                    self._answer(call.status, json.dumps(call.answer).encode(), [("Content-Type", "application/json")])
                    return
                hold = proxy._hold_for(self.command, path)
                if hold:
                    time.sleep(hold)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                headers["Host"] = f"{proxy.upstream_host}:{proxy.upstream_port}"
                conn = http.client.HTTPConnection(proxy.upstream_host, proxy.upstream_port, timeout=60)
                try:
                    conn.request(self.command, self.path, body=raw or None, headers=headers)
                    answer = conn.getresponse()
                    body = answer.read()
                    for old, new in proxy.rewrite.items():
                        body = body.replace(old.encode(), new.encode())
                    call.answer = _decode(body, answer.getheader("Content-Type") or "")
                    if fault is not None:  # LOSE: the upstream acted on it; the client never hears
                        self.close_connection = True
                        return
                    call.status = proxy._mapped(self.command, path, answer.status)
                    self._answer(call.status, body, answer.getheaders())
                finally:
                    conn.close()

        return Handler
