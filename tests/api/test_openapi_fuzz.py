"""Every route of the OpenAPI, fuzzed: whatever a client sends, the server never answers 5xx.

schemathesis generates requests from the app's own OpenAPI: valid ones from each schema and
invalid ones (wrong types, missing fields, strings with NUL characters, numbers past any
range), a bounded number per route and mode, derandomized so that every run sends the same
requests. Each answer must not be a server error (schemathesis' ``not_a_server_error``). Run
on a real server over each store: valid requests on both, invalid ones on DuckDB alone (most
of them stop at validation, before any store is read, so a second store would add little but
time).
"""

from __future__ import annotations

import schemathesis
from api_helpers import server_key, serving
from hypothesis import HealthCheck, given, seed, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from surmesure.store import Store

EXAMPLES = 25
"""Requests per route and mode: the whole run stays within about a minute on both stores."""
SEED = 20261204


def fuzz(
    operation: schemathesis.APIOperation, mode: GenerationMode, url: str, headers: dict[str, str]
) -> None:
    @seed(SEED)
    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: schemathesis.Case) -> None:
        case.call_and_validate(base_url=url, headers=headers, checks=[not_a_server_error])

    run()


def test_no_route_answers_a_server_error(store: Store) -> None:
    failures: list[str] = []
    # an admin key opens every route, so the requests reach the code behind the key check
    api_headers = {"Authorization": f"Bearer {server_key(store, 'admin')}"}
    modes = [GenerationMode.POSITIVE]
    if store.is_duckdb:
        modes.append(GenerationMode.NEGATIVE)
    with serving(store, rate_limits={}) as (url, app):
        schema = schemathesis.openapi.from_dict(app.openapi())
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) >= 14  # every route is in the OpenAPI
        for operation in operations:
            for mode in modes:
                try:
                    fuzz(operation, mode, url, api_headers)
                except Unsatisfiable:
                    continue  # no invalid request exists for this route (it takes no input)
                except Exception as exc:  # every route is tried, then all are reported
                    failures.append(f"{operation.label} ({mode.value}): {exc}"[:3000])
    assert not failures, "\n\n".join(failures)
