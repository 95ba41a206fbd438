"""HTTP calls to the TL-FIF API (API Gateway or the local cloud): /infer, /cancel/{id}, /stop, /ping, /cost,
/keepwarm (the route keys of `tlfif_common.api`), and result_url.

Every API call carries `Authorization: Bearer <ID token>`. The result object is read from its presigned URL with
no Authorization header (S3 refuses a second auth mechanism). Errors come back as `ApiError(status, message)`.
"""
from __future__ import annotations

import json
import threading
from typing import Any
from urllib.parse import quote

import requests
from tlfif_common import api
from tlfif_common.api import Result

NOT_YET_STATUSES = (403, 404)  # S3 answers 403 for a missing key when the reader may not list the bucket


class _PerThread(threading.local):
    session: requests.Session | None = None


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
        self._local = _PerThread()  # one requests.Session per thread

    @property
    def _session(self) -> requests.Session:
        if self._local.session is None:
            self._local.session = requests.Session()
        return self._local.session

    def infer(self, token: str, body: dict, idempotency_key: str | None = None) -> dict:
        """POST /infer; every try of one prompt carries the same `idempotency_key`, so a retry after a lost answer
        gets the job the first try queued instead of a second one."""
        extra = {api.IDEMPOTENCY_HEADER: idempotency_key} if idempotency_key else None
        return self._call(api.INFER, token, body, headers=extra)

    def stop(self, token: str) -> dict:
        return self._call(api.STOP, token, None)

    def cancel(self, token: str, job_id: str) -> dict:
        """Stop generating job `job_id`: 202 {"status": "cancelling", "id"}; ApiError 404 unknown/expired, 409 already
        finished, 403 another user's job, 400 not a job id."""
        return self._call(api.CANCEL, token, None, id=job_id)

    def ping(self, token: str) -> dict:
        return self._call(api.PING, token, None)

    def keep_warm(self, token: str, on: bool, max_minutes: int) -> dict:
        """POST /keepwarm: {"status": "on", "until": epoch_ms} or {"status": "off"}."""
        body = {"on": True, "max_minutes": max_minutes} if on else {"on": False}
        return self._call(api.KEEP_WARM, token, body)

    def cost(self, token: str) -> dict | None:
        """The /cost answer, or None where the route does not exist (404/405)."""
        try:
            return self._call(api.COST, token, None)
        except ApiError as err:
            if err.status in (404, 405):
                return None
            raise

    def get_result(self, url: str) -> Result | None:
        """The result object, or None while it does not exist yet (403/404). ApiError when it is not one."""
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
        try:
            return Result.from_dict(doc)
        except ValueError as err:
            raise ApiError(0, f"the result object is not one: {err}") from None

    def _call(self, route: str, token: str, body: Any, *, headers: dict[str, str] | None = None,
              **path_params: str) -> dict:
        """Call the route `route` ("POST /cancel/{id}"), its {placeholders} filled from `path_params`."""
        method, _, path = route.partition(" ")
        path = path.format(**{name: quote(value, safe="") for name, value in path_params.items()})
        headers = {**(headers or {}), "Authorization": f"Bearer {token}"}
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
