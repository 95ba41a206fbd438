"""How the router reaches the job queue: directly (full profile) or through the in-VPC queue function (lean).

In the lean cost profile the router runs outside the VPC (no NAT, no interface endpoints) and cannot open a
connection to Redis, so every queue operation becomes one `lambda:Invoke` of a small function inside the VPC
(`tlfif_router.queue_handler.handler`). Both ports expose the same operations with the same meaning; the
queue function itself is a `RedisQueuePort` behind a JSON payload, so the semantics cannot drift apart.

Every failure to reach the queue raises `QueueUnavailable`; the router answers 503 for /infer and fails open
for /stop and /ping.

Among the operations of `tlfif_common.workqueue` is one marker, "start wanted": /infer sets it
when the GPU was still `stopping` (StartInstances is refused until it is `stopped`), and a later /ping or /infer
that finds the GPU `stopped` consumes it and starts the instance. /stop clears it (the user's stop wins).
"""
from __future__ import annotations

import json
import time
from typing import Any, Callable, Protocol

from tlfif_common import redis_keys as keys
from tlfif_common.jobs import JOB_TTL_SECONDS, Job
from tlfif_common.workqueue import FINAL_MARK_TTL

from .errors import QueueUnavailable

OWNER_TTL_SECONDS = FINAL_MARK_TTL  # as long as the final marker: /cancel can tell the owner "finished" that long

REDIS_TIMEOUT_SECONDS = 2.0


class QueuePort(Protocol):
    def enqueue(self, job: Job, idempotency_key: str | None = None) -> str:
        """Queue `job` and return its id — unless its user's `idempotency_key` already queued a job (a client's
        retry): then nothing is queued and that job's id is returned."""

    def depth(self) -> int: ...

    def allow(self, user: str, limit: int | None = None) -> tuple[bool, int]:
        """(allowed, retry_after_seconds) for one request by `user`; `limit` None = the shared default."""

    def mark_gpu_started(self, now_ms: int) -> None:
        """Remember when the router last started the GPU (and drop a pending "start wanted")."""

    def gpu_started_at(self) -> int | None: ...

    def want_start(self) -> None:
        """The GPU must be started as soon as it is `stopped` (it was `stopping` when a job arrived)."""

    def take_start_wanted(self) -> bool:
        """True once if a start is wanted; the marker is consumed."""

    def clear_start_wanted(self) -> None: ...

    def mark_user_stop(self) -> None:
        """The user stopped the GPU now: the jobs sent until now end "GPU stopped" (the watcher ends them)."""

    def cancel(self, job_id: str, user: str) -> str:
        """Ask the watcher to stop `job_id` for its owner `user`. Returns one of CANCEL_OUTCOMES."""

    def set_keep_warm(self, until_ms: int) -> None:
        """Keep-warm on until `until_ms` (epoch ms): the watcher holds its idle timer until then."""

    def clear_keep_warm(self) -> None:
        """Keep-warm off: the idle timer counts again from now."""


# What `cancel` can answer: flagged, no such job (expired or never was), not the caller's job, already final.
CANCELLING, UNKNOWN_JOB, NOT_OWNER, ALREADY_FINISHED = "cancelling", "unknown", "forbidden", "finished"
CANCEL_OUTCOMES = (CANCELLING, UNKNOWN_JOB, NOT_OWNER, ALREADY_FINISHED)


class RedisQueuePort:
    """Full profile: the router (or the queue function) talks to Redis itself."""

    def __init__(self, client: Any, *, clock: Callable[[], float] = time.time):
        from tlfif_common.workqueue import WorkQueue  # imports redis: only on the path that needs it

        self.redis = client
        self.clock = clock
        self._queue = WorkQueue(client)

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> RedisQueuePort:
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
                                      socket_timeout=REDIS_TIMEOUT_SECONDS, health_check_interval=30)
        return cls(client, **kwargs)

    def _guard(self, operation: Callable[[], Any]) -> Any:
        import redis

        try:
            return operation()
        except (redis.ConnectionError, redis.TimeoutError) as err:
            raise QueueUnavailable(f"redis: {type(err).__name__}: {err}") from err

    def enqueue(self, job: Job, idempotency_key: str | None = None) -> str:
        def enqueue() -> str:
            idem = keys.idempotency(job.user or "", idempotency_key) if idempotency_key else None
            if idem is not None:
                held = self.redis.set(idem, job.id, nx=True, get=True, ex=JOB_TTL_SECONDS)
                if held is not None:
                    return held.decode() if isinstance(held, bytes) else str(held)
            try:
                if job.user is not None:
                    self.redis.set(keys.owner(job.id), job.user, ex=OWNER_TTL_SECONDS)
                self._queue.enqueue(job)
            except Exception:
                if idem is not None:  # nothing was queued: the client's retry must queue it
                    self._forget_key(idem)
                raise
            return job.id
        return self._guard(enqueue)

    def _forget_key(self, idem: str) -> None:
        try:
            self.redis.delete(idem)
        except Exception:  # Redis is gone: the key points at a job that never was; it expires with the job's TTL
            pass

    def depth(self) -> int:
        return self._guard(self._queue.depth)

    def allow(self, user: str, limit: int | None = None) -> tuple[bool, int]:
        from tlfif_common import ratelimit

        kwargs = {} if limit is None else {"limit": limit}
        return self._guard(lambda: ratelimit.allow(self.redis, user, now=self.clock(), **kwargs))

    def mark_gpu_started(self, now_ms: int) -> None:
        self._guard(lambda: self._queue.mark_gpu_started(now_ms))

    def gpu_started_at(self) -> int | None:
        return self._guard(self._queue.gpu_started_at)

    def want_start(self) -> None:
        self._guard(lambda: self._queue.want_start(int(self.clock() * 1000)))

    def take_start_wanted(self) -> bool:
        return self._guard(self._queue.take_start_wanted)

    def clear_start_wanted(self) -> None:
        self._guard(self._queue.clear_start_wanted)

    def mark_user_stop(self) -> None:
        self._guard(lambda: self._queue.mark_user_stop(int(self.clock() * 1000)))

    def cancel(self, job_id: str, user: str) -> str:
        def cancel() -> str:
            # Ownership first: nothing about someone else's job (not even that it finished) may leak.
            job = self._queue.load_job(job_id)
            if job is None:  # acknowledged jobs lose their job key; the owner key and final marker stay an hour
                owner = self.redis.get(keys.owner(job_id))
                if owner is None:
                    return UNKNOWN_JOB
                if (owner.decode() if isinstance(owner, bytes) else owner) != user:
                    return NOT_OWNER
                return ALREADY_FINISHED if self._queue.has_final(job_id) else UNKNOWN_JOB
            if job.user != user:
                return NOT_OWNER
            if self._queue.has_final(job_id):
                return ALREADY_FINISHED
            self._queue.request_cancel(job_id)
            return CANCELLING
        return self._guard(cancel)

    def set_keep_warm(self, until_ms: int) -> None:
        self._guard(lambda: self._queue.set_keep_warm(until_ms))

    def clear_keep_warm(self) -> None:
        self._guard(self._queue.clear_keep_warm)


