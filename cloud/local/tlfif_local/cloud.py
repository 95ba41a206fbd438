"""The local cloud: every TL-FIF backend part on loopback, the same router and watcher code as on AWS.

`LocalCloud(options).start()` starts, in order: a real redis-server; moto's server holding the TL-FIF resources;
the local OIDC issuer; the IMDSv2 emulator and the GPU node emulator (which runs the real watcher while the moto
instance runs); the router handler (imported in-process, configured through the same environment variables as
the Lambda); the API Gateway emulation. It returns the info dict that `tl-fif cloud up` prints as its first line.
`stop()` stops all of it, in reverse. Every service has this run's own secret: Redis a password, moto an access
key (handed to the router and the watcher through the environment), the issuer a login secret and an admin secret
(in the 0600 state file). A Redis that dies is restarted (same port, its data kept in an append-only file).
"""
from __future__ import annotations

import logging
import os
import tempfile
import threading
from dataclasses import dataclass
from typing import Callable

from tlfif_common import names

from .aws_stack import AwsStack, local_credentials
from .faults import SLOW_STOP, UNVERIFIED_TOKENS, UnverifiedJwtAuthorizer
from .gateway import Gateway, GatewayServer, TokenBucket
from .engine_server import DEFAULT_CONTEXT, EngineServer, check_installed, check_port_free
from .gpu_node import GpuNode
from .model_file import check_model
from .imds import ImdsEmulator
from .jwt_authorizer import JwtAuthorizer
from .oidc import LocalIssuer
from .redis_server import RedisServer

log = logging.getLogger("tlfif_local.cloud")

ENGINE_ECHO = "echo"
# The callback the info line names; the issuer accepts any port on localhost/127.0.0.1 with path /callback.
DEFAULT_REDIRECT_URI = "http://localhost:8400/callback"
REDIS_CHECK_SECONDS = 0.5
REDIS_RESTART_DELAY = 2.0  # a managed Redis is back after seconds, not at once; clients see 503 meanwhile
INFO_KEYS = ("api_url", "issuer", "authorize_url", "token_url", "jwks_url", "client_id", "redirect_uri", "region")


@dataclass
class CloudOptions:
    port: int = 0
    issuer_port: int = 0
    boot_seconds: float = 8.0
    engine: str = ENGINE_ECHO  # "echo" or the base URL of an OpenAI-compatible server
    model: str | None = None  # a GGUF file: the GPU node runs llama-cpp-python's server with it (engine ignored)
    context: int = DEFAULT_CONTEXT  # the local model's context window, tokens
    engine_port: int = 0  # the local model server's port (default: a free one)
    echo_delay_ms: int | None = None
    minute_seconds: float | None = None
    throttle_rate: float = names.API_THROTTLE_RATE
    throttle_burst: int = names.API_THROTTLE_BURST
    user_rps: int | None = None
    region: str = names.DEFAULT_REGION
    login_secret: str | None = None  # None: the issuer makes one
    faults: dict[str, str] | None = None  # faults.py: broken on purpose (tests show a check failing)


def isolate_from_aws(region: str, credentials: dict[str, str]) -> None:
    """This run's credentials and no profile in this process (and so in every child): nothing can reach AWS."""
    for var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE",
                "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                "AWS_CONTAINER_CREDENTIALS_FULL_URI"):
        os.environ.pop(var, None)
    os.environ.update(credentials)
    os.environ["AWS_CONFIG_FILE"] = os.devnull
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    os.environ[names.ENV_AWS_REGION] = region
    os.environ["AWS_DEFAULT_REGION"] = region


