"""The event writer's grouped commit when a request of the group repeats a stored message: the
group is written as if its messages were all new, fails on the stored one, and is written again
looking for them, each request answered with its own counts."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa

from surmesure.collect.events import Ingested
from surmesure.collect.segment import validate_messages
from surmesure.collect.writer import EventWriter
from surmesure.store import Store


def _track(message_id: str, device: str) -> dict[str, object]:
    return {
        "type": "track",
        "messageId": message_id,
        "anonymousId": device,
        "event": "Product Viewed",
        "timestamp": "2026-03-01T10:00:00Z",
    }


async def _send(writer: EventWriter, *batches: list[dict[str, object]]) -> list[Ingested]:
    calls = []
    for batch in batches:
        accepted, refused = validate_messages(batch)
        calls.append(writer.write(accepted, refused, source="web"))
    return list(await asyncio.gather(*calls))


def test_a_group_holding_a_stored_message_counts_it_a_duplicate(store: Store) -> None:
    async def run() -> tuple[list[Ingested], list[Ingested], int]:
        writer = EventWriter(store, interval_ms=50, every_ms=0)
        await writer.start()
        try:
            first = await _send(writer, [_track("m-1", "d-1")])
            commits = writer.commits
            # three requests waiting together: one repeats m-1 (an SDK's retry)
            grouped = await _send(
                writer,
                [_track("m-2", "d-2"), _track("m-3", "d-1")],
                [_track("m-1", "d-1"), _track("m-4", "d-3")],
                [_track("m-5", "d-2")],
            )
            return first, grouped, writer.commits - commits
        finally:
            await writer.stop()

    first, grouped, commits = asyncio.run(run())
    assert (first[0].accepted, first[0].duplicate) == (1, 0)
    assert [(g.accepted, g.duplicate) for g in grouped] == [(2, 0), (1, 1), (1, 0)]
    assert commits == 1  # the three requests shared the commit that stood
    with store.connect() as conn:
        stored = list(conn.execute(sa.text("SELECT message_id FROM events ORDER BY 1")).scalars())
        outbox = conn.execute(sa.text("SELECT count(*) FROM changes WHERE kind = 'event'")).scalar()
    assert stored == ["m-1", "m-2", "m-3", "m-4", "m-5"]
    assert outbox == 5  # one change per event stored, none for the repeat
