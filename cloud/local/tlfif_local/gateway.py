"""The API Gateway (HTTP API) emulation in front of the router handler, on loopback.

Per request, in API Gateway's order:
  1. stage throttling — one token bucket for the stage (rate/burst as the API template sets them) → 429;
  2. CORS — origins `http://localhost:*` and `http://127.0.0.1:*` only; preflight `OPTIONS` answered here;
  3. routing — `tlfif_common.api.ROUTE_KEYS`, nothing else: unknown path → 404, known path with another method → 405;
  4. the JWT authorizer (`jwt_authorizer`) → 401 with `WWW-Authenticate`;
  5. a payload-format-2.0 event with the authorizer's claims (strings), the router handler called in-process, its
     proxy result turned into the HTTP answer;
  6. one JSON access-log line in the stage's format (`names.API_ACCESS_LOG_FORMAT`).
Errors made here answer `{"error": "..."}` like every TL-FIF error.
"""
from __future__ import annotations

import base64
import json
import logging
import re
import secrets
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http import HTTPStatus
from typing import Any, Callable
from urllib.parse import parse_qsl, quote, urlsplit

from tlfif_common import names
from tlfif_common.api import ROUTE_KEYS

from .jwt_authorizer import JwtAuthorizer, Unauthorized, claims_as_strings
from .wsgi_server import LoopbackServer, allowed_hosts

log = logging.getLogger("tlfif_local.gateway")

# The API's routes are tlfif_common.api.ROUTE_KEYS; the router's own table decides what each does.
CORS_ORIGIN = re.compile(r"^http://(localhost|127\.0\.0\.1)(:\d{1,5})?$")
CORS_ALLOW_METHODS = "GET,POST,OPTIONS"
CORS_ALLOW_HEADERS = "authorization,content-type"
CORS_EXPOSE_HEADERS = "retry-after"
CORS_MAX_AGE = "300"
MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit
INTEGRATION_TIMEOUT_MS = 30_000
FUNCTION_NAME = "tl-fif-router"
API_ID = "local"
STAGE = "$default"
GATEWAY_THREADS = 16  # the router's calls wait on Redis and moto; a burst queues in waitress, not in the kernel


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    pattern: re.Pattern

    @property
    def key(self) -> str:
        return f"{self.method} {self.template}"


def _compile(route_key: str) -> Route:
    method, template = route_key.split(" ", 1)
    regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
    return Route(method, template, re.compile(f"^{regex}$"))


ROUTES = tuple(_compile(key) for key in ROUTE_KEYS)


def match_route(method: str, path: str) -> tuple[Route | None, dict[str, str], list[str]]:
    """(route, path parameters, methods allowed on the path); route None when nothing matches the method."""
    allowed: list[str] = []
    for route in ROUTES:
        found = route.pattern.match(path)
        if found:
            if route.method == method:
                return route, found.groupdict(), [route.method]
            allowed.append(route.method)
    return None, {}, allowed


class TokenBucket:
    """Stage throttling: `rate` requests/s steady, `burst` at once."""

    def __init__(self, rate: float, burst: int):
        self.rate = float(rate)
        self.capacity = float(max(1, burst))
        self._tokens = self.capacity
        self._updated = time.monotonic()
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
            self._updated = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return True
            return False


class LambdaContext:
    """The parts of the Lambda context object a handler may read."""

    function_name = FUNCTION_NAME
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    log_group_name = f"/aws/lambda/{FUNCTION_NAME}"

    def __init__(self, region: str, account_id: str):
        self.aws_request_id = str(uuid.uuid4())
        self.invoked_function_arn = f"arn:aws:lambda:{region}:{account_id}:function:{FUNCTION_NAME}:prod"
        self.log_stream_name = f"{datetime.now(timezone.utc):%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"
        self._deadline = time.monotonic() + INTEGRATION_TIMEOUT_MS / 1000

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@dataclass
class HttpRequest:
    method: str
    target: str  # path and query as sent
    headers: list[tuple[str, str]]
    body: bytes
    source_ip: str
    protocol: str = "HTTP/1.1"

    def header(self, name: str) -> str | None:
        name = name.lower()
        values = [v for k, v in self.headers if k.lower() == name]
        return ",".join(values) if values else None


@dataclass
class HttpResponse:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


def _json_error(status: int, message: str, headers: list[tuple[str, str]] | None = None) -> HttpResponse:
    body = json.dumps({"error": message}).encode()
    return HttpResponse(status, [("Content-Type", "application/json"), *(headers or [])], body)


