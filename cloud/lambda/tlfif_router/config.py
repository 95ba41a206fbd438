"""Router configuration, read from environment variables only (names in `tlfif_common.names`)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

from tlfif_common import names

from .errors import ConfigError


@dataclass(frozen=True)
class RouterConfig:
    responses_bucket: str
    gpu_instance_id: str
    jwt_issuer: str
    jwt_audience: str
    models_bucket: str | None = None
    redis_url: str | None = None  # full profile: the router talks to Redis itself
    queue_function: str | None = None  # lean profile: the in-VPC function that talks to Redis for it
    sessions_table: str = names.SESSIONS_TABLE
    rate_limit_rps: int | None = None  # None: tlfif_common.ratelimit's default (5/s)
    boot_eta_seconds: int = names.BOOT_ETA_SECONDS
    minute_seconds: float = 60.0  # a keep-warm "minute"; the local cloud shortens it as it does the watcher's
    gpu_group: str | None = None  # GpuMode scale: the Auto Scaling group's name (gpu_instance_id is then unused)
    monthly_budget_usd: float | None = None  # the AWS Budgets limit that stops the GPU; None: not reported

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RouterConfig:
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        def required(name: str) -> str:
            value = get(name)
            if value is None:
                raise ConfigError(f"{name} is not set")
            return value

        def positive_int(name: str, default: int | None) -> int | None:
            raw = get(name)
            if raw is None:
                return default
            try:
                value = int(raw)
            except ValueError:
                raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
            if value < 1:
                raise ConfigError(f"{name} must be at least 1, got {value}")
            return value

        def positive_float(name: str, default: float | None) -> float | None:
            raw = get(name)
            if raw is None:
                return default
            try:
                value = float(raw)
            except ValueError:
                raise ConfigError(f"{name} must be a number, got {raw!r}") from None
            if not value > 0:
                raise ConfigError(f"{name} must be greater than 0, got {raw!r}")
            return value

        queue_function = get(names.ENV_QUEUE_FUNCTION)
        redis_url = get(names.ENV_REDIS_URL)
        if queue_function is None and redis_url is None:
            raise ConfigError(f"set {names.ENV_REDIS_URL} (full profile) or {names.ENV_QUEUE_FUNCTION} (lean profile)")
        gpu_group = get(names.ENV_GPU_GROUP)
        return cls(
            responses_bucket=required(names.ENV_RESPONSES_BUCKET),
            gpu_instance_id=get(names.ENV_GPU_INSTANCE_ID) or "" if gpu_group else required(names.ENV_GPU_INSTANCE_ID),
            jwt_issuer=required(names.ENV_JWT_ISSUER),
            jwt_audience=required(names.ENV_JWT_AUDIENCE),
            models_bucket=get(names.ENV_MODELS_BUCKET),
            redis_url=redis_url,
            queue_function=queue_function,
            sessions_table=get(names.ENV_SESSIONS_TABLE) or names.SESSIONS_TABLE,
            rate_limit_rps=positive_int(names.ENV_RATE_LIMIT_RPS, None),
            boot_eta_seconds=positive_int(names.ENV_BOOT_ETA_SECONDS, names.BOOT_ETA_SECONDS),
            minute_seconds=positive_float(names.ENV_MINUTE_SECONDS, 60.0),
            gpu_group=gpu_group,
            monthly_budget_usd=positive_float(names.ENV_MONTHLY_BUDGET_USD, None),
        )
