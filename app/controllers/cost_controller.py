"""The CostLabel: GET /cost every 30 s on a worker thread; paused while the GPU cold-starts (RQL 1.3)."""
from __future__ import annotations

import logging

from app.bus import Bus, Outbox
from app.controllers.aws_backend import AwsTinyLlamaClient
from app.controllers.backend_base import NotSignedIn, Timings
from app.controllers.poller import Poller
from app.models.cost import cost_text
from app.models.gpu import STARTING

log = logging.getLogger("tlfif.app.cost")


class CostController:
    def __init__(self, bus: Bus, outbox: Outbox, aws: AwsTinyLlamaClient, timings: Timings):
        self._bus = bus
        self._outbox = outbox
        self._aws = aws
        self.poller = Poller("cost", self._poll, timings.cost_interval_s)
        bus.subscribe_table({"gpu.state": self.on_gpu_state})

    @property
    def paused(self) -> bool:
        return self.poller.paused

    def start(self) -> None:
        self.poller.start()

    def stop(self) -> None:
        self.poller.stop()

    def _poll(self) -> None:
        try:
            data = self._aws.cost(interactive=False)
        except NotSignedIn:
            return
        except Exception as err:
            log.warning("%s", self._aws.handle_errors(err))
            return
        self._outbox.post("cost.updated", text=cost_text(data), data=data)

    def on_gpu_state(self, state: str, text: str, progress: float, idle_left_s: float) -> None:
        if state == STARTING and not self.poller.paused:
            self.poller.pause()
            log.info("[cost] polling paused while the GPU starts")
            self._bus.send("cost.paused", paused=True)
        elif state != STARTING and self.poller.paused:
            self.poller.resume()
            log.info("[cost] polling resumed")
            self._bus.send("cost.paused", paused=False)
