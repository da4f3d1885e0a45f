"""Replaying the quarantined rows of the files that come back from a campaign: a call centre's
outcomes (kind ``call_outcomes``, :mod:`surmesure.deliver.calls`) and the post's returned
letters (kind ``paper_returns``, :mod:`surmesure.deliver.returns`).

``surmesure quarantine replay`` (:mod:`surmesure.collect.replay`) hands each file's open rows
here with the mapping given (``--mapping``): its ``columns`` name the file's column a field is
read from, ``constants`` give a field one value, ``values`` rewrite a field's exact values
(``{outcome: {"call back": answered}}``); fields are the file's columns (:data:`ROW_KINDS`).
Each row is then read and recorded as an import of the file would, in the replay's
transaction: a row that now passes is marked ``replayed``; one still refused stays ``open``
with its new reason, its payload still the row as the file had it (a later fix applies to
that). Outcomes posted over the API (origin ``api``, source ``api:<campaign>``) replay the same
way, recorded of the campaign they were posted for.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from surmesure.collect import quarantine
from surmesure.collect.mapping import Mapping, MappingError
from surmesure.deliver import calls, returns
from surmesure.deliver.imports import Read, parse_rows
from surmesure.protect import quarantined
from surmesure.store import schema
from surmesure.store.engine import Store


@dataclass(frozen=True)
class RowKind:
    """A file read row by row: its columns, its row parser, and what records its parsed rows
    in a transaction (adding the rows it refuses to ``Read.bad``), returning how many were
    already recorded; told the source's name and origin (``import`` or ``api``)."""

    columns: tuple[str, ...]
    parse: Callable[[dict[str, str]], Any]
    record: Callable[[Store, Connection, Read, str, str, datetime], int]


def _outcomes(
    store: Store, conn: Connection, read: Read, name: str, origin: str, now: datetime
) -> int:
    campaign = calls.posted_campaign(name) if origin == "api" else None
    done = calls.record_outcomes(
        store, read, name, now, campaign=campaign, origin=origin, within=conn, set_aside_bad=False
    )
    return done.again


def _returns(
    store: Store, conn: Connection, read: Read, name: str, origin: str, now: datetime
) -> int:
    returns.record_returns(store, read, name, now, within=conn, set_aside_bad=False)
    return 0


ROW_KINDS: dict[str, RowKind] = {
    calls.KIND: RowKind((*calls.REQUIRED, "message_id"), calls.parse_row, _outcomes),
    returns.KIND: RowKind(returns.COLUMNS, returns.parse_row, _returns),
}


@dataclass
class Replayed:
    """One file's rows replayed: how many now passed (of which already recorded), and the
    reasons of those still refused."""

    replayed: int = 0
    duplicate: int = 0
    refused: list[str] = field(default_factory=list)


def check_mapping(mapping: Mapping, kind: str) -> None:
    """Refuse a mapping for another kind, or naming a field the file does not have, before
    anything is replayed."""
    if mapping.kind is not None and mapping.kind != kind:
        raise MappingError(
            f"Mapping {mapping.name or '(unnamed)'} is for kind {mapping.kind!r}, not {kind!r}.",
            hint="replay with --kind, or change `kind:` in the mapping",
            field="kind",
        )
    mapping.check_fields(kind, list(ROW_KINDS[kind].columns))


def _text(value: object) -> str:
    return "" if value is None else str(value)


def mapped(row: dict[str, str], mapping: Mapping) -> dict[str, str]:
    """The file's ``row`` as the ``mapping`` reads it (see the module)."""
    out = dict(row)
    for name, column in mapping.columns.items():
        out[name] = row.get(column, "")
    for name, value in mapping.constants.items():
        out[name] = _text(value)
    for name, table in mapping.values.items():
        value = out.get(name, "")
        if value in table:
            out[name] = _text(table[value])
    return out


def replay_rows(
    store: Store,
    conn: Connection,
    kind: str,
    source_name: str,
    ids: Sequence[int],
    payloads: Sequence[dict[str, Any]],
    mapping: Mapping,
    now: datetime,
    origin: str = "import",
) -> Replayed:
    """Replay the open quarantine records ``ids`` of one file, or of one campaign's posts
    (``origin`` ``api``): their ``payloads``, the rows as read, with ``mapping`` (see the
    module)."""
    rows = ROW_KINDS[kind]
    read = Read([], [])
    for n, payload in enumerate(payloads):
        row = {k: _text(v) for k, v in payload.items() if k not in quarantine.RESERVED}
        # each row is numbered by its place here: its refusal names the record it came from
        parsed = parse_rows([mapped(row, mapping)], rows.parse, first=n)
        read.good.extend(parsed.good)
        read.bad.extend(parsed.bad)
    duplicate = rows.record(store, conn, read, source_name, origin, now)
    refused = {int(item.location.removeprefix("row ")): item for item in read.bad}
    for n, item in refused.items():
        quarantined.reseal(
            conn,
            ids[n],
            quarantine.clean(item.value),
            quarantine.payload_json(payloads[n]),
            now=now,
            field=item.field,
            reason=item.reason,
        )
    done = [ids[n] for n in range(len(ids)) if n not in refused]
    if done:
        q = schema.quarantine
        conn.execute(
            q.update().where(q.c.quarantine_id.in_(done)).values(status="replayed", replayed_at=now)
        )
    return Replayed(len(done), duplicate, [str(item.reason) for item in refused.values()])
