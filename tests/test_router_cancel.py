"""POST /cancel/{id} on the router: the owner's job is flagged for the watcher; everyone else gets a clear refusal."""
from __future__ import annotations

import copy

import pytest

from tlfif_common import names
from tlfif_common.workqueue import WorkQueue
from tlfif_common import redis_keys as keys
from tlfif_local.ports import free_port

from support.router_cloud import SUB, aws_cloud_fixture, cloud_fixture, invoke, load_event  # noqa: F401


def cancel_event(job_id: str, *, via_path_only: bool = False, **kwargs) -> dict:
    event = load_event("cancel", **kwargs)
    event["pathParameters"] = {"id": job_id}
    event["rawPath"] = event["requestContext"]["http"]["path"] = f"/cancel/{job_id}"
    if via_path_only:  # a $default route: no routeKey, no pathParameters
        event = copy.deepcopy(event)
        event["routeKey"] = "$default"
        del event["pathParameters"]
    return event


def submit(prompt: str = "count to a thousand") -> str:
    answer = invoke(load_event("infer", body={"prompt": prompt, "idle": 5}))
    assert answer.status == 202, answer
    return answer.body["id"]


@pytest.mark.parametrize("via_path_only", [False, True])
def test_owner_cancels_a_queued_job(cloud, redis_client, via_path_only):
    job_id = submit()
    answer = invoke(cancel_event(job_id, via_path_only=via_path_only))
    assert answer.status == 202 and answer.body == {"status": "cancelling", "id": job_id}
    assert WorkQueue(redis_client).cancel_requested(job_id)


UNKNOWN_ID = "0b5d3c1e-2f4a-4b6c-8d7e-9f0a1b2c3d4e"


def finish(job_id: str, redis_client) -> None:
    """What the watcher does with a job: claim it, write the final result, acknowledge it."""
    queue = WorkQueue(redis_client)
    assert queue.claim("w", timeout=0.1).job_id == job_id
    queue.claim_final(job_id, "w")
    queue.ack(job_id)


def test_someone_elses_job_is_answered_as_no_such_job_and_not_flagged(cloud, redis_client):
    job_id = submit()
    answer = invoke(cancel_event(job_id, claims={"sub": "another-user"}))
    assert (answer.status, answer.body) == (404, invoke(cancel_event(UNKNOWN_ID)).body)
    assert not redis_client.exists(keys.cancel(job_id))


def test_someone_elses_finished_job_is_answered_as_no_such_job(cloud, redis_client):
    """A 409 would tell a stranger that the job existed and has finished."""
    job_id = submit()
    finish(job_id, redis_client)
    answer = invoke(cancel_event(job_id, claims={"sub": "another-user"}))
    assert (answer.status, answer.body) == (404, invoke(cancel_event(UNKNOWN_ID)).body)
    assert invoke(cancel_event(job_id)).status == 409  # its owner still learns that it finished


def test_unknown_job_is_404(cloud):
    answer = invoke(cancel_event(UNKNOWN_ID))
    assert answer.status == 404 and answer.body["field"] == "id"


def test_finished_job_is_409(cloud, redis_client):
    job_id = submit()
    finish(job_id, redis_client)
    answer = invoke(cancel_event(job_id))
    assert answer.status == 409 and "finished" in answer.error


@pytest.mark.parametrize("bad", ["not-a-uuid", "3F1C2A9E-8B7D-4C5E-9F0A-1B2C3D4E5F60", ""])
def test_bad_id_is_400_naming_id(cloud, bad):
    event = cancel_event("x")
    event["pathParameters"] = {"id": bad}
    answer = invoke(event)
    assert answer.status == 400 and answer.body["field"] == "id"


def test_redis_down_is_503(cloud, monkeypatch):
    monkeypatch.setenv(names.ENV_REDIS_URL, f"redis://127.0.0.1:{free_port()}/0")
    cloud.rebuild()
    answer = invoke(cancel_event("0b5d3c1e-2f4a-4b6c-8d7e-9f0a1b2c3d4e"))
    assert answer.status == 503 and answer.error == "queue unavailable"


def test_lean_profile_cancel_goes_through_the_queue_function(redis_url, redis_client, monkeypatch):
    """Lambda cannot run here (moto's Lambda needs Docker): `lambda_client_calling` answers Invoke in-process."""
    from tlfif_common.jobs import Job
    from tlfif_router import queue_handler
    from tlfif_router.queue_port import LambdaQueuePort

    from support.lambda_invoke import lambda_client_calling

    monkeypatch.setenv(names.ENV_REDIS_URL, redis_url)
    queue_handler.reset_port()
    try:
        port = LambdaQueuePort(lambda_client_calling({"q": queue_handler.handler}), "q")
        job = Job.create({"prompt": "p", "idle": 5}, bucket="b", user="owner", now_ms=1)
        port.enqueue(job)
        assert port.cancel(job.id, "intruder") == "forbidden"
        assert port.cancel(job.id, "owner") == "cancelling" and WorkQueue(redis_client).cancel_requested(job.id)
        assert port.cancel(UNKNOWN_ID, "owner") == "unknown"
        finish(job.id, redis_client)
        assert port.cancel(job.id, "intruder") == "forbidden" and port.cancel(job.id, "owner") == "finished"
        refused = queue_handler.handler({"op": "cancel", "job_id": "nope", "user": "owner"}, None)
        assert refused["ok"] is False and "job_id" in refused["error"]
    finally:
        queue_handler.reset_port()
