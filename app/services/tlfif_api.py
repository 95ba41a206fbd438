"""HTTP calls to the TL-FIF API (API Gateway or the local cloud): /infer, /cancel/{id}, /stop, /ping, /cost,
/keepwarm, and result_url.

Every API call carries `Authorization: Bearer <ID token>`. The result object is read from its presigned URL with
no Authorization header (S3 refuses a second auth mechanism). Errors come back as `ApiError(status, message)`.
"""
from __future__ import annotations

import json
import threading
from typing import Any
from urllib.parse import quote

import requests

NOT_YET_STATUSES = (403, 404)  # S3 answers 403 for a missing key when the reader may not list the bucket


class ApiError(Exception):
    """An HTTP error (status > 0) or a transport failure (status 0). str() is the API's own error text."""

    def __init__(self, status: int, message: str, *, retry_after: float | None = None):
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class TlfifApi:
    def __init__(self, api_url: str, *, timeout: float = 15.0):
        self.api_url = api_url.rstrip("/")
        self.timeout = timeout
        self._local = threading.local()  # one requests.Session per thread

    @property
    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def infer(self, token: str, body: dict) -> dict:
        return self._call("POST", "/infer", token, body)

    def stop(self, token: str) -> dict:
        return self._call("POST", "/stop", token, None)

    def cancel(self, token: str, job_id: str) -> dict:
        """Stop generating job `job_id`: 202 {"status": "cancelling", "id"}; ApiError 404 unknown/expired, 409 already
        finished, 403 another user's job, 400 not a job id."""
        return self._call("POST", f"/cancel/{quote(job_id, safe='')}", token, None)

    def ping(self, token: str) -> dict:
        return self._call("GET", "/ping", token, None)

    def keep_warm(self, token: str, on: bool, max_minutes: int) -> dict:
        """POST /keepwarm: {"status": "on", "until": epoch_ms} or {"status": "off"}."""
        body = {"on": True, "max_minutes": max_minutes} if on else {"on": False}
        return self._call("POST", "/keepwarm", token, body)

    def cost(self, token: str) -> dict | None:
        """The /cost answer, or None where the route does not exist (404/405)."""
        try:
            return self._call("GET", "/cost", token, None)
        except ApiError as err:
            if err.status in (404, 405):
                return None
            raise

    def get_result(self, url: str) -> dict | None:
        """The result object, or None while it does not exist yet (403/404)."""
        try:
            response = self._session.get(url, timeout=self.timeout)
        except requests.RequestException as err:
            raise ApiError(0, f"cannot read the result: {err.__class__.__name__}") from None
        if response.status_code in NOT_YET_STATUSES:
            return None
        if response.status_code != 200:
            raise ApiError(response.status_code, f"reading the result gave HTTP {response.status_code}")
        try:
            doc = response.json()
        except ValueError:
            return None  # caught mid-write by a non-atomic store: read again
        return doc if isinstance(doc, dict) else None

    def _call(self, method: str, path: str, token: str, body: Any) -> dict:
        headers = {"Authorization": f"Bearer {token}"}
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body)
        try:
            response = self._session.request(method, self.api_url + path, headers=headers, data=data,
                                             timeout=self.timeout)
        except requests.RequestException as err:
            raise ApiError(0, f"cannot reach {self.api_url}: {err.__class__.__name__}") from None
        if 200 <= response.status_code < 300:
            try:
                doc = response.json()
            except ValueError:
                raise ApiError(response.status_code, f"{path} answered something that is not JSON") from None
            return doc if isinstance(doc, dict) else {}
        raise ApiError(response.status_code, _error_text(response), retry_after=_retry_after(response))


def _error_text(response: requests.Response) -> str:
    try:
        doc = response.json()
        if isinstance(doc, dict) and doc.get("error"):
            return str(doc["error"]) if not isinstance(doc["error"], dict) else str(doc["error"].get("message"))
        if isinstance(doc, dict) and doc.get("message"):
            return str(doc["message"])
    except ValueError:
        pass
    return f"HTTP {response.status_code}"


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