class LocalCloud:
    def __init__(self, options: CloudOptions, access_log: Callable[[dict], None]):
        self.options = options
        self.access_log = access_log
        self.redis: RedisServer | None = None
        self.aws: AwsStack | None = None
        self.issuer: LocalIssuer | None = None
        self.imds: ImdsEmulator | None = None
        self.node: GpuNode | None = None
        self.gateway: GatewayServer | None = None
        self._tmp: tempfile.TemporaryDirectory | None = None
        self._closing = threading.Event()
        self._keeper: threading.Thread | None = None
        self.info: dict | None = None

    def start(self) -> dict:
        """Raises ModelError / EngineServerError (a bad --model) before anything is started."""
        opts = self.options
        self._tmp = tempfile.TemporaryDirectory(prefix="tlfif-local-")
        engine = self._engine_server()
        credentials = local_credentials()
        isolate_from_aws(opts.region, credentials)

        # Assigned first: a signal during start() still finds it to stop.
        self.redis = RedisServer(own_session=True, persist=True)
        self.redis.start()
        log.info("[redis] redis-server on 127.0.0.1:%s (pid %s)", self.redis.port, self.redis.pid)
        self._keeper = threading.Thread(target=self._keep_redis, name="redis-keeper", daemon=True)
        self._keeper.start()

        self.aws = AwsStack(credentials, region=opts.region)
        res = self.aws.start()
        os.environ[names.ENV_AWS_ENDPOINT_URL] = res.endpoint_url

        self.issuer = LocalIssuer(port=opts.issuer_port, login_secret=opts.login_secret).start()

        self.imds = ImdsEmulator(res.gpu_instance_id, region=opts.region).start()
        faults = opts.faults or {}
        self.node = GpuNode(self.aws.moto_instance(), boot_seconds=opts.boot_seconds,
                            watcher_env=self._watcher_env(engine), engine=engine,
                            stop_delay=float(faults.get(SLOW_STOP) or 0)).start()

        integration = self._router()
        authorizer_class = UnverifiedJwtAuthorizer if UNVERIFIED_TOKENS in faults else JwtAuthorizer
        authorizer = authorizer_class(self.issuer.issuer, [self.issuer.client_id], self.issuer.jwks_url)
        throttle = TokenBucket(opts.throttle_rate, opts.throttle_burst)
        self.gateway = GatewayServer(
            lambda domain, hosts: Gateway(integration=integration, authorizer=authorizer, throttle=throttle,
                                          region=opts.region, account_id=res.account_id, domain=domain,
                                          access_log=self.access_log, hosts=hosts),
            port=opts.port).start()

        self.info = {
            "api_url": self.gateway.url,
            "issuer": self.issuer.issuer,
            "authorize_url": self.issuer.authorize_url,
            "token_url": self.issuer.token_url,
            "jwks_url": self.issuer.jwks_url,
            "client_id": self.issuer.client_id,
            "redirect_uri": DEFAULT_REDIRECT_URI,
            "region": opts.region,
        }
        return self.info

    def _engine_server(self) -> EngineServer | None:
        opts = self.options
        if not opts.model:
            return None
        check_installed()
        info = check_model(opts.model, context=opts.context)
        if opts.engine_port:
            check_port_free(opts.engine_port)
        return EngineServer(info, context=opts.context, port=opts.engine_port or None, log_dir=self._tmp.name)

    def _watcher_env(self, engine: EngineServer | None = None) -> dict[str, str]:
        opts = self.options
        assert self.redis and self.aws and self.aws.resources and self.imds and self._tmp
        env = dict(os.environ)
        env.update({
            names.ENV_REDIS_URL: self.redis.url,
            names.ENV_RESPONSES_BUCKET: self.aws.resources.responses_bucket,
            names.ENV_IMDS_URL: self.imds.url,
            names.ENV_ADAPTER_DIR: os.path.join(self._tmp.name, "adapters"),
            "PYTHONUNBUFFERED": "1",
        })
        if engine is not None:
            env.update({names.ENV_ENGINE: "llama.cpp", names.ENV_ENGINE_URL: engine.base_url,
                        names.ENV_ENGINE_API_KEY: engine.api_key, names.ENV_ENGINE_MODEL: engine.model_alias,
                        names.ENV_ENGINE_CONTEXT: str(engine.context)})
        elif opts.engine == ENGINE_ECHO:
            env[names.ENV_ENGINE] = "echo"
        else:
            env[names.ENV_ENGINE] = "vllm"
            env[names.ENV_ENGINE_URL] = opts.engine
        if opts.echo_delay_ms is not None:
            env[names.ENV_ECHO_DELAY_MS] = str(opts.echo_delay_ms)
        if opts.minute_seconds is not None:
            env[names.ENV_MINUTE_SECONDS] = str(opts.minute_seconds)
        return env

    def _router(self):
        """The router handler, configured through its environment variables as on Lambda, imported here."""
        opts = self.options
        assert self.redis and self.aws and self.aws.resources and self.issuer
        res = self.aws.resources
        os.environ.update({
            names.ENV_REDIS_URL: self.redis.url,
            names.ENV_RESPONSES_BUCKET: res.responses_bucket,
            names.ENV_MODELS_BUCKET: res.models_bucket,
            names.ENV_GPU_INSTANCE_ID: res.gpu_instance_id,
            names.ENV_JWT_ISSUER: self.issuer.issuer,
            names.ENV_JWT_AUDIENCE: self.issuer.client_id,
            names.ENV_SESSIONS_TABLE: res.sessions_table,
            names.ENV_BOOT_ETA_SECONDS: str(max(1, round(opts.boot_seconds))),
        })
        if opts.user_rps is not None:
            os.environ[names.ENV_RATE_LIMIT_RPS] = str(opts.user_rps)
        if opts.minute_seconds is not None:  # keep-warm's maximum lifetime counts in the watcher's minutes
            os.environ[names.ENV_MINUTE_SECONDS] = str(opts.minute_seconds)
        from tlfif_router.handler import handler

        return handler

    def _keep_redis(self) -> None:
        """Restart redis-server when it dies, as a managed Redis comes back; its append-only file keeps the jobs."""
        while not self._closing.wait(REDIS_CHECK_SECONDS):
            server = self.redis
            if server is None or server.alive():
                continue
            log.warning("[redis] redis-server died; restarting it on port %s in %.0f s", server.port,
                        REDIS_RESTART_DELAY)
            if self._closing.wait(REDIS_RESTART_DELAY):
                return
            try:
                server.restart()
                log.info("[redis] redis-server back (pid %s)", server.pid)
            except Exception as err:  # try again on the next round
                log.error("[redis] restart failed: %s", err)

    @property
    def watcher_pid(self) -> int | None:
        return self.node.watcher_pid if self.node else None

    def stop(self) -> None:
        """Stop everything that was started, in reverse order; never raises.

        The API goes first (no new work), then the GPU node (the watcher returns its job), then the in-process
        servers side by side (each shutdown waits out a poll interval), then redis-server.
        """
        self._stop_all([("gateway", self.gateway)])
        self._stop_all([("gpu node", self.node)])
        self._closing.set()  # a Redis restarted by the keeper dies with the keeper's thread (see `children`)
        if self._keeper is not None:
            self._keeper.join()
        self._stop_all([("imds", self.imds), ("issuer", self.issuer), ("moto", self.aws)])
        self._stop_all([("redis", self.redis)])
        self.gateway = self.node = self.imds = self.issuer = self.aws = self.redis = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    @staticmethod
    def _stop_all(parts) -> None:
        def stop(name, part):
            try:
                part.stop()
            except Exception:  # keep stopping the rest
                log.exception("[cloud] stopping %s failed", name)

        threads = [threading.Thread(target=stop, args=(name, part), name=f"stop-{name}")
                   for name, part in parts if part is not None]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
