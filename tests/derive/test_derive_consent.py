"""A profiling objection keeps a person out of derived metrics: no row from the run, none left
from earlier runs, no place in the models' counts; an objection withdrawn by a later grant, or
recorded after the run, does not."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from derive_data import AS_OF, CUSTOMERS, TINY, load_orders

from surmesure.derive.run import derive
from surmesure.protect.consent import consent_row, record_consents
from surmesure.store import Store, schema

pytestmark = pytest.mark.filterwarnings(
    "ignore:fetch_arrow_table\\(\\) is deprecated:DeprecationWarning"
)

NOW = datetime(2024, 4, 1, 6, 0)
DAY = timedelta(days=1)


def _consent(store: Store, person: int, granted: bool, at: datetime, channel: str = "any") -> None:
    with store.begin() as conn:
        record_consents(
            conn,
            [
                consent_row(person, "profiling", channel, granted, source="crm",
                            evidence="form 12", recorded_at=at)
            ],
        )  # fmt: skip


def _people_with_rows(store: Store) -> set[int]:
    d = schema.derived_metrics
    with store.connect() as conn:
        return {int(r[0]) for r in conn.execute(sa.select(d.c.person_id).distinct())}


def test_derive_writes_no_metrics_for_a_profiling_objector(store: Store) -> None:
    load_orders(store, CUSTOMERS, TINY)
    first = derive(store, as_of=AS_OF, now=NOW)
    assert first.objectors == 0 and _people_with_rows(store) == {1, 2, 3, 4, 5, 7}

    _consent(store, 3, False, NOW + DAY)  # objects after the first run
    _consent(store, 1, False, NOW)  # objects, then withdraws the objection
    _consent(store, 1, True, NOW + DAY)
    _consent(store, 2, False, NOW + 5 * DAY)  # objects after the second run
    second = derive(store, as_of=AS_OF, now=NOW + 2 * DAY)
    assert second.objectors == 1
    assert second.people == 5 and second.rows_written == 5
    assert second.buyers == first.buyers - 1  # person 3 bought: out of the CLV fit too
    assert _people_with_rows(store) == {1, 2, 4, 5, 7}  # the first run's row of 3 is gone
