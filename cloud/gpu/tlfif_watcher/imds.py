"""IMDSv2 client: a session token (PUT /latest/api/token), then metadata reads carrying it (RQL 5.6)."""
from __future__ import annotations

import urllib.error
import urllib.request

TOKEN_PATH = "/latest/api/token"
TOKEN_TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"
TOKEN_HEADER = "X-aws-ec2-metadata-token"
INSTANCE_ID_PATH = "/latest/meta-data/instance-id"
REGION_PATH = "/latest/meta-data/placement/region"
TOKEN_TTL_SECONDS = 300
TIMEOUT_S = 2.0


class ImdsUnavailable(RuntimeError):
    """No instance metadata service answered (a developer machine) or it refused."""


class ImdsClient:
    def __init__(self, base_url: str, timeout: float = TIMEOUT_S):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def _call(self, method: str, path: str, headers: dict[str, str]) -> str:
        request = urllib.request.Request(self.base_url + path, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 (fixed base URL)
                return response.read().decode("utf-8").strip()
        except (urllib.error.URLError, OSError, ValueError) as err:
            raise ImdsUnavailable(f"IMDS {method} {path} at {self.base_url}: {err}") from None

    def token(self) -> str:
        return self._call("PUT", TOKEN_PATH, {TOKEN_TTL_HEADER: str(TOKEN_TTL_SECONDS)})

    def get(self, path: str) -> str:
        return self._call("GET", path, {TOKEN_HEADER: self.token()})

    def instance_id(self) -> str:
        return self.get(INSTANCE_ID_PATH)

    def region(self) -> str:
        return self.get(REGION_PATH)
