"""Clustering leaves out whoever objects to profiling at the time of the discovery, even when
an earlier derive left metrics for them."""

from __future__ import annotations

from datetime import timedelta

from test_segment_discover import NOW, synthetic

from surmesure.protect.consent import consent_row, record_consents
from surmesure.segment import discover
from surmesure.store import Store

DAY = timedelta(days=1)


def test_clustering_excludes_profiling_objectors(store: Store) -> None:
    truth = synthetic(store)
    rows = [
        consent_row(p, "profiling", "any", False, source="crm", evidence=None,
                    recorded_at=NOW - DAY)
        for p in range(1, 11)
    ]  # fmt: skip
    rows.append(consent_row(11, "profiling", "any", False, source="crm", evidence=None,
                            recorded_at=NOW - 2 * DAY))  # fmt: skip
    rows.append(consent_row(11, "profiling", "any", True, source="crm", evidence=None,
                            recorded_at=NOW - DAY))  # fmt: skip
    rows.append(consent_row(12, "profiling", "any", False, source="crm", evidence=None,
                            recorded_at=NOW + DAY))  # fmt: skip
    with store.begin() as conn:
        record_consents(conn, rows)
    found = discover.discover(store, 3, now=NOW)
    clustered = {p for c in found.clusters for p in c.person_ids}
    assert clustered == set(truth) - set(range(1, 11))
    later = discover.discover(store, 3, now=NOW + 2 * DAY)
    assert 12 not in {p for c in later.clusters for p in c.person_ids}
