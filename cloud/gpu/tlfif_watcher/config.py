"""The watcher's settings, read only from environment variables named in `tlfif_common.names`.

    TLFIF_REDIS_URL            required   redis://host:6379/0 (rediss:// for TLS)
    TLFIF_RESPONSES_BUCKET     required   where result objects `{id}.json` go
    TLFIF_ENGINE               vllm       "vllm" | "llama.cpp" | "echo"
    TLFIF_ENGINE_URL           http://127.0.0.1:8000/v1   the OpenAI-compatible server (vllm engine)
    TLFIF_ENGINE_MODEL         (first model the server lists)   model name to request
    TLFIF_ENGINE_API_KEY       EMPTY      bearer key, only if the server runs with --api-key
    TLFIF_ENGINE_CONTEXT       (as vLLM lists it)   context window in tokens: the history is trimmed to fit
    TLFIF_ECHO_DELAY_MS        30         delay between echoed words (0 allowed)
    TLFIF_IMDS_URL             http://169.254.169.254
    TLFIF_MINUTE_SECONDS       60         length of an idle "minute" (tests and the local cloud shorten it)
    TLFIF_DEFAULT_IDLE_MINUTES 5          idle time before the first job
    TLFIF_LEASE_SECONDS        15         job lease; heartbeat every lease/3, reaper every lease/2
    TLFIF_ADAPTER_DIR          <tmp>/tlfif-adapters   local cache of LoRA adapters
    TLFIF_MODELS_BUCKET        (any)      when set, adapter_uri must point inside it (defence in depth)
    TLFIF_GPU_MODE             single     "single": an idle node stops itself; "scale": it leaves its Auto Scaling group
    TLFIF_METRICS_NAMESPACE    TL-FIF     CloudWatch namespace of the watcher's metrics (the DR test's node: its own)
    AWS_REGION, AWS_ENDPOINT_URL          honoured by boto3 itself
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from typing import Mapping

from tlfif_common import names
from tlfif_common.workqueue import DEFAULT_LEASE_SECONDS

ENGINES = ("vllm", "llama.cpp", "echo")
DEFAULT_ECHO_DELAY_MS = 30
DEFAULT_IDLE_MINUTES = 5
DEFAULT_MINUTE_SECONDS = 60.0


class ConfigError(ValueError):
    """A watcher environment variable is missing or wrong; the message names it."""


@dataclass(frozen=True)
class WatcherConfig:
    redis_url: str
    responses_bucket: str
    engine: str = "vllm"
    engine_url: str = names.DEFAULT_ENGINE_URL
    engine_model: str | None = None
    engine_api_key: str = "EMPTY"
    engine_context: int | None = None
    echo_delay_ms: int = DEFAULT_ECHO_DELAY_MS
    imds_url: str = names.DEFAULT_IMDS_URL
    minute_seconds: float = DEFAULT_MINUTE_SECONDS
    default_idle_minutes: float = DEFAULT_IDLE_MINUTES
    lease_seconds: float = DEFAULT_LEASE_SECONDS
    adapter_dir: str = os.path.join(tempfile.gettempdir(), "tlfif-adapters")
    models_bucket: str | None = None
    region: str | None = None
    gpu_mode: str = names.GPU_MODE_SINGLE
    metrics_namespace: str = names.METRICS_NAMESPACE

    @property
    def scale(self) -> bool:
        return self.gpu_mode == names.GPU_MODE_SCALE

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> WatcherConfig:
        env = os.environ if env is None else env

        def text(name: str, default: str | None = None, required: bool = False) -> str | None:
            value = (env.get(name) or "").strip()
            if not value:
                if required:
                    raise ConfigError(f"{name} is required")
                return default
            return value

        def number(name: str, default: float, minimum: float, integer: bool = False) -> float:
            raw = text(name)
            if raw is None:
                return default
            try:
                value = int(raw) if integer else float(raw)
            except ValueError:
                raise ConfigError(f"{name} must be a{'n integer' if integer else ' number'}, got {raw!r}") from None
            if value < minimum:
                raise ConfigError(f"{name} must be at least {minimum}, got {raw!r}")
            return value

        engine = text(names.ENV_ENGINE, "vllm").lower()
        if engine not in ENGINES:
            raise ConfigError(f"{names.ENV_ENGINE} must be one of {', '.join(ENGINES)}, got {engine!r}")
        gpu_mode = text(names.ENV_GPU_MODE, names.GPU_MODE_SINGLE).lower()
        if gpu_mode not in names.GPU_MODES:
            raise ConfigError(f"{names.ENV_GPU_MODE} must be one of {', '.join(names.GPU_MODES)}, got {gpu_mode!r}")
        return cls(
            redis_url=text(names.ENV_REDIS_URL, required=True),
            responses_bucket=text(names.ENV_RESPONSES_BUCKET, required=True),
            engine=engine,
            engine_url=text(names.ENV_ENGINE_URL, names.DEFAULT_ENGINE_URL).rstrip("/"),
            engine_model=text(names.ENV_ENGINE_MODEL),
            engine_api_key=text(names.ENV_ENGINE_API_KEY, "EMPTY"),
            engine_context=int(number(names.ENV_ENGINE_CONTEXT, 0, 1, integer=True)) or None,
            echo_delay_ms=int(number(names.ENV_ECHO_DELAY_MS, DEFAULT_ECHO_DELAY_MS, 0, integer=True)),
            imds_url=text(names.ENV_IMDS_URL, names.DEFAULT_IMDS_URL).rstrip("/"),
            minute_seconds=number(names.ENV_MINUTE_SECONDS, DEFAULT_MINUTE_SECONDS, 0.001),
            default_idle_minutes=number(names.ENV_DEFAULT_IDLE_MINUTES, DEFAULT_IDLE_MINUTES, 0),
            lease_seconds=number(names.ENV_LEASE_SECONDS, DEFAULT_LEASE_SECONDS, 1),
            adapter_dir=text(names.ENV_ADAPTER_DIR, os.path.join(tempfile.gettempdir(), "tlfif-adapters")),
            models_bucket=text(names.ENV_MODELS_BUCKET),
            region=text(names.ENV_AWS_REGION) or text("AWS_DEFAULT_REGION"),
            gpu_mode=gpu_mode,
            metrics_namespace=text(names.ENV_METRICS_NAMESPACE, names.METRICS_NAMESPACE),
        )
