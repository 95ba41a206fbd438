"""boto3 clients for the stack commands (deploy, destroy, status), all in one region.

TLFIF_AWS_ENDPOINT_URL points every client at one endpoint: the tests' moto server. A user never sets it.
"""
from __future__ import annotations

import os
from typing import Any

ENV_ENDPOINT_URL = "TLFIF_AWS_ENDPOINT_URL"


class Clients:
    def __init__(self, region: str | None = None):
        import boto3

        self._session = boto3.session.Session(region_name=region or None)
        self.region = self._session.region_name or ""
        self._endpoint = os.environ.get(ENV_ENDPOINT_URL) or None
        self._made: dict[str, Any] = {}

    def __call__(self, service: str) -> Any:
        if service not in self._made:
            self._made[service] = self._session.client(service, region_name=self.region or None,
                                                       endpoint_url=self._endpoint)
        return self._made[service]
