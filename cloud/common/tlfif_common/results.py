"""Moved to `tlfif_common.api` (the result object is `api.Result`); kept only until the app imports it from there."""
from __future__ import annotations

from typing import Any

from .api import STATUS_CANCELLED, STATUS_DONE, STATUS_ERROR, STATUS_RUNNING, Result, result_error  # noqa: F401


def result_doc(job_id: str, status: str, *, error_code: str | None = None, error_message: str | None = None,
               **fields: Any) -> dict[str, Any]:
    return Result(job_id, status, error=result_error(error_code, error_message), **fields).to_dict()
