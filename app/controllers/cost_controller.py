"""The CostLabel: GET /cost every 30 s on a worker thread; paused while the GPU cold-starts and resumed
(with a poll at once) when it is up. A click on the label opens the daily-spend chart with the latest answer and asks
for a fresh one (the chart redraws when it arrives)."""
from __future__ import annotations

import logging

from app.bus import Bus, Outbox
from app.controllers.poller import Poller
from app.models.cost import cost_text
from app.models.gpu import STARTING
from app.services.tlfif_session import NotSignedIn, TlfifSession
from app.timings import Timings

log = logging.getLogger("tlfif.app.cost")


class CostController:
    def __init__(self, bus: Bus, outbox: Outbox, session: TlfifSession, timings: Timings):
        self._bus = bus
        self._outbox = outbox
        self._session = session
        self.poller = Poller("cost", self._poll, timings.cost_interval_s)
        self.latest: dict | None = None  # the latest /cost answer (Tk thread)
        bus.subscribe_table({
            "gpu.state": self.on_gpu_state,
            "cost.updated": self.on_updated,
            "ui.cost_chart": self.on_chart_wanted,
        })

    @property
    def paused(self) -> bool:
        return self.poller.paused

    def start(self) -> None:
        self.poller.start()

    def stop(self) -> None:
        self.poller.stop()

    def _poll(self) -> None:
        try:
            data = self._session.cost(interactive=False)
        except NotSignedIn:
            return
        except Exception as err:
            log.warning("%s", self._session.error_message(err))
            return
        self._outbox.post("cost.updated", text=cost_text(data), data=data)

    def on_updated(self, text: str, data) -> None:
        self.latest = data if isinstance(data, dict) else None

    def on_chart_wanted(self) -> None:
        self._bus.send("cost.chart", data=self.latest)
        self.poller.poll_now()  # skipped while paused: the chart shows the latest answer meanwhile

    def on_gpu_state(self, state: str, text: str, progress: float, idle_left_s: float) -> None:
        if state == STARTING and not self.poller.paused:
            self.poller.pause()
            log.info("[cost] polling paused while the GPU starts")
            self._bus.send("cost.paused", paused=True)
        elif state != STARTING and self.poller.paused:
            self.poller.resume()
            log.info("[cost] polling resumed")
            self._bus.send("cost.paused", paused=False)
