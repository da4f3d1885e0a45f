"""The event writer tells when the stream pauses: once no request has come for ``idle_ms``
after a commit, it calls ``on_idle`` (the server's dispatcher then delivers that commit's
changes without resting first), once a pause."""

from __future__ import annotations

import asyncio

from surmesure.collect.segment import validate_messages
from surmesure.collect.writer import EventWriter
from surmesure.store import Store


def _track(message_id: str) -> dict[str, object]:
    return {
        "type": "track",
        "messageId": message_id,
        "anonymousId": "d-1",
        "event": "Product Viewed",
        "timestamp": "2026-03-01T10:00:00Z",
    }


def test_the_writer_tells_once_when_no_request_follows_a_commit(duckdb_store: Store) -> None:
    async def run() -> tuple[int, int, int]:
        told: list[int] = []
        paused = asyncio.Event()

        def on_idle() -> None:
            told.append(writer.commits)
            paused.set()

        writer = EventWriter(duckdb_store, interval_ms=0, every_ms=0, on_idle=on_idle, idle_ms=20)
        await writer.start()
        try:
            await asyncio.sleep(0.1)  # nothing committed yet: no pause to tell of
            before = len(told)
            accepted, refused = validate_messages([_track("m-1")])
            await writer.write(accepted, refused, source="web")
            await asyncio.wait_for(paused.wait(), timeout=30)
            await asyncio.sleep(0.1)  # still the same pause: told once
            return before, len(told), told[0]
        finally:
            await writer.stop()

    before, times, commits_then = asyncio.run(run())
    assert before == 0
    assert times == 1
    assert commits_then == 1  # told after the commit, not before


def test_a_request_that_comes_in_time_is_no_pause(duckdb_store: Store) -> None:
    async def run() -> int:
        told: list[int] = []
        writer = EventWriter(
            duckdb_store, interval_ms=0, every_ms=0, on_idle=lambda: told.append(1), idle_ms=60_000
        )
        await writer.start()
        try:
            for n in range(3):
                accepted, refused = validate_messages([_track(f"m-{n}")])
                await writer.write(accepted, refused, source="web")
        finally:
            await writer.stop()
        return len(told)

    assert asyncio.run(run()) == 0