class Gateway:
    """Everything but the socket: `serve(HttpRequest) -> HttpResponse` (the HTTP server below calls it)."""

    def __init__(self, *, integration: Callable[[dict, Any], Any], authorizer: JwtAuthorizer,
                 throttle: TokenBucket, region: str, account_id: str, domain: str,
                 access_log: Callable[[dict], None], hosts: frozenset[str] = frozenset()):
        self.hosts = hosts  # the Host values answered (empty: any); others get 403 before anything else
        self.integration = integration
        self.authorizer = authorizer
        self.throttle = throttle
        self.region = region
        self.account_id = account_id
        self.domain = domain
        self.access_log = access_log

    def serve(self, req: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        now = datetime.now(timezone.utc)
        ctx: dict[str, Any] = {"requestId": secrets.token_urlsafe(12), "routeKey": "-", "authorizerError": "-",
                               "integrationLatency": "-", "integrationStatus": "-",
                               "integrationErrorMessage": "-", "sub": "-"}
        path = urlsplit(req.target).path or "/"
        try:
            response = self._serve(req, path, now, ctx)
        except Exception:  # the emulation itself failed: answer like API Gateway, keep serving
            log.error("[gateway] %s %s failed: %s", req.method, path, traceback.format_exc())
            response = _json_error(500, "internal server error")
        origin = req.header("origin")
        if origin and CORS_ORIGIN.match(origin) and not any(k == "Access-Control-Allow-Origin"
                                                            for k, _ in response.headers):
            response.headers += [("Access-Control-Allow-Origin", origin), ("Vary", "Origin"),
                                 ("Access-Control-Expose-Headers", CORS_EXPOSE_HEADERS)]
        response.headers.append(("Apigw-Requestid", ctx["requestId"]))
        values = {
            "$context.requestId": ctx["requestId"], "$context.identity.sourceIp": req.source_ip,
            "$context.requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "$context.httpMethod": req.method, "$context.routeKey": ctx["routeKey"], "$context.path": path,
            "$context.status": str(response.status), "$context.protocol": req.protocol,
            "$context.responseLength": str(len(response.body)),
            "$context.responseLatency": str(round((time.perf_counter() - started) * 1000)),
            "$context.integrationLatency": ctx["integrationLatency"],
            "$context.integrationStatus": ctx["integrationStatus"],
            "$context.integrationErrorMessage": ctx["integrationErrorMessage"],
            "$context.authorizer.error": ctx["authorizerError"],
            "$context.authorizer.claims.sub": ctx["sub"],
            "$context.identity.userAgent": req.header("user-agent") or "-",
        }
        self.access_log({name: values.get(variable, "-") for name, variable in names.API_ACCESS_LOG_FORMAT.items()})
        return response

    def _serve(self, req: HttpRequest, path: str, now: datetime, ctx: dict) -> HttpResponse:
        if self.hosts and (req.header("host") or "").lower() not in self.hosts:
            return _json_error(403, "forbidden: unknown Host (this API answers only its loopback address)")
        if not self.throttle.take():
            return _json_error(429, "too many requests (stage throttling)", [("Retry-After", "1")])
        origin = req.header("origin")
        if req.method == "OPTIONS" and origin and req.header("access-control-request-method"):
            return self._preflight(origin)
        if len(req.body) > MAX_BODY_BYTES:
            return _json_error(413, "request body too large (API Gateway allows 10 MB)")
        route, path_params, allowed = match_route(req.method, path)
        if route is None:
            if allowed:
                return _json_error(405, f"method {req.method} not allowed on {path}",
                                   [("Allow", ",".join(sorted(set(allowed))))])
            return _json_error(404, f"no route for {req.method} {path}")
        ctx["routeKey"] = route.key
        try:
            claims = self.authorizer.authorize(req.header("authorization"))
        except Unauthorized as err:
            ctx["authorizerError"] = str(err)
            challenge = 'Bearer realm="tl-fif"' if err.missing else \
                f'Bearer error="invalid_token", error_description="{err}"'
            return _json_error(401, f"unauthorized: {err}", [("WWW-Authenticate", challenge)])
        ctx["sub"] = str(claims.get("sub", "-"))
        event = self._event(req, route, path, path_params, claims, now, ctx["requestId"])
        return self._invoke(event, ctx)

    def _preflight(self, origin: str) -> HttpResponse:
        if not CORS_ORIGIN.match(origin):
            return HttpResponse(204, [("Vary", "Origin")])
        return HttpResponse(204, [("Access-Control-Allow-Origin", origin), ("Vary", "Origin"),
                                  ("Access-Control-Allow-Methods", CORS_ALLOW_METHODS),
                                  ("Access-Control-Allow-Headers", CORS_ALLOW_HEADERS),
                                  ("Access-Control-Max-Age", CORS_MAX_AGE)])

    def _event(self, req: HttpRequest, route: Route, path: str, path_params: dict, claims: dict,
               now: datetime, request_id: str) -> dict:
        query = urlsplit(req.target).query
        headers: dict[str, str] = {}
        for name, value in req.headers:
            key = name.lower()
            headers[key] = f"{headers[key]},{value}" if key in headers else value
        headers.setdefault("x-forwarded-for", req.source_ip)
        headers.setdefault("x-forwarded-proto", "http")
        event: dict[str, Any] = {
            "version": "2.0",
            "routeKey": route.key,
            "rawPath": path,
            "rawQueryString": query,
            "headers": headers,
            "requestContext": {
                "accountId": self.account_id,
                "apiId": API_ID,
                "authorizer": {"jwt": {"claims": claims_as_strings(claims),
                                       "scopes": claims["scope"].split() if isinstance(claims.get("scope"), str)
                                       else None}},
                "domainName": self.domain,
                "domainPrefix": self.domain.split(".")[0].split(":")[0],
                "http": {"method": req.method, "path": path, "protocol": req.protocol, "sourceIp": req.source_ip,
                         "userAgent": req.header("user-agent") or ""},
                "requestId": request_id,
                "routeKey": route.key,
                "stage": STAGE,
                "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
                "timeEpoch": int(now.timestamp() * 1000),
            },
            "isBase64Encoded": False,
        }
        if query:
            params: dict[str, str] = {}
            for k, v in parse_qsl(query, keep_blank_values=True):
                params[k] = f"{params[k]},{v}" if k in params else v
            event["queryStringParameters"] = params
        cookie = headers.pop("cookie", None)
        if cookie:
            event["cookies"] = [c.strip() for c in cookie.split(";") if c.strip()]
        if path_params:
            event["pathParameters"] = path_params
        if req.body:
            try:
                event["body"] = req.body.decode("utf-8")
            except UnicodeDecodeError:
                event["body"] = base64.b64encode(req.body).decode("ascii")
                event["isBase64Encoded"] = True
        return event

    def _invoke(self, event: dict, ctx: dict) -> HttpResponse:
        context = LambdaContext(self.region, self.account_id)
        started = time.perf_counter()
        try:
            result = self.integration(event, context)
        except Exception as err:  # the function raised: API Gateway answers 500 and logs it
            ctx["integrationErrorMessage"] = f"{type(err).__name__}: {err}"
            log.error("[gateway] router raised (request %s): %s", ctx["requestId"], traceback.format_exc())
            return _json_error(500, "internal server error")
        finally:
            ctx["integrationLatency"] = str(round((time.perf_counter() - started) * 1000))
        ctx["integrationStatus"] = "200"
        try:
            return self._proxy_response(result)
        except (TypeError, ValueError) as err:
            ctx["integrationErrorMessage"] = f"malformed Lambda proxy response: {err}"
            log.error("[gateway] malformed proxy response (request %s): %r", ctx["requestId"], result)
            return _json_error(500, "internal server error")

    @staticmethod
    def _proxy_response(result: Any) -> HttpResponse:
        if not (isinstance(result, dict) and "statusCode" in result):
            # Payload 2.0: anything else is a 200 JSON body.
            return HttpResponse(200, [("Content-Type", "application/json")], json.dumps(result).encode())
        status = result["statusCode"]
        if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
            raise ValueError(f"statusCode {status!r}")
        headers = [(str(k), str(v)) for k, v in (result.get("headers") or {}).items()]
        headers += [("Set-Cookie", str(c)) for c in result.get("cookies") or []]
        body = result.get("body")
        if body is None:
            data = b""
        elif result.get("isBase64Encoded"):
            data = base64.b64decode(body)
        else:
            data = str(body).encode("utf-8")
        if data and not any(k.lower() == "content-type" for k, _ in headers):
            headers.append(("Content-Type", "application/json"))
        return HttpResponse(status, headers, data)


def _environ_headers(environ: dict) -> list[tuple[str, str]]:
    headers = []
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            headers.append((key[5:].replace("_", "-").title(), value))
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH") and value:
            headers.append((key.replace("_", "-").title(), value))
    return headers


class GatewayApp:
    """The WSGI face of `Gateway.serve` (waitress has already parsed the framing and read the whole body)."""

    def __init__(self, gateway: Gateway):
        self.gateway = gateway

    def __call__(self, environ: dict, start_response):
        path = quote(environ.get("PATH_INFO", "").encode("latin-1"), safe="/:@!$&'()*+,;=-._~")
        query = environ.get("QUERY_STRING", "")
        req = HttpRequest(method=environ["REQUEST_METHOD"], target=path + (f"?{query}" if query else ""),
                          headers=_environ_headers(environ), body=environ["wsgi.input"].read(),
                          source_ip=environ.get("REMOTE_ADDR", "-"),
                          protocol=environ.get("SERVER_PROTOCOL", "HTTP/1.1"))
        response = self.gateway.serve(req)
        try:
            reason = HTTPStatus(response.status).phrase
        except ValueError:
            reason = "Unknown"
        headers = [(k, v) for k, v in response.headers if k.lower() not in ("content-length", "connection")]
        start_response(f"{response.status} {reason}", headers + [("Content-Length", str(len(response.body)))])
        return [response.body]


class GatewayServer:
    """The API on 127.0.0.1, served by waitress (`wsgi_server`), feeding `Gateway.serve`."""

    def __init__(self, make_gateway: Callable[[str, frozenset[str]], Gateway], port: int = 0):
        self._app = GatewayApp(None)  # type: ignore[arg-type]
        self._server = LoopbackServer(self._app, port=port, name="apigw", threads=GATEWAY_THREADS,
                                      max_body=MAX_BODY_BYTES)
        self.port = self._server.port
        self.url = self._server.url
        self._app.gateway = make_gateway(self._server.host_port, allowed_hosts(self.port))

    def start(self) -> GatewayServer:
        self._server.start()
        log.info("[gateway] API at %s", self.url)
        return self

    def stop(self) -> None:
        self._server.stop()
