"""POST /cancel/{id}: "Stop generating" — flag the caller's job so the watcher closes the engine stream.

The watcher polls the flag while it generates (and checks it before starting a job), ends the job with a
`cancelled` result holding the text so far, and acknowledges it. Only the job's owner (JWT `sub`) may cancel it.
    202 {"status": "cancelling", "id"}   flagged (a job still waiting never reaches the engine)
    400 bad id · 403 someone else's job · 404 no such job (expired) · 409 already finished
"""
from __future__ import annotations

from tlfif_common import api
from tlfif_common.jobs import is_job_id

from .deps import Deps
from .errors import HttpError
from .queue_port import ALREADY_FINISHED, CANCELLING, NOT_OWNER, UNKNOWN_JOB
from .request import Request, json_response, path_parameter

REFUSALS = {
    UNKNOWN_JOB: (404, "no such job: it expired or never existed"),
    NOT_OWNER: (403, "this job belongs to another user"),
    ALREADY_FINISHED: (409, "the job has already finished"),
}


def handle(req: Request, deps: Deps) -> dict:
    job_id = path_parameter(req.event, "id")
    if not job_id or not is_job_id(job_id):
        raise HttpError(400, "id must be a job id (the UUID /infer returned)", field="id")
    outcome = deps.queue.cancel(job_id, req.caller.sub)
    if outcome != CANCELLING:
        status, message = REFUSALS[outcome]
        raise HttpError(status, message, field="id")
    return json_response(202, {"status": api.CANCEL_CANCELLING, "id": job_id})
