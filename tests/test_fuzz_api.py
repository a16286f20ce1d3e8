"""Property-based fuzzing of the collector's HTTP API from its own OpenAPI document
(schemathesis, driven by Hypothesis; issue 9, item 8).

Every operation is called with generated valid and invalid input, with an agent token
and with an operator token, against SQLite and PostgreSQL; the test fails on any 5xx,
on a status code the document does not list, and on a body or header that breaks the
documented schema. Bounded (``EXAMPLES`` per operation, no shrinking deadline) so the
whole run takes about a minute; ``PATROL_FUZZ_EXAMPLES`` raises it for a longer hunt.

Not checked: that every input the schema admits is accepted (schemathesis'
``positive_data_acceptance``): some rules live in code, not in JSON Schema (a cron
expression must parse, a time zone must exist, a timestamp must lie in 2000-2200), and
those are documented in the descriptions and refused with a 422 naming the field.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from patrol.collector.ingest.api import create_app
from tests.collector_fixtures import AGENT_TOKEN, OPERATOR_TOKEN, World, store_for

EXAMPLES = int(os.environ.get("PATROL_FUZZ_EXAMPLES", "50"))
CHECKS = (not_a_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance)
TOKENS = {"agent": AGENT_TOKEN, "operator": OPERATOR_TOKEN}


@pytest.fixture(params=["sqlite", "postgres"])
def app(request: pytest.FixtureRequest, tmp_path: Path
        ) -> Iterator[Any]:
    store = store_for(request.param, request, tmp_path)
    try:
        yield create_app(World(store).engine, [AGENT_TOKEN], [OPERATOR_TOKEN])
    finally:
        store.close()


def _fuzz(operation: Any, mode: GenerationMode) -> None:
    """Hypothesis over one operation; each generated request goes out once per token
    kind."""

    @given(case=operation.as_strategy(mode))
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def run(case: Any) -> None:
        for token in TOKENS.values():
            case.call_and_validate(headers={"Authorization": f"Bearer {token}"},
                                   checks=CHECKS)

    try:
        run()
    except Unsatisfiable:
        # No invalid request exists for an operation without inputs (GET /healthz).
        if mode is not GenerationMode.NEGATIVE:
            raise


@pytest.mark.slow
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
                         ids=["valid-input", "invalid-input"])
def test_no_input_gets_a_5xx_or_breaks_the_document(app: Any, mode: GenerationMode) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10  # the whole API, not an empty document
    for operation in operations:
        _fuzz(operation, mode)
