"""Everything a route needs from the outside world, in one object the tests can build from moto-backed clients.

Clients are created on first use and then reused for the life of the execution environment (AWS "Lambda best
practices": create clients outside the handler). Creating them lazily keeps the module import cheap (RQL 3.3,
see bench/router_cold_import.py): boto3 alone takes ~250 ms to import and each client ~50-400 ms to build, and
a /ping never needs the S3, DynamoDB or CloudWatch clients at all.
"""
from __future__ import annotations

import os
import time
from typing import Any, Callable

from tlfif_common import names

from .config import RouterConfig
from .queue_port import LambdaQueuePort, QueuePort, RedisQueuePort

CONNECT_TIMEOUT_SECONDS = 3
READ_TIMEOUT_SECONDS = 10  # the function itself has 30 s (RQL 3)


def _custom_endpoint(service_env: str) -> bool:
    return bool(os.environ.get(names.ENV_AWS_ENDPOINT_URL) or os.environ.get(service_env))


class Deps:
    """Config, AWS clients, the queue port and the clock. Pass any of them in to override the lazy default."""

    SERVICES = ("ec2", "s3", "ssm", "cloudwatch", "dynamodb", "lambda", "autoscaling")

    def __init__(self, config: RouterConfig, *, queue: QueuePort | None = None,
                 clock: Callable[[], float] = time.time, session: Any = None, **clients: Any):
        unknown = set(clients) - set(self.SERVICES)
        if unknown:
            raise TypeError(f"unknown clients: {', '.join(sorted(unknown))}")
        self.config = config
        self.clock = clock
        self._clients: dict[str, Any] = dict(clients)
        self._queue = queue
        self._session = session

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self._make_client(service)
        return self._clients[service]

    def _make_client(self, service: str) -> Any:
        import boto3
        from botocore.config import Config

        if self._session is None:
            # Lambda sets AWS_REGION and AWS_DEFAULT_REGION; boto3 reads only the latter, so honour both.
            region = os.environ.get(names.ENV_AWS_REGION) or os.environ.get("AWS_DEFAULT_REGION") or None
            self._session = boto3.session.Session(region_name=region)
        options: dict[str, Any] = {"connect_timeout": CONNECT_TIMEOUT_SECONDS, "read_timeout": READ_TIMEOUT_SECONDS,
                                   "retries": {"mode": "standard", "max_attempts": 3}}
        if service == "s3":
            # Presigned URLs must name the regional virtual-host endpoint (the global one redirects for new
            # buckets outside us-east-1, which breaks the signature). A custom endpoint (moto) needs path style.
            style = "path" if _custom_endpoint("AWS_ENDPOINT_URL_S3") else "virtual"
            options.update(signature_version="s3v4", s3={"addressing_style": style})
        return self._session.client(service, config=Config(**options))

    @property
    def ec2(self) -> Any:
        return self.client("ec2")

    @property
    def s3(self) -> Any:
        return self.client("s3")

    @property
    def ssm(self) -> Any:
        return self.client("ssm")

    @property
    def cloudwatch(self) -> Any:
        return self.client("cloudwatch")

    @property
    def dynamodb(self) -> Any:
        return self.client("dynamodb")

    @property
    def autoscaling(self) -> Any:
        return self.client("autoscaling")

    @property
    def queue(self) -> QueuePort:
        if self._queue is None:
            if self.config.queue_function:
                self._queue = LambdaQueuePort(self.client("lambda"), self.config.queue_function)
            else:
                assert self.config.redis_url  # RouterConfig.from_env guarantees one of the two
                self._queue = RedisQueuePort.from_url(self.config.redis_url, clock=self.clock)
        return self._queue
