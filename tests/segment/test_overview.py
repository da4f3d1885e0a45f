"""The segments at a glance, read from recorded memberships and changes, on every store."""

from __future__ import annotations

from datetime import date, datetime

from surmesure.segment import overview, repository
from surmesure.segment.definitions import parse
from surmesure.store import Store, schema

DAY1, DAY2, DAY3 = datetime(2026, 3, 1, 9), datetime(2026, 3, 2, 9), datetime(2026, 3, 4, 18)


def _record(store: Store) -> None:
    changes = [
        *(("loyal", p, "entered", DAY1) for p in (1, 2, 3)),
        ("loyal", 3, "exited", DAY2),
        *(("loyal", p, "entered", DAY2) for p in (4, 5)),
        ("loyal", 1, "exited", DAY3),
        *(("grp_0", p, "entered", DAY2) for p in (2, 4, 6)),
        ("stray", 9, "entered", DAY1),
    ]
    members = [("loyal", p, DAY2) for p in (2, 4, 5)] + [("grp_0", p, DAY2) for p in (2, 4, 6)]
    members.append(("stray", 9, DAY1))
    with store.begin() as conn:
        conn.execute(
            schema.segment_changes.insert(),
            [dict(segment=s, person_id=p, change=c, changed_at=t) for s, p, c, t in changes],
        )
        conn.execute(
            schema.segment_members.insert(),
            [dict(segment=s, person_id=p, entered_at=t) for s, p, t in members],
        )
    repository.save(store, parse({"name": "loyal", "where": {"purchase": {"min_count": 2}}}), DAY1)
    repository.save(store, parse({"name": "unrefreshed", "where": {"segment": "loyal"}}), DAY3)


def test_sizes_by_day_follow_the_entered_and_exited_history(store: Store) -> None:
    _record(store)
    with store.connect() as conn:
        trend = overview.trend(conn, ["loyal", "grp_0", "unrefreshed"])
        days = [date(2026, 3, 1), date(2026, 3, 2), date(2026, 3, 4)]
        assert trend["loyal"] == list(zip(days, [3, 4, 3], strict=True))
        assert trend["grp_0"] == [(date(2026, 3, 2), 3)]
        assert trend["unrefreshed"] == []
        assert overview.trend(conn, ["loyal"], days=1)["loyal"] == [(date(2026, 3, 4), 3)]


def test_listing_overlap_and_discovered_segments(store: Store) -> None:
    _record(store)
    with store.connect() as conn:
        listed = overview.listing(conn)
        matrix = overview.overlap(conn, ["grp_0", "loyal"])
    by_name = {i.name: i for i in listed}
    # saved ones first (with a version), then those a discovery left; a stray name is not one
    assert [i.name for i in listed] == ["loyal", "unrefreshed", "grp_0"]
    assert (by_name["loyal"].version, by_name["loyal"].members) == (1, 3)
    assert by_name["loyal"].refreshed_at == DAY3
    assert (by_name["unrefreshed"].members, by_name["unrefreshed"].refreshed_at) == (0, None)
    assert by_name["grp_0"].version is None
    assert matrix == [[3, 2], [2, 3]]  # persons 2 and 4 are in both
    assert overview.discovered_groups(listed) == {"grp": ["grp_0"]}