class LambdaQueuePort:
    """Lean profile: each operation is one synchronous invoke of the in-VPC queue function.

    Payload `{"op": name, ...arguments}`; answer `{"ok": true, "result": ...}` or `{"ok": false, "error": ...}`
    (see `queue_handler`). An invoke that fails (AWS error, function error, "queue unavailable") raises
    `QueueUnavailable`; an answer saying our own request was malformed is a bug and raises RuntimeError.
    """

    def __init__(self, lambda_client: Any, function_name: str):
        self.client = lambda_client
        self.function_name = function_name

    def _call(self, op: str, **arguments: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        payload = json.dumps({"op": op, **arguments}, separators=(",", ":")).encode()
        try:
            response = self.client.invoke(FunctionName=self.function_name, InvocationType="RequestResponse",
                                          Payload=payload)
            raw = response["Payload"].read()
        except ClientError as err:
            code = err.response.get("Error", {}).get("Code", "Unknown")
            raise QueueUnavailable(f"lambda:Invoke {self.function_name}: {code}") from err
        except BotoCoreError as err:
            raise QueueUnavailable(f"lambda:Invoke {self.function_name}: {type(err).__name__}") from err
        if response.get("FunctionError"):
            raise QueueUnavailable(f"queue function {self.function_name} failed: {response['FunctionError']}: "
                                   f"{raw[:300].decode('utf-8', 'replace')}")
        try:
            answer = json.loads(raw)
        except ValueError:
            raise QueueUnavailable(f"queue function {self.function_name} answered non-JSON") from None
        if not isinstance(answer, dict) or "ok" not in answer:
            raise QueueUnavailable(f"queue function {self.function_name} answered {str(answer)[:200]}")
        if answer["ok"]:
            return answer.get("result")
        if answer.get("unavailable"):
            raise QueueUnavailable(f"queue function {self.function_name}: {answer.get('error')}")
        raise RuntimeError(f"queue function {self.function_name} refused op {op}: {answer.get('error')}")

    def enqueue(self, job: Job, idempotency_key: str | None = None) -> str:
        arguments: dict[str, Any] = {"job": job.to_dict()}
        if idempotency_key is not None:
            arguments["idempotency_key"] = idempotency_key
        return str(self._call("enqueue", **arguments))

    def depth(self) -> int:
        return int(self._call("depth"))

    def allow(self, user: str, limit: int | None = None) -> tuple[bool, int]:
        arguments: dict[str, Any] = {"user": user}
        if limit is not None:
            arguments["limit"] = limit
        allowed, retry_after = self._call("allow", **arguments)
        return bool(allowed), int(retry_after)

    def mark_gpu_started(self, now_ms: int) -> None:
        self._call("mark_gpu_started", now_ms=now_ms)

    def gpu_started_at(self) -> int | None:
        value = self._call("gpu_started_at")
        return None if value is None else int(value)

    def want_start(self) -> None:
        self._call("want_start")

    def take_start_wanted(self) -> bool:
        return bool(self._call("take_start_wanted"))

    def clear_start_wanted(self) -> None:
        self._call("clear_start_wanted")

    def mark_user_stop(self) -> None:
        self._call("mark_user_stop")

    def cancel(self, job_id: str, user: str) -> str:
        outcome = self._call("cancel", job_id=job_id, user=user)
        if outcome not in CANCEL_OUTCOMES:
            raise QueueUnavailable(f"queue function {self.function_name} answered cancel with {str(outcome)[:50]}")
        return outcome

    def set_keep_warm(self, until_ms: int) -> None:
        self._call("set_keep_warm", until_ms=until_ms)

    def clear_keep_warm(self) -> None:
        self._call("clear_keep_warm")
