"""The topic tree, the bus and the outbox — no widgets."""
from __future__ import annotations

import threading

import pytest
from pubsub import pub
from pubsub.core import TopicDefnError

from app.bus import Bus, Outbox, install_topics, topic_provider
from support.app_harness import Recorder


def test_every_defined_topic_instantiates():
    install_topics()
    names = {".".join(n) for n in pub.instantiateAllDefinedTopics(topic_provider())}
    assert {"ui.send", "ui.stop_gpu", "ui.idle_changed", "ui.backend_selected", "job.queued", "job.progress",
            "job.done", "job.failed", "gpu.state", "cost.updated", "auth.signed_in", "settings.saved",
            "clock.tick"} <= names


def test_every_job_topic_carries_request_id():
    install_topics()
    tree = pub.getDefaultTopicMgr()
    job = tree.getTopic("job")
    for sub in job.getSubtopics():
        assert "request_id" in sub.getArgs()[0], sub.getName()


def test_a_topic_typo_fails_loudly():
    bus = Bus()
    try:
        with pytest.raises(TopicDefnError):
            bus.send("job.finished", request_id="1")
    finally:
        bus.close()


def _in_a_worker_thread(work) -> None:
    thread = threading.Thread(target=work)
    thread.start()
    thread.join()


@pytest.mark.parametrize("action, instead", [(lambda bus: bus.send("clock.tick", now=1.0), "Outbox.post"),
                                             (lambda bus: bus.call(lambda: None), "Outbox.call")],
                         ids=["publishing", "calling-a-handler"])
def test_using_the_bus_from_a_worker_thread_is_refused(action, instead):
    bus = Bus()
    errors = []

    def worker():
        try:
            action(bus)
        except RuntimeError as err:
            errors.append(str(err))

    _in_a_worker_thread(worker)
    bus.close()
    assert errors and instead in errors[0]


def test_outbox_drains_a_bounded_batch_in_order():
    bus = Bus()
    outbox = Outbox()
    recorder = Recorder(bus, ["clock.tick"])
    for i in range(25):
        outbox.post("clock.tick", now=float(i))
    assert outbox.drain(bus, 10) == 10
    assert [m["now"] for m in recorder.of("clock.tick")] == [float(i) for i in range(10)]
    assert outbox.pending() == 15
    bus.close()


def test_close_unsubscribes_so_a_new_app_starts_clean():
    bus = Bus()
    recorder = Recorder(bus, ["clock.tick"])
    bus.close()
    other = Bus()
    other.send("clock.tick", now=1.0)
    other.close()
    assert recorder.messages == []


def test_in_production_a_failing_listener_is_logged_with_its_topic(caplog):
    bus = Bus(production=True)
    try:
        class Boom:
            def on_tick(self, now):
                raise ValueError("listener bug")

        boom = Boom()
        bus.subscribe(boom.on_tick, "clock.tick")
        with caplog.at_level("ERROR", logger="tlfif.app.bus"):
            bus.send("clock.tick", now=1.0)  # does not raise: the UI stays alive
        assert "clock.tick" in caplog.text and "listener bug" in caplog.text
    finally:
        pub.setListenerExcHandler(None)  # tests run without it, so listener bugs raise
        bus.close()


def test_only_public_events_are_topics():
    """A worker's result for its own controller is handed back through the pump, never published."""
    install_topics()
    names = {".".join(n) for n in pub.instantiateAllDefinedTopics(topic_provider())}
    private = {"gpu.polled", "gpu.stop_sent", "gpu.keep_warm_sent", "chat.store_ready", "chat.loaded",
               "chat.persist_due"}
    assert not private & names


def test_a_handed_back_result_reaches_its_method_on_the_bus_thread_in_order_with_topics():
    bus = Bus()
    outbox = Outbox()
    recorder = Recorder(bus, ["clock.tick"])
    seen: list = []

    class Controller:
        def answered(self, value):
            seen.append(("call", value, threading.get_ident()))
            bus.send("clock.tick", now=float(value) + 0.5)  # a handler may publish: it runs on the bus's thread

    controller = Controller()

    def worker():
        outbox.post("clock.tick", now=0.0)
        outbox.call(controller.answered, value=1)
        outbox.post("clock.tick", now=2.0)

    _in_a_worker_thread(worker)
    assert outbox.drain(bus, 10) == 3
    assert seen == [("call", 1, threading.get_ident())]
    assert [m["now"] for m in recorder.of("clock.tick")] == [0.0, 1.5, 2.0]
    bus.close()


def test_in_production_a_failing_hand_back_is_logged_and_the_next_message_still_goes(caplog):
    bus = Bus(production=True)
    outbox = Outbox()
    recorder = Recorder(bus, ["clock.tick"])
    try:
        class Poller:
            def polled(self, gpu):
                raise ValueError("handler bug")

        outbox.call(Poller().polled, gpu="ready")
        outbox.post("clock.tick", now=1.0)
        with caplog.at_level("ERROR", logger="tlfif.app.bus"):
            assert outbox.drain(bus, 10) == 2  # does not raise: the UI stays alive
        assert "Poller.polled" in caplog.text and "handler bug" in caplog.text
        assert [m["now"] for m in recorder.of("clock.tick")] == [1.0]
    finally:
        pub.setListenerExcHandler(None)
        bus.close()
