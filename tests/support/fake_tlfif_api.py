"""A stand-in for the TL-FIF HTTP API and its OIDC issuer, on a free loopback port, for the app's tests.

It speaks the same HTTP as the router behind API Gateway and the local cloud's issuer (issues 2 and 3):
    GET  /authorize   login page: one form posting back, hidden OAuth params, `username` prefilled "local-user"
    POST /authorize   302 to redirect_uri?code&state
    POST /token       authorization_code + PKCE S256 (verifier checked), refresh_token
    POST /infer       202 {"status": "starting", "id", "eta", "result_url"} | {"status": "queued", "id", "result_url"}
    POST /stop        200 {"status": "stopping"} (and keep-warm off, as the router)
    POST /keepwarm    200 {"status": "on", "until"} | {"status": "off"}; 400 naming the field (`keep_warm_until` holds
                      the state; `keepwarm_statuses` scripts failures)
    POST /cancel/ID   202 {"status": "cancelling", "id"} | 404 unknown | 409 finished; the result then says
                      `cancelled` with the words shown so far (a job that never started: once the GPU is ready)
    GET  /ping        200 {"status": "ok", "gpu", "queue_depth"}
    GET  /cost        200 {...} when `cost` is set, else 404
    GET  /results/ID.json   the result object (tlfif_common.results), 404 (or `missing_status`) until it exists;
                            the text grows word by word once the GPU is ready
Failures are scripted: `infer_statuses` / `ping_statuses` (HTTP statuses answered first, one per call);
`infer_delay` holds every /infer answer that many seconds. Every call is recorded in `calls` with its monotonic
time. State is computed from timestamps: no background thread.
"""
from __future__ import annotations

import base64
import hashlib
import html
import json
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qs, urlencode, urlsplit

from tlfif_common.jobs import RequestError, validate_infer_request
from tlfif_common.keepwarm import validate_keepwarm_request
from tlfif_common.results import STATUS_CANCELLED, STATUS_DONE, STATUS_RUNNING, result_doc

CLIENT_ID = "tlfif-test-client"


@dataclass
class Call:
    t: float
    method: str
    path: str
    auth: str
    body: Any


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


