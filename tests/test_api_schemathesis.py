"""Property test of the HTTP API from its own OpenAPI document (schemathesis): no
generated request, valid or not, makes a live daemon answer with a server error."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.api_helpers import StartApi
from tests.conftest import WriteJobs

JOBS = """\
jobs:
  report:
    schedule: {cron: "0 9 * * 1-5"}
    run: {type: command, command: ["true"]}
"""


def test_no_generated_request_causes_a_server_error(
    start_api: StartApi, write_jobs: WriteJobs
) -> None:
    write_jobs("a.yaml", JOBS)
    daemon = start_api(env={"SCHEDULER_API_TOKEN": "s3cret"})
    base = daemon.base_url
    schema = schemathesis.openapi.from_url(
        f"{base}/openapi.json", headers={"Authorization": "Bearer s3cret"}
    )
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {f"{op.method.upper()} {op.path}" for op in operations} >= {
        "GET /jobs",
        "GET /jobs/{job_id}",
        "GET /jobs/{job_id}/runs",
        "POST /jobs/{job_id}/trigger",
        "POST /jobs/{job_id}/pause",
        "POST /jobs/{job_id}/resume",
        "DELETE /jobs/{job_id}",
        "GET /plan",
        "POST /reconcile",
        "GET /healthz",
        "GET /version",
        "GET /metrics",
        "GET /",
    }
    seen: set[int] = set()

    @settings(
        max_examples=300, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(st.one_of([op.as_strategy() for op in operations]), st.booleans())
    def no_server_error(case: schemathesis.Case, authorized: bool) -> None:
        headers = {"Authorization": "Bearer s3cret"} if authorized else {}
        response = case.call(base_url=base, headers=headers)
        seen.add(response.status_code)
        assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.text}"

    no_server_error()
    assert {200, 401} <= seen  # both sides of the token were exercised
    assert daemon.proc.poll() is None
