"""``surmesure status``: the figures a user checks after an import, on both stores."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest
from import_helpers import write_file

from conftest import ONLINE_RETAIL, copy_store, dataset, invoke_json
from surmesure.collect.importer import import_file
from surmesure.store import Store
from surmesure.store.status import collect_status


@pytest.mark.realdata
def test_online_retail_figures(
    online_retail: tuple[Path, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the file imported once for the session (the README's tour runs the import command)
    path = dataset(ONLINE_RETAIL)
    url = copy_store(online_retail[0], tmp_path)
    status = invoke_json(monkeypatch, url, "status")
    with duckdb.connect() as con:
        raw = con.execute(
            "SELECT count(DISTINCT Invoice) FILTER (WHERE Invoice LIKE 'C%'), "
            "count(*) FILTER (WHERE Invoice LIKE 'C%'), "
            'count(DISTINCT "Customer ID"), '
            'count(DISTINCT Invoice) FILTER (WHERE "Customer ID" IS NULL) '
            "FROM read_csv(?, all_varchar = true)",
            [str(path)],
        ).fetchone()
    assert raw is not None
    returns, return_lines, customers, anonymous_orders = raw
    assert status["identified_people"] == customers == 4_383
    assert status["people"] == 4_383
    assert status["returns"] == returns == 4_592
    assert status["return_lines"] == return_lines
    assert status["anonymous_orders"] == anonymous_orders == 5_229
    assert status["order_lines"] == 525_461
    assert status["orders"] == 28_816
    assert 0 < status["fee_lines"] < 10_000
    assert status["identifiers_by_kind"] == {"customer_id": 4_383}
    assert status["quarantine"] == {"total": 0, "by_reason": []}


def test_status_counts_people_kinds_and_quarantine(store: Store, tmp_path: Path) -> None:
    customers = write_file(
        tmp_path,
        "customers",
        "csv",
        [
            {"customer_id": "C1", "email": "a@example.com", "first_name": "Ana"},
            {"email": "A@Example.com ", "phone": "06 12 34 56 78"},  # merges into C1
            {"email": "b@example.com", "first_name": "Bo"},
            {"anonymous_id": "anon-1"},
            {"email": "not-an-email", "first_name": "Cy"},
        ],
    )
    import_file(store, "customers", customers, source="crm")
    status = collect_status(store)
    assert status["database"] == store.dialect
    assert (
        status["people"],
        status["identified_people"],
        status["contactable_people"],
        status["anonymous_people"],
    ) == (3, 1, 1, 1)
    assert status["merges"] == 0  # the second row attached to C1's node by its e-mail
    assert status["identifiers_by_kind"] == {
        "anonymous_id": 1,
        "customer_id": 1,
        "email": 2,
        "phone": 1,
    }
    assert status["quarantine"]["total"] == 1
    (reason,) = status["quarantine"]["by_reason"]
    assert (reason["kind"], reason["field"], reason["count"]) == ("customers", "email", 1)