class FakeTlfifApi:
    def __init__(self, *, gpu: str = "ready", boot_s: float = 2.0, eta: int = 90, stop_s: float = 0.5,
                 word_delay: float = 0.05, reply: Callable[[str], str] | None = None, missing_status: int = 404,
                 cost: dict | None = None, token_ttl: int = 3600, redirect_uri: str | None = None):
        self.boot_s, self.eta, self.stop_s, self.word_delay = boot_s, eta, stop_s, word_delay
        self.reply = reply or (lambda prompt: f"Echo from the fake GPU: you said {prompt} and that is all.")
        self.missing_status = missing_status
        self.cost = cost
        self.token_ttl = token_ttl
        self.infer_statuses: list[int] = []
        self.infer_delay = 0.0
        self.ping_statuses: list[int] = []
        self.keepwarm_statuses: list[int] = []
        self.keep_warm_until: int | None = None  # epoch ms while keep-warm is on
        self.calls: list[Call] = []
        self.issued: list[str] = []          # every token string handed out
        self.logins = 0
        self.refreshes = 0
        self._tokens: dict[str, float] = {}  # id token → expiry (epoch)
        self._refresh: set[str] = set()
        self._codes: dict[str, dict] = {}
        self._jobs: dict[str, dict] = {}
        self._lock = threading.Lock()
        self._gpu, self._gpu_since = gpu, time.monotonic()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.redirect_uri = redirect_uri or f"http://127.0.0.1:{self.port}/callback"
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-tlfif-api", daemon=True)

    # --- lifecycle / views ----------------------------------------------------------------------------------------
    @property
    def info(self) -> dict:
        """Shaped like the local cloud's first stdout line."""
        return {"api_url": self.url, "issuer": self.url, "authorize_url": f"{self.url}/authorize",
                "token_url": f"{self.url}/token", "jwks_url": f"{self.url}/jwks", "client_id": CLIENT_ID,
                "redirect_uri": self.redirect_uri, "region": "eu-central-1"}

    def start(self) -> FakeTlfifApi:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeTlfifApi:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def calls_to(self, method: str, path: str) -> list[Call]:
        return [c for c in list(self.calls) if c.method == method and c.path == path]

    def expire_tokens(self) -> None:
        with self._lock:
            for token in self._tokens:
                self._tokens[token] = 0

    def set_gpu(self, state: str) -> None:
        with self._lock:
            self._gpu, self._gpu_since = state, time.monotonic()

    def gpu_state(self) -> str:
        with self._lock:
            return self._advance(time.monotonic())

    # --- simulation ------------------------------------------------------------------------------------------------
    def _advance(self, now: float) -> str:
        if self._gpu == "pending" and now - self._gpu_since >= self.boot_s:
            self._gpu, self._gpu_since = "ready", self._gpu_since + self.boot_s
        if self._gpu == "stopping" and now - self._gpu_since >= self.stop_s:
            self._gpu, self._gpu_since = "stopped", self._gpu_since + self.stop_s
        return self._gpu

    def _result(self, job_id: str) -> dict | None:
        with self._lock:
            now = time.monotonic()
            state = self._advance(now)
            job = self._jobs.get(job_id)
            if job is None:
                return None
            if job["start"] is None and state == "ready":
                job["start"] = max(self._gpu_since, job["created"])
            if job["start"] is None or now < job["start"]:
                return None
            words = job["reply"].split(" ")
            cancelled = job.get("cancelled")
            if cancelled is not None:  # the watcher stopped at the cancel (or never started the job)
                ran = max(cancelled - job["start"], 0.0)
                shown = min(int(ran / self.word_delay) + 1, len(words)) if cancelled > job["start"] else 0
                return result_doc(job_id, STATUS_CANCELLED, text=" ".join(words[:shown]), tokens=shown,
                                  ttft_ms=5 if shown else None, latency_ms=int(ran * 1000), model="fake-tinyllama")
            shown = int((now - job["start"]) / self.word_delay) + 1 if self.word_delay > 0 else len(words)
            if shown >= len(words):
                return result_doc(job_id, STATUS_DONE, text=job["reply"], tokens=len(words), ttft_ms=5,
                                  latency_ms=int((len(words)) * self.word_delay * 1000), model="fake-tinyllama")
            return result_doc(job_id, STATUS_RUNNING, text=" ".join(words[:shown]), tokens=shown, ttft_ms=5,
                              model="fake-tinyllama")

    def _new_tokens(self, with_refresh: bool) -> dict:
        exp = time.time() + self.token_ttl
        claims = {"sub": "local-user-sub", "email": "local-user@tl-fif.local", "token_use": "id", "aud": CLIENT_ID,
                  "iss": self.url, "exp": int(exp), "iat": int(time.time())}
        id_token = f"{_b64({'alg': 'RS256', 'kid': 'fake'})}.{_b64(claims)}.{secrets.token_urlsafe(24)}"
        answer = {"id_token": id_token, "access_token": "acc-" + secrets.token_urlsafe(24), "token_type": "Bearer",
                  "expires_in": self.token_ttl}
        if with_refresh:
            answer["refresh_token"] = "ref-" + secrets.token_urlsafe(24)
            self._refresh.add(answer["refresh_token"])
        self._tokens[id_token] = exp
        self.issued.extend(v for k, v in answer.items() if k.endswith("_token") and k != "token_type")
        return answer

    # --- HTTP ------------------------------------------------------------------------------------------------------
    def _handler(self):
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _send(self, status: int, body: Any = None, headers: dict | None = None,
                      content_type: str = "application/json"):
                raw = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
                self.send_response(status)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                if body is not None:
                    self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def do_GET(self):  # noqa: N802
                self._dispatch("GET")

            def do_POST(self):  # noqa: N802
                self._dispatch("POST")

            def _dispatch(self, method: str):
                parts = urlsplit(self.path)
                raw = self._body() if method == "POST" else b""
                try:
                    body = json.loads(raw) if raw and self.headers.get("Content-Type", "").startswith(
                        "application/json") else raw.decode()
                except ValueError:
                    body = raw.decode(errors="replace")
                api.calls.append(Call(time.monotonic(), method, parts.path, self.headers.get("Authorization", ""),
                                      body))
                route = {("GET", "/authorize"): self.authorize_page, ("POST", "/authorize"): self.authorize_post,
                         ("POST", "/token"): self.token, ("POST", "/infer"): self.infer, ("POST", "/stop"): self.stop,
                         ("GET", "/ping"): self.ping, ("GET", "/cost"): self.cost,
                         ("POST", "/keepwarm"): self.keepwarm}.get((method, parts.path))
                if route is not None:
                    route(parts, body)
                elif method == "POST" and parts.path.startswith("/cancel/"):
                    self.cancel(parts.path[len("/cancel/"):])
                elif method == "GET" and parts.path.startswith("/results/"):
                    self.result(parts.path[len("/results/"):].removesuffix(".json"))
                else:
                    self._send(404, {"error": f"no route {method} {parts.path}"})

            # OIDC
            def authorize_page(self, parts, _body):
                q = {k: v[0] for k, v in parse_qs(parts.query).items()}
                if q.get("client_id") != CLIENT_ID or q.get("code_challenge_method") != "S256" \
                        or not q.get("code_challenge") or q.get("response_type") != "code":
                    self._send(400, {"error": "bad authorize request"})
                    return
                hidden = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                                 for k, v in q.items())
                page = (f'<html><body><form method="post" action="/authorize">{hidden}'
                        f'<input type="text" name="username" value="local-user"><button>Sign in</button>'
                        f"</form></body></html>").encode()
                self._send(200, page, content_type="text/html; charset=utf-8")

            def authorize_post(self, _parts, body):
                form = {k: v[0] for k, v in parse_qs(body if isinstance(body, str) else "").items()}
                code = secrets.token_urlsafe(16)
                api._codes[code] = form
                location = form["redirect_uri"] + "?" + urlencode({"code": code, "state": form.get("state", "")})
                self._send(302, b"", headers={"Location": location})

            def token(self, _parts, body):
                form = {k: v[0] for k, v in parse_qs(body if isinstance(body, str) else "").items()}
                with api._lock:
                    if form.get("grant_type") == "authorization_code":
                        grant = api._codes.pop(form.get("code", ""), None)
                        verifier = form.get("code_verifier", "")
                        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()) \
                            .rstrip(b"=").decode()
                        if grant is None or grant.get("code_challenge") != challenge \
                                or form.get("client_id") != CLIENT_ID \
                                or form.get("redirect_uri") != grant.get("redirect_uri"):
                            self._send(400, {"error": "invalid_grant"})
                            return
                        api.logins += 1
                        self._send(200, api._new_tokens(with_refresh=True))
                    elif form.get("grant_type") == "refresh_token":
                        if form.get("refresh_token") not in api._refresh:
                            self._send(400, {"error": "invalid_grant"})
                            return
                        api.refreshes += 1
                        self._send(200, api._new_tokens(with_refresh=False))
                    else:
                        self._send(400, {"error": "unsupported_grant_type"})

            # API
            def _authorised(self) -> bool:
                token = self.headers.get("Authorization", "").removeprefix("Bearer ")
                with api._lock:
                    ok = api._tokens.get(token, 0) > time.time()
                if not ok:
                    self._send(401, {"error": "unauthorized"}, headers={"WWW-Authenticate": "Bearer"})
                return ok

            def _scripted(self, statuses: list[int]) -> bool:
                with api._lock:
                    status = statuses.pop(0) if statuses else None
                if status is None:
                    return False
                self._send(status, {"error": f"scripted HTTP {status}"})
                return True

            def infer(self, _parts, body):
                if not self._authorised() or self._scripted(api.infer_statuses):
                    return
                if api.infer_delay:
                    time.sleep(api.infer_delay)
                try:
                    clean = validate_infer_request(body, models_bucket=None)
                except RequestError as err:
                    self._send(400, {"error": str(err)})
                    return
                job_id = str(uuid.uuid4())
                with api._lock:
                    now = time.monotonic()
                    state = api._advance(now)
                    starting = state in ("stopped", "stopping")
                    if starting:
                        api._gpu, api._gpu_since = "pending", now
                    api._jobs[job_id] = {"created": now, "start": None, "reply": api.reply(clean["prompt"]),
                                         "idle": clean["idle"]}
                answer = {"status": "starting" if starting or state == "pending" else "queued", "id": job_id,
                          "result_url": f"{api.url}/results/{job_id}.json"}
                if answer["status"] == "starting":
                    answer["eta"] = api.eta
                self._send(202, answer)

            def cancel(self, job_id: str):
                if not self._authorised():
                    return
                doc = api._result(job_id)
                with api._lock:
                    job = api._jobs.get(job_id)
                    if job is None:
                        self._send(404, {"error": "no such job: it expired or never existed"})
                        return
                    if doc is not None and doc["status"] != STATUS_RUNNING:
                        self._send(409, {"error": "the job has already finished"})
                        return
                    job["cancelled"] = time.monotonic()
                self._send(202, {"status": "cancelling", "id": job_id})

            def stop(self, _parts, _body):
                if not self._authorised():
                    return
                with api._lock:
                    if api._advance(time.monotonic()) not in ("stopped", "stopping"):
                        api._gpu, api._gpu_since = "stopping", time.monotonic()
                    api.keep_warm_until = None
                self._send(200, {"status": "stopping"})

            def keepwarm(self, _parts, body):
                if not self._authorised() or self._scripted(api.keepwarm_statuses):
                    return
                try:
                    on, max_minutes = validate_keepwarm_request(body)
                except RequestError as err:
                    self._send(400, {"error": str(err), "field": err.field})
                    return
                with api._lock:
                    api.keep_warm_until = int(time.time() * 1000) + max_minutes * 60_000 if on else None
                    until = api.keep_warm_until
                self._send(200, {"status": "on", "until": until} if on else {"status": "off"})

            def ping(self, _parts, _body):
                if not self._authorised() or self._scripted(api.ping_statuses):
                    return
                self._send(200, {"status": "ok", "gpu": api.gpu_state(), "queue_depth": 0})

            def cost(self, _parts, _body):
                if not self._authorised():
                    return
                if api.cost is None:
                    self._send(404, {"error": "no route GET /cost"})
                else:
                    self._send(200, api.cost)

            def result(self, job_id: str):
                doc = api._result(job_id)
                if doc is None:
                    self._send(api.missing_status, b"<Error><Code>NoSuchKey</Code></Error>",
                               content_type="application/xml")
                else:
                    self._send(200, doc)

        return Handler
