"""The campaign results the demo prints agree with the store's rows, counted here afresh from
messages, delivery reports and orders by the rules of :mod:`surmesure.deliver.results`."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from conftest import copy_demo, invoke_json
from surmesure.store import Store, open_store

REPORTED = {"sms", "web"}  # delivered once a report says so
FAILED = {"failed", "rejected", "bounced"}


def _rows(store: Store, query: str, **params: Any) -> list[dict[str, Any]]:
    with store.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.text(query), params)]


def _count_afresh(store: Store, campaign: str, days: int) -> Counter[tuple[str, str, str]]:
    """(arm, channel or ``all``, what) -> people, from the rows one by one."""
    messages = _rows(store, "SELECT * FROM messages WHERE campaign = :c", c=campaign)
    reports = _rows(
        store,
        "SELECT message_id, status, received_at, report_id FROM delivery_reports "
        "WHERE message_id IN (SELECT message_id FROM messages WHERE campaign = :c)",
        c=campaign,
    )
    latest: dict[str, dict[str, Any]] = {}
    for report in sorted(reports, key=lambda r: (r["received_at"], r["report_id"])):
        latest[report["message_id"]] = report
    # each person's place: the first step-0 row the campaign assigned (a link a page
    # delivered comes after the message that carried it)
    placed: dict[int, dict[str, Any]] = {}
    for m in sorted(
        (
            m
            for m in messages
            if m["step"] == 0
            and m["person_id"] is not None
            and not (m["status"] == "suppressed" and m["attempts"] == 0)
        ),
        key=lambda m: (m["planned_at"], (m["reason"] or "").startswith("link:"), m["message_id"]),
    ):
        placed.setdefault(m["person_id"], m)
    sent: set[int] = set()
    delivered: set[int] = set()
    for m in messages:
        if m["status"] != "sent" or m["person_id"] is None:
            continue
        sent.add(m["person_id"])
        report = (latest.get(m["message_id"]) or {}).get("status") or ""
        if (report == "delivered") if m["channel"] in REPORTED else (report not in FAILED):
            delivered.add(m["person_id"])
    orders = _rows(
        store, "SELECT person_id, ordered_at FROM orders WHERE NOT is_return AND person_id IN "
        "(SELECT person_id FROM messages WHERE campaign = :c)",
        c=campaign,
    )  # fmt: skip
    converted = {
        o["person_id"]
        for o in orders
        if o["person_id"] in placed
        and placed[o["person_id"]]["planned_at"]
        <= o["ordered_at"]
        < placed[o["person_id"]]["planned_at"] + timedelta(days=days)
    }
    out: Counter[tuple[str, str, str]] = Counter()
    for person, m in placed.items():
        if m["status"] == "held_out":
            arm = "control" if m["reason"] == "control" else "global_holdout"
        else:
            arm = "message"
        for channel in ("all", m["channel"]):
            out[arm, channel, "people"] += 1
            out[arm, channel, "sent"] += person in sent
            out[arm, channel, "delivered"] += person in delivered
            out[arm, channel, "converted"] += person in converted
    return out


def test_the_demo_campaign_results_are_the_store_counted_afresh(
    demo_world: tuple[Path, dict[str, Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built, report = demo_world
    url = copy_demo(built, tmp_path)
    printed = report["campaign"]["results"]
    assert printed, report["campaign"]
    for results in printed.values():
        # the demo prints what `surmesure campaign results` says
        assert invoke_json(monkeypatch, url, "campaign", "results", results["campaign"]) == results
    controls: list[int] = []
    store = open_store(url)
    try:
        for results in printed.values():
            campaign = results["campaign"]
            counted = _count_afresh(store, campaign, results["attribution_days"])
            for group in results["groups"]:
                for what in ("people", "sent", "delivered", "converted"):
                    key = (group["arm"], group["channel"], what)
                    assert group[what] == counted[key], (campaign, key)
            # every person placed is in a printed group, and nobody else
            assert {k for k, n in counted.items() if n} <= {
                (g["arm"], g["channel"], w)
                for g in results["groups"]
                for w in ("people", "sent", "delivered", "converted")
            }
            treated = results["groups"][0]
            assert (treated["arm"], treated["channel"]) == ("message", "all")
            assert treated["sent"] > 0 and treated["delivered"] <= treated["sent"], campaign
            if results["groups"][1]["channel"] not in REPORTED:  # (SMS: once Kannel says so)
                assert treated["delivered"] > 0, campaign
            # a control group receives nothing: it is there to compare with
            for control in (g for g in results["groups"] if g["arm"] != "message"):
                assert control["sent"] == control["delivered"] == 0, (campaign, control)
            controls += [g["people"] for g in results["groups"] if g["arm"] == "control"]
        assert sum(controls) > 0, {r["campaign"]: r["groups"] for r in printed.values()}
    finally:
        store.dispose()
