"""CloudWatch metrics from the watcher: per-job latency, tokens and TTFT, GPU utilisation and VRAM through NVML
when `pynvml` is importable and a GPU is present (absent on a developer machine: no dependency, no error).
Data points are buffered and sent in batches; a failed send is logged, never fatal.
"""
from __future__ import annotations

import logging
import threading
import time

from tlfif_common import names

log = logging.getLogger("tlfif_watcher")

MAX_BATCH = 500  # PutMetricData takes up to 1000 datums per call


class Metrics:
    def __init__(self, cloudwatch, namespace: str = names.METRICS_NAMESPACE):
        self.cloudwatch = cloudwatch
        self.namespace = namespace
        self._buffer: list[dict] = []
        self._lock = threading.Lock()

    def add(self, name: str, value: float, unit: str) -> None:
        with self._lock:
            self._buffer.append({"MetricName": name, "Value": float(value), "Unit": unit,
                                 "Timestamp": time.time()})

    def job(self, latency_ms: int, tokens: int, ttft_ms: int | None) -> None:
        self.add(names.METRIC_JOB_LATENCY, latency_ms, "Milliseconds")
        self.add(names.METRIC_JOB_TOKENS, tokens, "Count")
        if ttft_ms is not None:
            self.add(names.METRIC_TTFT, ttft_ms, "Milliseconds")

    def flush(self) -> None:
        with self._lock:
            batch, self._buffer = self._buffer, []
        for start in range(0, len(batch), MAX_BATCH):
            part = batch[start:start + MAX_BATCH]
            try:
                self.cloudwatch.put_metric_data(Namespace=self.namespace, MetricData=part)
            except Exception as err:  # metrics must never stop inference
                log.warning("metrics not sent", extra={"error": f"{type(err).__name__}: {err}",
                                                       "datapoints": len(part)})


class GpuSampler:
    """GPU utilisation and memory use of GPU 0 through NVML; `available` is False without pynvml or a GPU."""

    def __init__(self):
        self._nvml = None
        self._handle = None
        try:
            import pynvml  # type: ignore[import-not-found]

            pynvml.nvmlInit()
            if pynvml.nvmlDeviceGetCount() > 0:
                self._nvml = pynvml
                self._handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        except Exception as err:  # ImportError, NVMLError (no driver/GPU): GPU metrics are simply absent
            log.info("GPU metrics off: NVML not available", extra={"reason": f"{type(err).__name__}: {err}"})

    @property
    def available(self) -> bool:
        return self._handle is not None

    def sample(self, metrics: Metrics) -> None:
        if not self.available:
            return
        try:
            util = self._nvml.nvmlDeviceGetUtilizationRates(self._handle)
            mem = self._nvml.nvmlDeviceGetMemoryInfo(self._handle)
        except Exception as err:
            log.warning("GPU sample failed", extra={"error": f"{type(err).__name__}: {err}"})
            return
        metrics.add(names.METRIC_GPU_UTIL, util.gpu, "Percent")
        metrics.add(names.METRIC_GPU_VRAM, 100.0 * mem.used / mem.total if mem.total else 0.0, "Percent")
