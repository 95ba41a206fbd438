"""`python -m tlfif_watcher`: build the watcher from the environment (see `config.py`) and run it until SIGTERM or
SIGINT (job back to pending, exit 0) or the idle timer stops the instance or, in GpuMode scale, takes the node out of
its group (exit 0). Exit 2 on bad configuration.
"""
from __future__ import annotations

import logging
import signal
import sys

import boto3
import redis
from botocore.config import Config

from tlfif_common import names

from . import logs
from .config import ConfigError, WatcherConfig
from .deadline_metric import DeadlineReporter
from .engines import make_engine
from .imds import ImdsClient, ImdsUnavailable
from .instance import InstanceControl
from .metrics import GpuSampler, Metrics
from .watcher import Watcher

log = logging.getLogger("tlfif_watcher")

REDIS_SOCKET_TIMEOUT_S = 10.0  # > the claim timeout, so BLMOVE never trips it


def build(config: WatcherConfig) -> Watcher:
    imds = ImdsClient(config.imds_url)
    try:
        instance_id: str | None = imds.instance_id()
    except ImdsUnavailable:  # a developer machine: no self-stop, so no deadline to report either
        instance_id = None
    region = config.region
    if region is None:  # on EC2 the instance knows its region; elsewhere fall back to the project default
        try:
            region = imds.region()
        except ImdsUnavailable:
            region = names.DEFAULT_REGION
    boto_config = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=20)

    def client(service: str):
        return boto3.client(service, region_name=region, config=boto_config)

    s3 = client("s3")
    cloudwatch = client("cloudwatch")
    metrics = Metrics(cloudwatch, namespace=config.metrics_namespace)
    redis_client = redis.Redis.from_url(config.redis_url, socket_timeout=REDIS_SOCKET_TIMEOUT_S,
                                        socket_connect_timeout=5, health_check_interval=30)
    instance = InstanceControl(imds, ec2=client("ec2"), ssm=client("ssm"), metrics=metrics,
                               autoscaling=client("autoscaling") if config.scale else None)
    return Watcher(config, redis_client=redis_client, engine=make_engine(config, models_s3=s3), s3=s3,
                   metrics=metrics, instance=instance, gpu=GpuSampler(),
                   deadline=DeadlineReporter(cloudwatch, instance_id, config.metrics_namespace))


def main(argv: list[str] | None = None) -> int:
    logs.setup(logging.INFO)
    try:
        config = WatcherConfig.from_env()
    except ConfigError as err:
        log.error("bad configuration", extra={"error": str(err)})
        return 2
    watcher = build(config)

    signalled: list[str] = []  # a plain list, no lock: see on_signal

    def on_signal(signum, _frame):
        # A second signal can arrive while this handler is inside the stop Event's lock (Event.set is not
        # reentrant): the nested call would wait on it for ever. Only the first signal goes on.
        if signalled:
            return
        signalled.append(signal.Signals(signum).name)
        watcher.request_stop(signalled[0])

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        return watcher.run()
    finally:
        watcher.engine.close()


if __name__ == "__main__":
    sys.exit(main())
