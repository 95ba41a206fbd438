"""GET /cost through the local cloud (a separate process: API Gateway emulation → router → moto)."""
from __future__ import annotations

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

FIELDS = {"month_to_date_eur", "as_of", "gpu_state", "gpu_hourly_eur", "session_eur", "session_seconds", "daily",
          "budget_eur"}


def test_cost_through_the_local_cloud(local_cloud):
    token = local_cloud.token(user="cost-e2e")
    answer = local_cloud.api("GET", "/cost", token=token)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) == FIELDS
    assert body["gpu_state"] in ("stopped", "pending", "running", "stopping")
    assert body["gpu_hourly_eur"] > 0  # g4dn.xlarge in eu-central-1 from tlfif_common/prices.json
    assert isinstance(body["session_seconds"], int) and isinstance(body["daily"], list)
    assert body["budget_eur"] is None  # no AWS Budgets in the local cloud
    if body["gpu_state"] != "running":
        assert (body["session_eur"], body["session_seconds"]) == (0.0, 0)
    assert local_cloud.api("GET", "/cost").status_code == 401  # the authorizer guards it like every route
