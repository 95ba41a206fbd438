"""Every delay the app's backends and controllers use, in seconds, in one place; tests shrink them."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Timings:
    retry_delays: tuple[float, ...] = (0.5, 1.0, 2.0)   # after a 502/504 on /infer
    cold_start_retry_s: float = 5.0       # then, while /ping says starting
    cold_start_budget_s: float = 180.0    # give up after this long
    result_poll_start_s: float = 0.1      # result_url polling backoff, once the answer has text
    result_poll_cap_s: float = 1.0
    # Until the first text, a fixed short interval: the backoff alone added up to its current step to the TTFT.
    result_first_poll_s: float = 0.04
    result_first_poll_window_s: float = 30.0  # from when the job should start (now, or after /infer's eta)
    result_timeout_s: float = 300.0       # the job's TTL and the presigned URL's life
    result_error_tolerance: int = 5       # consecutive failed reads of result_url before giving up
    cancel_wait_s: float = 10.0           # after Stop: how long to wait for the result to say `cancelled`
    ping_interval_s: float = 15.0
    ping_starting_s: float = 2.0          # while the GPU boots
    ping_after_stop_s: float = 1.0        # after Stop GPU, until stopped
    ping_after_stop_window_s: float = 60.0
    cost_interval_s: float = 30.0         # CostLabel
    progress_min_interval_s: float = 0.05  # at most ~20 answer updates a second reach the Tk thread
    endpoint_wait_s: float = 120.0        # how long a call waits for the embedded local cloud to come up
    http_timeout_s: float = 15.0
