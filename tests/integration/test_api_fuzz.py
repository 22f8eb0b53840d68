"""Property-based requests generated from the OpenAPI spec (schemathesis), valid and invalid: no answer is a 5xx."""

from __future__ import annotations

import itertools

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable

from tests.api_fixtures import serve

TOKEN = "fuzz-token"
EXAMPLES_PER_OPERATION = 25


def test_no_generated_request_gets_a_server_error(site: dict) -> None:
    with serve(site, token=TOKEN, run_daemon=False) as api:
        schema = schemathesis.openapi.from_url(f"{api.url}/openapi.json")
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) >= 12
        failures: list[str] = []
        calls: list[tuple[str, str, int]] = []
        for operation, mode in itertools.product(operations, list(schemathesis.GenerationMode)):

            @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None, derandomize=True,
                      suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(generation_mode=mode))
            def check(case: schemathesis.Case) -> None:
                headers = {"Authorization": f"Bearer {TOKEN}"} if case.method == "POST" else {}
                response = case.call(base_url=api.url, headers=headers, timeout=10)
                calls.append((case.method, case.path, response.status_code))
                expected_503 = case.path in ("/healthz", "/readyz") and response.status_code == 503  # no worker
                if response.status_code >= 500 and not expected_503:
                    failures.append(f"{case.method} {case.formatted_path} {case.query} {case.body}: "
                                    f"{response.status_code} {response.text[:200]}")

            try:
                check()
            except Unsatisfiable:  # nothing of this operation can be made invalid (no parameters)
                assert mode == schemathesis.GenerationMode.NEGATIVE, operation.path
        assert not failures, "\n".join(failures[:10])
        assert len(calls) >= 100
        assert {path for _, path, _ in calls} >= {"/jobs", "/videos", "/videos/{video_id}/summary"}
        assert httpx.get(f"{api.url}/healthz", timeout=5).status_code in (200, 503)


pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:schemathesis.*")
