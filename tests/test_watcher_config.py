"""The watcher's configuration comes only from the environment variables named in `tlfif_common.names`."""
from __future__ import annotations

import pytest

from tlfif_common import names
from tlfif_watcher.config import ConfigError, WatcherConfig
from tlfif_watcher.engines import make_engine
from tlfif_watcher.engines.echo import EchoEngine
from tlfif_watcher.engines.vllm import VllmEngine

REQUIRED = {names.ENV_REDIS_URL: "redis://127.0.0.1:6379/0", names.ENV_RESPONSES_BUCKET: "responses"}


def test_defaults_follow_the_image_layout():
    config = WatcherConfig.from_env(REQUIRED)
    assert config.engine == "vllm" and config.engine_url == names.DEFAULT_ENGINE_URL
    assert config.imds_url == names.DEFAULT_IMDS_URL
    assert config.minute_seconds == 60 and config.default_idle_minutes == 5
    assert config.lease_seconds == 15 and config.echo_delay_ms == 30
    assert config.engine_model is None and config.engine_api_key == "EMPTY"
    assert config.gpu_mode == names.GPU_MODE_SINGLE and not config.scale
    assert config.metrics_namespace == names.METRICS_NAMESPACE


def test_every_setting_is_read():
    env = {**REQUIRED, names.ENV_ENGINE: "ECHO", names.ENV_ENGINE_URL: "http://gpu:9000/v1/",
           names.ENV_ENGINE_MODEL: "tiny", names.ENV_ENGINE_API_KEY: "k", names.ENV_ECHO_DELAY_MS: "0",
           names.ENV_IMDS_URL: "http://127.0.0.1:1234/", names.ENV_MINUTE_SECONDS: "0.5",
           names.ENV_DEFAULT_IDLE_MINUTES: "2", names.ENV_LEASE_SECONDS: "3", names.ENV_ADAPTER_DIR: "/tmp/a",
           names.ENV_MODELS_BUCKET: "models", names.ENV_AWS_REGION: "eu-west-1", names.ENV_GPU_MODE: "Scale",
           names.ENV_METRICS_NAMESPACE: "TL-FIF-DR"}
    config = WatcherConfig.from_env(env)
    assert (config.engine, config.engine_url, config.engine_model, config.engine_api_key) == (
        "echo", "http://gpu:9000/v1", "tiny", "k")
    assert (config.echo_delay_ms, config.imds_url, config.minute_seconds, config.default_idle_minutes) == (
        0, "http://127.0.0.1:1234", 0.5, 2)
    assert (config.lease_seconds, config.adapter_dir, config.models_bucket, config.region) == (
        3, "/tmp/a", "models", "eu-west-1")
    assert config.scale and config.metrics_namespace == "TL-FIF-DR"
    assert isinstance(make_engine(config), EchoEngine)
    assert isinstance(make_engine(WatcherConfig.from_env(REQUIRED)), VllmEngine)


@pytest.mark.parametrize("env, variable", [
    ({names.ENV_RESPONSES_BUCKET: "r"}, names.ENV_REDIS_URL),
    ({names.ENV_REDIS_URL: "redis://x"}, names.ENV_RESPONSES_BUCKET),
    ({**REQUIRED, names.ENV_ENGINE: "tgi"}, names.ENV_ENGINE),
    ({**REQUIRED, names.ENV_ECHO_DELAY_MS: "fast"}, names.ENV_ECHO_DELAY_MS),
    ({**REQUIRED, names.ENV_ECHO_DELAY_MS: "-1"}, names.ENV_ECHO_DELAY_MS),
    ({**REQUIRED, names.ENV_MINUTE_SECONDS: "0"}, names.ENV_MINUTE_SECONDS),
    ({**REQUIRED, names.ENV_LEASE_SECONDS: "0.5"}, names.ENV_LEASE_SECONDS),
    ({**REQUIRED, names.ENV_GPU_MODE: "many"}, names.ENV_GPU_MODE),
])
def test_bad_settings_are_refused_by_name(env, variable):
    with pytest.raises(ConfigError, match=variable):
        WatcherConfig.from_env(env)
