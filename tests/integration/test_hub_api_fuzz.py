"""schemathesis over the hub's whole OpenAPI document, with the token: no 5xx, every answer as documented.

Also without the token: every API operation answers 401 whatever is generated. Bounded and reproducible
(a fixed number of derandomized examples per operation) on the session's real NATS.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.e2e.proc_tools import mtrobot_command, wait_until

MAX_EXAMPLES = 15


def _run(schema: Any, check: Any) -> dict[str, int]:
    operations = [result.ok() for result in schema.get_all_operations()]
    counts = {"operations": len(operations), "requests": 0, "5xx": 0}
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=MAX_EXAMPLES, derandomize=True, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))  # fmt: skip
        def exercise(case: Any) -> None:
            if "service" in (case.path_parameters or {}) and case.path_parameters["service"].isascii():
                case.path_parameters["service"] = "connector.fuzz"  # reach the store, not only the 422
            response = check(case)
            counts["requests"] += 1
            counts["5xx"] += response.status_code >= 500

        exercise()
    return counts


def test_the_hub_api_answers_every_generated_request_as_documented(data_dir: Path, nats_url: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MTROBOT_")}
    env.update(MTROBOT_NATS_URL=nats_url, MTROBOT_DATA_DIR=str(data_dir))
    log = open(data_dir.parent / "hub.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        mtrobot_command("hub", "--port", "0"), stdout=log, stderr=subprocess.STDOUT, env=env
    )
    info = data_dir / "run" / "hub.json"
    try:
        wait_until(info.exists, 30, "hub.json", proc)
        url = json.loads(info.read_text())["url"]
        auth = {"Authorization": f"Bearer {(data_dir / 'hub.token').read_text().strip()}"}
        with httpx.Client(base_url=url, timeout=5) as http:
            wait_until(lambda: http.get("/readyz").status_code == 200, 15, "the hub on the bus", proc)
            spec = http.get("/openapi.json").json()
        schema = schemathesis.openapi.from_dict(spec)

        def documented(case: Any) -> Any:
            # A schema-valid document may still be refused on semantic grounds (an unknown field of a
            # service's schema): a documented 422, not a violation.
            return case.call_and_validate(
                base_url=url, headers=auth, excluded_checks=[positive_data_acceptance]
            )

        counts = _run(schema, documented)

        def anonymous(case: Any) -> Any:
            response = case.call(base_url=url)
            if case.path.startswith("/api/v1"):
                assert response.status_code == 401, (case.method, case.path, response.status_code)
            return response

        refused = _run(schema, anonymous)
    finally:
        proc.terminate()
        proc.wait(20)
        log.close()
    print(f"\nhub API fuzz: {counts['requests']} requests over {counts['operations']} operations with the "
          f"token, {counts['5xx']} 5xx, 0 schema violations; {refused['requests']} without it, all /api/v1 "
          "answered 401")  # fmt: skip
    assert counts["operations"] >= 9 and counts["5xx"] == 0 and refused["5xx"] == 0
