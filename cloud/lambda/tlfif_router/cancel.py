"""POST /cancel/{id}: "Stop generating" — flag the caller's job so the watcher closes the engine stream.

The watcher polls the flag while it generates (and checks it before starting a job), ends the job with a
`cancelled` result holding the text so far, and acknowledges it. Only the job's owner (JWT `sub`) may cancel it,
and ownership is checked before anything else: someone else's job, in any state, is answered exactly like an id
that never existed, so the answer tells a stranger nothing about it.
    202 {"status": "cancelling", "id"}   flagged (a job still waiting never reaches the engine)
    400 bad id · 404 no such job of yours (expired, never existed, or another user's) · 409 yours, already finished
"""
from __future__ import annotations

import logging

from tlfif_common import api
from tlfif_common.jobs import is_job_id

from .deps import Deps
from .errors import HttpError
from .log import get_logger, log
from .queue_port import ALREADY_FINISHED, CANCELLING, NOT_OWNER, UNKNOWN_JOB
from .request import Request, json_response, path_parameter

NOT_YOURS = (404, "no such job: it expired, never existed, or is not yours")
REFUSALS = {
    UNKNOWN_JOB: NOT_YOURS,
    NOT_OWNER: NOT_YOURS,
    ALREADY_FINISHED: (409, "the job has already finished"),
}
logger = get_logger("router")


def handle(req: Request, deps: Deps) -> dict:
    job_id = path_parameter(req.event, "id")
    if not job_id or not is_job_id(job_id):
        raise HttpError(400, "id must be a job id (the UUID /infer returned)", field="id")
    outcome = deps.queue.cancel(job_id, req.caller.sub)
    if outcome != CANCELLING:
        if outcome == NOT_OWNER:  # the log keeps what the answer hides
            log(logger, logging.WARNING, "cancel of another user's job", **req.log_fields(), job_id=job_id)
        status, message = REFUSALS[outcome]
        raise HttpError(status, message, field="id")
    return json_response(202, {"status": api.CANCEL_CANCELLING, "id": job_id})
