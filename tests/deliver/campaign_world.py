"""A small world for campaign tests: identified people with e-mails and phones imported as a
customer file (so their identifiers are sealed at rest as in production), and documents."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from import_helpers import write_file

from surmesure.collect.importer import import_file
from surmesure.protect import marketing
from surmesure.protect.consent import consent_row, record_consents
from surmesure.store import Store
from surmesure.unify.profile import find_person

T0 = datetime(2026, 3, 2, 10, 0, 0)  # a Monday, 11:00 in Paris
HOUR = timedelta(hours=1)


def email_of(i: int) -> str:
    return f"person{i}@example.org"


def add_people(
    store: Store,
    folder: Path,
    n: int,
    *,
    no_email: set[int] = frozenset(),
    phones: set[int] = frozenset(),
    extra: dict[int, dict[str, Any]] | None = None,
) -> dict[int, int]:
    """People 1..n (customer ids ``C<i>``), with an e-mail unless in ``no_email``, a
    phone when in ``phones`` and the columns of ``extra[i]``: ``{i: person_id}``."""
    rows: list[dict[str, Any]] = []
    for i in range(1, n + 1):
        row: dict[str, Any] = {
            "customer_id": f"C{i}",
            "first_name": f"Name{i}",
            "observed_at": "2026-01-10 09:00:00",
        }
        if i not in no_email:
            row["email"] = email_of(i)
        if i in phones:
            row["phone"] = f"+3361234{i:04d}"
        row.update((extra or {}).get(i, {}))
        rows.append(row)
    path = write_file(folder, "customers", "csv", rows)
    import_file(store, "customers", path, source="crm")
    with store.connect() as conn:
        return {i: find_person(conn, f"customer_id:C{i}").person_id for i in range(1, n + 1)}


def consent(
    store: Store, person_id: int, purpose: str, channel: str, granted: bool, at: datetime
) -> None:
    with store.begin() as conn:
        record_consents(
            conn,
            [
                consent_row(
                    person_id,
                    purpose,
                    channel,
                    granted,
                    source="crm",
                    evidence=None,
                    recorded_at=at,
                )
            ],
        )


def refuse(store: Store, person_id: int, channel: str, at: datetime = T0 - 24 * HOUR) -> None:
    consent(store, person_id, "marketing", channel, False, at)


def prefer(store: Store, person_id: int, kind: str, value: str, **extra: Any) -> None:
    with store.begin() as conn:
        marketing.record(
            conn,
            [
                marketing.preference_row(
                    person_id,
                    kind,
                    value,
                    source="centre",
                    evidence=None,
                    recorded_at=T0 - 24 * HOUR,
                    pause_max_days=store.settings.preference_pause_max_days,
                    **extra,
                )
            ],
        )


def document(**overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": "spring",
        "description": "Spring sale",
        "audience": "everyone",
        "topic": "offers",
        "channels": {
            "email": {
                "subject": "Hello{% if person.first_name %} {{ person.first_name }}{% endif %}",
                "text": "Dear {{ person.first_name or 'customer' }}, -20% this week.",
                "fields": {"first_name": {"trait": "first_name", "fallback": ""}},
            },
            "sms": {"text": "-20% this week. STOP 36180"},
        },
        "policy": {"order": ["email", "sms"]},
    }
    doc.update(overrides)
    return doc
